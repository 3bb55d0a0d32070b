"""Download the default model weights into the image at build time (Binder's postBuild).

Uses the same defaults and the same loading code as the workbench itself, so what is
fetched is exactly what the first embedding run will ask for. The quickstart needs no
weights (its digits are embedded offline), so a failed download (a hub outage, no network)
warns and lets the image build go on: the first CLIP run fetches the weights instead.
"""

from __future__ import annotations

import sys

from workbench._config import CLIP_MODEL, CLIP_PRETRAINED


def main() -> int:
    try:
        from workbench.embed import ClipEmbedder

        embedder = ClipEmbedder(model=CLIP_MODEL, pretrained=CLIP_PRETRAINED, device="cpu")
    except Exception as e:  # any download failure: the quickstart does not need these weights
        print(
            f"warning: could not prefetch {CLIP_MODEL}/{CLIP_PRETRAINED} "
            f"({type(e).__name__}: {e}); the image builds without them and the first "
            "CLIP embedding run downloads them instead",
            file=sys.stderr,
        )
        return 0
    print(f"fetched {embedder.name} ({embedder.dim}-d)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
