"""Where the built front end lives, with an actionable error when it was never built."""

from __future__ import annotations

from pathlib import Path

__all__ = ["STATIC", "bundle"]

STATIC = Path(__file__).parent / "static"


def bundle(name: str) -> Path:
    """Path of ``static/<name>.js``; ``FileNotFoundError`` saying how to build it if absent."""
    path = STATIC / f"{name}.js"
    if not path.is_file():
        raise FileNotFoundError(
            f"the widget front end {path} is not built: run `make js` in the workbench "
            "repository (npm ci, then esbuild bundles js/ into workbench/widgets/static/)"
        )
    return path
