"""Suggested cluster names: distinctive phrases of planted texts, vocabulary names of image
clusters through a text tower, file-name words and the truth column as fallback, two
levels, names on the map and in the panel, and nothing written to the label log."""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import traitlets

from workbench import Workbench
from workbench.learn.cluster_levels import coarse_groups, name_positions
from workbench.learn.cluster_names import (
    VOCABULARY_FILE,
    distinctive_terms,
    path_words,
    phrases,
    read_vocabulary,
    refine_names,
    text_cluster_terms,
    text_names,
    value_names,
    vocabulary_names,
)

#: Three planted topics: each text holds two of its topic's words among filler that every
#: topic shares, so only the topic words set a group apart.
TOPICS = {
    "volcanoes": ["volcano", "lava", "eruption", "magma"],
    "coffee": ["espresso", "barista", "roast", "beans"],
    "sport": ["kung fu", "kung fu", "tournament", "medal"],
}
FILLER = ["people", "often", "talk", "about", "things", "every", "day", "really", "think",
          "nice", "place", "time", "week", "later"]


def planted_texts(n_per: int = 60, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    texts, assign = [], []
    for g, words in enumerate(TOPICS.values()):
        for _ in range(n_per):
            picked = list(rng.choice(words, 2, replace=False)) + list(rng.choice(FILLER, 6))
            rng.shuffle(picked)
            texts.append(" ".join(picked))
            assign.append(g)
    return texts, np.asarray(assign, np.int64)


def test_phrases_drop_stop_words_and_keep_word_pairs():
    assert phrases("The kung fu master's tournament!") == sorted(
        {"kung", "fu", "kung fu", "master", "tournament", "fu master"})  # "s" splits
    assert phrases("it is and the of") == []
    assert path_words("/data/Golden Retriever/IMG_0042.jpg") == ["golden", "retriever"]
    assert path_words("photos/seaLion/dsc_01.png") == ["lion", "sea"]


def test_tfidf_names_are_the_planted_words():
    texts, assign = planted_texts()
    names = text_names(texts, assign, 3, top=3)
    for terms, (topic, words) in zip(names, TOPICS.items(), strict=True):
        assert len(terms) == 3, (topic, terms)
        assert set(terms) <= set(words), (topic, terms)  # never filler
    # "kung" and "fu" always come together: the name holds the phrase, not half of it
    assert "kung fu" in names[2] and "kung" not in names[2]
    # the plain frequency of words is not distinctive: a group of filler alone has no name
    assert distinctive_terms([["people"], ["people"], ["people"]], np.array([0, 0, 1]), 2) \
        == [[], []]


def test_refined_names_choose_the_terms_that_point_at_the_group():
    texts, assign = planted_texts()
    rng = np.random.default_rng(1)
    axes = np.eye(3, 16, dtype=np.float32)
    direction = {w: axes[g] for g, words in enumerate(TOPICS.values()) for w in words}

    def encode(batch):  # a name points where its topic words point; filler points nowhere
        out = []
        for t in batch:
            v = sum((direction[w] for w in t.split(", ") if w in direction),
                    np.zeros(16, np.float32)) + 0.01 * rng.normal(size=16)
            out.append(v)
        return np.asarray(out, np.float32)

    vectors = axes[assign] + 0.2 * rng.normal(size=(assign.size, 16)).astype(np.float32)
    topics = list(TOPICS.values())
    # each group's best-ranked candidate is another topic's word: it would send the
    # group's items elsewhere, so the refinement passes it over
    candidates = [[topics[(g + 1) % 3][0], *words] for g, words in enumerate(topics)]
    chosen = refine_names(vectors, assign, candidates, encode, top=2)
    for terms, words in zip(chosen, topics, strict=True):
        assert len(terms) == 2 and set(terms) <= set(words), terms
    # the whole text path: no encoder = the top TF-IDF phrases
    assert text_cluster_terms(texts, assign, 3, top=2) == [t[:2] for t in
                                                          text_names(texts, assign, 3)]


def test_vocabulary_names_of_images_through_a_text_tower(rng):
    vocab = ["dog", "boat", "tree", "car"]
    centres = dict(zip(vocab, np.eye(4, 8, dtype=np.float32), strict=True))

    def encode(prompts):  # "a photo of a dog." -> the dog direction
        return np.stack([centres[p.removeprefix("a photo of a ").rstrip(".")] for p in prompts])

    assign = np.repeat([0, 1], 30)
    vectors = np.eye(4, 8, dtype=np.float32)[[0] * 30 + [1] * 30] \
        + 0.1 * rng.normal(size=(60, 8)).astype(np.float32)
    assert vocabulary_names(vectors, assign, 2, vocab, encode, top=1) == [["dog"], ["boat"]]
    with pytest.raises(ValueError, match="at least two names"):
        vocabulary_names(vectors, assign, 2, ["dog"], encode)


def test_bundled_vocabulary_is_ours_and_ships_in_the_package():
    header = VOCABULARY_FILE.read_text().splitlines()[0]
    assert header.startswith("#") and "licensed with it" in header
    names = read_vocabulary()
    assert len(names) >= 300 and len(set(names)) == len(names)
    assert "dog" in names and not any(n.startswith("#") for n in names)
    # hatch ships the whole package folder (data/ included) in the wheel
    root = Path(__file__).resolve().parent.parent
    wheel = (root / "pyproject.toml").read_text().split("[tool.hatch.build.targets.wheel]")[1]
    assert 'packages = ["workbench"]' in wheel.split("\n[")[0]
    assert VOCABULARY_FILE.is_relative_to(root / "workbench")


def test_value_names_need_a_share_of_the_group():
    assign = np.repeat([0, 1, 2], 20)
    values = ["a"] * 20 + ["b"] * 18 + [None] * 2 + ["a", "b", "c", "d"] * 5
    # group 2 holds each value at 25%, under CLUSTER_NAME_MIN_SHARE (30%): no name
    assert value_names(values, assign, 3) == ["a", "b", ""]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    wb = Workbench.demo(tmp_path_factory.mktemp("names") / "digits", background=False,
                        layout="quick")
    yield wb
    wb.close()


def actions(wb) -> int:
    con = sqlite3.connect(wb.project.path / "labels.sqlite")
    try:
        return con.execute("SELECT count(*) FROM actions").fetchone()[0]
    finally:
        con.close()


def test_demo_falls_back_to_the_truth_column_and_writes_nothing(demo):
    before = actions(demo)
    names = demo.cluster_names()
    assert len(names) == len(demo.clusters) == 30
    truth = demo.items["truth"].to_numpy()
    for name, c in zip(names, demo.clusters, strict=True):
        values = Counter(truth[c.members].tolist())
        top, count = values.most_common(1)[0]
        if count >= 0.3 * c.size:  # a value held by 30%: the cluster is named by it
            assert name == top or name in {v for v, k in values.items() if k >= 0.3 * c.size}
        else:
            assert name == f"cluster {c.id + 1}"
    assert sum(n.isdigit() for n in names) >= 27  # digits clusters are pure
    assert actions(demo) == before and demo.labels.state.human.max() == -1


def test_coarse_groups_merge_fine_clusters(demo):
    fine, coarse = demo.cluster_names("fine"), demo.cluster_names("coarse")
    assert len(coarse) == math.ceil(math.sqrt(len(fine))) == len(demo.coarse_clusters)
    ids = np.sort(np.concatenate(demo.coarse_clusters))
    assert np.array_equal(ids, np.arange(len(fine)))  # every fine cluster in one group
    members = demo.cluster_members("coarse")
    for group, m in zip(demo.coarse_clusters, members, strict=True):
        assert m.size == sum(demo.clusters[k].size for k in group)
    # a coarse group is named by its parts when no single digit dominates it
    truth = demo.items["truth"].to_numpy()
    for name, m in zip(coarse, members, strict=True):
        for part in name.split(", "):
            assert (truth[m] == part).mean() > 0.05, (name, part)
    with pytest.raises(ValueError, match="level must be one of"):
        demo.cluster_names("medium")


def test_coarse_groups_and_positions_are_exact():
    vectors = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1]], np.float32)
    assert coarse_groups(vectors, np.arange(4), 4, 2).tolist() == [0, 0, 1, 1]
    xy = np.array([[0, 0], [1, 0], [2, 0], [5, 5]], np.float32)
    assert name_positions(xy, [np.array([0, 1, 2])]).tolist() == [[1, 0]]


