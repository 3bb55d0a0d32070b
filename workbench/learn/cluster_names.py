"""Names for groups of items, as suggestions to label them by: the distinctive phrases of
their texts (class-based TF-IDF), the vocabulary names a CLIP-like text tower puts nearest
their images, the words of their file names and folders, a metadata column's most
distinctive value.

Every function takes arrays and lists (``assign``: (N,) int64 group of each item in
``0..G-1``, -1 = in no group) and returns one entry per group, in group order. Nothing here
records anything: a name is a suggestion until a person labels the group with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from .._config import (
    CLUSTER_NAME_CANDIDATES,
    CLUSTER_NAME_MIN_COUNT,
    CLUSTER_NAME_MIN_LIFT,
    CLUSTER_NAME_MIN_SHARE,
    CLUSTER_NAME_REFINE_SAMPLE,
    CLUSTER_NAME_REFINE_SWEEPS,
    CLUSTER_NAME_SAMPLE,
    CLUSTER_NAME_TEMPLATES,
    CLUSTER_NAME_TERMS,
)
from ..neighbors import normalize

__all__ = ["FILE_WORDS", "PHRASE_SHARE", "VOCABULARY_FILE", "distinctive_terms",
           "frequency_names", "join_terms", "path_words", "phrases",
           "read_vocabulary", "refine_names", "stop_words", "text_cluster_terms", "text_names", "value_names", "vocabulary_names"]

#: The vocabulary shipped with the workbench (our own list; see its header line).
VOCABULARY_FILE = Path(__file__).resolve().parent.parent / "data" / "vocabulary.txt"

#: File-name words that say nothing about the content (extensions, camera prefixes).
FILE_WORDS = frozenset({
    "img", "image", "images", "jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "webp",
    "dsc", "dscn", "dcim", "pic", "pics", "picture", "pictures", "photo", "photos", "file",
    "files", "data", "dataset", "train", "test", "val", "valid", "validation", "copy",
    "home", "users", "user", "tmp", "temp", "scan", "screenshot", "final", "new", "old",
})

#: A word held by a group's items mostly (this share) inside one two-word phrase is
#: replaced by the phrase in the group's name: "kung fu", not "kung".
PHRASE_SHARE = 0.7

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_CONTRACTION_PARTS = {"s", "t", "d", "ll", "re", "ve", "m", "n", "nt", "don", "didn",
                      "doesn", "isn", "wasn", "aren", "weren", "couldn", "wouldn",
                      "shouldn", "won", "haven", "hasn", "hadn", "ain", "ca", "wo"}


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """Words too common to name anything: scikit-learn's English stop words, plus the
    pieces a tokeniser leaves of contractions ("it's" -> "it", "s"; "don't" -> "don")."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | frozenset(_CONTRACTION_PARTS)


def _words(text: str) -> list[str]:
    """Lower-case words (letters only; a contraction splits at its apostrophe)."""
    out: list[str] = []
    for m in _WORD.finditer(str(text).lower()):
        out.extend(p for p in re.split(r"['’]", m.group()) if p)
    return out


def phrases(text: str) -> list[str]:
    """The distinct terms of one text: its words of two letters or more that are not stop
    words, and each pair of such words that stand next to each other ("new york")."""
    stop = stop_words()
    words = _words(text)
    keep = [len(w) > 1 and w not in stop for w in words]
    terms = {w for w, k in zip(words, keep, strict=True) if k}
    terms.update(f"{a} {b}" for a, b, ka, kb in zip(words, words[1:], keep, keep[1:],
                                                    strict=False) if ka and kb)
    return sorted(terms)


def path_words(path: str) -> list[str]:
    """The distinct words of a file's name and its last two folders ("photos/Golden
    Retriever/IMG_0042.jpg" -> golden, retriever), less :data:`FILE_WORDS` and stop words."""
    parts = Path(str(path).replace("\\", "/")).parts[-3:]
    stem = [*parts[:-1], Path(parts[-1]).stem] if parts else []
    stop = stop_words()
    words = set()
    for part in stem:
        spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", part)  # camelCase -> camel case
        words.update(w for w in _words(spaced.replace("_", " "))
                     if len(w) > 1 and w not in stop and w not in FILE_WORDS)
    return sorted(words)


