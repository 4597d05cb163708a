"""The README's Python examples run as written (the quick ones)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def block_with(needle: str) -> str:
    return next(b for b in BLOCKS if needle in b)


def test_composition_example_runs() -> None:
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
