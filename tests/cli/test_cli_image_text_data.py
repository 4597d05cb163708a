"""Bad image-text data on the CLI: missing and unreadable images, empty and over-long captions,
a missing column (one line naming file and row, exit code 2), skip-and-count, and the documented
handling of alpha and grayscale images."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from image_text_helpers import (
    LABELED,
    N_IMAGES,
    SIZE,
    copy,
    line,
    make_pictures,
    one_line_error,
    train,
    write_csv,
)
from PIL import Image

from anyssl.registry import DATASETS


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    """40 PNGs on disk (made once per module) and their manifest rows."""
    return make_pictures(tmp_path_factory.mktemp("pictures"))


# ---- bad input --------------------------------------------------------------------------------
def test_a_missing_image_names_the_file_and_row(pictures: list[dict[str, str]], tmp_path: Path):
    rows = copy(pictures)
    rows[6]["filepath"] = str(tmp_path / "nope.png")
    code, text = train(write_csv(tmp_path / "pairs.csv", rows), tmp_path / "run", *LABELED)
    one_line_error(code, text, line(6), "nope.png", "does not exist", "on_error=skip")


def test_an_unreadable_image_names_the_file_and_row(pictures: list[dict[str, str]],
                                                    tmp_path: Path):
    fake = tmp_path / "fake.png"
    fake.write_text("this is text, not a PNG")
    rows = copy(pictures)
    rows[9]["filepath"] = str(fake)
    code, text = train(write_csv(tmp_path / "pairs.csv", rows), tmp_path / "run", *LABELED)
    one_line_error(code, text, line(9), "fake.png", "cannot read image", "on_error=skip")


def _with_bad_images(pictures: list[dict[str, str]], tmp_path: Path) -> Path:
    fake = tmp_path / "fake.png"
    fake.write_text("this is text, not a PNG")
    rows = copy(pictures)
    rows[6]["filepath"], rows[9]["filepath"] = str(tmp_path / "nope.png"), str(fake)
    return write_csv(tmp_path / "pairs.csv", rows)


def test_on_error_skip_leaves_bad_images_out_and_trains(pictures: list[dict[str, str]],
                                                        tmp_path: Path):
    data = _with_bad_images(pictures, tmp_path)
    code, text = train(data, tmp_path / "run", *LABELED, "-d", "on_error=skip",
                        "--eval-protocol", "retrieval")
    assert code == 0, text
    sets = [DATASETS.build("path", "image-text", root=data, allow_outside=True,
                           split=s, label_key="label",
                           image_size=SIZE, on_error="skip") for s in ("train", "test")]
    assert sum(len(ds) for ds in sets) == N_IMAGES - 2
    notes = [n for ds in sets for n in ds.notes]  # one per split holding a bad file
    counts = [re.match(r"skipped (\d+) of \d+ images that are missing or unreadable", n)
              for n in notes]
    assert sum(int(m.group(1)) for m in counts if m) == 2 and all(counts), notes
    assert f"(first: {line(6)}, nope.png)" in " ".join(notes)


def test_train_prints_the_datasets_skip_note(pictures: list[dict[str, str]], tmp_path: Path):
    data = _with_bad_images(pictures, tmp_path)
    code, text = train(data, tmp_path / "run", *LABELED, "-d", "on_error=skip", "--no-eval")
    assert code == 0, text
    assert re.search(r"note: skipped 1 of \d+ images that are missing or unreadable", text)


def test_an_empty_caption_names_the_file_and_row(pictures: list[dict[str, str]], tmp_path: Path):
    rows = copy(pictures)
    rows[3]["title"] = "   "
    code, text = train(write_csv(tmp_path / "pairs.csv", rows), tmp_path / "run", *LABELED)
    one_line_error(code, text, line(3), "empty caption")


def _with_a_long_caption(pictures: list[dict[str, str]], tmp_path: Path) -> Path:
    rows = copy(pictures)
    rows[2]["title"] = "a blue square picture drawn with care on a quiet grey sunday afternoon"
    return write_csv(tmp_path / "pairs.csv", rows)


def test_a_caption_longer_than_the_context_is_an_error_with_truncate_false(
        pictures: list[dict[str, str]], tmp_path: Path):
    data = _with_a_long_caption(pictures, tmp_path)
    code, text = train(data, tmp_path / "run", *LABELED, "-d", "context_length=8",
                        "-d", "truncate=false")
    one_line_error(code, text, line(2), "tokens", "context", "truncate=false")


def test_a_caption_longer_than_the_context_is_truncated_by_default(
        pictures: list[dict[str, str]], tmp_path: Path):
    data = _with_a_long_caption(pictures, tmp_path)
    code, text = train(data, tmp_path / "run", *LABELED, "-d", "context_length=8",
                        "--eval-protocol", "retrieval")
    assert code == 0, text
    sets = [DATASETS.build("path", "image-text", root=data, allow_outside=True,
                           split=s, label_key="label",
                           image_size=SIZE, context_length=8) for s in ("train", "test")]
    assert sum(int(ds.truncated.sum()) for ds in sets) == 1  # only the long one
    assert [n for ds in sets for n in ds.notes] == [
        "1 captions longer than the context (8 tokens) were truncated"]
    for ds in sets:  # truncation keeps END last (open_clip): every row ends in END or PAD
        assert ds.text.shape[-1] == 8 and set(ds.text[..., -1].unique().tolist()) <= {0, 2}


def test_train_prints_the_truncation_note(pictures: list[dict[str, str]], tmp_path: Path):
    data = _with_a_long_caption(pictures, tmp_path)
    code, text = train(data, tmp_path / "run", *LABELED, "-d", "context_length=8", "--no-eval")
    assert code == 0, text
    assert "note: 1 captions longer than the context (8 tokens) were truncated" in text


def test_a_missing_column_lists_the_columns(pictures: list[dict[str, str]], tmp_path: Path):
    data = write_csv(tmp_path / "pairs.csv", pictures)
    code, text = train(data, tmp_path / "run", "-d", "caption_key=nope")
    one_line_error(code, text, "pairs.csv", "'nope'", "filepath, title, label",
                    "caption_key=NAME")


def test_alpha_and_grayscale_images_load(pictures: list[dict[str, str]], tmp_path: Path):
    rgba = Image.new("RGBA", (SIZE, SIZE), (200, 0, 0, 0))  # transparent red ...
    rgba.paste((0, 0, 255, 255), (4, 4, 12, 12))  # ... around an opaque blue square
    rgba.save(tmp_path / "alpha.png")
    Image.new("L", (SIZE, SIZE), 90).save(tmp_path / "gray.png")
    rows = copy(pictures)
    rows[0]["filepath"], rows[1]["filepath"] = str(tmp_path / "alpha.png"), str(
        tmp_path / "gray.png")
    data = write_csv(tmp_path / "pairs.csv", rows)
    code, text = train(data, tmp_path / "run", *LABELED, "--eval-protocol", "retrieval")
    assert code == 0, text  # both splits decoded: the documented handling, not an error
    images = {}
    for split in ("train", "test"):
        ds = DATASETS.build("path", "image-text", root=data, allow_outside=True,
                            split=split, label_key="label", image_size=SIZE)
        images.update({row: ds.images[i] for i, row in enumerate(ds.rows)})
    alpha, gray = images[2], images[3]  # by manifest line
    assert alpha.shape == gray.shape == (3, SIZE, SIZE)
    assert (alpha[:, :3, :] == 255).all() and (alpha[:, :, -3:] == 255).all()  # composited on white
    assert alpha[:, 8, 8].tolist() == [0, 0, 255]
    assert (gray == 90).all()  # three equal channels
