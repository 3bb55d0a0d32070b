"""Exporting labels as datasets other tools read.

One path for every caller: :meth:`Workbench.export <workbench.session.Workbench.export>`
and ``workbench export`` both end in :func:`export_project`, which takes its rows from
:func:`labelled_table` (itself :func:`~workbench.labels.effective_labels`: human, else
accepted machine label, else live prediction).

Formats
-------
``parquet``, ``csv``, ``tsv``, ``jsonl`` (one row per item, columns :data:`TABLE_COLUMNS`),
``imagefolder`` (``folder/[train|val/]<class>/<file>``, copies or links) and ``hf`` (a
Hugging Face dataset saved with ``save_to_disk``, ``label`` a ``ClassLabel``). A table's
format follows the file suffix (``.parquet``/``.pq``, ``.csv``, ``.tsv``, ``.jsonl``/
``.ndjson``) unless ``format`` says otherwise; folders need ``format``.

Guarantees
----------
* Nothing is written inside a project folder (any folder holding ``workbench.json``, the
  exported project's included; symlinks resolved), so an export can never overwrite the
  label log.
* An existing file or non-empty folder is refused unless ``overwrite=True``; a non-empty
  folder is replaced only if it is itself a workbench export.
* Everything is written under a temporary name unique to the writer (pid + random) in the
  target's folder and renamed into place at the end; a failed export leaves nothing.
* One class order: classes sorted by name (Python ``sorted`` on the strings); ``label_id``,
  the ImageFolder indices (torchvision's ``class_to_idx``) and the ``ClassLabel`` names
  all follow it, and the mapping is written alongside.
* Metadata beside every export: ``out.csv.meta.json`` next to a table (the whole file name
  plus :data:`~workbench._config.EXPORT_META_SUFFIX`), ``workbench-export.json`` inside a
  folder (and the ``hf`` dataset's description): project, UTC export time, options,
  counts per layer, classes, and the session's accuracy estimate when it has one.
* Times are UTC: Parquet ``timestamp[us, UTC]``, ISO-8601 strings ending in ``Z`` elsewhere.
* CSV/TSV cells (and ImageFolder's ``labels.csv``) starting with ``= + - @``, tab or CR get
  a leading ``'`` so a spreadsheet never runs them as formulas (``csv_safe=False`` to
  keep them verbatim). Parquet and JSONL are never altered.

Label names are data and may hold any character; as folder names they go through
:func:`safe_folder_name`, and every path is checked to stay inside the export folder.

The package: :mod:`~workbench.export.api` (the entry points), ``options`` (formats, option
checks, errors), ``rows`` (the rows and their class order), ``target`` (where an export may
go), ``metadata``, ``publish`` (temporary names, renaming into place), ``table``,
``annotations`` (a team's long table beside a table, ``annotations=True``), ``imagefolder``,
``folder_names`` (label names as folder names) and ``hf``.
"""

from __future__ import annotations

from .api import export_imagefolder, export_project, export_table, to_hf_dataset
from .folder_names import safe_folder_name
from .options import FOLDER_FORMATS as FOLDER_FORMATS  # public names, not in __all__
from .options import FORMATS, ExportError, ExportWarning, format_for
from .options import TABLE_FORMATS as TABLE_FORMATS
from .rows import TABLE_COLUMNS, class_order, labelled_table

__all__ = [
    "FORMATS",
    "TABLE_COLUMNS",
    "ExportError",
    "ExportWarning",
    "class_order",
    "export_imagefolder",
    "export_project",
    "export_table",
    "format_for",
    "labelled_table",
    "safe_folder_name",
    "to_hf_dataset",
]
