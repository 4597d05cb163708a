"""Hostile input, table-driven, across every loader: each case builds its files in ``tmp_path``
and runs ``anyssl train`` (``cli``) or the loader itself (``load``), then checks one of:

- ERROR: exit code 2 and exactly one output line, ``error: ...`` naming the problem and the fix,
  no traceback (through a loader: a ``ValueError`` with that one-line message);
- SKIP: the run works and a ``note: skipped ...`` line (a loader: its notes) counts what was left
  out;
- OK: the run works (paths with spaces and unicode; a documented repair).

Every case also checks that nothing already in ``tmp_path`` was deleted or changed, and runs
under a deadline so a hang fails instead of stalling the suite.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile_files import (
    bad_edge,
    deadline,
    huge_png,
    image_split_folder,
    jpeg,
    manifest,
    million_column_ts,
    png,
    run_cli,
    snapshot,
    symlink_loops,
    truncated,
    ts_file,
    tu_folder,
    with_bad_train_image,
)

from anyssl.modalities.graph.datasets import path as graph_path
from anyssl.modalities.image import datasets_folder
from anyssl.modalities.image.datasets_files import path as image_path
from anyssl.modalities.image.datasets_scan import probe_image
from anyssl.modalities.image_text.datasets import path as pair_path
from anyssl.modalities.timeseries.datasets import path as series_path

ERROR, SKIP, OK = "error", "skip", "ok"
IMAGE = ("--modality", "image", "--method", "simclr", "--max-steps", "1", "--no-eval", "-d",
         "image_size=16", "-e", "width=4", "--seed", "0")
SERIES = ("--modality", "timeseries", "--method", "ts2vec", "--max-steps", "1", "--no-eval",
          "-e", "depth=1", "-e", "hidden_dim=8", "-e", "out_dim=8")
GRAPH = ("--modality", "graph", "--method", "graphcl", "--max-steps", "1", "--no-eval")
PAIRS = ("--modality", "image-text", "--method", "clip", "--max-steps", "1", "--no-eval", "-d",
         "image_size=16", "-e", "image_width=8", "-e", "text_width=16", "--batch-size", "4")


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Path], Path]  # writes the input under the folder given; returns --data
    expect: str  # ERROR, SKIP or OK
    needles: tuple[str, ...] = ()  # what the error line / the skip note must say
    cli: tuple[str, ...] | None = None  # anyssl train arguments besides --data and --out
    load: Callable[[Path], list[str]] | None = None  # else: the loader call; returns its notes
    seconds: int = 60  # the deadline


# ---- loader calls -----------------------------------------------------------------------------
def both_splits(build: Callable[..., object], **kw: object) -> Callable[[Path], list[str]]:
    """Build the train and test splits of ``data``; return their notes."""
    def load(data: Path) -> list[str]:
        return [n for s in ("train", "test") for n in getattr(build(data, s, **kw), "notes", [])]
    return load


def decode_with_skip(data: Path) -> list[str]:
    """Header fine, data truncated: with on_error=skip the next image stands in, logged."""
    ds = image_path(data, "train", image_size=16, on_error="skip")
    i = next(k for k, f in enumerate(ds.files) if f.name == "trunc.jpg")
    handler = _Recorder()
    logger = logging.getLogger(datasets_folder.__name__)
    logger.addHandler(handler)
    try:
        image = ds[i][0]
    finally:
        logger.removeHandler(handler)
    assert torch.equal(image, ds[(i + 1) % len(ds)][0])
    return [r.getMessage() for r in handler.records]


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def probe_without_warning(data: Path) -> list[str]:
    """Between 1x and 2x Pillow's limit Pillow only warns: the probe must refuse, silently."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            probe_image(data)
        finally:
            assert not seen, [str(w.message) for w in seen]
    return []


def every_edge_kept(data: Path) -> list[str]:
    """The last line of TOY_A.txt lacks its newline: the staged copy gets it, no edge is lost."""
    sets = [graph_path(data, s) for s in ("train", "test")]
    assert sum(g.edge_index.shape[1] for ds in sets for g, _ in ds) == 4 * 20
    return []


def write_empty(file: Path) -> Path:
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(b"")
    return file


def tu_empty(root: Path) -> Path:
    tu_folder(root)
    for f in (root / "TOY" / "raw").iterdir():
        f.write_bytes(b"")
    return root


def outside(root: Path) -> Path:
    """A manifest in ``root/m`` with one row naming an image in ``root/far`` (absolute)."""
    far = png(root / "far" / "x.png", (16, 16))
    return manifest(root / "m", (f"{far},a picture from far away",))


