"""Notebook widgets: the WebGL map, the gallery and the control panel (views only).

The core never imports this package; ``Workbench.show()`` imports it on demand. The
front end is bundled from ``js/`` into ``static/`` by ``make js``.
"""

from .app import WorkbenchApp
from .gallery import Gallery
from .panel import ControlPanel
from .scatter import COLOR_MODES, ScatterMap

__all__ = ["COLOR_MODES", "ControlPanel", "Gallery", "ScatterMap", "WorkbenchApp"]
