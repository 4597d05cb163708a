"""Image-text readers (CSV/TSV/JSONL/folder/npz) and image decoding on tiny generated files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from anyssl.modalities.image.datasets import DataPathError
from anyssl.modalities.image_text.images import (
    ImageReadError,
    decode_files,
    fit_images,
    images_from_array,
    load_image,
)
from anyssl.modalities.image_text.manifest import (
    ManifestError,
    read_csv,
    read_folder,
    read_jsonl,
    read_manifest,
    read_npz,
)


def _png(path: Path, color: int | tuple[int, ...] = (200, 10, 10), mode: str = "RGB",
         size: tuple[int, int] = (8, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)
    return path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---- CSV / TSV ---------------------------------------------------------------------------------
def test_csv_groups_rows_of_one_image_and_resolves_relative_paths(tmp_path: Path) -> None:
    _png(tmp_path / "sub" / "img" / "a.png")
    csv = _write(tmp_path / "sub" / "pairs.csv",
                 "filepath,title,kind\nimg/a.png,a red square,x\nimg/b.png,a blue box,y\n"
                 "img/a.png,  red tile ,x\n")
    m = read_csv(csv, label_key="kind")
    assert m.n_rows == 3 and m.skipped == []
    assert [r.image for r in m.records] == [tmp_path / "sub" / "img" / "a.png",
                                            tmp_path / "sub" / "img" / "b.png"]
    first = m.records[0]
    assert first.captions == ("a red square", "red tile") and first.label == "x"
    assert first.row == 2 and first.where == "pairs.csv line 2"


def test_tsv_separator_follows_extension_and_sep_overrides(tmp_path: Path) -> None:
    tsv = _write(tmp_path / "p.tsv", "image\tcaption\n/abs/a.png\ta, b and c\n")
    m = read_csv(tsv, image_key="image", caption_key="caption", allow_outside=True)
    assert m.records[0].captions == ("a, b and c",) and m.records[0].image == Path("/abs/a.png")
    semi = _write(tmp_path / "p.csv", "image;caption\na.png;x, y\n")
    assert read_csv(semi, "image", "caption", sep=";").records[0].captions == ("x, y",)
    tabbed = _write(tmp_path / "t.csv", "image\tcaption\na.png\tx, y\n")
    assert read_csv(tabbed, "image", "caption", sep="\\t").records[0].captions == ("x, y",)


def test_csv_missing_column_names_file_column_columns_and_flag(tmp_path: Path) -> None:
    csv = _write(tmp_path / "pairs.csv", "filepath,caption\na.png,hello\n")
    with pytest.raises(ValueError, match="caption_key") as err:
        read_csv(csv)
    msg = str(err.value)
    assert "pairs.csv" in msg and "'title'" in msg and "filepath, caption" in msg
    assert "\n" not in msg
    with pytest.raises(ManifestError, match="-d image_key=NAME"):
        read_csv(csv, image_key="path", caption_key="caption")


def test_csv_empty_caption_raises_naming_file_and_line_or_is_skipped(tmp_path: Path) -> None:
    csv = _write(tmp_path / "pairs.csv", "filepath,title\na.png,ok\nb.png,   \nc.png,\n")
    with pytest.raises(ManifestError, match=r"pairs\.csv line 3: empty caption.*on_error=skip"):
        read_csv(csv)
    m = read_csv(csv, on_error="skip")
    assert [r.captions for r in m.records] == [("ok",)]
    assert m.n_rows == 3 and m.skipped == ["pairs.csv line 3, empty caption",
                                           "pairs.csv line 4, empty caption"]
    with pytest.raises(ValueError, match="on_error"):
        read_csv(csv, on_error="ignore")


def test_conflicting_labels_of_one_image_raise(tmp_path: Path) -> None:
    csv = _write(tmp_path / "p.csv", "filepath,title,y\na.png,one,cat\na.png,two,dog\n")
    with pytest.raises(ManifestError, match=r"line 3.*'dog'.*'cat'"):
        read_csv(csv, label_key="y")


# ---- JSONL -------------------------------------------------------------------------------------
def test_jsonl_list_captions_grouping_and_bad_line(tmp_path: Path) -> None:
    rows = [{"filepath": "a.png", "title": ["one", "two"], "y": 3},
            {"filepath": "b.png", "title": "three"}, {"filepath": "a.png", "title": "four"}]
    good = _write(tmp_path / "m.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    m = read_jsonl(good, label_key="y")
    assert [r.captions for r in m.records] == [("one", "two", "four"), ("three",)]
    assert [r.label for r in m.records] == ["3", None] and m.n_rows == 3
    bad = _write(tmp_path / "bad.jsonl", json.dumps(rows[0]) + "\n{not json\n")
    with pytest.raises(ManifestError, match=r"bad\.jsonl line 2 is not valid JSON"):
        read_jsonl(bad)
    with pytest.raises(ManifestError, match=r"line 1 has no key 'caption'.*caption_key"):
        read_jsonl(good, caption_key="caption")


# ---- folder ------------------------------------------------------------------------------------
def test_folder_pairs_images_with_txt_lines(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    _write(tmp_path / "a.txt", "first caption\n\n  second  \n")
    _png(tmp_path / "deep" / "b.jpg")
    _write(tmp_path / "deep" / "b.txt", "b caption")
    _png(tmp_path / "c.png")  # no c.txt
    with pytest.raises(ManifestError, match=r"c\.png: no caption file c\.txt"):
        read_folder(tmp_path)
    m = read_folder(tmp_path, on_error="skip")
    assert [r.captions for r in m.records] == [("first caption", "second"), ("b caption",)]
    assert m.n_rows == 3 and len(m.skipped) == 1 and m.skipped[0].startswith("c.png")
    assert all(r.label is None for r in m.records)
    _write(tmp_path / "empty" / "x.txt", "a caption without an image")
    with pytest.raises(ManifestError, match="no images found"):
        read_folder(tmp_path / "empty")


# ---- npz ---------------------------------------------------------------------------------------
def test_npz_gray_images_multi_captions_and_int_labels(tmp_path: Path) -> None:
    f = tmp_path / "d.npz"
    np.savez(f, images=np.zeros((3, 5, 5), np.uint8), labels=np.array([1, -1, 0]),
             captions=np.array([["a", "b"], ["c", ""], ["", " "]]))
    with pytest.raises(ManifestError, match=r"d\.npz row 2: empty caption"):
        read_npz(f)
    m = read_npz(f, on_error="skip")
    assert [(r.image, r.captions, r.label) for r in m.records] == [
        (0, ("a", "b"), "1"), (1, ("c",), None)]
    assert m.images is not None and m.images.shape == (3, 5, 5)
    np.savez(f, pictures=np.zeros((2, 4, 4, 3), np.uint8), captions=np.array(["x", "y"]))
    with pytest.raises(ManifestError, match=r"no array 'images'.*pictures.*image_key"):
        read_npz(f)
    np.savez(f, images=np.zeros((2, 4, 4, 2), np.uint8), captions=np.array(["x", "y"]))
    with pytest.raises(ManifestError, match=r"\(N,H,W,4\)"):
        read_npz(f)


def test_read_manifest_dispatches_and_rejects_unknown(tmp_path: Path) -> None:
    csv = _write(tmp_path / "m.csv", "filepath,title\na.png,x\n")
    assert read_manifest(csv).records[0].captions == ("x",)
    with pytest.raises(DataPathError, match="does not exist"):
        read_manifest(tmp_path / "missing.csv")
    with pytest.raises(DataPathError, match=r"unknown data file type '\.parquet'"):
        read_manifest(_write(tmp_path / "m.parquet", ""))


# ---- images ------------------------------------------------------------------------------------
def test_alpha_is_composited_on_white_in_files_and_arrays(tmp_path: Path) -> None:
    im = Image.new("RGBA", (4, 4), (255, 0, 0, 128))
    im.putpixel((0, 0), (0, 0, 255, 0))  # fully transparent -> white
    im.save(tmp_path / "a.png")
    x = load_image(tmp_path / "a.png", 4)
    assert x.shape == (3, 4, 4) and x.dtype == torch.uint8
    assert x[:, 0, 0].tolist() == [255, 255, 255]
    a = 128 / 255  # out = a * rgb + (1 - a) * 255
    expected = [round(255 * a + 255 * (1 - a)), round(255 * (1 - a)), round(255 * (1 - a))]
    assert x[:, 1, 1].tolist() == expected
    arr = images_from_array(np.asarray(im)[None], 4)
    assert (arr[0].int() - x.int()).abs().max() <= 1
    la = Image.new("LA", (2, 2), (0, 0))
    la.save(tmp_path / "la.png")
    assert load_image(tmp_path / "la.png", 2).eq(255).all()


def test_gray_and_palette_become_rgb(tmp_path: Path) -> None:
    x = load_image(_png(tmp_path / "g.png", 77, "L"), 8)
    assert x.shape == (3, 8, 8) and x.eq(77).all()
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    pal.save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png", 8)[:, 3, 3].tolist() == [10, 20, 30]
    gray = images_from_array(np.full((2, 6, 6), 9, np.uint8), 6)
    assert gray.shape == (2, 3, 6, 6) and gray.eq(9).all()


def test_fit_images_center_crops_the_longer_side() -> None:
    x = torch.arange(8 * 16, dtype=torch.uint8).view(1, 1, 8, 16)
    assert torch.equal(fit_images(x, 8), x[..., 4:12])
    flat = torch.full((2, 3, 30, 20), 40, dtype=torch.uint8)
    out = fit_images(flat, 10)
    assert out.shape == (2, 3, 10, 10) and out.eq(40).all()
    with pytest.raises(ValueError, match="image_size"):
        fit_images(flat, 0)


def test_unreadable_files_raise_with_path_and_row_or_are_skipped(tmp_path: Path) -> None:
    good = _png(tmp_path / "ok.png", size=(16, 8))
    (tmp_path / "zero.png").write_bytes(b"")
    (tmp_path / "junk.png").write_bytes(b"\x89PNG not really an image" * 4)
    half = good.read_bytes()
    (tmp_path / "cut.png").write_bytes(half[: len(half) // 2])
    for name in ("zero.png", "junk.png", "cut.png", "missing.png"):
        with pytest.raises(ImageReadError, match=f"m.csv line 5: .*{name}") as err:
            load_image(tmp_path / name, 8, "m.csv line 5")
        assert err.value.path == tmp_path / name and err.value.where == "m.csv line 5"
    files = [tmp_path / n for n in ("zero.png", "ok.png", "missing.png", "cut.png")]
    with pytest.raises(ImageReadError, match="row 0"):
        decode_files(files, 8, [f"row {i}" for i in range(4)])
    images, kept, errors = decode_files(files, 8, [f"row {i}" for i in range(4)], skip=True)
    assert images.shape == (1, 3, 8, 8) and kept == [1]
    assert [e.where for e in errors] == ["row 0", "row 2", "row 3"]
