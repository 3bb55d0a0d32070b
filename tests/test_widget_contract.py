"""The widgets' contract holds on both sides: what ``js/*.js`` sends, reads and draws is
what ``workbench/widgets/_contract.py`` says, and the Python widgets validate against it.

The front end is read as plain text (no JavaScript runs here), so a field, colour mode,
message or colour renamed on one side only fails here, before any browser sees it.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from workbench.widgets import _contract as contract
from workbench.widgets._palette import COLORS, ClassSlots
from workbench.widgets.gallery import Gallery
from workbench.widgets.scatter import ScatterMap

REPO = Path(__file__).resolve().parent.parent
JS = REPO / "js"


def js(name: str) -> str:
    return (JS / name).read_text()


def block(text: str, name: str) -> str:
    """The body of ``const NAME = {...};`` or ``[...];`` in ``text``."""
    m = re.search(rf"const {name} = ([\[{{].*?[\]}}]);", text, re.S)
    assert m, f"js: no `const {name} = ...;`"
    return m.group(1)


def function_body(text: str, name: str) -> str:
    m = re.search(rf"function {name}\(.*?\n\}}\n", text, re.S)
    assert m, f"js: no function {name}"
    return m.group(0)


def js_fields(text: str) -> dict[str, int]:
    """``FIELDS``: code field -> bits of its typed array (all unsigned)."""
    pairs = re.findall(r"(\w+): Uint(\d+)Array", block(text, "FIELDS"))
    return {name: int(bits) for name, bits in pairs}


def js_options(text: str, name: str) -> tuple[str, ...]:
    """The values of a menu's ``[[value, text], ...]`` table."""
    return tuple(re.findall(r"\[\s*'(\w+)',\s*'", block(text, name)))


def js_colors(text: str, name: str) -> tuple[str, ...]:
    return tuple(re.findall(r"'(#[0-9a-fA-F]{6})'", block(text, name)))


def js_sent(text: str) -> set[str]:
    """Message types sent with ``model.send({type: ...})`` or ``request({type: ...})``."""
    return set(re.findall(r"(?:send|request)\(\{\s*type:\s*'(\w+)'", text))


def js_key_actions(text: str) -> set[str]:
    """Every ``type`` that ``keyAction`` can return."""
    body = function_body(text, "keyAction")
    return {t for clause in re.findall(r"type:([^}]*)\}", body)
            for t in re.findall(r"'(\w+)'", clause)}


def python_fields() -> dict[str, int]:
    return {name: np.dtype(dt).itemsize * 8 for name, dt in contract.CODE_FIELDS.items()}


# -- per-point code fields -------------------------------------------------------------------


def test_code_fields_match_the_front_end():
    assert all(np.dtype(dt).kind == "u" for dt in contract.CODE_FIELDS.values())
    assert js_fields(js("scatter.js")) == python_fields()
    assert list(js_fields(js("scatter.js"))) == list(contract.CODE_FIELDS)


def test_the_map_validates_fields_against_the_table():
    m = ScatterMap(np.zeros((3, 2)))
    assert set(m._codes) == set(contract.CODE_FIELDS)
    for field, dt in contract.CODE_FIELDS.items():
        assert m.codes(field).dtype == dt
    with pytest.raises(ValueError, match="unknown code field"):
        m.update(labels=np.zeros(3))


# -- colour modes, selection shapes --------------------------------------------------------


def test_colour_modes_match_the_menu_and_the_encoding():
    text = js("scatter.js")
    assert js_options(text, "COLOR_MODE_OPTIONS") == contract.COLOR_MODES
    # Every mode the encoding and the legend name is one of them.
    named = set(re.findall(r"mode === '(\w+)'", text))
    assert named and named <= set(contract.COLOR_MODES)
    assert tuple(ScatterMap.class_traits()["color_by"].values) == contract.COLOR_MODES


def test_lasso_types_match_the_menu():
    assert js_options(js("scatter.js"), "LASSO_OPTIONS") == contract.LASSO_TYPES
    assert tuple(ScatterMap.class_traits()["lasso_type"].values) == contract.LASSO_TYPES


# -- colours -------------------------------------------------------------------------------


def test_class_colours_are_what_the_front_end_reads():
    text = js("scatter.js")
    m = re.search(r"function hexToRgba\(.*?/(.+?)/i\.exec", text, re.S)
    assert m, "js: hexToRgba's colour pattern not found"
    assert m.group(1) == contract.HEX_COLOR
    pattern = re.compile(contract.HEX_COLOR, re.I)
    assert COLORS == contract.CLASS_COLORS
    assert all(pattern.match(c) for c in contract.CLASS_COLORS)
    slots = ClassSlots()
    assert {slots.color(s) for s in range(1, 2 * len(COLORS))} == set(contract.CLASS_COLORS)