def test_texts_session_names_and_the_vocabulary_setting(tmp_path):
    texts, assign = planted_texts()
    items = pl.DataFrame({"id": [f"t{i}" for i in range(len(texts))], "source": texts,
                          "kind": ["text"] * len(texts)})
    vectors = np.eye(3, 8, dtype=np.float32)[assign] + 0.05 * np.random.default_rng(0).normal(
        size=(len(texts), 8)).astype(np.float32)
    wb = Workbench.create(tmp_path / "texts", items, vectors=vectors, background=False,
                          layout="quick")
    try:
        names = wb.cluster_names()
        assert len(names) == 3
        for name, c in zip(names, wb.clusters, strict=True):
            topic = list(TOPICS.values())[int(np.bincount(assign[c.members]).argmax())]
            assert set(name.split(", ")) <= set(topic), name
    finally:
        wb.close()


def test_image_session_names_from_vocabulary_and_project_setting(tmp_path):
    wb = Workbench.demo(tmp_path / "d", background=False, layout="quick")
    truth = wb.items["truth"].to_numpy().astype(int)
    means = {d: wb.vectors[truth == d].mean(0) for d in range(10)}
    words = ["nought", "stick", "swan", "trident", "sailboat", "hook", "snail", "cliff",
             "hourglass", "balloon"]
    own = {w: means[d] for d, w in enumerate(words)}
    other = np.random.default_rng(0)

    def encode(prompts):  # the digit's name points at its mean image; others nowhere
        names = [p.removeprefix("a photo of a ").rstrip(".") for p in prompts]
        return np.stack([own[n] if n in own else other.normal(size=64) for n in names])

    wb.text_encoder = encode
    try:
        wb.project.set_setting("cluster_vocabulary", words[5:])
        names = wb.cluster_names(vocabulary=words[:5])
        hits = sum(words[int(Counter(truth[c.members]).most_common(1)[0][0])] in n.split(", ")
                   for n, c in zip(names, wb.clusters, strict=True))
        assert hits >= 25, names  # the planted names, from both lists
        wb.project.set_setting("cluster_vocabulary", "stick")
        with pytest.raises(ValueError, match="must be a list of names"):
            wb.cluster_names(vocabulary=["x"])
    finally:
        wb.close()


