"""The ways to start a :class:`~workbench.Workbench`: the offline demo, reopening a project
folder, embedding items into a new project, or a project from ready vectors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from .project import Project, demo_project

if TYPE_CHECKING:
    from .session import Workbench

__all__ = ["Constructors"]


class Constructors:
    """``demo``, ``open``, ``from_items`` and ``create`` (classmethods of the session)."""

    @classmethod
    def demo(cls, folder: str | os.PathLike[str] = "projects/digits", **kw: Any) -> Workbench:
        """The offline demo: scikit-learn's 1,797 digits as real PNGs in a project folder.

        Its vectors are the digits' pixels (no model weights needed); each item keeps its
        true digit in the ``truth`` column so a demo can check itself.
        """
        project = demo_project(folder)  # the same project `workbench demo FOLDER` makes
        return cls(project, **kw)

    @classmethod
    def open(
        cls,
        folder: str | os.PathLike[str],
        *,
        annotator: str | None = None,
        read_only: bool | None = None,
        labels: str | None = None,
        **kw: Any,
    ) -> Workbench:
        """Reopen a project folder: items, labels, vectors and caches come back.

        ``annotator``, ``read_only`` and ``labels`` go to :meth:`Project.open`
        (``read_only=None``: read-only exactly when the folder is not writable;
        ``labels="postgresql://..."``: a team's label store, remembered by the project);
        the rest to the constructor.
        """
        return cls(Project.open(folder, annotator=annotator, read_only=read_only,
                                labels=labels), **kw)

    @classmethod
    def from_items(
        cls,
        folder: str | os.PathLike[str],
        items: pl.DataFrame,
        *,
        model: Any = None,
        batch_size: int | None = None,
        progress: bool = True,
        **kw: Any,
    ) -> Workbench:
        """Embed ``items`` and open a workbench on them, in a project at ``folder``.

        Parameters
        ----------
        items : item table from :mod:`workbench.items` (images or texts).
        model : an :class:`~workbench.embed.Embedder`, or a spec for
            :func:`~workbench.embed.make_embedder` (``"clip"``, ``"clip:ViT-L-14"``,
            ``"dino:small"``, ``"text"``, ``"clip:/path/to/config.json"``); default CLIP for
            images, MiniLM for texts.

        Reopening: if ``folder`` already holds an embedded project it is opened as is
        (``items`` is ignored), so the cell that created a project can be re-run. The
        embedding is cached by model and content: an interrupted run resumes.
        """
        from ._config import PROJECT_FILE
        from .embed import Embedder, embed_items, make_embedder
        from .items import validate_items

        folder = Path(folder)
        if (folder / PROJECT_FILE).exists():
            project = Project.open(folder)
            if project.vectors() is not None:
                return cls(project, **kw)
            project.close()
            raise ValueError(
                f"{str(folder)!r} holds a project without vectors; open it with "
                "Workbench.open(folder, vectors=...) or choose a new folder"
            )
        items = validate_items(items)
        kinds = set(items["kind"].to_list())
        if len(kinds) != 1 or kinds <= {"vector"}:
            raise ValueError(
                f"from_items embeds images or texts, one kind at a time; got {sorted(kinds)} "
                "(for precomputed vectors use Workbench.create(folder, items, vectors=...))"
            )
        kind = kinds.pop()
        # The spec is kept so that a reopened project can load the same text tower; a
        # ready-made Embedder object cannot be recreated from the folder alone.
        if model is None:
            spec: str | None = "text" if kind == "text" else "clip"
        else:
            spec = model if isinstance(model, str) else None
        embedder = model if isinstance(model, Embedder) else make_embedder(spec, kind=kind)
        from .cli.embed import folder_cache

        cache = folder / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        # Vectors `workbench embed FOLDER` already computed are reused, not embedded again.
        result = embed_items(items, embedder, cache_dir=folder_cache(items) or cache,
                             batch_size=batch_size, progress=progress)
        if not result.ids:
            raise ValueError("no item could be embedded:\n" + "\n".join(
                f"  {k}: {v}" for k, v in list(result.skipped.items())[:20]))
        kept = items[result.rows.tolist()]
        project = Project.create(
            folder, kept, vectors=result.vectors, check=False, skipped=result.skipped,
            meta={"embedder": {"name": embedder.name, "spec": spec}},
        )
        kw.setdefault("text_encoder", getattr(embedder, "encode_text", None))
        return cls(project, **kw)

    @classmethod
    def create(
        cls, folder: str | os.PathLike[str], items: pl.DataFrame, *, vectors: Any, **kw: Any
    ) -> Workbench:
        """A new project from items (see :mod:`workbench.items`) and their vectors.

        All or nothing (see :meth:`Project.create`); vectors must be finite with no row of
        all zeros (the error names the first such item).
        """
        return cls(Project.create(folder, items, vectors=vectors,
                                  annotator=kw.pop("annotator", None)), **kw)
