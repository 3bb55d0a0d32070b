"""The Workbench session on the real digits demo: label, predict, undo, reopen, export."""

from __future__ import annotations

import threading

import numpy as np
import polars as pl
import pytest

from workbench.session import Workbench


@pytest.fixture
def wb(tmp_path):
    w = Workbench.demo(tmp_path / "digits", layout="quick")
    yield w
    w.close()


def truth(wb: Workbench) -> np.ndarray:
    return wb.items["truth"].cast(pl.Int64).to_numpy()


def label_by_truth(wb: Workbench, positions: np.ndarray) -> None:
    y = truth(wb)
    for digit in np.unique(y[positions]):
        wb.label(positions[y[positions] == digit], f"digit {digit}")


def test_demo_session_predicts_from_few_labels(wb):
    assert wb.n == 1797
    assert wb.coords.shape == (1797, 2) and wb.coords.dtype == np.float32
    assert np.abs(wb.coords).max() <= 1.0
    events = []
    wb.subscribe(events.append)
    rng = np.random.default_rng(0)
    y = truth(wb)
    # Five labelled examples per digit: 50 labels for 1,797 items.
    picks = np.concatenate([rng.choice(np.flatnonzero(y == d), 5, replace=False)
                            for d in range(10)])
    label_by_truth(wb, picks)
    wb.wait()
    assert "labels" in events and "predictions" in events
    pred = wb.current_labels()
    names = wb.labels.classes
    predicted_digit = np.array([int(names[c].split()[1]) for c in pred])
    accuracy = (predicted_digit == y).mean()
    assert accuracy > 0.9, f"accuracy {accuracy:.3f} from 50 labels"
    assert wb.status["probe_accuracy"] is not None and wb.status["probe_accuracy"] > 0.7
    assert wb.status["device"] in ("cpu", "cuda", "mps")
    # Human labels stay human: predictions never replace them.
    human = wb.labels.state.human
    assert (pred[picks] == human[picks]).all()


def test_queues_and_search(wb):
    first = wb.suggestions(12)
    assert first.size == 12 and len(set(first.tolist())) == 12
    y = truth(wb)
    assert wb.suspected_errors().size == 0  # no labels yet: nothing to suspect
    like = wb.more_like_this(int(np.flatnonzero(y == 3)[0]), k=20)
    assert (y[like] == 3).mean() >= 0.9
    with pytest.raises(ValueError, match="text encoder"):
        wb.text_search("a handwritten three")
    clusters = wb.clusters
    assert sum(c.size for c in clusters) == wb.n
    biggest = clusters[0]
    purity = np.bincount(y[biggest.members]).max() / biggest.size
    assert purity > 0.8


def test_suspected_errors_find_flipped_labels(wb):
    y = truth(wb)
    rng = np.random.default_rng(1)
    picks = np.concatenate([rng.choice(np.flatnonzero(y == d), 8, replace=False)
                            for d in range(10)])
    label_by_truth(wb, picks)
    wrong = picks[:3]
    wb.label(wrong, "digit 9" if y[wrong[0]] != 9 else "digit 8")
    suspects = wb.suspected_errors(12)
    assert set(wrong.tolist()) <= set(suspects.tolist())


def test_retrain_never_blocks_and_reopen_restores(tmp_path):
    wb = Workbench.demo(tmp_path / "d", layout="quick")
    y = truth(wb)
    started = threading.Event()
    wb.subscribe(lambda e: started.set() if e == "status" else None)
    for d in range(3):
        wb.label(np.flatnonzero(y == d)[:5], f"digit {d}")
    wb.undo()  # naming "digit 2" by labelling was one action: the class goes with it
    wb.wait()
    assert set(wb.labels.class_names) == {"digit 0", "digit 1"}
    wb.close()
    again = Workbench.open(tmp_path / "d", layout="quick")
    assert (again.labels.state.human >= 0).sum() == 10
    again.wait()
    assert again.predictions is not None  # retrains on open when there are labels
    out = again.export(tmp_path / "labels.parquet")
    assert pl.read_parquet(out).height == 10
    out = again.export(tmp_path / "all.csv", include="all", min_confidence=0.0)
    assert pl.read_csv(out).height == 1797
    again.close()


def test_accept_predictions_as_machine_labels(wb):
    y = truth(wb)
    # Every digit named (with two of ten, most items belong to no known class, and
    # calibrated confidences rightly stay below 0.9).
    for d in range(10):
        wb.label(np.flatnonzero(y == d)[:6], f"digit {d}")
    wb.wait()
    n = wb.accept_predictions(min_confidence=0.9)
    assert n > 0
    table = wb.labels.table()
    assert set(table["label_source"].drop_nulls()) <= {"human", "propagated", "probe"}
    assert (table["label_source"] == "human").sum() == 60
    machine = wb.labels.state.machine
    accepted = np.flatnonzero(machine >= 0)
    names = wb.labels.classes
    right = np.array([names[c] == f"digit {t}" for c, t in zip(machine[accepted], y[accepted])])
    assert right.mean() >= 0.9  # what 0.9 promised


