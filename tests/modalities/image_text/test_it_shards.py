"""The image-text ``shards`` dataset: a manifest written as shards by ``anyssl shards`` reads back
as the manifest dataset reads it (pixels, captions, token ids, labels, class names);
img2dataset-style shards; captions missing; a given tokenizer."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.utils.data import default_collate

from anyssl.cli.shards import Split, open_source, write_shards
from anyssl.modalities.image.datasets import DataPathError
from anyssl.modalities.image_text.shards import ShardPairDataset, captions_of, shards
from anyssl.modality import get_modality
from anyssl.shards import ShardWriter

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 220)}
N = 15


def _pictures(folder: Path) -> Path:
    """``N`` 12 x 16 PNGs and ``pairs.jsonl``: two captions each, a colour label."""
    with open(folder / "pairs.jsonl", "w") as f:
        for i in range(N):
            colour = list(COLOURS)[i % 3]
            Image.new("RGB", (16, 12), COLOURS[colour]).save(folder / f"im{i}.png")
            caps = [f"a {colour} tile number {i}", f"{colour} {'dark' if i % 2 else 'light'}"]
            f.write(json.dumps({"filepath": f"im{i}.png", "title": caps, "label": colour}) + "\n")
    return folder / "pairs.jsonl"


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The manifest and a folder with its train and test splits as PNG shards of 4."""
    folder = tmp_path_factory.mktemp("pairs")
    manifest = _pictures(folder)
    for split in (Split.train, Split.test):
        source = open_source("image-text", str(manifest), split, 12, {"label_key": "label"})
        write_shards(source, folder / split.value, 4, "png", 95)
    return manifest, folder


def test_shards_read_back_as_the_manifest_dataset(written: tuple[Path, Path]) -> None:
    manifest, folder = written
    mod = get_modality("image-text")
    for split in ("train", "test"):
        ref = mod.dataset(str(manifest), split, label_key="label", image_size=12)
        got = mod.dataset(str(folder / "train"), split, test=str(folder / "test"))
        assert isinstance(got, ShardPairDataset) and got.file_backed and len(got) == len(ref)
        assert got.captions == ref.captions and got.class_names == ref.class_names
        assert torch.equal(got.text, ref.text) and torch.equal(got.targets, ref.targets)
        assert got.encoder_kwargs == ref.encoder_kwargs
        assert got.tokenizer.to_str() == ref.tokenizer.to_str()
        for i in range(len(ref)):
            (a, la), (b, lb) = ref[i], got[i]
            assert torch.equal(a["image"], b["image"]) and torch.equal(a["text"], b["text"])
            assert la == lb
        batch = default_collate([got[0], got[1]])
        assert batch[0]["text"].shape == (2, 2, 77)
        assert torch.equal(got.load_images([1, 0]), torch.stack([ref[1][0]["image"],
                                                                  ref[0][0]["image"]]))


def test_the_fraction_split_and_epoch_order(written: tuple[Path, Path]) -> None:
    _, folder = written
    train = shards(f"{folder}/train/train-{{000000..000002}}.tar", "train", shuffle_window=3)
    test = shards(f"{folder}/train/train-{{000000..000002}}.tar", "test")
    assert len(train) + len(test) == 12 and not set(train.rows) & set(test.rows)
    assert sorted(train.epoch_order(0, 1).tolist()) == list(range(len(train)))


def _img2dataset(folder: Path, members: list[dict[str, bytes]]) -> Path:
    """Shards as img2dataset writes them: no anyssl manifest."""
    with ShardWriter(folder, 100, "part") as w:
        for i, m in enumerate(members):
            w.write(i, f"{i:09d}", m)
    (folder / "anyssl-shards.json").unlink()
    return folder / "part-000000.tar"


def _jpg(colour: tuple[int, int, int]) -> bytes:
    import io

    out = io.BytesIO()
    Image.new("RGB", (80, 70), colour).save(out, format="JPEG")
    return out.getvalue()


