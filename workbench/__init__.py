"""workbench: a labelling workbench inside Jupyter.

>>> from workbench import Workbench
>>> wb = Workbench.demo("projects/digits")      # doctest: +SKIP
>>> wb.show()                                   # doctest: +SKIP

The core (items, embeddings, neighbours, layout, labels, learning, export) never imports
widget code; :meth:`Workbench.show` loads the widgets when asked.
"""

from .export import export_imagefolder, export_table, labelled_table, to_hf_dataset
from .items import (
    ItemError,
    demo_digits,
    from_dataframe,
    from_folder,
    from_paths,
    from_table,
    from_vectors,
)
from .labels import LabelStore
from .project import Project, ProjectError
from .session import Cluster, Workbench

__version__ = "0.1.0"

__all__ = [
    "Cluster",
    "ItemError",
    "LabelStore",
    "Project",
    "ProjectError",
    "Workbench",
    "demo_digits",
    "export_imagefolder",
    "export_table",
    "from_dataframe",
    "from_folder",
    "from_paths",
    "from_table",
    "from_vectors",
    "labelled_table",
    "to_hf_dataset",
]
