"""Suggested names for the proposed clusters, at two levels: the session's part (which
namer fits the items, the vocabulary, the cache). The naming itself is
:mod:`workbench.learn.cluster_names`; nothing here records anything: a name is a
suggestion until a person labels the cluster with it."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from ._config import (
    CLUSTER_COUNT_MIN,
    CLUSTER_NAME_MIN_SHARE,
    CLUSTER_NAME_TERMS,
    CLUSTER_NAME_TRUTH_COLUMNS,
    CLUSTER_NAME_VOCABULARY_TERMS,
    CLUSTER_VOCABULARY_SETTING,
)

__all__ = ["LEVELS", "ClusterNames"]

log = logging.getLogger(__name__)

#: The naming levels: ``"fine"`` (one name per proposed cluster) and ``"coarse"``.
LEVELS = ("fine", "coarse")
#: Item columns that are never metadata to name a cluster by.
_NOT_METADATA = ("id", "source", "kind", "text")
_CACHE_LOCK = threading.Lock()


class ClusterNames:
    """``cluster_names``, ``coarse_clusters`` and ``cluster_members``. Needs ``clusters``,
    ``items``, ``vectors``, ``n``, ``project``, ``text_encoder`` of the session.

    Levels: ``"fine"`` names each of :attr:`clusters`; ``"coarse"`` names fewer, larger
    groups (:attr:`coarse_clusters`), each a union of fine clusters, so a map can show
    coarse names zoomed out and fine ones zoomed in.
    """

    @property
    def coarse_clusters(self) -> list[np.ndarray]:
        """The coarse groups, as the ids (into :attr:`clusters`) of their fine clusters.

        The K fine clusters' centroids (mean normalised vector) merged by average-linkage
        agglomerative clustering on the cosine distance into ``max(2, ceil(sqrt(K)))``
        groups (:func:`~workbench.learn.cluster_names.coarse_groups`); with three clusters
        or fewer, each is its own coarse group. Coarse group 0 holds fine cluster 0.
        """
        return [np.flatnonzero(self._coarse_of() == g) for g in range(self._n_coarse())]

    def cluster_members(self, level: str = "fine") -> list[np.ndarray]:
        """(M,) item positions of each group at ``level``, aligned with
        :meth:`cluster_names` (fine: each cluster's ``members``, most typical first)."""
        fine = [np.asarray(c.members, np.int64) for c in self.clusters]
        if _level(level) == "fine":
            return fine
        return [np.sort(np.concatenate([fine[k] for k in ids])) for ids in self.coarse_clusters]

    def cluster_names(self, level: str = "fine", *,
                      vocabulary: Sequence[str] | None = None) -> list[str]:
        """A suggested name for each group at ``level`` (``"fine"``: aligned with
        :attr:`clusters`; ``"coarse"``: with :attr:`coarse_clusters`); cached.

        * texts: the group's most distinctive phrases (class-based TF-IDF of its texts
          against the rest, stop words left out, one- and two-word phrases), the top
          ``CLUSTER_NAME_TERMS`` joined: ``"film, director, story"``;
        * images, with a text tower in the vectors' space (CLIP): the vocabulary names its
          images resemble more than the other groups' do (zero-shot), plus a file-name or
          folder word most of its files share;
        * otherwise (e.g. pixel vectors): file-name and folder words, and the most
          distinctive value of a truth-like (``truth``, ``label``, ...) or other text
          metadata column;
        * nothing at all: ``"cluster k"`` (k from 1, as the app lists them).

        ``vocabulary`` adds names to the bundled list (``workbench/data/vocabulary.txt``)
        and to the project's ``cluster_vocabulary`` setting
        (``wb.project.set_setting("cluster_vocabulary", [...])``). Naming writes nothing
        to the label log: accept a name by labelling the cluster with it.
        """
        level = _level(level)
        extra = tuple(str(v) for v in (vocabulary or ()))
        key = (level, extra)
        with _CACHE_LOCK:
            cache = self.__dict__.setdefault("_names_cache", {})
        if key not in cache:
            from .learn.cluster_names import join_terms

            assign, n_groups = self._assignment(level)
            terms = self._name_groups(assign, n_groups, extra)
            if level == "coarse":  # nothing sets it apart: name it by its largest parts
                terms = [t or self._parts_terms(ids, extra)
                         for t, ids in zip(terms, self.coarse_clusters, strict=True)]
            names = [join_terms(t) if t else f"cluster {g + 1}" for g, t in enumerate(terms)]
            with _CACHE_LOCK:
                cache[key] = names
        return list(cache[key])

    # -- helpers --------------------------------------------------------------------------

    def _n_coarse(self) -> int:
        k = len(self.clusters)
        return k if k <= 3 else max(CLUSTER_COUNT_MIN, math.ceil(math.sqrt(k)))

    def _coarse_of(self) -> np.ndarray:
        """(K,) int64 the coarse group of each fine cluster; cached."""
        with _CACHE_LOCK:
            done = self.__dict__.get("_coarse_cache")
        if done is None:
            from .learn.cluster_levels import coarse_groups

            done = coarse_groups(self.vectors, self._cluster_ids(), len(self.clusters),
                                 self._n_coarse())
            with _CACHE_LOCK:
                self.__dict__["_coarse_cache"] = done
        return done

    def _assignment(self, level: str) -> tuple[np.ndarray, int]:
        """(N,) int64 each item's group at ``level`` and the number of groups."""
        fine = self._cluster_ids()
        if level == "fine":
            return fine, len(self.clusters)
        return self._coarse_of()[fine], self._n_coarse()

    def _parts_terms(self, fine_ids: np.ndarray, extra: tuple[str, ...]) -> list[str]:
        """The distinct names of a coarse group's largest fine clusters (unnamed ones left
        out), at most ``CLUSTER_NAME_TERMS``: ``"7, 1, 4"``."""
        fine = self.cluster_names("fine", vocabulary=extra)
        order = sorted(fine_ids.tolist(), key=lambda k: -self.clusters[k].size)
        named = [fine[k] for k in order if fine[k] != f"cluster {k + 1}"]
        return list(dict.fromkeys(named))[:CLUSTER_NAME_TERMS]

    def _name_groups(self, assign: np.ndarray, n_groups: int, extra: tuple[str, ...]
                     ) -> list[list[str]]:
        """The terms naming each group (empty where nothing names it)."""
        from .learn import cluster_names as cn

        items = self.items
        kinds = items["kind"].to_numpy()
        sources = items["source"].to_list()
        content: list[list[str]] = [[] for _ in range(n_groups)]  # from texts or vocabulary
        paths: list[list[str]] = [[] for _ in range(n_groups)]
        texts = np.flatnonzero(kinds == "text")
        if texts.size:
            encoder = self._encoder() if self._text_model() in ("text", "given") else None
            content = cn.text_cluster_terms(sources, _only(assign, texts), n_groups,
                                            vectors=self.vectors, encode_text=encoder)
        images = np.flatnonzero(kinds == "image")
        if images.size:
            sub = _only(assign, images)
            seen = self._vocabulary_terms(sub, n_groups, extra)
            content = [c + s for c, s in zip(content, seen, strict=True)]
            paths = cn.distinctive_terms(
                [cn.path_words(s) if k == "image" else [] for s, k in zip(sources, kinds,
                                                                        strict=True)],
                sub, n_groups, top=1 if any(seen) else 2, min_share=CLUSTER_NAME_MIN_SHARE)
        column = self._metadata_column()
        values = (cn.value_names(items[column].to_list(), assign, n_groups)
                  if column is not None and not all(content) else [""] * n_groups)
        names = []
        for g in range(n_groups):
            terms = list(content[g])
            for extra_term in [*paths[g], *([values[g]] if not content[g] else [])]:
                if extra_term and extra_term not in " ".join(terms).split():
                    terms.append(extra_term)
            names.append(terms)
        return names

    def _vocabulary_terms(self, assign: np.ndarray, n_groups: int, extra: tuple[str, ...]
                          ) -> list[list[str]]:
        """Vocabulary names of the image groups, or empty lists without a text tower."""
        from .learn import cluster_names as cn

        encoder = self._encoder()
        if encoder is None:
            return [[] for _ in range(n_groups)]
        setting = self.project.meta.get(CLUSTER_VOCABULARY_SETTING) or []
        if isinstance(setting, str) or not isinstance(setting, list):
            raise ValueError(f"the project setting {CLUSTER_VOCABULARY_SETTING!r} must be a "
                             f"list of names, not {setting!r}; set it with wb.project."
                             f"set_setting({CLUSTER_VOCABULARY_SETTING!r}, ['name', ...])")
        vocab = [*cn.read_vocabulary(), *map(str, setting), *extra]
        return cn.vocabulary_names(self.vectors, assign, n_groups, vocab, encoder,
                                   top=CLUSTER_NAME_VOCABULARY_TERMS)

    def _text_model(self) -> str:
        """The backend that embedded the project ("clip", "text", ...); "given" when the
        session was handed a text encoder, "" when none is known."""
        if self.text_encoder is not None:
            return "given"
        info = self.project.meta.get("embedder") or {}
        return str(info.get("name", "")).split(":")[0]

    def _encoder(self) -> Any:
        """The text tower in the vectors' space, loaded on first use; None without one (or
        when its weights do not load here: the names are then made without it)."""
        if self.text_encoder is None:
            try:
                self.text_encoder = self._text_encoder_from_project()
            except Exception as e:  # no weights here: name the clusters without them
                log.warning("cluster names without the text model: it did not load (%s)", e)
        return self.text_encoder

    def _metadata_column(self) -> str | None:
        """The metadata column to name clusters by: a truth-like one
        (``CLUSTER_NAME_TRUTH_COLUMNS``), else the first text column whose values repeat."""
        items = self.items
        text_cols = [c for c, t in items.schema.items()
                     if c not in _NOT_METADATA and t in (pl.String, pl.Categorical)]
        for name in CLUSTER_NAME_TRUTH_COLUMNS:
            if name in text_cols:
                return name
        for c in text_cols:
            if 2 <= items[c].n_unique() <= max(2, items.height // 2):
                return c
        return None


def _only(assign: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``assign`` with every item outside ``rows`` in no group (-1)."""
    sub = np.full(assign.size, -1, np.int64)
    sub[rows] = assign[rows]
    return sub


def _level(level: Any) -> str:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    return str(level)