def test_img2dataset_style_shards(tmp_path: Path) -> None:
    members = [{"jpg": _jpg(c), "txt": f"a {n} square".encode(),
                "json": json.dumps({"caption": f"a {n} square", "url": "x"}).encode()}
               for n, c in COLOURS.items()] * 4
    members[5] = {"jpg": _jpg((0, 0, 0)), "json": b"{}"}  # no caption: left out, counted
    ds = shards(_img2dataset(tmp_path, members), "train", test_fraction=0.25)
    assert ds.num_classes is None and int(ds.targets.max()) == -1
    assert ds.encoder_kwargs["image_size"] == 64 and ds[0][0]["image"].shape == (3, 64, 64)
    assert any("skipped 1 samples without a readable caption" in n for n in ds.notes)
    assert 5 not in ds.rows
    with pytest.raises(DataPathError, match=r"shard part-000000\.tar, key 000000005: no caption"):
        shards(tmp_path / "part-000000.tar", "train", on_error="raise")


def test_captions_from_json_or_txt_lines() -> None:
    assert captions_of({"json": b'{"captions": ["a", " b "]}', "txt": b"c"}) == ("a", "b")
    assert captions_of({"json": b'{"title": "t"}'}) == ("t",)
    assert captions_of({"txt": b"one\n\ntwo\n"}) == ("one", "two")
    with pytest.raises(ValueError, match="no caption"):
        captions_of({"json": b'{"caption": "  "}'})


def test_a_given_tokenizer_file(written: tuple[Path, Path], tmp_path: Path) -> None:
    _, folder = written
    base = shards(folder / "train", "train", test=str(folder / "test"))
    base.tokenizer.save(tmp_path / "tok.json")
    again = shards(folder / "train", "train", test=str(folder / "test"),
                   tokenizer=str(tmp_path / "tok.json"))
    assert torch.equal(again.text, base.text)


def test_csv_manifest_without_labels_all_splits(tmp_path: Path) -> None:
    for i in range(5):
        Image.new("RGB", (8, 8), (40 * i, 2, 3)).save(tmp_path / f"a{i}.png")
    with open(tmp_path / "pairs.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filepath", "title"])
        writer.writerows([[f"a{i % 5}.png", f"caption {i}"] for i in range(10)])
    source = open_source("image-text", str(tmp_path / "pairs.csv"), Split.all, None, {})
    assert source.meta["labeled"] is False and source.meta["image_size"] == 64
    manifest = write_shards(source, tmp_path / "out", 3, "png", 95)
    assert manifest["total"] == 5 and manifest["shards"][0]["name"] == "all-000000.tar"
    ds = shards(tmp_path / "out", "train", test=str(tmp_path / "out"))
    assert sorted(map(tuple, ds.captions)) == [(f"caption {i}", f"caption {i + 5}")
                                               for i in range(5)]


def test_a_split_past_the_limit_reads_its_captions_on_access(written: tuple[Path, Path],
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    import anyssl.modalities.image_text.shards as it_shards

    _, folder = written
    for split in ("train", "test"):
        held = shards(folder / "train", split, test=str(folder / "test"))
        lazy = shards(folder / "train", split, test=str(folder / "test"), text_in_memory_max=2)
        assert not held.lazy_text and lazy.lazy_text and lazy.captions is None
        assert lazy.text.numel() == 0 and lazy.text.shape[1:] == held.text.shape[1:]
        assert "tokenized on access" in lazy.notes[0]
        assert lazy.tokenizer.to_str() == held.tokenizer.to_str()
        assert torch.equal(lazy.targets, held.targets) and lazy.class_names == held.class_names
        for i in range(len(held)):
            (a, la), (b, lb) = held[i], lazy[i]
            assert torch.equal(a["image"], b["image"]) and torch.equal(a["text"], b["text"])
            assert la == lb
    # a tokenizer trained on a seeded sample of the captions when the split is large
    monkeypatch.setattr(it_shards, "TOKENIZER_SAMPLE", 4)
    one = shards(folder / "train", "train", test=str(folder / "test"), text_in_memory_max=2)
    two = shards(folder / "train", "train", test=str(folder / "test"), text_in_memory_max=2)
    assert one.tokenizer.to_str() == two.tokenizer.to_str() != held.tokenizer.to_str()
    strict = shards(folder / "train", "train", test=str(folder / "test"), text_in_memory_max=2,
                    context_length=4, truncate=False)
    with pytest.raises(ValueError, match="more tokens than the context holds"):
        strict[0]


def test_a_negative_text_limit_is_refused(written: tuple[Path, Path]) -> None:
    _, folder = written
    with pytest.raises(ValueError, match="text_in_memory_max must be >= 0"):
        shards(folder / "train", "train", test=str(folder / "test"), text_in_memory_max=-1)
