"""Synthetic image-caption pairs for the shard benchmarks, written once per size and reused.

Each pair is a 64 px JPEG (quality 90) of a coloured circle or square on a two-colour gradient
with Gaussian noise (sigma 6): compressible like a photo, about 2-3 KB, and different for every
index (seeded by it). Its caption names what is drawn: ``"a red circle on a blue gradient"``.
Under ``WORK/n<N>/``: ``folder/`` (``0000/0000000.jpg`` + ``.txt`` beside it, 1,000 per
subfolder), ``shards/`` (the same bytes as ``jpg`` + ``txt`` members, written by
``anyssl.shards.ShardWriter``) and ``tokenizer.json`` (a BPE trained once on the first 10,000
captions, so no measured path trains one). A hidden ``.complete`` marker says the set is whole.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np

__all__ = ["PALETTE", "Pairs", "disk_bytes", "make_pairs", "synth_pair"]

PALETTE = {"red": (210, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 210),
           "yellow": (230, 210, 40), "purple": (140, 50, 170), "orange": (240, 140, 30),
           "white": (240, 240, 240), "black": (20, 20, 20)}
SIZE, PER_FOLDER, TOKENIZER_TEXTS = 64, 1000, 10_000


@dataclass(frozen=True)
class Pairs:
    """Where one size's pairs lie."""

    n: int
    folder: Path
    shards: Path
    tokenizer: Path


def synth_pair(index: int, size: int = SIZE) -> tuple[bytes, str]:
    """The JPEG bytes and caption of pair ``index`` (see the module docstring)."""
    from PIL import Image

    rng = np.random.default_rng(index)
    names = list(PALETTE)
    bg, fg = rng.choice(len(names), 2, replace=False)
    c0 = np.asarray(PALETTE[names[bg]], dtype=np.float32)
    c1 = rng.uniform(0, 255, 3).astype(np.float32)
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * t[None, :] + np.sin(angle) * t[:, None]  # size x size
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    img = c0 + (c1 - c0) * ramp[..., None]  # size x size x 3
    shape = "circle" if rng.random() < 0.5 else "square"
    cx, cy = rng.uniform(0.3, 0.7, 2) * size
    r = rng.uniform(0.12, 0.3) * size
    yy, xx = np.mgrid[0:size, 0:size]
    inside = ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r if shape == "circle"
              else (abs(xx - cx) < r) & (abs(yy - cy) < r))
    img[inside] = PALETTE[names[fg]]
    img += rng.normal(0.0, 6.0, img.shape).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    article = "an" if names[fg][0] in "aeiou" else "a"
    return buf.getvalue(), f"{article} {names[fg]} {shape} on a {names[bg]} gradient"


def _chunk(span: tuple[int, int]) -> list[tuple[bytes, str]]:
    return [synth_pair(i) for i in range(*span)]


def _pairs(n: int, workers: int) -> Iterator[tuple[int, bytes, str]]:
    """``(index, jpeg, caption)`` in index order, made by ``workers`` processes."""
    spans = [(s, min(n, s + 2000)) for s in range(0, n, 2000)]
    with Pool(max(1, workers)) as pool:
        start = 0
        for part in pool.imap(_chunk, spans):
            for k, (jpeg, caption) in enumerate(part):
                yield start + k, jpeg, caption
            start += len(part)


def make_pairs(work: Path, n: int, shard_size: int, workers: int | None = None) -> Pairs:
    """``n`` pairs under ``work/n<n>`` as a folder, shards and a tokenizer (written once)."""
    from anyssl.modalities.text.tokenizer import train_tokenizer
    from anyssl.shards import ShardWriter

    root = work / f"n{n}"
    pairs = Pairs(n, root / "folder", root / "shards", root / "tokenizer.json")
    done = root / ".complete"
    if done.is_file() and done.read_text().strip() == f"{n} {shard_size}":
        return pairs
    print(f"writing {n:,} synthetic pairs to {root} (once) ...", flush=True)
    meta = {"source": "benchmarks/_synthetic_pairs.py", "modality": "image-text",
            "image_size": SIZE, "image_format": "jpg"}
    captions: list[str] = []
    with ShardWriter(pairs.shards, shard_size, prefix="pairs", meta=meta,
                     resume=False) as writer:
        for i, jpeg, caption in _pairs(n, workers or os.cpu_count() or 1):
            sub = pairs.folder / f"{i // PER_FOLDER:04d}"
            if i % PER_FOLDER == 0:
                sub.mkdir(parents=True, exist_ok=True)
            (sub / f"{i:07d}.jpg").write_bytes(jpeg)
            (sub / f"{i:07d}.txt").write_text(caption + "\n")
            writer.write(i, f"{i:07d}", {"jpg": jpeg, "txt": caption.encode()})
            if len(captions) < TOKENIZER_TEXTS:
                captions.append(caption)
    pairs.tokenizer.write_text(train_tokenizer(captions, 4096).to_str())
    done.write_text(f"{n} {shard_size}\n")
    return pairs


def disk_bytes(folder: Path) -> tuple[int, int]:
    """``(file bytes, allocated bytes)`` of every file under ``folder`` (blocks of 512 B)."""
    size = blocks = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            st = os.stat(os.path.join(dirpath, name))
            size, blocks = size + st.st_size, blocks + st.st_blocks * 512
    return size, blocks