def all_unreadable(root: Path) -> Path:
    for split in ("train", "test"):
        for i in range(3):
            (root / split / "c" / f"{i}.png").parent.mkdir(parents=True, exist_ok=True)
            (root / split / "c" / f"{i}.png").write_text("not a png")
    return root


def empty_folder(root: Path) -> Path:
    (root / "empty").mkdir(parents=True)
    (root / "empty" / "notes.txt").write_text("no images here")
    return root / "empty"


def empty_pt(root: Path) -> Path:
    root.mkdir(parents=True)
    torch.save([], root / "g.pt")
    return root / "g.pt"


def npy_too_long(root: Path) -> Path:
    root.mkdir(parents=True)
    np.save(root / "long.npy", np.zeros((4, 200_001), dtype=np.float32))
    return root / "long.npy"


# ---- the table ----------------------------------------------------------------------------------
B4, B9 = ("--batch-size", "4"), ("--batch-size", "9")
CASES = [
    # image folders (--modality image --data DIR)
    Case("image-corrupt-png", with_bad_train_image(
        lambda f: f.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2), "corrupt.png"),
        ERROR, ("corrupt.png", "cannot identify", "on_error=skip"), IMAGE + B4),
    Case("image-truncated-png", with_bad_train_image(
        lambda f: truncated(png(f)), "trunc.png"), ERROR,
        ("trunc.png", "truncated", "on_error=skip"), IMAGE + B9),
    Case("image-truncated-jpeg-skip", with_bad_train_image(
        lambda f: truncated(jpeg(f)), "trunc.jpg"), SKIP, ("trunc.jpg", "next one"),
        load=decode_with_skip),
    Case("image-zero-bytes", with_bad_train_image(write_empty, "empty.png"), ERROR,
         ("empty.png", "0 bytes", "on_error=skip"), IMAGE + B4),
    Case("image-png-that-is-text-skip", with_bad_train_image(
        lambda f: f.write_text("I am text"), "text.png"), SKIP,
        ("skipped 1 of 9 images", "text.png"), (*IMAGE, "-d", "on_error=skip", *B4)),
    Case("image-1x1-px", with_bad_train_image(lambda f: png(f, (1, 1)), "one.png"), ERROR,
         ("one.png", "1x1 px", "min_size=8", "-d min_size=1"), IMAGE + B4),
    Case("image-20000-px-bomb", with_bad_train_image(huge_png, "bomb.png"), ERROR,
         ("bomb.png", "400,000,000 pixels", "decompression bomb"), IMAGE + B4, seconds=20),
    Case("image-bomb-warning-band", lambda r: huge_png(r / "big.png", 10_000), ERROR,
         ("big.png", "100,000,000 pixels", "decompression bomb"), load=probe_without_warning),
    Case("image-spaces-and-unicode", lambda r: image_split_folder(r / "my dätä 猫 ✓"), OK,
         cli=IMAGE + B4),
    Case("image-symlink-loops", symlink_loops, SKIP, ("skipped 4 symlinks that loop",),
         IMAGE + B4, seconds=30),
    Case("image-empty-folder", empty_folder, ERROR, ("no images found",), IMAGE + B4),
    Case("image-all-unreadable-skip", all_unreadable, ERROR,
         ("holds no usable images", "3 skipped"), (*IMAGE, "-d", "on_error=skip", *B4)),
    Case("image-data-missing", lambda r: r / "no such folder", ERROR, ("does not exist",),
         IMAGE + B4),
    Case("image-batch-larger-than-data", image_split_folder, ERROR,
         ("8 samples", "100000", "--batch-size"), (*IMAGE, "--batch-size", "100000")),
    # time series
    Case("series-million-column-line", million_column_ts, ERROR,
         ("big.ts line 5", "1,000,000 values", "max_length=100,000"), SERIES, seconds=15),
    Case("series-zero-byte-ts", lambda r: write_empty(r / "empty.ts"), ERROR,
         ("empty.ts", "no @data line"), SERIES),
    Case("series-header-only-ts", lambda r: ts_file(r / "none.ts", []), ERROR,
         ("none.ts", "no data lines"), load=both_splits(series_path)),
    Case("series-zero-byte-csv", lambda r: write_empty(r / "empty.csv"), ERROR,
         ("empty.csv", "no data lines"), load=both_splits(series_path)),
    Case("series-npy-too-long", npy_too_long, ERROR, ("long.npy", "200,001", "max_length"),
         load=both_splits(series_path)),
    Case("series-data-missing", lambda r: r / "nope.ts", ERROR, ("nope.ts", "does not exist"),
         SERIES),
    # graphs (TU folders, .pt files)
    Case("tu-node-id-too-large", bad_edge(6, "999, 1"), ERROR,
         ("TOY_A.txt line 6", "node id 999", "1..60"), GRAPH),
    Case("tu-node-id-zero", bad_edge(6, "0, 1"), ERROR, ("TOY_A.txt line 6", "node id 0"),
         load=both_splits(graph_path)),
    Case("tu-node-id-negative", bad_edge(9, "5, -3"), ERROR, ("TOY_A.txt line 9", "node id -3"),
         load=both_splits(graph_path)),
    Case("tu-edge-across-graphs", bad_edge(3, "2, 4"), ERROR,
         ("TOY_A.txt line 3", "graph 1 to graph 2"), load=both_splits(graph_path)),
    Case("tu-not-a-number", bad_edge(2, "1, x"), ERROR, ("TOY_A.txt line 2", "'x'"),
         load=both_splits(graph_path)),
    Case("tu-empty-files", tu_empty, ERROR, ("is empty",), GRAPH),
    Case("tu-no-final-newline", lambda r: tu_folder(r, newline=False), OK,
         load=every_edge_kept),
    Case("graph-empty-pt", empty_pt, ERROR, ("g.pt holds no graphs", "empty list"), GRAPH),
    # image-text manifests
    Case("pairs-row-outside-folder", lambda r: manifest(r, ("../../etc/passwd,secrets",)),
         ERROR, ("pairs.csv line 10", "'../../etc/passwd'", "allow_outside=true"), PAIRS),
    Case("pairs-absolute-path-outside", outside, ERROR, ("line 10", "far/x.png", "outside"),
         load=both_splits(pair_path, image_size=16)),
    Case("pairs-outside-allowed", outside, OK,
         load=both_splits(pair_path, image_size=16, allow_outside=True)),
    Case("pairs-header-only", lambda r: manifest(r, images=0), ERROR,
         ("pairs.csv", "no rows"), PAIRS),
    Case("pairs-zero-byte-manifest", lambda r: write_empty(r / "pairs.csv"), ERROR,
         ("pairs.csv is empty", "header row"), load=both_splits(pair_path)),
    Case("pairs-1x1-image", lambda r: manifest(r, (f"{png(r / 'one.png', (1, 1))},tiny",)),
         ERROR, ("line 10", "1x1 px", "min_size"), load=both_splits(pair_path, image_size=16)),
    Case("pairs-1x1-image-skip", lambda r: manifest(r, (f"{png(r / 'one.png', (1, 1))},tiny",)),
         SKIP, ("skipped 1 of", "line 10"),
         load=both_splits(pair_path, image_size=16, on_error="skip")),
    Case("pairs-bomb", lambda r: manifest(r, (f"{huge_png(r / 'bomb.png')},huge",)), ERROR,
         ("line 10", "bomb.png", "decompression bomb"), load=both_splits(pair_path)),
]


