"""Builders of hostile inputs for ``test_hostile_inputs.py``: image folders, series files, TU
folders and image-text manifests, each written under a given folder, plus the CLI runner and
the folder snapshot the test compares before and after every case."""

from __future__ import annotations

import hashlib
import os
import signal
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from anyssl.cli.app import app

# ---- running and watching -----------------------------------------------------------------------


def run_cli(*args: str) -> tuple[int, str]:
    """Invoke the app in-process; return (exit code, stdout + stderr)."""
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def snapshot(root: Path) -> dict[str, tuple[str, ...]]:
    """Every entry under ``root`` (links not followed): file content hashes and link targets."""
    out: dict[str, tuple[str, ...]] = {}
    for here, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(here) / name
            key = str(p.relative_to(root))
            if p.is_symlink():
                out[key] = ("link", os.readlink(p))
            elif p.is_file():
                out[key] = ("file", hashlib.sha1(p.read_bytes()).hexdigest())
            else:
                out[key] = ("dir",)
    return out


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (TimeoutError) instead of hanging when the body runs over ``seconds``."""
    def expire(*_: object) -> None:
        raise TimeoutError(f"over {seconds} s: the input made the run hang")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ---- images -------------------------------------------------------------------------------------
def png(file: Path, size: tuple[int, int] = (20, 20), shade: int = 0) -> Path:
    file.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200 - 9 * shade, 30 + 9 * shade, 90)).save(file)
    return file


def jpeg(file: Path) -> Path:
    """A 64 x 64 noise JPEG (about 4 KB, so half of it still holds the whole header)."""
    file.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(file, quality=90)
    return file


@cache
def _huge_png_bytes(side: int) -> bytes:
    """A valid 1-bit ``side x side`` PNG of a few tens of KB: all-zero rows compress to nothing."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit, grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def huge_png(file: Path, side: int = 20_000) -> Path:
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(_huge_png_bytes(side))
    return file


def truncated(file: Path) -> Path:
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])
    return file


def image_split_folder(root: Path, train: int = 4, test: int = 2) -> Path:
    """``root/train/{cat,dog}`` and ``root/test/{cat,dog}``: 2 * train + 2 * test PNGs."""
    for split, n in (("train", train), ("test", test)):
        for c in ("cat", "dog"):
            for i in range(n):
                png(root / split / c / f"{c} {i}.png", shade=i)
    return root


def with_bad_train_image(write: Callable[[Path], object], name: str) -> Callable[[Path], Path]:
    """A builder: the split folder plus one hostile file ``train/cat/<name>``."""
    def make(root: Path) -> Path:
        image_split_folder(root)
        write(root / "train" / "cat" / name)
        return root
    return make


def symlink_loops(root: Path) -> Path:
    """Loops everywhere: class-level, inside a class, to itself, and a self-referencing file."""
    image_split_folder(root)
    (root / "train" / "cat" / "loop").symlink_to("..")  # back to train/
    (root / "train" / "dog" / "self").symlink_to(".")
    (root / "train" / "up").symlink_to("..")  # a class folder that is the data root
    (root / "train" / "cat" / "me.png").symlink_to("me.png")  # ELOOP
    return root


# ---- time series --------------------------------------------------------------------------------
def ts_file(file: Path, lines: list[str]) -> Path:
    file.parent.mkdir(parents=True, exist_ok=True)
    header = ["@problemName hostile", "@univariate true", "@classLabel true 0 1", "@data"]
    file.write_text("\n".join(header + lines) + "\n")
    return file


def million_column_ts(root: Path) -> Path:
    lines = [",".join(f"{i % 7}" for i in range(20)) + f":{i % 2}" for i in range(9)]
    return ts_file(root / "big.ts", [",".join(["1.5"] * 1_000_000) + ":0", *lines])


# ---- graphs -------------------------------------------------------------------------------------
def tu_folder(root: Path, edit: Callable[[list[str]], list[str]] | None = None,
              newline: bool = True, graphs: int = 20) -> Path:
    """A TU root ``root/TOY/raw`` of ``graphs`` 3-node paths (4 directed edges each);
    ``edit`` changes the lines of TOY_A.txt."""
    raw = root / "TOY" / "raw"
    raw.mkdir(parents=True)
    edges = [f"{3 * g + a}, {3 * g + b}" for g in range(graphs)
             for a, b in ((1, 2), (2, 1), (2, 3), (3, 2))]
    edges = edit(edges) if edit else edges
    (raw / "TOY_A.txt").write_text("\n".join(edges) + ("\n" if newline else ""))
    (raw / "TOY_graph_indicator.txt").write_text("".join(f"{g + 1}\n" * 3 for g in range(graphs)))
    (raw / "TOY_graph_labels.txt").write_text("".join(f"{g % 2}\n" for g in range(graphs)))
    return root


def bad_edge(line: int, text: str) -> Callable[[Path], Path]:
    """A TU builder whose ``TOY_A.txt`` line ``line`` (1-based) is ``text``."""
    def edit(edges: list[str]) -> list[str]:
        return [*edges[: line - 1], text, *edges[line:]]
    return lambda root: tu_folder(root, edit)


# ---- image-text ---------------------------------------------------------------------------------
def manifest(root: Path, extra: tuple[str, ...] = (), images: int = 8) -> Path:
    """``root/pairs.csv`` over ``images`` PNGs in ``root`` (relative paths), then ``extra``
    rows (``path,caption``)."""
    rows = ["filepath,title"]
    root.mkdir(parents=True, exist_ok=True)
    for i in range(images):
        png(root / f"img{i}.png", (16, 16), shade=i)
        rows.append(f"img{i}.png,a picture number {i}")
    (root / "pairs.csv").write_text("\n".join([*rows, *extra]) + "\n")
    return root / "pairs.csv"