def _sample(assign: np.ndarray, n_groups: int, per_group: int, seed: int = 0) -> np.ndarray:
    """Positions of at most ``per_group`` seeded random members of each group."""
    rng = np.random.default_rng(seed)
    out = []
    for g in range(n_groups):
        m = np.flatnonzero(assign == g)
        out.append(m if m.size <= per_group else np.sort(rng.choice(m, per_group, replace=False)))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def distinctive_terms(
    docs: Sequence[Sequence[str]],
    assign: np.ndarray,
    n_groups: int,
    *,
    top: int = 3,
    min_count: int = CLUSTER_NAME_MIN_COUNT,
    min_lift: float = CLUSTER_NAME_MIN_LIFT,
    min_share: float = 0.0,
) -> list[list[str]]:
    """The terms that set each group apart, best first (class-based TF-IDF).

    Each group's items are one "class document". A term's weight in group ``g`` is
    ``tf(t, g) * log(1 + A / f(t))`` (Grootendorst's c-TF-IDF): ``tf`` the share of the
    group's items that hold the term, ``f`` the number of items holding it anywhere, ``A``
    the mean group size. A term must be in at least ``min_count`` of the group's items (and
    at least the share ``min_share`` of them), and ``min_lift`` times more common there
    than overall; a term sharing a word with a better
    one is skipped ("new york" then not "york").

    Parameters
    ----------
    docs : (N,) the terms of each item (a term counts once per item).
    assign : (N,) int64 group of each item, -1 = none.
    n_groups : G.
    top : terms per group at most.

    Returns
    -------
    G lists of at most ``top`` terms (empty where nothing stands out).
    """
    from sklearn.feature_extraction.text import CountVectorizer

    assign = np.asarray(assign, np.int64)
    if len(docs) != assign.size:
        raise ValueError(f"{len(docs)} documents for {assign.size} group assignments")
    keep = np.flatnonzero(assign >= 0)
    if keep.size == 0 or n_groups < 1:
        return [[] for _ in range(n_groups)]
    vec = CountVectorizer(analyzer=lambda d: d, binary=True, min_df=1)
    try:
        x = vec.fit_transform([list(docs[i]) for i in keep]).tocsc()
    except ValueError:  # no terms at all
        return [[] for _ in range(n_groups)]
    import scipy.sparse as sp

    a = assign[keep]
    onehot = sp.csr_matrix((np.ones(a.size), (a, np.arange(a.size))), shape=(n_groups, a.size))
    counts = np.asarray((onehot @ x).todense(), np.float64)  # (G, V) items holding each term
    sizes = np.bincount(a, minlength=n_groups).astype(np.float64)
    total = counts.sum(0)  # f(t)
    tf = counts / np.maximum(sizes, 1)[:, None]
    score = tf * np.log1p(sizes.mean() / np.maximum(total, 1))[None, :]
    lift = tf / np.maximum(total / a.size, 1e-12)[None, :]
    score[(counts < min_count) | (lift < min_lift) | (tf < min_share)] = -np.inf
    names = [str(t) for t in vec.get_feature_names_out()]
    phrases_of: dict[str, list[int]] = {}  # word -> the two-word phrases that hold it
    for j, t in enumerate(names):
        if " " in t:
            for w in t.split():
                phrases_of.setdefault(w, []).append(j)
    out = []
    for g in range(n_groups):
        chosen: list[str] = []
        used: set[str] = set()
        for j in np.argsort(-score[g], kind="stable"):
            if not np.isfinite(score[g, j]) or len(chosen) >= top:
                break
            # A word that mostly comes in one phrase is named by the phrase ("kung fu").
            whole = [b for b in phrases_of.get(names[j], [])
                     if np.isfinite(score[g, b]) and counts[g, b] >= PHRASE_SHARE * counts[g, j]]
            if whole:
                j = max(whole, key=lambda b: counts[g, b])
            words = set(names[j].split())
            if words & used:
                continue
            chosen.append(names[j])
            used |= words
        out.append(chosen)
    return out


def join_terms(terms: Sequence[str]) -> str:
    """A name from terms: ``"film, director, story"``."""
    return ", ".join(terms)


def text_names(texts: Sequence[str], assign: np.ndarray, n_groups: int, *, top: int = 3,
               sample: int = CLUSTER_NAME_SAMPLE) -> list[list[str]]:
    """Each group's distinctive :func:`phrases` (:func:`distinctive_terms`), read from at
    most ``sample`` seeded random members per group."""
    assign = np.asarray(assign, np.int64)
    pos = _sample(assign, n_groups, sample)
    return distinctive_terms([phrases(texts[i]) for i in pos], assign[pos], n_groups, top=top)


