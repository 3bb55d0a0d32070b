"""Download the default model weights into the image at build time (Binder's postBuild).

Uses the same defaults and the same loading code as the workbench itself, so what is
fetched is exactly what the first embedding run will ask for.
"""

from __future__ import annotations

import sys

from workbench._config import CLIP_MODEL, CLIP_PRETRAINED


def main() -> int:
    from workbench.embed import ClipEmbedder

    embedder = ClipEmbedder(model=CLIP_MODEL, pretrained=CLIP_PRETRAINED, device="cpu")
    print(f"fetched {embedder.name} ({embedder.dim}-d)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