def test_cluster_colours_match():
    assert js_colors(js("scatter.js"), "CLUSTER_COLORS") == contract.CLUSTER_COLORS


# -- messages and traits -------------------------------------------------------------------


def test_messages_from_the_browser_are_those_the_widgets_accept():
    shared = js("shared.js")
    keys = js_key_actions(shared)
    assert keys == set(contract.KEY_ACTIONS)
    common = keys | js_sent(shared)  # key actions and thumbnail requests, in both widgets
    assert common | js_sent(js("scatter.js")) == set(contract.MAP_MESSAGES)
    assert common | js_sent(js("gallery.js")) == set(contract.GALLERY_MESSAGES)
    m = re.search(r"/\^\[1-(\d)\]\$/", function_body(shared, "keyAction"))
    assert m and int(m.group(1)) == contract.MAX_LABEL_KEY


def test_messages_to_the_map_are_those_it_handles():
    handled = set(re.findall(r"msg\.type === '(\w+)'", js("scatter.js")))
    # A thumbnail is an answer: the requester (shared.js) matches it by id, not by type.
    assert "msg.id" in function_body(js("shared.js"), "createRequester")
    assert handled | {"thumb"} == set(contract.MAP_REPLIES)
    src = REPO / "workbench" / "widgets"
    sent = set()
    for name in ("scatter.py", "_messages.py"):
        sent |= set(re.findall(r'"type": "(\w+)"', (src / name).read_text()))
    assert sent == set(contract.MAP_REPLIES)


@pytest.mark.parametrize(("name", "widget", "allowed"), [
    ("scatter.js", ScatterMap, contract.MAP_BROWSER_SETS),
    ("gallery.js", Gallery, contract.GALLERY_BROWSER_SETS),
])
def test_traits_the_browser_sets_and_reads(name, widget, allowed):
    text = js(name)
    assert set(re.findall(r"model\.set\('(\w+)'", text)) == set(allowed)
    assert widget._browser_sets == allowed
    synced = set(widget.class_trait_names(sync=True))
    read = set(re.findall(r"model\.get\('(\w+)'\)", text))
    assert read and read <= synced, f"{name} reads traits {read - synced} Python never sends"


# -- the session's events --------------------------------------------------------------------


def test_session_events_are_those_the_session_emits():
    emitted = set()
    for path in (REPO / "workbench").rglob("*.py"):
        text = path.read_text()
        emitted |= set(re.findall(r'_emit\("(\w+)"\)', text))
        emitted |= {getattr(contract.SessionEvent, name).value
                    for name in re.findall(r"_emit\(Event\.(\w+)\)", text)}
    assert emitted == set(contract.SESSION_EVENTS)
    # The app names events only through the contract, never as bare strings.
    app = (REPO / "workbench" / "widgets" / "app.py").read_text()
    assert not re.findall(r"""["'](\w+)["'] in events|event == ["']""", app)


# -- the checks themselves catch drift -------------------------------------------------------


def test_a_drifted_front_end_fails_these_checks():
    text = js("scatter.js")
    assert js_fields(text.replace("review: Uint8Array", "review: Uint16Array")) != python_fields()
    assert js_fields(text.replace("cluster: Uint16Array", "clusters: Uint16Array")) != python_fields()
    renamed = text.replace("['review', 'colour: needs review']", "['reviews', 'colour: needs review']")
    assert js_options(renamed, "COLOR_MODE_OPTIONS") != contract.COLOR_MODES
    dropped = text.replace(", ['review', 'colour: needs review']", "")
    assert js_options(dropped, "COLOR_MODE_OPTIONS") != contract.COLOR_MODES
    recoloured = text.replace("'#17becf'", "'#17becd'")
    assert js_colors(recoloured, "CLUSTER_COLORS") != contract.CLUSTER_COLORS
    shared = js("shared.js").replace("'remove_labels'", "'unlabel'")
    assert js_key_actions(shared) != set(contract.KEY_ACTIONS)


def test_computed_colour_modes_ship_their_own_code_field():
    # "review" and "agreement" are computed off the main thread, each into the code field
    # of its name, which the front end colours with a ramp (agreement: 0 = no annotations).
    from workbench.widgets._view_model import COMPUTED_MODES

    text = js("scatter.js")
    for mode in COMPUTED_MODES:
        assert mode in contract.COLOR_MODES and mode in contract.CODE_FIELDS
    body = function_body(text, "colourEncoding")
    assert "mode === 'agreement'" in body and "codes[mode]" in body
    assert contract.CODE_FIELDS["agreement"] == np.uint8
    assert "mode === 'agreement'" in function_body(text, "drawLegend")
