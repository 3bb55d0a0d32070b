"""Several annotators asking "what next?" are served different pages: each page is claimed
for its annotator (until their next page, or ``PAGE_CLAIM_SECONDS``), on both label stores."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from workbench.session import Workbench


@pytest.fixture(params=["sqlite", "postgresql"])
def team(request, tmp_path):
    folder = tmp_path / "digits"
    Workbench.demo(folder, background=False, layout="quick").close()
    url = None
    if request.param == "postgresql":
        import _postgres

        url = _postgres.fresh_url()
    people = {}
    for who in ("ann", "bob"):
        people[who] = Workbench.open(folder, annotator=who, labels=url, background=False,
                                     layout="quick")
        url = None  # the first open moved the project; the second finds it
    yield people
    for wb in people.values():
        wb.close()


def test_two_annotators_get_different_pages(team):
    ann, bob = team["ann"], team["bob"]
    first = ann.suggestions()
    second = bob.suggestions()
    assert first.size == second.size == 12
    assert not set(first) & set(second)
    # Looking without claiming (the map's colours) neither takes nor is refused anything.
    assert set(ann.suggestions(claim=False)) == set(first)
    # A new page releases the annotator's old claims: the other may be served them now.
    ann.label(first, "seen")  # labelled: no longer anyone's to serve
    again = ann.suggestions()
    assert not set(again) & set(second) and not set(again) & set(first)
    bob.suggestions()  # bob's page moves on; ann's current page stays hers
    assert not set(bob.suggestions()) & set(again)


def test_claims_expire(team, monkeypatch):
    import workbench._queues as queues

    monkeypatch.setattr(queues, "PAGE_CLAIM_SECONDS", -1.0)  # every claim already over
    ann, bob = team["ann"], team["bob"]
    assert set(ann.suggestions()) == set(bob.suggestions())


def test_pages_asked_for_at_the_same_moment_do_not_overlap(team):
    ann, bob = team["ann"], team["bob"]
    ann.label(np.arange(0, 40, 4), "digit 0")  # a model, so pages come from the probe
    ann.wait()
    bob.refresh()
    pages, barrier = {}, threading.Barrier(2)

    def ask(who):
        barrier.wait()
        pages[who] = team[who].suggestions()

    threads = [threading.Thread(target=ask, args=(w,)) for w in team]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert pages["ann"].size + pages["bob"].size >= 12
    assert not set(pages["ann"]) & set(pages["bob"])