def text_cluster_terms(
    texts: Sequence[str],
    assign: np.ndarray,
    n_groups: int,
    *,
    vectors: np.ndarray | None = None,
    encode_text: Callable[[list[str]], np.ndarray] | None = None,
    top: int = CLUSTER_NAME_TERMS,
    candidates: int = CLUSTER_NAME_CANDIDATES,
    sample: int = CLUSTER_NAME_SAMPLE,
) -> list[list[str]]:
    """The terms naming each group of texts: what ``Workbench.cluster_names`` shows.

    Candidates are the group's ``candidates`` most distinctive phrases (:func:`text_names`)
    and its ``top`` most frequent words (:func:`frequency_names`), read from at most
    ``sample`` members per group. With the texts' ``vectors`` and their model's
    ``encode_text``, the ``top`` terms are chosen among them by :func:`refine_names`;
    without, the ``top`` most distinctive phrases are the name.
    """
    assign = np.asarray(assign, np.int64)
    pos = _sample(assign, n_groups, sample)
    sub_texts = [texts[i] for i in pos]
    ranked = text_names(sub_texts, assign[pos], n_groups, top=candidates, sample=sample)
    if vectors is None or encode_text is None:
        return [t[:top] for t in ranked]
    frequent = frequency_names(sub_texts, assign[pos], n_groups, top=top)
    pool = [list(dict.fromkeys(t + f)) for t, f in zip(ranked, frequent, strict=True)]
    return refine_names(vectors, assign, pool, encode_text, top=top)


def refine_names(
    vectors: np.ndarray,
    assign: np.ndarray,
    candidates: Sequence[Sequence[str]],
    encode_text: Callable[[list[str]], np.ndarray],
    *,
    top: int = 3,
    sample: int = CLUSTER_NAME_REFINE_SAMPLE,
    sweeps: int = CLUSTER_NAME_REFINE_SWEEPS,
) -> list[list[str]]:
    """Each group's ``top`` candidate terms that best tell its items from the other groups'
    in the text model's space (texts embedded by a sentence model).

    An item "reads" the name (its terms joined, :func:`join_terms`, embedded by the model)
    nearest its own vector. In each of ``sweeps`` rounds every group's name is grown greedily
    from its candidates, keeping at each step the term that sends the most sampled items
    back to their own group given the other groups' names of the round before (ties: the
    better ranked candidate); each step is one batch through the model. Only the groups'
    own items are used: no labels.

    Parameters
    ----------
    vectors : (N, D) the items' text embeddings, from the model of ``encode_text``.
    assign : (N,) int64 group of each item, -1 = none.
    candidates : G lists of candidate terms, best first (e.g. ``text_names(..., top=10)``).
    encode_text : ``list[str] -> (P, D)`` the same model.
    top : terms per name at most; sample : items per group scored (seeded random).
    """
    assign = np.asarray(assign, np.int64)
    g_count = len(candidates)
    pos = _sample(assign, g_count, sample)
    x = normalize(np.asarray(vectors, np.float32)[pos])
    own = assign[pos]
    terms = [list(dict.fromkeys(c)) for c in candidates]
    chosen = [t[:top] for t in terms]
    sims = np.full((x.shape[0], g_count), -np.inf, np.float32)
    named = [g for g in range(g_count) if chosen[g]]
    if named:
        v = normalize(np.asarray(encode_text([join_terms(chosen[g]) for g in named]), np.float32))
        sims[:, named] = x @ v.T
    for _ in range(sweeps):
        # Every group's name is grown against the others' names of the sweep before, so
        # each step is one batch of trial names through the model.
        rivals = []
        for g in range(g_count):
            rest = sims.copy()
            rest[:, g] = -np.inf
            rivals.append((rest.max(1), own == g, (own != g) & (rest.argmax(1) == own)))
        picks: list[list[str]] = [[] for _ in range(g_count)]
        cols = [sims[:, g] for g in range(g_count)]
        for _step in range(top):
            trials = [[t for t in terms[g] if t not in picks[g]] if len(picks[g]) < min(
                top, len(terms[g])) else [] for g in range(g_count)]
            flat = [join_terms([*picks[g], t]) for g in range(g_count) for t in trials[g]]
            if not flat:
                break
            vecs = normalize(np.asarray(encode_text(flat), np.float32))
            at = 0
            for g in range(g_count):
                if not trials[g]:
                    continue
                c = x @ vecs[at:at + len(trials[g])].T
                at += len(trials[g])
                best_other, mine, theirs = rivals[g]
                hits = (((c > best_other[:, None]) & mine[:, None])
                        | ((c < best_other[:, None]) & theirs[:, None])).sum(0)
                k = int(np.argmax(hits))  # ties: the better-ranked candidate
                picks[g].append(trials[g][k])
                cols[g] = c[:, k]
        for g in range(g_count):
            if picks[g]:
                chosen[g] = picks[g]
                sims[:, g] = cols[g]
    return chosen