def test_app_shows_names_offers_them_and_labels_in_one_action(demo):
    from _comm import browser_says

    from workbench.widgets.app import WorkbenchApp

    app = WorkbenchApp(demo)
    try:
        assert not app.controls.names.busy  # nothing named before a view is on screen
        browser_says(app.map, {"type": "ready"})  # a view of the map is on screen
        app.controls.names.wait(60)
        names = demo.cluster_names()
        texts = [t for t, _ in app.panel.cluster_pick.options]
        assert texts[2] == f"3. {names[2]} ({demo.clusters[2].size} items)"
        labels = app.map.cluster_labels
        assert [d["name"] for d in labels if d["level"] == "fine"] == names
        assert [d["name"] for d in labels if d["level"] == "coarse"] == \
            demo.cluster_names("coarse")
        xy = np.frombuffer(app.map.coords, np.float32).reshape(-1, 2)
        first = next(d for d in labels if d["level"] == "fine")
        assert [first["x"], first["y"]] in xy[demo.clusters[0].members].tolist()
        # picking a cluster offers its name; a typed name is kept
        app.panel.cluster_pick.value = 2
        assert app.panel.class_name.value == names[2]
        app.panel.cluster_pick.value = 4
        assert app.panel.class_name.value == names[4]
        app.panel.class_name.value = "my class"
        app.panel.cluster_pick.value = 5
        assert app.panel.class_name.value == "my class"
        app.panel.class_name.value = ""
        app.panel.cluster_pick.value = 6
        before = actions(demo)
        app.panel.label_cluster.click()  # one confirm: the class and its labels
        assert actions(demo) == before + 2 and app.panel.error.value == ""
        human = demo.labels.state.human
        cid = {v: k for k, v in demo.labels.classes.items()}[names[6]]
        assert (human[demo.clusters[6].members] == cid).all()
        with pytest.raises(traitlets.TraitError, match="level"):
            app.map.cluster_labels = [{"x": 0, "y": 0, "name": "a", "level": "huge"}]
    finally:
        while demo.undo():
            pass
        app.close()