SENTENCES = [
    "The cat sat on the warm windowsill.", "A kitten chased the ball of yarn.",
    "My cat sleeps all afternoon.", "Stock markets fell sharply on Monday.",
    "The central bank raised interest rates.", "Investors sold shares after the report.",
    "The striker scored twice in the final.", "The team won the championship match.",
    "Fans cheered as the goalkeeper saved a penalty.",
]


def test_text_items_embedded_with_packaged_minilm(tmp_path):
    items = pl.DataFrame({"text": SENTENCES, "topic": ["cats"] * 3 + ["money"] * 3 + ["sport"] * 3})
    from workbench.items import from_dataframe

    wb = Workbench.from_items(tmp_path / "t", from_dataframe(items), layout="quick",
                              progress=False)
    assert wb.vectors.shape == (9, 384)
    hits = wb.text_search("feline pets", k=3)
    assert set(hits.tolist()) == {0, 1, 2}
    wb.close()
    # Reopening re-creates the text side from the project folder, lazily.
    again = Workbench.from_items(tmp_path / "t", None, layout="quick")
    assert set(again.text_search("football", k=3).tolist()) == {6, 7, 8}
    again.close()


def test_next_cluster_walks_the_map_then_hands_over_to_suggestions(wb):
    y = truth(wb)
    clusters = wb.clusters
    first = wb.next_cluster()
    assert first is clusters[0]  # before any model: the proposed order
    core = first.core()
    assert core.size == round(first.size / 2)
    np.testing.assert_array_equal(core, first.members[: core.size])
    # Cores are purer than whole clusters: the outskirts are where digits mix.
    pure_core = np.mean([np.bincount(y[c.core()]).max() / c.core().size for c in clusters])
    pure_all = np.mean([np.bincount(y[c.members]).max() / c.size for c in clusters])
    assert pure_core >= pure_all and pure_core > 0.9
    # Lassoed as one digit: one class is no model yet, so clusters keep coming in order.
    wb.label(core, f"digit {np.bincount(y[core]).argmax()}")
    wb.wait()
    assert wb.predictions is None
    second = wb.next_cluster()
    assert second is clusters[1]
    # With every cluster's core labelled, single items are what is left to suggest.
    label_by_truth(wb, np.concatenate([c.core() for c in clusters]))
    wb.wait()
    assert wb.next_cluster() is None
    assert wb.suggestions(12).size == 12
    with pytest.raises(ValueError, match="fraction"):
        first.core(0.0)


@pytest.mark.slow
def test_map_propagation_joins_once_the_umap_map_is_ready(tmp_path):
    wb = Workbench.demo(tmp_path / "d", background=False)  # the UMAP map, synchronously
    try:
        y = truth(wb)
        rng = np.random.default_rng(0)
        picks = np.concatenate([rng.choice(np.flatnonzero(y == d), 3, replace=False)
                                for d in range(10)])
        label_by_truth(wb, picks)
        assert wb.map_graph is not None and wb.map_graph.n == wb.n
        assert wb.map_propagation is not None
        assert set(wb.weights) == {"propagated", "map", "probe"}
        assert np.isclose(sum(wb.weights.values()), 1.0)
        names = wb.labels.classes
        pred = np.array([int(names[c].split()[1]) for c in wb.current_labels()])
        assert (pred == y).mean() > 0.9, f"accuracy {(pred == y).mean():.3f} from 30 labels"
    finally:
        wb.close()


def test_zero_vectors_given_to_a_session_are_refused_naming_the_item(tmp_path):
    from workbench.items import ItemError

    wb = Workbench.demo(tmp_path / "d", layout="quick", background=False)
    vectors = np.array(wb.vectors)
    vectors[5] = 0
    with pytest.raises(ItemError, match=r"digits/0005\.png"):
        Workbench(wb.project, vectors=vectors, layout="quick", background=False)
    assert (wb.labels.state.human < 0).all()  # refused before anything was written
    wb.close()


def test_a_class_with_one_label_does_not_hold_the_probe_back(tmp_path):
    wb = Workbench.demo(tmp_path / "d", layout="quick", background=False)
    y = truth(wb)
    for d in (0, 1):
        wb.label(np.flatnonzero(y == d)[:6], f"digit {d}")
    wb.label(np.flatnonzero(y == 2)[:1], "digit 2")  # a new digit seen once on a page
    assert wb.probe_predictions is not None, wb.message
    assert set(wb.probe_predictions.classes.tolist()) == {
        wb.labels.class_id("digit 0"), wb.labels.class_id("digit 1")}
    # The single label still counts: propagation carries it.
    assert wb.labels.class_id("digit 2") in wb.predictions.classes.tolist()
    wb.close()