def frequency_names(texts: Sequence[str], assign: np.ndarray, n_groups: int, *,
                    top: int = 3) -> list[list[str]]:
    """Each group's most frequent words that are not stop words (by items holding them):
    the plain baseline that :func:`text_names` is measured against."""
    stop = stop_words()
    assign = np.asarray(assign, np.int64)
    out = []
    for g in range(n_groups):
        counts: dict[str, int] = {}
        for i in np.flatnonzero(assign == g):
            for w in {w for w in _words(texts[i]) if len(w) > 1 and w not in stop}:
                counts[w] = counts.get(w, 0) + 1
        out.append([w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]])
    return out


def value_names(values: Sequence[object], assign: np.ndarray, n_groups: int, *,
                min_share: float = CLUSTER_NAME_MIN_SHARE) -> list[str]:
    """Each group's most distinctive value of a metadata column (as text), "" where none
    stands out (:func:`distinctive_terms` with each item's value as its one term, held by
    at least ``min_share`` of the group; missing and empty values count as none)."""
    docs = [[] if v is None or str(v).strip() == "" else [str(v).strip()] for v in values]
    terms = distinctive_terms(docs, assign, n_groups, top=1, min_share=min_share)
    return [t[0] if t else "" for t in terms]


def vocabulary_names(
    vectors: np.ndarray,
    assign: np.ndarray,
    n_groups: int,
    vocabulary: Sequence[str],
    encode_text: Callable[[list[str]], np.ndarray],
    *,
    top: int = 2,
    sample: int = CLUSTER_NAME_SAMPLE,
    templates: Sequence[str] = CLUSTER_NAME_TEMPLATES,
) -> list[list[str]]:
    """The vocabulary names that set each group's images apart (CLIP zero-shot).

    Every sampled item is scored against every name (:func:`~workbench.learn.zero_shot`:
    a softmax over the vocabulary of CLIP-scaled cosines with the names' prompts); a
    group's profile ``p(name | g)`` is its items' mean. A name's weight in ``g`` is
    ``p(name | g) * log(p(name | g) / p(name))``, ``p(name)`` the mean over the groups, so
    a name every group resembles ("photo") does not win everywhere; only names more likely
    in the group than overall are kept.

    Parameters
    ----------
    vectors : (N, D) image embeddings of the model whose text tower is ``encode_text``.
    assign, n_groups : as in :func:`distinctive_terms`.
    vocabulary : candidate names (at least two, distinct).
    encode_text : ``list[str] -> (P, D)`` text embeddings in the same space.
    top : names per group at most.
    """
    from .zeroshot import zero_shot

    vocab = list(dict.fromkeys(str(v).strip() for v in vocabulary if str(v).strip()))
    if len(vocab) < 2:
        raise ValueError(f"a vocabulary needs at least two names, got {len(vocab)}")
    assign = np.asarray(assign, np.int64)
    pos = _sample(assign, n_groups, sample)
    if pos.size == 0:
        return [[] for _ in range(n_groups)]
    proba = zero_shot(np.asarray(vectors)[pos], vocab, encode_text, templates=templates).proba
    profile = np.zeros((n_groups, len(vocab)))
    np.add.at(profile, assign[pos], proba)
    sizes = np.bincount(assign[pos], minlength=n_groups)
    profile /= np.maximum(sizes, 1)[:, None]
    overall = profile[sizes > 0].mean(0)
    score = profile * np.log(np.maximum(profile, 1e-12) / np.maximum(overall, 1e-12))
    score[profile <= overall] = -np.inf
    out = []
    for g in range(n_groups):
        best = [j for j in np.argsort(-score[g], kind="stable")[:top] if np.isfinite(score[g, j])]
        out.append([vocab[j] for j in best] if sizes[g] else [])
    return out


def read_vocabulary(path: str | Path | None = None) -> list[str]:
    """The names of a vocabulary file (one per line; ``#`` comments and blank lines are
    skipped; duplicates dropped), default the bundled :data:`VOCABULARY_FILE`."""
    text = Path(path or VOCABULARY_FILE).read_text(encoding="utf-8")
    names = (ln.strip() for ln in text.splitlines())
    return list(dict.fromkeys(n for n in names if n and not n.startswith("#")))
