"""Shard specs: which tar files a ``--data`` value names.

A spec is ``"dir/train-{000000..000127}.tar"`` (brace ranges, zero padding kept, several braces
expand as a product), ``"dir/{a,b}.tar"`` (brace lists), a folder (its ``*.tar``, sorted), a glob
(``"dir/*.tar"``), one ``.tar`` file, or a list of those. Stdlib only, so the CLI can tell a
shard spec from other data without importing torch.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from pathlib import Path

__all__ = ["ShardError", "expand_braces", "expand_shards", "is_shard_spec"]

_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")
_LIST = re.compile(r"\{([^{}]*,[^{}]*)\}")
_GLOB = re.compile(r"[*?\[]")


class ShardError(ValueError):
    """A shard spec names missing files, or a shard's sample cannot be read."""


def _range_items(lo: str, hi: str, spec: str) -> list[str]:
    """``"000".."012"`` -> ``["000", ..., "012"]``: zero-padded to the wider bound when either
    bound has a leading zero (as ``braceexpand`` does), plain numbers otherwise."""
    a, b = int(lo), int(hi)
    if b < a:
        raise ShardError(f"shard spec {spec!r}: brace range {{{lo}..{hi}}} counts down; "
                         f"write it as {{{hi}..{lo}}}")
    padded = (len(lo) > 1 and lo.startswith("0")) or (len(hi) > 1 and hi.startswith("0"))
    width = max(len(lo), len(hi)) if padded else 0
    return [str(i).zfill(width) for i in range(a, b + 1)]


def expand_braces(spec: str) -> list[str]:
    """Every string a brace pattern stands for, in order: the first brace (a ``{a..b}`` range or
    an ``{x,y}`` list) is expanded, then each result recursively, so several braces give their
    product with the rightmost brace varying fastest (``"{0..1}-{a,b}"`` -> ``0-a 0-b 1-a 1-b``).
    """
    m_range, m_list = _RANGE.search(spec), _LIST.search(spec)
    first = min((m for m in (m_range, m_list) if m is not None), key=lambda m: m.start(),
                default=None)
    if first is None:
        return [spec]
    if first is m_range:
        items = _range_items(first.group(1), first.group(2), spec)
    else:
        items = first.group(1).split(",")
    head, tail = spec[: first.start()], spec[first.end():]
    return [out for item in items for out in expand_braces(head + item + tail)]


def _expand_one(spec: str | Path) -> list[Path]:
    """The files one spec names (existing or not: the caller checks)."""
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        found = sorted(path.glob("*.tar"))
        if not found:
            raise ShardError(f"shard folder {text!r} holds no .tar files")
        return found
    names = expand_braces(text)
    if any(_GLOB.search(n) for n in names):
        found = sorted(Path(f) for n in names for f in glob.glob(n))
        if not found:
            raise ShardError(f"shard spec {text!r} matches no files")
        return found
    return [Path(n) for n in names]


def expand_shards(spec: str | Path | Sequence[str | Path]) -> list[Path]:
    """The shard files ``spec`` names, in order (a list of specs: their files concatenated).

    ``ShardError`` (one line) when a named file does not exist: it names the first missing file
    and how many files the spec expected, so a typo in a brace range is caught before training.
    """
    specs = [spec] if isinstance(spec, (str, Path)) else list(spec)
    if not specs:
        raise ShardError("no shard spec given")
    paths = [p for s in specs for p in _expand_one(s)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        what = specs[0] if len(specs) == 1 else specs
        raise ShardError(f"shard spec {what!s}: {len(missing)} of the {len(paths)} expected "
                         f"shard files are missing, the first is {missing[0]}")
    return paths


def is_shard_spec(spec: str | Path) -> bool:
    """Whether ``spec`` names shards: it ends with ``.tar``, holds a ``{a..b}`` brace range, or is
    a folder with ``.tar`` files in it. Checks the name and at most one folder listing."""
    text = str(spec)
    if text.endswith(".tar") or _RANGE.search(text):
        return True
    path = Path(text)
    return path.is_dir() and any(path.glob("*.tar"))
