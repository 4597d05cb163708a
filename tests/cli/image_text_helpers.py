"""Shared data and checks of the image-text CLI tests: 40 tiny labeled pictures, manifests, the
one-line-error check and the printed report's rows."""

from __future__ import annotations

import csv
from pathlib import Path

from cli_helpers import run_cli
from PIL import Image

from anyssl.api import LoadedRun
from anyssl.modalities.image_text.datasets import PairDataset

#: stratified 20% test split of 8.
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 220),
           "yellow": (230, 220, 30)}
SHAPES = ("square", "dot")
N_IMAGES, SIZE = 40, 16
#: Tiny towers, 16 px images, batches of 8: each run takes about a second.
SMALL = ["--modality", "image-text", "--method", "clip", "-d", f"image_size={SIZE}",
         "-e", "image_width=8", "-e", "text_width=16", "--batch-size", "8", "--seed", "0",
         "-d", "allow_outside=true"]  # the pictures folder is not the manifest's folder
LABELED = ["-d", "label_key=label"]
COLUMNS = ("filepath", "title", "label")
#: The linear probe (the modality's third default) is left to the slow OpenMoji test.
PAIR_EVAL = ["--eval-protocol", "zeroshot", "--eval-protocol", "retrieval"]


def picture(colour: str, shape: str) -> Image.Image:
    im = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
    px = im.load()
    assert px is not None
    for x in range(SIZE):
        for y in range(SIZE):
            inside = (3 <= x < 13 and 3 <= y < 13) if shape == "square" else (
                (x - 8) ** 2 + (y - 8) ** 2 < 16)
            if inside:
                px[x, y] = COLOURS[colour]
    return im


def make_pictures(folder: Path) -> list[dict[str, str]]:
    """40 PNGs written to ``folder`` and their manifest rows: absolute path, caption, colour."""
    rows = []
    for i in range(N_IMAGES):
        colour, shape = list(COLOURS)[i % 4], SHAPES[(i // 4) % 2]
        file = folder / f"img{i}.png"
        picture(colour, shape).save(file)
        rows.append({"filepath": str(file), "title": f"a {colour} {shape} picture",
                     "label": colour})
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def copy(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [dict(r) for r in rows]


def line(index: int) -> str:
    """The manifest line of row ``index`` (line 1 is the header)."""
    return f"pairs.csv line {index + 2}"


def train(data: Path, out: Path, *args: str) -> tuple[int, str]:
    return run_cli("train", *SMALL, "--data", str(data), "--max-steps", "1", *args,
                   "--out", str(out))


def pair_sets(run: LoadedRun) -> tuple[PairDataset, PairDataset]:
    """A reloaded run's train and test sets, typed."""
    sets = run.parts.train_set, run.parts.test_set
    assert isinstance(sets[0], PairDataset) and isinstance(sets[1], PairDataset)
    return sets[0], sets[1]


def one_line_error(code: int, text: str, *needles: str) -> None:
    assert code == 2, text
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), text
    assert "Traceback" not in text
    for needle in needles:
        assert needle in lines[0], lines[0]


def report_rows(text: str) -> dict[tuple[str, str], list[str]]:
    """The printed report as ``{(protocol, metric): [pretrained, random init, ...]}``."""
    rows = {}
    for line in text.splitlines():
        cells = line.split()
        if len(cells) >= 4 and cells[0] in ("zeroshot", "retrieval", "linear"):
            rows[(cells[0], cells[1])] = cells[2:]
    return rows


def assert_rows(text: str, protocol: str, *metrics: str) -> None:
    rows = report_rows(text)
    for metric in metrics:
        pretrained, random_init = rows[(protocol, metric)][:2]
        assert 0.0 <= float(pretrained) <= 100.0 and 0.0 <= float(random_init) <= 100.0, text
