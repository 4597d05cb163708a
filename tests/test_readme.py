"""The README's and the docs' Python examples run as written (the quick ones), and the README's
set-up commands install the torch that CI tests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
BLOCKS = [b for page in PAGES for b in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)]


def block_with(needle: str) -> str:
    return next(b for b in BLOCKS if needle in b)


def test_composition_example_runs() -> None:
    assert "MoCo(encoder" in README.read_text()  # the README's own quickstart
    scope: dict[str, Any] = {}
    exec(block_with("MoCo(encoder"), scope)
    assert scope["loss"].ndim == 0 and bool(scope["loss"].isfinite())


def test_custom_augmentation_example(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from anyssl.registry import AUGMENTATIONS
    from anyssl.views import parse_spec

    monkeypatch.setattr(AUGMENTATIONS, "_entries", dict(AUGMENTATIONS._entries))
    exec(block_with("class Cutout"), {})
    aug = parse_spec("cutout(size=4)", "image")
    x = torch.full((3, 1, 8, 8), 255, dtype=torch.uint8)
    out = aug(x, torch.Generator().manual_seed(0))
    assert out.dtype == torch.float32
    assert ((out == 0).flatten(1).sum(1) == 16).all()  # one 4x4 hole per sample


def test_setup_commands_install_what_ci_tests() -> None:
    """Each set-up command is one line that installs CI's torch pins, then the project."""
    ci = (ROOT / ".ci" / "run").read_text()
    pins = re.search(r"pip install -q (torch==\S+ torchvision==\S+)", ci)
    assert pins, ".ci/run no longer pins torch and torchvision"
    setup = README.read_text().split("## Set up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", setup, re.S)
    assert len(commands) == 4
    for extra, cmd in zip(["image", "timeseries", "image-text", "dev"], commands, strict=True):
        assert "\n" not in cmd
        assert cmd.startswith("python3 -m venv .venv && . .venv/bin/activate && "
                              f"pip install {pins.group(1)} && pip install -e \".[{extra}]\" && ")
    assert commands[-1].endswith("&& python -m pytest -q")
