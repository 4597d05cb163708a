"""Image folders: the stored and view sizes follow the device unless given, say so in a note,
evaluation sees the centre crop, a checkpoint rebuilds the same sizes, and the scale of the data
picks a method's defaults (SimCLR's CIFAR-10 vs ImageNet settings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.transforms.v2 import functional as TF

from anyssl.build import build_parts
from anyssl.eval import embed
from anyssl.modalities.image.datasets_files import path
from anyssl.modalities.image.datasets_folder import storage_sizes
from anyssl.modalities.image.geometry import CenterCrop


def _folder(root: Path, n: int = 6) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        for cls in ("a", "b"):
            f = root / cls / f"{i}.png"
            f.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)).save(f)
    return root


def test_storage_sizes_follow_the_device_unless_given() -> None:
    assert storage_sizes(None, None, "cuda")[:2] == (256, 224)  # ImageNet's resize 256, crop 224
    assert storage_sizes(None, None, "cuda:1")[:2] == (256, 224)
    assert storage_sizes(None, None, "cpu")[:2] == (73, 64)  # the same 8:7 at CPU size
    assert storage_sizes(64, None, "cuda")[:2] == (64, 64)  # image_size alone: as before
    assert storage_sizes(None, 96, "cpu")[:2] == (110, 96)
    assert storage_sizes(None, 32, "cpu")[:2] == (32, 32)  # small views: stored at their size
    assert storage_sizes(300, 256, None)[:2] == (300, 256)
    with pytest.raises(ValueError, match="crop_size 80 is larger than image_size 64"):
        storage_sizes(64, 80, "cpu")


def test_folder_note_eval_crop_and_data_state(tmp_path: Path) -> None:
    ds = path(_folder(tmp_path), "train", device="cpu")
    assert ds[0][0].shape == (3, 73, 73) and ds.encoder_kwargs["image_size"] == 64
    assert ds.file_backed and ds.data_state() == {"image_size": 73, "crop_size": 64}
    assert any("decoded to 73 px" in n and "64 px views" in n and "CPU default" in n
               for n in ds.notes)
    flat = nn.Flatten()
    flat.out_dim = 3 * 64 * 64  # type: ignore[assignment]
    feats, _ = embed(flat, ds)  # evaluation sees the centre 64 x 64 of the stored 73 x 73
    want = torch.stack([TF.center_crop(ds[i][0], [64, 64]) for i in range(len(ds))])
    np.testing.assert_allclose(feats, want.float().div(255).flatten(1).numpy(), atol=1e-6)
    same = path(tmp_path, "train", image_size=64, device="cuda")
    assert same.eval_transform is None and same[0][0].shape == (3, 64, 64)
    with pytest.raises(ValueError, match="crop_size applies to folders of image files"):
        idx = tmp_path / "idx"
        idx.mkdir()
        (idx / "train-images-idx3-ubyte").write_bytes(
            bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big") + (8).to_bytes(4, "big") * 2
            + bytes(128))
        path(idx, "train", crop_size=8)


@pytest.mark.parametrize("size", [(11, 17), (10, 10), (9, 16)])
def test_center_crop_matches_torchvision(size: tuple[int, int]) -> None:
    x = torch.randint(0, 256, (4, 3, 20, 27), dtype=torch.uint8)
    got = CenterCrop(list(size))(x)  # type: ignore[arg-type]
    want = TF.center_crop(x, list(size)).float() / 255
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="needs images at least that large"):
        CenterCrop(32)(x)


def test_scale_picks_simclr_cifar_or_imagenet_settings(tmp_path: Path) -> None:
    """Digits (32 px) are small data: the README's CIFAR-10 command; a 64 px folder is large:
    its ImageNet command (temperature 0.1, lr 0.075 x sqrt(B)); the user's arguments win."""
    small = build_parts("image", "simclr", need_test=False)
    assert small.method.loss.temperature == 0.5
    assert small.method.train_defaults["lr_scaling"] == "linear"
    assert any("defaults for small data" in n and "CIFAR-10" in n for n in small.notes)
    folder = str(_folder(tmp_path))
    large = build_parts("image", "simclr", data=folder, data_args={"image_size": 64},
                        need_test=False)
    assert large.method.loss.temperature == 0.1
    d = large.method.train_defaults
    assert (d["lr"], d["lr_scaling"], d["weight_decay"], d["optimizer"]) == (
        0.075, "sqrt", 1e-4, "lars")
    assert any("defaults for large data" in n and "ImageNet" in n for n in large.notes)
    mine = build_parts("image", "simclr", data=folder, data_args={"image_size": 64},
                       method_args={"temperature": 0.3}, need_test=False)
    assert mine.method.loss.temperature == 0.3
    moco = build_parts("image", "mocov2", data=folder, data_args={"image_size": 64},
                       need_test=False)
    assert "train_defaults" not in vars(moco.method)  # no preset: the class's own defaults
