"""Image-text manifests decoded on access (``-d cache=none``, or ``auto`` above the limit): the
same items as the in-memory path, the ``auto`` rule, bad files, CLIP through the CLI with loader
workers, and the same evaluation numbers as the in-memory path for one checkpoint."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, default_collate
from typer.testing import CliRunner

from anyssl.api import evaluate_checkpoint
from anyssl.cli.app import app
from anyssl.modalities.image.datasets import DataPathError
from anyssl.modalities.image_text.datasets import FilePairDataset, PairDataset, path
from anyssl.modalities.image_text.images import ImageReadError
from anyssl.modalities.image_text.lazy import decoded_bytes, keep_in_memory

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 220),
           "gold": (230, 220, 30)}
N, SIZE = 24, 16


def _picture(i: int) -> Image.Image:
    """A coloured square on noise; odd sizes and modes so resizing, alpha and gray all run."""
    colour = list(COLOURS.values())[i % 4]
    rng = np.random.default_rng(i)
    w, h = 20 + 3 * i, 16 + 2 * (i % 5)
    arr = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
    arr[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = colour
    im = Image.fromarray(arr)
    return im.convert(("RGB", "RGBA", "L", "RGB")[i % 4])


def _manifest(folder: Path, n: int = N) -> Path:
    """``n`` pictures (PNG, and JPEG for every third) with a caption and a colour label."""
    lines = ["filepath,title,label"]
    for i in range(n):
        name = f"im{i}.jpg" if i % 3 == 0 else f"im{i}.png"
        im = _picture(i)
        (im.convert("RGB") if name.endswith(".jpg") else im).save(folder / name)
        colour = list(COLOURS)[i % 4]
        lines.append(f"{name},a {colour} square number {i},{colour}")
    (folder / "pairs.csv").write_text("\n".join(lines) + "\n")
    return folder / "pairs.csv"


def _sets(data: Path, cache: str, **kw: object) -> list[PairDataset]:
    return [path(data, split=s, label_key="label", image_size=SIZE, cache=cache, **kw)
            for s in ("train", "test")]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _manifest(tmp_path_factory.mktemp("pairs"))


def test_lazy_and_eager_give_identical_items(data: Path) -> None:
    for eager, lazy in zip(_sets(data, "memory"), _sets(data, "none"), strict=True):
        assert type(eager) is PairDataset and isinstance(lazy, FilePairDataset)
        assert lazy.file_backed and not getattr(eager, "file_backed", False)
        assert len(lazy) == len(eager) and lazy.rows == eager.rows
        assert lazy.encoder_kwargs == eager.encoder_kwargs
        assert torch.equal(lazy.targets, eager.targets) and torch.equal(lazy.text, eager.text)
        for i in range(len(eager)):
            (xe, ye), (xl, yl) = eager[i], lazy[i]
            assert ye == yl and torch.equal(xe["text"], xl["text"])
            assert torch.equal(xe["image"], xl["image"]), i
        picks = [3, 0, len(eager) - 1]
        assert torch.equal(lazy.load_images(picks), eager.load_images(picks))
        batch_l = next(iter(DataLoader(lazy, batch_size=5, collate_fn=default_collate)))
        batch_e = next(iter(DataLoader(eager, batch_size=5, collate_fn=default_collate)))
        assert torch.equal(batch_l[0]["image"], batch_e[0]["image"])  # __getitems__, threads


def test_auto_decodes_up_front_below_the_limit_and_on_access_above(data: Path) -> None:
    n_all = N  # the rule counts the whole manifest (both splits)
    at_limit = decoded_bytes(n_all, SIZE) / 2**30
    assert all(type(ds) is PairDataset for ds in _sets(data, "auto", cache_limit_gib=at_limit))
    above = _sets(data, "auto", cache_limit_gib=at_limit * 0.99)
    assert all(isinstance(ds, FilePairDataset) for ds in above)
    assert any("decoded on access" in n and "cache_limit_gib" in n for n in above[0].notes)
    assert not any("decoded on access" in n for n in _sets(data, "auto")[0].notes)  # default
    assert keep_in_memory("auto", 10**6, 224) is False  # 140 GiB
    assert keep_in_memory("auto", 10**4, 64) is True and keep_in_memory("memory", 10**9, 224)
    with pytest.raises(ValueError, match="cache must be one of auto, memory, none"):
        path(data, cache="lazy")


def test_an_npz_stays_in_memory_whatever_the_cache(tmp_path: Path) -> None:
    file = tmp_path / "pairs.npz"
    images = np.stack([np.asarray(_picture(i).convert("RGB").resize((20, 20))) for i in range(10)])
    np.savez(file, images=images, captions=np.array([f"picture {i}" for i in range(10)]))
    assert type(path(file, image_size=SIZE, cache="none")) is PairDataset


def _with_bad_file(folder: Path, truncate: bool) -> tuple[Path, Path]:
    """The manifest with im1 damaged: cut in half (its header reads, its pixels do not) or
    replaced by text (not an image at all); returns (manifest, that file)."""
    data = _manifest(folder, 12)
    bad = folder / "im1.png"
    if truncate:
        bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    else:
        bad.write_text("this is text, not a PNG")
    return data, bad


def _first_error(data: Path, cache: str) -> str:
    """The message of the split that holds the bad file."""
    messages = []
    for split in ("train", "test"):
        try:
            path(data, split=split, cache=cache, test_fraction=0.25)
        except ImageReadError as err:
            messages.append(str(err))
    assert len(messages) == 1
    return messages[0]


def test_a_bad_header_fails_up_front_with_the_in_memory_message(tmp_path: Path) -> None:
    data, _ = _with_bad_file(tmp_path, truncate=False)
    message = _first_error(data, "none")
    assert message == _first_error(data, "memory")
    assert "pairs.csv line 3" in message and "im1.png" in message and "on_error=skip" in message
    kept = {c: [path(data, split=s, cache=c, on_error="skip", test_fraction=0.25)
                for s in ("train", "test")] for c in ("memory", "none")}
    assert [len(d) for d in kept["none"]] == [len(d) for d in kept["memory"]]
    skipped = [n for d in kept["none"] for n in d.notes if n.startswith("skipped")]
    assert skipped == [n for d in kept["memory"] for n in d.notes if n.startswith("skipped")]
    assert len(skipped) == 1 and re.fullmatch(
        r"skipped 1 of \d+ images that are missing or unreadable \(first: pairs.csv line 3, "
        r"im1.png\)", skipped[0])


def _lazy(data: Path, split: str, **kw: object) -> FilePairDataset:
    ds = path(data, split=split, cache="none", test_fraction=0.25, **kw)
    assert isinstance(ds, FilePairDataset)
    return ds


def _files(ds: FilePairDataset) -> list[Path]:
    return [ds.file(i) for i in range(len(ds))]


def test_a_file_damaged_inside_raises_or_is_replaced_by_the_next_pair(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data, truncated = _with_bad_file(tmp_path, truncate=True)
    split = next(s for s in ("train", "test") if truncated in _files(_lazy(data, s)))
    strict = _lazy(data, split)
    bad = _files(strict).index(truncated)
    with pytest.raises(DataPathError, match=r"im1\.png.*on_error=skip"):
        strict[bad]
    lenient = _lazy(data, split, on_error="skip")
    with caplog.at_level(logging.WARNING):
        x, y = lenient[bad]
    nxt = lenient[(bad + 1) % len(lenient)]  # the whole next pair: image, captions, label
    assert torch.equal(x["image"], nxt[0]["image"]) and torch.equal(x["text"], nxt[0]["text"])
    assert y == nxt[1] and "skipped an image pair" in caplog.text
    with pytest.raises(ImageReadError, match=r"im1\.png"):  # the in-memory path: up front
        path(data, split=split, cache="memory", test_fraction=0.25)


# ---- through the CLI and evaluation ----------------------------------------------------------
SMALL = ["--modality", "image-text", "--method", "clip", "-d", f"image_size={SIZE}",
         "-d", "label_key=label", "-e", "image_width=8", "-e", "text_width=16",
         "--batch-size", "8", "--seed", "0"]


@pytest.fixture(scope="module")
def lazy_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """CLIP trained on the manifest decoded on access, with two loader workers."""
    out = tmp_path_factory.mktemp("runs") / "clip"
    result = CliRunner().invoke(app, ["train", *SMALL, "--data", str(data), "-d", "cache=none",
                                      "--num-workers", "2", "--max-steps", "2", "--eval-protocol",
                                      "zeroshot", "--eval-protocol", "retrieval",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_clip_trains_from_files_decoded_in_workers(lazy_run: tuple[Path, str]) -> None:
    out, text = lazy_run
    assert "images are decoded on access in the loader workers (-d cache=none" in text
    assert "2 worker process(es)" in text
    assert (out / "last.pt").is_file() and (out / "eval.json").is_file()


def test_evaluation_on_files_equals_evaluation_in_memory(lazy_run: tuple[Path, str]) -> None:
    checkpoint = lazy_run[0] / "last.pt"
    protocols = ("zeroshot", "retrieval")
    lazy = evaluate_checkpoint(checkpoint, protocols, data_args={"cache": "none"})
    eager = evaluate_checkpoint(checkpoint, protocols, data_args={"cache": "memory"})
    assert lazy == eager
    assert set(lazy["pretrained"]) == set(protocols)
