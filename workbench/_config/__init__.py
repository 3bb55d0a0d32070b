"""Every default in one place, each with the reason it was chosen.

Modules import these names instead of repeating literals, so that a change of default is
one edit and the reason travels with the number. The package is that one place, split by
area so each file stays readable: :mod:`.project` (files, annotators, label sources and
stores, loaders, seeds), :mod:`.learn` (propagation, the probe, the mix, many classes),
:mod:`.pipeline` (embeddings, neighbours and layout, the session, export, calibration),
:mod:`.team` (several annotators, adjudication, rules and their label model) and
:mod:`.explore` (selections, linked filters, cluster names). Import from here:
``from workbench._config import KNN_K``.
"""

from __future__ import annotations

from .explore import *  # noqa: F403
from .learn import *  # noqa: F403
from .pipeline import *  # noqa: F403
from .project import *  # noqa: F403
from .team import *  # noqa: F403

#: Every default of the package's modules (the UPPER_CASE names).
__all__ = sorted(n for n in dict(globals()) if n.isupper() and not n.startswith("_"))
