"""Image-text datasets: the shipped ``openmoji`` and ``path`` (CSV / JSONL / folder / npz)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import default_collate

from anyssl.modalities.image.datasets import DataPathError
from anyssl.modalities.image_text.datasets import PairDataset, path
from anyssl.modalities.image_text.images import ImageReadError
from anyssl.modalities.image_text.openmoji import (
    OPENMOJI_CLASS_NAMES,
    OPENMOJI_EPOCHS,
    OPENMOJI_FILE,
    openmoji,
    pretty_group,
)
from anyssl.modalities.text.tokenizer import END, PAD, START, train_tokenizer
from anyssl.registry import DATASETS

WORDS = ("red", "green", "blue", "small", "large", "round", "square", "bright", "dark", "soft")


@pytest.fixture(scope="module")
def moji() -> dict[str, PairDataset]:
    return {"train": openmoji("train"), "test": openmoji("test")}


def _npz() -> dict[str, np.ndarray]:
    with np.load(OPENMOJI_FILE) as d:
        return {k: d[k] for k in ("images", "captions", "tags", "groups")}


def _pairs(folder: Path, captions: dict[int, str] | None = None, n: int = 10) -> Path:
    """``n`` colored 8x8 PNGs and ``pairs.csv`` (row i on line i + 2)."""
    lines = ["filepath,title"]
    for i in range(n):
        Image.new("RGB", (8, 8), (20 * i, 100, 200 - 10 * i)).save(folder / f"im{i}.png")
        text = (captions or {}).get(i, f"a {WORDS[i % 10]} {WORDS[(i + 3) % 10]} tile")
        lines.append(f"im{i}.png,{text}")
    (folder / "pairs.csv").write_text("\n".join(lines) + "\n")
    return folder / "pairs.csv"


# ---- openmoji ----------------------------------------------------------------------------------
def test_openmoji_split_is_a_fixed_stratified_80_20(moji: dict[str, PairDataset]) -> None:
    train, test = moji["train"], moji["test"]
    groups = _npz()["groups"]
    assert len(groups) == 2134 and len(train) + len(test) == 2134
    assert set(train.rows).isdisjoint(test.rows)
    assert sorted(train.rows + test.rows) == list(range(2134))
    _, counts = np.unique(groups, return_counts=True)
    assert len(test) == sum(round(0.2 * c) for c in counts)
    assert openmoji("train", seed=7).rows == train.rows  # the training seed does not move it
    assert train.num_classes == test.num_classes == 12
    assert train.class_names == [OPENMOJI_CLASS_NAMES[g] for g in sorted(set(groups))]
    assert len(set(train.class_names)) == 12
    assert pretty_group("smileys-emotion") == "smileys and emotion"
    assert pretty_group("extras-openmoji") == "openmoji extras"
    assert set(test.targets.tolist()) == set(range(12))
    assert train.suggested_epochs == OPENMOJI_EPOCHS and "openmoji" in DATASETS.names("image-text")


def test_openmoji_items_match_the_npz_rows(moji: dict[str, PairDataset]) -> None:
    test, raw = moji["test"], _npz()
    assert test.encoder_kwargs == {"in_channels": 3, "image_size": 64, "context_length": 32,
                                   "vocab_size": test.tokenizer.vocab_size}
    for i in (0, 5, len(test) - 1):
        x, y = test[i]
        row = test.rows[i]
        assert x["image"].dtype == torch.uint8 and x["text"].dtype == torch.long
        assert x["text"].shape == (2, 32) and y == int(test.targets[i])  # name, tags
        assert torch.equal(x["image"], torch.from_numpy(raw["images"][row]).permute(2, 0, 1))
        tags = [str(raw["tags"][row])] if str(raw["tags"][row]).strip() else []  # some have none
        assert test.captions[i] == [str(raw["captions"][row]), *tags]
        assert bool((x["text"][1] != 0).any()) == bool(tags)  # an empty second row: no tags
        assert test.tokenizer.decode(x["text"][0]) == " ".join(test.captions[i][0].lower().split())
        assert test.class_names is not None
        assert test.class_names[y] == OPENMOJI_CLASS_NAMES[str(raw["groups"][row])]
    batch, labels = default_collate([test[i] for i in range(4)])
    assert batch["image"].shape == (4, 3, 64, 64) and batch["text"].shape == (4, 2, 32)
    assert labels.dtype == torch.long and test.targets.dtype == torch.long


def test_openmoji_tokenizer_is_the_train_one_and_round_trips(
        moji: dict[str, PairDataset], tmp_path: Path) -> None:
    train, test = moji["train"], moji["test"]
    assert train.tokenizer.to_str() == test.tokenizer.to_str()
    fresh = train_tokenizer([c for caps in train.captions for c in caps])  # no cache
    assert fresh.to_str() == train.tokenizer.to_str()
    state = train.data_state()
    assert set(state) == {"tokenizer"} and state["tokenizer"].startswith("{")
    again = openmoji("test", tokenizer=state["tokenizer"])
    assert torch.equal(again.text, test.text)
    train.tokenizer.save(tmp_path / "tok.json")
    assert torch.equal(openmoji("test", tokenizer=str(tmp_path / "tok.json")).text, test.text)
    assert openmoji("test", tokenizer=train.tokenizer).tokenizer is train.tokenizer
    ids = test.tokenize(["an emoji of flags.", "cat"])
    assert ids.shape == (2, 32) and ids.dtype == torch.long
    assert ids[:, 0].eq(START).all() and ids.eq(END).sum(1).eq(1).all()
    with pytest.raises(DataPathError, match="tokenizer file"):
        openmoji("test", tokenizer=str(tmp_path / "none.json"))
    with pytest.raises(ValueError, match="tokenizer must be"):
        openmoji("test", tokenizer=5)


def test_openmoji_name_and_tags_gives_two_captions() -> None:
    ds = openmoji("test", captions="name+tags")
    assert ds.text.shape[1] == 2
    two = torch.tensor([len(c) == 2 for c in ds.captions])
    assert two.any() and not two.all()  # some emoji have no tags
    assert ds.text[~two][:, 1].eq(PAD).all() and ds.text[two][:, 1, 0].eq(START).all()
    n_long = sum(n > 30 for caps in ds.captions for n in ds.tokenizer.n_tokens(caps))
    assert n_long > 0 and ds.notes == [f"{n_long} captions longer than the context (32 tokens) "
                                       "were truncated"]
    rows, owner = ds.split_rows(ds.text[:8])
    assert rows.shape == (int(two[:8].sum()) + 8, 32)
    assert owner.tolist() == [i for i in range(8) for _ in range(len(ds.captions[i]))]
    with pytest.raises(ValueError, match="captions must be one of"):
        openmoji(captions="tags")
    with pytest.raises(ValueError, match="unknown split"):
        openmoji("dev")


# ---- path --------------------------------------------------------------------------------------
def test_path_bad_images_raise_with_row_or_are_skipped_and_counted(tmp_path: Path) -> None:
    csv = _pairs(tmp_path)
    (tmp_path / "im1.png").write_bytes(b"")  # line 3
    (tmp_path / "im6.png").unlink()  # line 8
    parts = {s: path(csv, s, on_error="skip") for s in ("train", "test")}
    assert len(parts["train"]) + len(parts["test"]) == 8
    counts = {s: int(d.notes[0].split()[1]) if d.notes else 0 for s, d in parts.items()}
    assert sum(counts.values()) == 2
    for s, d in parts.items():
        assert 3 not in d.rows and 8 not in d.rows
        if counts[s]:
            assert d.notes[0].startswith(f"skipped {counts[s]} of {len(d) + counts[s]} images")
            with pytest.raises(ImageReadError, match=r"pairs\.csv line [38]: .*on_error=skip"):
                path(csv, s)
        else:
            assert len(path(csv, s)) == len(d)


def test_path_empty_caption_is_an_error_naming_file_and_row(tmp_path: Path) -> None:
    csv = _pairs(tmp_path, {2: "  "})
    with pytest.raises(ValueError, match=r"pairs\.csv line 4: empty caption"):
        path(csv)
    ds = path(csv, on_error="skip")
    assert ds.notes == ["skipped 1 of 10 rows (first: pairs.csv line 4, empty caption)"]
    assert 4 not in ds.rows


def test_path_long_caption_is_truncated_and_noted_or_an_error(tmp_path: Path) -> None:
    csv = _pairs(tmp_path, {5: " ".join(WORDS * 2)})  # line 7
    parts = [path(csv, s, context_length=8) for s in ("train", "test")]
    holder = next(d for d in parts if 7 in d.rows)
    assert holder.notes == ["1 captions longer than the context (8 tokens) were truncated"]
    row = holder.text[holder.rows.index(7), 0]
    assert row[-1] == END and row.ne(PAD).all()
    assert [d.notes for d in parts if d is not holder] == [[]]
    split = "train" if holder is parts[0] else "test"
    with pytest.raises(ValueError, match=r"pairs\.csv line 7: a caption has \d+ tokens"):
        path(csv, split, context_length=8, truncate=False)


def test_path_folder_converts_alpha_and_gray(tmp_path: Path) -> None:
    kinds: list[tuple[str, int | tuple[int, ...]]] = [
        ("RGBA", (9, 9, 9, 0)), ("L", 60), ("P", 0), ("RGB", (1, 2, 3)), ("LA", (30, 255))]
    for i, (mode, color) in enumerate(kinds):
        Image.new(mode, (16, 8), color).save(tmp_path / f"{i}.png")
        (tmp_path / f"{i}.txt").write_text(f"picture number {i}\nanother line {i}\n")
    items = {}
    for s in ("train", "test"):
        d = path(tmp_path, s, image_size=8)
        assert d.num_classes is None and d.targets.eq(-1).all()
        items.update({r: d[i][0] for i, r in enumerate(d.rows)})
    assert sorted(items) == list(range(5)) and items[0]["image"].shape == (3, 8, 8)
    assert items[0]["image"].eq(255).all()  # transparent -> white
    assert items[1]["image"].eq(60).all() and items[4]["image"].eq(30).all()
    assert items[3]["image"][:, 0, 0].tolist() == [1, 2, 3]
    assert items[2]["text"].shape[0] == 2


def test_path_npz_and_jsonl_labels_are_shared_by_both_splits(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = np.array(["dog", "cat"] * 6)
    np.savez(tmp_path / "d.npz", images=rng.integers(0, 255, (12, 10, 10, 4), dtype=np.uint8),
             labels=labels, captions=np.array([[f"a {w} {i}", ""] for i, w in enumerate(labels)]))
    tr, te = path(tmp_path / "d.npz", image_size=8), path(tmp_path / "d.npz", "test", image_size=8)
    assert tr.class_names == te.class_names == ["cat", "dog"] and tr.num_classes == 2
    assert len(tr) + len(te) == 12 and set(te.targets.tolist()) == {0, 1}
    assert tr[0][0]["text"].shape == (1, 77) and tr[0][0]["image"].shape == (3, 8, 8)
    with (tmp_path / "m.jsonl").open("w") as f:
        for i in range(10):
            f.write(json.dumps({"img": f"x/{i}.png", "txt": [f"shape {i}"], "k": i % 3}) + "\n")
    (tmp_path / "x").mkdir()
    for i in range(10):
        Image.new("RGB", (8, 8), (i, i, i)).save(tmp_path / "x" / f"{i}.png")
    js = path(tmp_path / "m.jsonl", image_key="img", caption_key="txt", label_key="k")
    assert js.class_names == ["0", "1", "2"] and js.prompt_templates[0] == "a photo of a {}."
    assert all(js.captions[i] == [f"shape {r - 1}"] for i, r in enumerate(js.rows))
