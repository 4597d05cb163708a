"""The ``path`` dataset on folders of images: labeled, flat, split folders, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from anyssl.modalities.image.datasets import DataPathError
from anyssl.modalities.image.datasets_files import load_image, path
from anyssl.modality import get_modality


def _write(file: Path, size: tuple[int, int], mode: str, color: object) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(file)  # type: ignore[arg-type]


def _mixed_folder(root: Path) -> None:
    """Two classes, 5 images each, of mixed sizes, modes and formats."""
    for i in range(5):
        _write(root / "cat" / f"c{i}.png", (20 + 7 * i, 30), "RGB", (200, 10, 10))
        _write(root / "dog" / f"d{i}.jpg", (40, 25 + i), "L", 90)
    _write(root / "dog" / "sub" / "rgba.png", (33, 17), "RGBA", (0, 0, 255, 255))
    (root / "dog" / "notes.txt").write_text("not an image")


def test_labeled_folder_mixed_images(tmp_path: Path) -> None:
    _mixed_folder(tmp_path)
    train, test = path(tmp_path, "train", device="cpu"), path(tmp_path, "test", device="cpu")
    assert len(train) + len(test) == 11 and len(test) == 2  # 20% of each class
    assert train.classes == ["cat", "dog"] and train.num_classes == 2
    # the CPU default: 64 px views cut from images stored at 73 px (8/7, as 224 from 256)
    assert train.encoder_kwargs == {"in_channels": 3, "image_size": 64}
    for ds in (train, test):
        for i in range(len(ds)):
            img, label = ds[i]
            assert img.shape == (3, 73, 73) and img.dtype == torch.uint8
            expected = (200, 10, 10) if label == 0 else None
            if expected:
                assert img[:, 36, 36].tolist() == list(expected)
            else:  # grayscale 90 -> RGB, or the blue RGBA image
                assert img[:, 36, 36].tolist() in ([90, 90, 90], [0, 0, 255])
    again = path(tmp_path, "test", seed=99, device="cpu")
    assert again.files == test.files  # split fixed by split_seed, not the training seed


def test_storage_size_and_loader(tmp_path: Path) -> None:
    _mixed_folder(tmp_path)
    ds = path(tmp_path, "train", image_size=16)
    assert ds[0][0].shape == (3, 16, 16)
    x, y = next(iter(DataLoader(ds, batch_size=4, num_workers=0)))
    assert x.shape == (4, 3, 16, 16) and x.dtype == torch.uint8 and y.dtype == torch.int64


def test_center_crop_keeps_aspect_and_alpha_goes_white(tmp_path: Path) -> None:
    img = np.zeros((20, 60, 3), dtype=np.uint8)
    img[:, 20:40] = 255  # the middle third is white, the sides black
    Image.fromarray(img).save(tmp_path / "wide.png")
    out = load_image(tmp_path / "wide.png", 10)
    assert out.shape == (3, 10, 10) and int(out[:, :, 1:-1].min()) >= 200
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[:4, :, :] = (255, 0, 0, 255)  # top half opaque red, bottom transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    out = load_image(tmp_path / "alpha.png", 8)
    assert out[:, 1, 4].tolist() == [255, 0, 0] and out[:, 6, 4].tolist() == [255, 255, 255]


def test_flat_folder_is_unlabeled(tmp_path: Path) -> None:
    for i in range(10):
        _write(tmp_path / f"img{i}.png", (12, 12), "RGB", (i * 20, 0, 0))
    train, test = path(tmp_path, "train"), path(tmp_path, "test")
    assert (len(train), len(test)) == (8, 2)
    assert train.num_classes is None and set(train.targets) == {-1}
    assert train[0][1] == -1


def test_train_and_test_subfolders_are_used(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("val", 2)):
        for c in ("a", "b"):
            for i in range(n):
                _write(tmp_path / split / c / f"{i}.png", (9, 9), "RGB", (0, 0, 0))
    _write(tmp_path / "val" / "c" / "0.png", (9, 9), "RGB", (0, 0, 0))  # class only in val
    train, test = path(tmp_path, "train"), path(tmp_path, "test")
    assert (len(train), len(test)) == (6, 5)
    assert train.classes == test.classes == ["a", "b", "c"]
    assert sorted(set(test.targets)) == [0, 1, 2] and sorted(set(train.targets)) == [0, 1]


def test_modality_dispatches_paths_to_the_folder_dataset(tmp_path: Path) -> None:
    _mixed_folder(tmp_path)
    ds = get_modality("image").dataset(str(tmp_path), "train", image_size=8)
    assert ds[0][0].shape == (3, 8, 8)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataPathError, match="does not exist"):
        path(tmp_path / "nope")


def test_folder_without_images_lists_extensions(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hello")
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DataPathError, match=r"no images found .*\.png"):
        path(tmp_path)
    with pytest.raises(DataPathError, match="is a file"):
        path(tmp_path / "readme.txt")


def test_unreadable_image(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"definitely not a png")
    _write(tmp_path / "ok.png", (8, 8), "RGB", (1, 2, 3))
    with pytest.raises(DataPathError, match=r"cannot read .*broken\.png.*on_error=skip") as err:
        for split in ("train", "test"):  # checked when the split holding it is built
            path(tmp_path, split, test_fraction=0.5)
    assert "\n" not in str(err.value)