def _run(case: Case, data: Path, out: Path) -> tuple[int, str]:
    if case.cli is not None:
        return run_cli("train", *case.cli, "--data", str(data), "--out", str(out))
    assert case.load is not None
    try:
        notes = case.load(data)
    except ValueError as err:
        assert "\n" not in str(err), str(err)
        return 2, f"error: {err}\n"
    return 0, "".join(f"note: {n}\n" for n in notes)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANYSSL_DATA", str(tmp_path / "cache"))
    data = case.make(tmp_path / "in")
    before = snapshot(tmp_path)
    start = time.perf_counter()
    with deadline(case.seconds):
        code, text = _run(case, data, tmp_path / "rün öut")
    assert time.perf_counter() - start < case.seconds
    assert "Traceback" not in text, text
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if case.expect == ERROR:
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), text
        found = lines[0]
    else:
        assert code == 0, text
        skipped = [ln for ln in lines if ln.startswith("note: skipped")]
        assert bool(skipped) == (case.expect == SKIP), text
        found = " | ".join(skipped)
    for needle in case.needles:
        assert needle in found, found
    after = snapshot(tmp_path)
    assert {k: after.get(k) for k in before} == before  # nothing written before was lost


def test_the_table_covers_every_loader_and_the_cli() -> None:
    assert len(CASES) >= 22 and len({c.id for c in CASES}) == len(CASES)
    assert sum(c.cli is not None for c in CASES) >= 10
    for flag in ("image", "timeseries", "graph", "image-text"):
        assert any(c.cli is not None and flag in c.cli for c in CASES), flag
