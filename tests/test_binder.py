"""binder/: consistent with the package, and its build steps run here (bar the downloads)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower()


def _requirements() -> list[str]:
    lines = (BINDER / "requirements.txt").read_text().splitlines()
    return [ln for ln in lines if ln.strip() and not ln.startswith("#")]


def _post_build_steps() -> list[str]:
    return [ln for ln in (BINDER / "postBuild").read_text().splitlines()
            if ln.strip() and not ln.startswith("#") and not ln.startswith("set ")]


def test_cpu_torch_from_pytorch_cpu_wheels_and_matching_the_package():
    reqs = _requirements()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in reqs
    deps = {_name(d): d for d in PYPROJECT["project"]["dependencies"]}
    pinned = [r for r in reqs if not r.startswith("-")]
    assert {_name(r) for r in pinned} == {"torch", "torchvision"}
    for r in pinned:
        assert _name(r) in deps, f"{r} is not a dependency of the package"
        # Same lower bound, so Binder's torch is one the package accepts.
        assert r.replace(" ", "") == deps[_name(r)].replace(" ", "")


def test_runtime_python_is_supported():
    version = (BINDER / "runtime.txt").read_text().strip().removeprefix("python-")
    minimum = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, version.split("."))) >= tuple(map(int, minimum.split(".")))


def test_post_build_is_valid_bash_and_names_real_extras_and_the_makefile_js_build():
    subprocess.run(["bash", "-n", str(BINDER / "postBuild")], check=True)
    steps = _post_build_steps()
    extras = re.search(r'-e "\.\[([a-z,]+)\]"', steps[0]).group(1).split(",")
    assert set(extras) <= set(PYPROJECT["project"]["optional-dependencies"])
    makefile = (ROOT / "Makefile").read_text()
    js_step = steps[1].strip("()").removeprefix("cd js && ")
    assert js_step in makefile, "Binder must build the widget bundle the way make does"


def test_prefetch_names_a_real_pretrained_pair():
    import open_clip

    from workbench._config import CLIP_MODEL, CLIP_PRETRAINED

    assert (CLIP_MODEL, CLIP_PRETRAINED) in open_clip.list_pretrained()
    src = (BINDER / "prefetch.py").read_text()
    assert "CLIP_MODEL" in src and "CLIP_PRETRAINED" in src
    compile(src, "prefetch.py", "exec")


def test_package_install_step_resolves_here():
    """postBuild step 1 without downloading: pip resolves the same extras, offline-safe."""
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "-e",
         f"{ROOT}[text,hf]"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_js_build_step_runs_here(tmp_path):
    js = tmp_path / "js"
    shutil.copytree(ROOT / "js", js, ignore=shutil.ignore_patterns("node_modules"))
    out = tmp_path / "workbench" / "widgets" / "static"
    out.mkdir(parents=True)
    step = _post_build_steps()[1]
    r = subprocess.run(["bash", "-c", step], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert any(out.glob("*.js")), "the build produced no bundle"


def test_post_build_refuses_cuda_torch_before_fetching_weights():
    steps = _post_build_steps()
    guard = steps.index("python binder/check_cpu_torch.py")
    assert guard < steps.index("python binder/prefetch.py")
    assert guard > 0, "the guard must run after the package install that could pull torch"


def test_cpu_torch_guard_fails_loudly_on_a_cuda_build():
    from types import SimpleNamespace

    sys.path.insert(0, str(BINDER))
    try:
        import check_cpu_torch
    finally:
        sys.path.remove(str(BINDER))
    cuda = SimpleNamespace(__version__="2.5.0", version=SimpleNamespace(cuda="12.4"))
    cpu = SimpleNamespace(__version__="2.5.0+cpu", version=SimpleNamespace(cuda=None))
    message = check_cpu_torch.check(cuda)
    assert message and "CUDA 12.4" in message and "CPU" in message
    assert check_cpu_torch.check(cpu) is None
    # And the real script on this machine's torch says one or the other, never crashes.
    r = subprocess.run([sys.executable, str(BINDER / "check_cpu_torch.py")],
                       capture_output=True, text=True, timeout=120)
    import torch

    assert r.returncode == (0 if torch.version.cuda is None else 1), r.stderr


def test_prefetch_warns_and_goes_on_when_the_hub_is_unreachable(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path),
           "XDG_CACHE_HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, str(BINDER / "prefetch.py")], capture_output=True,
                       text=True, timeout=300, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "warning: could not prefetch" in r.stderr
