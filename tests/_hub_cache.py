"""A Hugging Face cache holding the default models' files with random weights, laid out
as the hub leaves it, so the README's code runs verbatim offline through the real loading
code (``model="clip"``, ``--model dino:small``) without downloading anything."""

from __future__ import annotations

from pathlib import Path

_REVISION = "0" * 40


def _snapshot(hf_home: Path, repo: str) -> Path:
    repo_dir = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    snap = repo_dir / "snapshots" / _REVISION
    snap.mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(_REVISION)
    return snap


def seed_default_clip(hf_home: Path) -> None:
    """Random weights for the default CLIP pair (``_config.CLIP_MODEL/CLIP_PRETRAINED``),
    in half precision to halve the file (loading copies them into the fp32 model)."""
    import open_clip
    import torch
    from open_clip.pretrained import get_pretrained_cfg
    from safetensors.torch import save_file

    from workbench._config import CLIP_MODEL, CLIP_PRETRAINED

    repo = get_pretrained_cfg(CLIP_MODEL, CLIP_PRETRAINED)["hf_hub"].strip("/")
    torch.manual_seed(0)
    model = open_clip.create_model(CLIP_MODEL)
    state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(_snapshot(hf_home, repo) / "open_clip_model.safetensors"))


def seed_dino(hf_home: Path, name: str = "vit_small_patch14_dinov2.lvd142m") -> None:
    """Random weights for a DINOv2 model, where timm's ``pretrained=True`` looks."""
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(_snapshot(hf_home, f"timm/{name}") / "model.safetensors"))
