"""What to look at next: the proposed clusters, the next one worth labelling whole, pages of
suggestions, suspected wrong labels, and search (similar items, text). The session mixes
this in; each reads the session's current state and returns item positions."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from ._config import (
    ACTIVE_BATCH_SIZE,
    CLUSTER_CORE_FRACTION,
    CLUSTER_COUNT_MAX,
    CLUSTER_COUNT_MIN,
    CLUSTER_ITEMS_PER_CLUSTER,
    PAGE_CLAIM_SECONDS,
    SPECTRAL_MAX_ITEMS,
    SPOT_CHECK_ENOUGH,
    SPOT_CHECK_FIRST,
    SPOT_CHECK_SEED,
    SPOT_CHECK_SHARE,
    SPOT_CHECK_SHARE_FIRST,
    SPOT_CHECK_SHARE_LATER,
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
        page = self._suggested(ACTIVE_BATCH_SIZE)  # what a page would teach (no checks)
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

        Once there are predictions, part of the page are spot checks (of 12: 6 until 30
        checks are labelled, 3 until 120, then 1): unlabelled items drawn at random, whose
        machine label and confidence are recorded when served
        (:mod:`workbench.learn.spot_checks`). Labelled, they say how often machine labels
        are right over the items nobody chose, which is what the calibrated confidence and
        :meth:`estimate` learn from.

        Several annotators are served different pages: the page is claimed for this
        annotator for ``PAGE_CLAIM_SECONDS`` (until their next page), and items another
        annotator holds a claim on are never served (``claim=False``: look without
        claiming or recording checks, e.g. to colour the map).
        """
        checks = 0 if self.predictions is None else round(n * self._spot_check_share())
        page, exclude = self._suggested(max(n - checks, 0), with_exclude=True)
        spot = self._spot_check_draw(min(checks, n), exclude, page)
        if spot.size:
            page = np.concatenate([page, spot])
        if not claim:
            return page
        page = self._claim(page)
        self._record_spot_checks(spot[np.isin(spot, page)])
        return page

    def _suggested(self, n: int, *, with_exclude: bool = False):
        """The uncertain, diverse page of ``n`` (no spot checks, nothing claimed); with
        ``with_exclude``, also the (N,) bool of items that may not be served."""
        from .learn import cluster_coverage_batch, suggest_batch

        human = self._queue_labels()  # with k annotations per item, what still needs mine
        taken = self._claimed_by_others()
        exclude = human >= 0
        exclude[taken] = True
        if n <= 0:
            page = np.zeros(0, np.int64)
        elif self.predictions is None:
            if taken.size:
                human = human.copy()
                human[taken] = np.maximum(human[taken], 0)  # as if covered already
            page = cluster_coverage_batch(self.clusters, human, batch_size=n)
        else:
            page = suggest_batch(self.predictions, self.vectors, human, batch_size=n,
                                 exclude=exclude)
        return (page, exclude) if with_exclude else page

    def _spot_check_share(self) -> float:
        """Share of a page given to spot checks: ``SPOT_CHECK_SHARE_FIRST`` until
        ``SPOT_CHECK_FIRST`` checks are labelled, then ``SPOT_CHECK_SHARE`` until
        ``SPOT_CHECK_ENOUGH``, then ``SPOT_CHECK_SHARE_LATER``."""
        if SPOT_CHECK_SHARE <= 0:
            return 0.0
        done = self._spot_checked(self.labels.state.human)
        count = 0 if done is None else int((done > 0).sum())
        if count >= SPOT_CHECK_ENOUGH:
            return min(SPOT_CHECK_SHARE, SPOT_CHECK_SHARE_LATER)
        return (SPOT_CHECK_SHARE if count >= SPOT_CHECK_FIRST
                else max(SPOT_CHECK_SHARE, SPOT_CHECK_SHARE_FIRST))

    def _spot_check_draw(self, k: int, exclude: np.ndarray, page: np.ndarray) -> np.ndarray:
        """``k`` unlabelled items (not excluded, not on ``page``) with a prediction, each
        as likely as any other, stratified on the machine's confidence
        (:func:`~workbench.learn.spot_checks.stratified_draw`); the same draw for the same
        labels (``claim=False`` shows the page)."""
        from .learn.spot_checks import stratified_draw

        pred = self.predictions
        if k <= 0 or pred is None:
            return np.zeros(0, np.int64)
        free = ~exclude & (pred.label >= 0)
        free[page] = False
        pool = np.flatnonzero(free)
        if pool.size == 0:
            return np.zeros(0, np.int64)
        labelled = int((self.labels.state.human >= 0).sum())
        who = zlib.crc32(str(self.labels.annotator).encode())  # annotators draw apart
        rng = np.random.default_rng([SPOT_CHECK_SEED, labelled, int(page.size), who])
        return stratified_draw(pool, pred.confidence[pool], k, rng)

    def _record_spot_checks(self, spot: np.ndarray) -> None:
        """What the machine says of the served spot checks now (label, confidence), beside
        the label log."""
        from .labels.spot_checks import record_spot_checks

        with self._lock:
            pred = self.predictions
        if spot.size == 0 or pred is None:
            return
        ids = self.items["id"].to_numpy()[spot].tolist()
        record_spot_checks(self.labels.log, [
            (i, int(pred.label[p]), float(pred.confidence[p]))
            for i, p in zip(ids, spot, strict=True)])

    def spot_checks(self) -> pl.DataFrame:
        """The spot checks served so far: ``item``, ``position``, the machine's ``label``
        and ``confidence`` when served, the ``human`` label since (None: not labelled yet),
        ``right`` (None until labelled) and ``served`` (UTC). The labelled ones measure
        the machine labels directly, over items nobody chose."""
        out = self._spot_check_records()
        names = self.labels.classes
        pos = out["position"].to_numpy().astype(np.int64)
        said = out["class_id"].to_numpy()
        got = self.labels.state.human[pos]
        return pl.DataFrame({
            "item": out["item"], "position": pos,
            "label": [names.get(int(c)) for c in said],
            "confidence": out["confidence"],
            "human": [names.get(int(h)) if h >= 0 else None for h in got],
            "right": [bool(h == c) if h >= 0 else None for h, c in zip(got, said, strict=True)],
            "served": (out["served"] * 1e6).cast(pl.Int64).cast(pl.Datetime("us"))
            .dt.replace_time_zone("UTC"),
        }, schema_overrides={"human": pl.String, "label": pl.String, "right": pl.Boolean})

    def _spot_check_records(self) -> pl.DataFrame:
        """The recorded checks of this project's items, oldest first: ``item``,
        ``class_id``, ``confidence``, ``served`` (seconds since the epoch), ``position``."""
        from .labels.spot_checks import read_spot_checks

        rows = read_spot_checks(self.labels.log)
        out = pl.DataFrame(rows, orient="row",
                           schema={"item": pl.String, "class_id": pl.Int64,
                                   "confidence": pl.Float64, "served": pl.Float64})
        found = pl.DataFrame({"item": self.items["id"], "position": np.arange(self.n)})
        return out.join(found, on="item", how="inner", maintain_order="left")

    def _spot_checked(self, human: np.ndarray) -> np.ndarray | None:
        """(N,) float64 the weight of each spot-checked item labelled in ``human``, newest
        weighing most (:func:`~workbench.learn.spot_checks.recency_weights`; 0: not a
        labelled check); None when there are none."""
        from .learn.spot_checks import recency_weights

        got = self._spot_check_records()
        pos = got["position"].to_numpy().astype(np.int64)
        keep = np.asarray(human)[pos] >= 0
        if not keep.any():
            return None
        out = np.zeros(self.n)
        out[pos[keep]] = recency_weights(got["served"].to_numpy()[keep])
        return out

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
