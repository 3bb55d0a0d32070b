"""What to look at next: the proposed clusters, the next one worth labelling whole, pages of
suggestions, suspected wrong labels, and search (similar items, text). The session mixes
this in; each reads the session's current state and returns item positions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ._config import (
    ACTIVE_BATCH_SIZE,
    CLUSTER_CORE_FRACTION,
    CLUSTER_COUNT_MAX,
    CLUSTER_COUNT_MIN,
    CLUSTER_ITEMS_PER_CLUSTER,
    PAGE_CLAIM_SECONDS,
    SPECTRAL_MAX_ITEMS,
)
from .learn import Group, NotEnoughLabels

__all__ = ["Cluster", "Queues"]


@dataclass(frozen=True)
class Cluster(Group):
    """A proposed group to label in one action: a :class:`~workbench.learn.Group`
    (``members`` most typical first, ``sample``, ``kind``, ``size``, ``core()``) plus its
    ``id``, its number in :attr:`Workbench.clusters` (in the order proposed)."""

    id: int = -1


class Queues:
    """``clusters``, ``next_cluster``, ``suggestions``, ``suspected_errors``,
    ``more_like_this`` and ``text_search``. Needs ``graph``, ``vectors``, ``index``, ``n``,
    ``labels``, ``predictions``, ``project``, ``text_encoder`` and the locks of the session."""

    @property
    def clusters(self) -> list[Cluster]:
        """Groups proposed to label in one action each; cached.

        k-means on the spectral embedding of the kNN graph (groups that follow the graph
        are purer where classes are curved), in a farthest-first order so the first few
        cover the map; above ``SPECTRAL_MAX_ITEMS`` items, FAISS k-means on the vectors,
        largest first.
        """
        with self._clusters_lock:  # the retrain thread asks too; compute once
            return self._compute_clusters()

    def _compute_clusters(self) -> list[Cluster]:
        if self._clusters is None:
            from .learn import graph_groups, kmeans_groups

            n_clusters = int(np.clip(round(self.n / CLUSTER_ITEMS_PER_CLUSTER),
                                     CLUSTER_COUNT_MIN, CLUSTER_COUNT_MAX))
            n_clusters = min(n_clusters, self.n)
            if 4 <= self.n <= SPECTRAL_MAX_ITEMS:
                groups = graph_groups(self.graph, n_clusters=n_clusters)
            else:
                groups = kmeans_groups(self.vectors, n_clusters=n_clusters)
            self._clusters = [Cluster(g.members, g.sample, g.kind, id=i)
                              for i, g in enumerate(groups)]
            self._cluster_of = np.zeros(self.n, np.int64)
            for c in self._clusters:
                self._cluster_of[c.members] = c.id
        return self._clusters

    def next_cluster(self, core: float = CLUSTER_CORE_FRACTION) -> Cluster | None:
        """The proposed cluster most worth labelling as a whole now, or None when a page of
        :meth:`suggestions` is worth more.

        Before any model, clusters come in the proposed order (spread over the map). After,
        doubt is one minus an item's calibrated confidence (the chance the workbench has it
        wrong). A page of suggestions (spread-out items) is worth the sum of its items'
        doubt. A cluster's members are alike, so labelling all of them teaches about as
        much as labelling a few spread-out ones: its worth is the mean doubt of its
        unlabelled core members times the square root of their number. The larger wins:
        whole clusters while regions of the map are unknown, pages once what remains is
        scattered doubt.
        """
        human = self.labels.state.human
        pred = self.predictions
        u = None if pred is None else np.where(pred.label >= 0, 1.0 - pred.confidence, 1.0)
        best, best_worth = None, 0.0
        for c in self.clusters:
            part = c.core(core)
            free = part[human[part] < 0]
            if free.size * 2 < part.size:
                continue
            if u is None:
                return c
            worth = float(u[free].mean()) * float(np.sqrt(free.size))
            if worth > best_worth:
                best, best_worth = c, worth
        if best is None or u is None:
            return best
        page = self.suggestions()
        return best if best_worth > float(u[page].sum()) else None

    def _cluster_ids(self) -> np.ndarray:
        """(N,) int64 the proposed cluster of every item."""
        with self._clusters_lock:
            self._compute_clusters()
            return self._cluster_of

    def more_like_this(self, items: Sequence[int] | np.ndarray | int, k: int = 50) -> np.ndarray:
        """(k,) positions of the items most similar to ``items`` (themselves left out)."""
        idx, _ = self.index.more_like_this(np.atleast_1d(np.asarray(items, np.int64)), k)
        return idx[idx >= 0]

    def text_search(self, query: str, k: int = 100) -> np.ndarray:
        """(k,) positions of the items that best match a text query (CLIP text tower)."""
        if self.text_encoder is None:
            self.text_encoder = self._text_encoder_from_project()
        if self.text_encoder is None:
            raise ValueError(
                "text search needs a text encoder in the same space as the vectors: embed "
                "with CLIP (images) or a sentence model (texts) via Workbench.from_items, or "
                "pass text_encoder= (a callable list[str] -> (Q, D) array)"
            )
        if not str(query).strip():
            raise ValueError("the search text is empty")
        q = np.asarray(self.text_encoder([str(query)]), np.float32)
        idx, _ = self.index.search_vectors(q, k)
        return idx[0][idx[0] >= 0]

    def suggestions(self, n: int = ACTIVE_BATCH_SIZE, *, claim: bool = True) -> np.ndarray:
        """Items to label next: uncertain and diverse; before any model, uncovered clusters.

        Several annotators are served different pages: the page is claimed for this
        annotator for ``PAGE_CLAIM_SECONDS`` (until their next page), and items another
        annotator holds a claim on are never served (``claim=False``: look without
        claiming, e.g. to colour the map).
        """
        from .learn import cluster_coverage_batch, suggest_batch

        human = self._queue_labels()  # with k annotations per item, what still needs mine
        taken = self._claimed_by_others()
        if self.predictions is None:
            if taken.size:
                human = human.copy()
                human[taken] = np.maximum(human[taken], 0)  # as if covered already
            page = cluster_coverage_batch(self.clusters, human, batch_size=n)
        else:
            exclude = np.zeros(human.size, bool)
            exclude[taken] = True
            page = suggest_batch(self.predictions, self.vectors, human, batch_size=n,
                                 exclude=exclude)
        return self._claim(page) if claim else page

    def _claimed_by_others(self) -> np.ndarray:
        """Positions of the items other annotators were served and may be labelling now."""
        from .labels.claims import claimed_by_others

        ids = claimed_by_others(self.labels.log, self.labels.annotator)
        if not ids:
            return np.zeros(0, np.int64)
        return np.flatnonzero(self.items["id"].is_in(list(ids)).to_numpy())

    def _claim(self, page: np.ndarray) -> np.ndarray:
        """``page`` less what another annotator claimed meanwhile; claimed for this one."""
        from .labels.claims import claim_page

        if self.labels.read_only or page.size == 0:
            return page
        ids = self.items["id"].to_numpy()[page].tolist()
        got = set(claim_page(self.labels.log, ids, self.labels.annotator, PAGE_CLAIM_SECONDS))
        return page[np.fromiter((i in got for i in ids), bool, len(ids))]

    def suspected_errors(self, n: int = ACTIVE_BATCH_SIZE, *,
                         exclude: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Human labels most likely wrong (out-of-fold probe + neighbour votes), most
        suspect first; ``exclude``: positions to leave out (e.g. already reviewed)."""
        from .learn import rank_label_issues

        human = self.labels.state.human.copy()  # callers may be worker threads
        with self._lock:
            fitted = self._issues_input
        labels, oof = human, None
        if fitted is not None and np.array_equal(fitted[0], human):
            # The last retrain's out-of-fold probe probabilities, for the labels as they
            # are now: nothing to fit again.
            labels, oof = fitted[1], fitted[2]
        try:
            issues = rank_label_issues(self.vectors, labels, oof_proba=oof)
        except NotEnoughLabels:
            return np.zeros(0, np.int64)
        ranked = issues.ranked
        if exclude is not None:
            ranked = ranked[~np.isin(ranked, np.asarray(exclude, np.int64))]
        return ranked[:n]

    def _text_encoder_from_project(self) -> Callable[[list[str]], np.ndarray] | None:
        """The text side of the model that embedded this project (CLIP's text tower, or the
        sentence model itself for texts), loaded on first use."""
        info = self.project.meta.get("embedder") or {}
        spec = info.get("spec")
        backend = str(info.get("name", "")).split(":")[0]
        if not spec or backend not in ("clip", "text"):
            return None
        from .embed import make_embedder

        return make_embedder(spec, kind="image" if backend == "clip" else "text").encode_text
