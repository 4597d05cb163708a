"""The image ``shards`` dataset: digits written as PNG shards read back pixel for pixel, labels,
splits, the shard-local epoch order, how ``--data`` resolves, and corrupt samples."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from anyssl.modalities.image.datasets import DataPathError, digits
from anyssl.modalities.image.datasets_shards import ShardImageDataset, decode_image, shards
from anyssl.modality import get_modality
from anyssl.shards import ShardError, ShardWriter
from anyssl.splits import split_indices

N, SIZE = 120, 50  # 120 digits in shards of 50: 50 + 50 + 20


def _png(image: torch.Tensor) -> bytes:
    out = io.BytesIO()
    arr = image.permute(1, 2, 0).numpy()
    Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(out, format="PNG")
    return out.getvalue()


def _write(folder: Path, members: list[dict[str, bytes]], meta: dict | None = None,
           prefix: str = "train") -> Path:
    with ShardWriter(folder, SIZE, prefix, meta) as w:
        for i, m in enumerate(members):
            w.write(i, f"{i:06d}", m)
    return folder


@pytest.fixture(scope="module")
def source() -> tuple[torch.Tensor, list[int]]:
    ds = digits("train")
    return ds.images[:N], ds.targets[:N]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, source: tuple[torch.Tensor, list[int]]
           ) -> Path:
    images, labels = source
    members = [{"png": _png(x), "cls": str(y).encode()}
               for x, y in zip(images, labels, strict=True)]
    meta = {"channels": 1, "image_size": 32, "label_names": [str(i) for i in range(10)]}
    return _write(tmp_path_factory.mktemp("digits"), members, meta)


def test_png_shards_give_the_source_pixels_and_labels(folder: Path, source) -> None:
    images, labels = source
    train, test = shards(folder, "train"), shards(folder, "test")
    idx_train, idx_test = split_indices(labels, 0.2, 0)
    assert train.indices.tolist() == idx_train.tolist()
    assert test.indices.tolist() == idx_test.tolist()
    assert train.encoder_kwargs == {"in_channels": 1, "image_size": 32}
    assert train.num_classes == 10 and train.classes == [str(i) for i in range(10)]
    assert train.file_backed and train.eval_transform is None
    for ds, idx in ((train, idx_train), (test, idx_test)):
        for i, j in enumerate(idx):
            x, y = ds[i]
            assert torch.equal(x, images[j]) and y == labels[j]


@pytest.mark.parametrize("spec", ["{f}/train-{{000000..000002}}.tar", "{f}", "{f}/",
                                  "{f}/*.tar"])
def test_data_specs_resolve_to_the_shards(folder: Path, spec: str) -> None:
    ds = get_modality("image").dataset(spec.format(f=folder), "train", device="cpu")
    assert isinstance(ds, ShardImageDataset) and len(ds) == N - round(0.2 * N)


def test_one_tar_and_held_out_shards(folder: Path, source) -> None:
    images, labels = source
    one = get_modality("image").dataset(str(folder / "train-000002.tar"), "train",
                                        device="cpu", test=str(folder / "train-000000.tar"))
    assert one.indices is None and len(one) == N - 2 * SIZE
    held = shards(folder / "train-000002.tar", "test", test=str(folder / "train-000000.tar"))
    assert len(held) == SIZE and torch.equal(held[3][0], images[3]) and held[3][1] == labels[3]


def test_missing_shards_are_one_line_errors(folder: Path) -> None:
    with pytest.raises(DataPathError, match=r"3 of the 4 expected .*/train-000003\.tar$"):
        shards(f"{folder}/train-{{000002..000005}}.tar", "train")
    with pytest.raises(DataPathError, match="missing"):
        get_modality("image").dataset(str(folder / "nope.tar"), "train")


def test_epoch_order_is_a_seeded_shard_local_permutation(folder: Path) -> None:
    full = shards(folder, "train", shuffle_window=10, test=str(folder / "train-000002.tar"))
    order = full.epoch_order(0, 0)
    assert sorted(order.tolist()) == list(range(len(full)))
    assert torch.equal(order, full.epoch_order(0, 0))
    assert not torch.equal(order, full.epoch_order(0, 1))
    windows = order.view(-1, 10) // SIZE  # each window of 10 stays inside one shard
    assert (windows == windows[:, :1]).all()
    split = shards(folder, "train", shuffle_window=10)
    assert sorted(split.epoch_order(3, 2).tolist()) == list(range(len(split)))


def test_unlabeled_json_names_and_grayscale_detection(tmp_path: Path, source) -> None:
    images, _ = source
    rgb = images[:4].expand(-1, 3, -1, -1).contiguous()
    named = [{"png": _png(x), "json": json.dumps({"label": n}).encode()}
             for x, n in zip(rgb, ["dog", "cat", "dog", "cat"], strict=True)]
    ds = shards(_write(tmp_path / "named", named), "train", test_fraction=0.5, image_size=32)
    assert ds.classes == ["cat", "dog"] and ds.encoder_kwargs["in_channels"] == 3
    assert [ds[i][1] for i in range(len(ds))] == [1, 0]
    plain = [{"png": _png(x)} for x in images[:6]]
    gray = shards(_write(tmp_path / "plain", plain), "train", image_size=32)
    assert gray.num_classes is None and gray[0][1] == -1
    assert gray.encoder_kwargs == {"in_channels": 1, "image_size": 32}


def test_sizes_follow_the_folder_rules_without_a_manifest(tmp_path: Path) -> None:
    pic = Image.new("RGB", (120, 90), (200, 30, 30))
    data = io.BytesIO()
    pic.save(data, format="JPEG")
    _write(tmp_path, [{"jpg": data.getvalue()}] * 5)
    (tmp_path / "anyssl-shards.json").unlink()  # img2dataset's shards have no manifest
    ds = shards(tmp_path / "train-000000.tar", "train", device="cpu")
    assert ds.encoder_kwargs["image_size"] == 64 and ds.image_size == 73  # the CPU default
    assert ds[0][0].shape == (3, 73, 73) and ds.eval_transform is not None


def test_a_corrupt_image_is_skipped_and_counted(folder: Path, tmp_path: Path, source) -> None:
    images, labels = source
    members = [{"png": _png(x), "cls": str(y).encode()}
               for x, y in zip(images, labels, strict=True)]
    members[7] = {"png": b"not a png", "cls": b"3"}
    bad = _write(tmp_path / "bad", members, {"channels": 1, "image_size": 32})
    ds = shards(bad, "train", test=str(folder / "train-000002.tar"))
    x, y = ds[7]  # the next sample of the shard stands in
    assert torch.equal(x, images[8]) and y == labels[8]
    assert ds.shards.skipped_count() == 1
    assert "skipped 1 samples" in ds.epoch_notes()[0] and ds.epoch_notes() == []
    strict = shards(bad, "train", on_error="raise", test=str(folder / "train-000002.tar"))
    with pytest.raises(ShardError, match=r"shard train-000000\.tar, key 000007"):
        strict[7]


def test_pickles_without_open_files(folder: Path) -> None:
    ds = shards(folder, "train")
    ds[0]
    copy = pickle.loads(pickle.dumps(ds))
    assert torch.equal(copy[5][0], ds[5][0]) and len(copy) == len(ds)


def test_decode_image_matches_the_folder_decoder(tmp_path: Path) -> None:
    from anyssl.modalities.image.datasets_folder import load_image

    rgba = Image.new("RGBA", (40, 30), (10, 200, 30, 128))
    rgba.save(tmp_path / "a.png")
    got = decode_image((tmp_path / "a.png").read_bytes(), 16)
    assert torch.equal(got, load_image(tmp_path / "a.png", 16))
    assert np.asarray(got).shape == (3, 16, 16)


def test_a_corrupt_sample_is_replaced_from_its_own_split(tmp_path: Path, source) -> None:
    images, labels = source
    members = [{"png": _png(x), "cls": str(y).encode()}
               for x, y in zip(images, labels, strict=True)]
    train = shards(_write(tmp_path / "ok", members, {"channels": 1, "image_size": 32}), "train")
    assert train.indices is not None  # a seeded fraction is held out
    first = int(train.indices[0])
    after = next(i for i in range(first + 1, SIZE) if i not in set(train.indices.tolist()))
    for i in range(first, after):  # the train samples before `after` (a test one) are corrupt
        members[i] = {"png": b"not a png", "cls": members[i]["cls"]}  # (labels kept: the split
    bad = shards(_write(tmp_path / "bad", members, {"channels": 1, "image_size": 32}), "train")
    assert torch.equal(bad.indices, train.indices)  # is stratified, so it stays the same)
    x, _ = bad[0]  # the replacement passes over `after` for the next train sample
    taken = next(i for i in train.indices.tolist() if i > after)
    assert torch.equal(x, images[taken])
    assert not any(torch.equal(x, images[i]) for i in range(N) if i not in train.indices)
