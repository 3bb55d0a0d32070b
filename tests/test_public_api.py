"""The public names are exactly those meant to be public, and the core never loads widgets."""

from __future__ import annotations

import subprocess
import sys

import workbench

EXPECTED = {
    "Cluster", "ItemError", "LabelStore", "Project", "ProjectError", "Workbench", "demo_digits",
    "export_imagefolder", "export_table", "from_dataframe", "from_folder", "from_paths",
    "from_table", "from_vectors", "labelled_table", "to_hf_dataset",
}


def test_public_names():
    assert set(workbench.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(workbench, name) is not None


def test_core_import_loads_no_widget_or_model_library():
    code = (
        "import sys, workbench, workbench.session, workbench.learn, workbench.neighbors\n"
        "bad = [m for m in ('ipywidgets', 'anywidget', 'traitlets', 'torch', 'open_clip', "
        "'umap', 'sentence_transformers') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing the core loaded {out.stdout.strip()}"
