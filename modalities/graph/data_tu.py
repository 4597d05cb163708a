"""Checks of a TU folder's raw text files, run before PyG's ``TUDataset`` reads them.

PyG trusts these files: a node id in ``NAME_A.txt`` above the number of nodes is an
``IndexError`` deep inside it, an id of 0 or below silently wraps around to other nodes, an edge
joining two graphs is split wrongly, and a last line without its newline is dropped
(``read_txt_array`` splits on ``"\\n"`` and drops the last piece). ``check_tu_raw`` reads the
files first and raises a one-line ``GraphDataError`` naming the file and its 1-based line:

- ``NAME_graph_indicator.txt``: one whole number per node, starting at 1, never decreasing and
  skipping no graph; ``N`` nodes in all;
- ``NAME_A.txt``: one edge ``i, j`` per line, ``1 <= i, j <= N``, both nodes in one graph;
- ``NAME_graph_labels.txt``: one line per graph; the optional per-node (``node_labels``,
  ``node_attributes``) and per-edge (``edge_labels``, ``edge_attributes``) files: one line per
  node / edge;
- every file ends with a newline (``pyg_files.stage`` adds a missing one to its copy; a file read
  in place must have it).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from anyssl.modalities.graph.data_checks import GraphDataError

__all__ = ["check_tu_raw", "read_numbers"]

PER_NODE = ("node_labels", "node_attributes")
PER_EDGE = ("edge_labels", "edge_attributes")


def _line_count(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _bad_line(file: Path, data: bytes, cols: int) -> GraphDataError:
    """The first line of ``file`` that is not ``cols`` comma-separated numbers."""
    for k, line in enumerate(data.split(b"\n")[: _line_count(data)], start=1):
        fields = line.replace(b",", b" ").split()
        if len(fields) != cols:
            want = f"{cols} comma-separated numbers" if cols > 1 else "one number"
            return GraphDataError(f"{file} line {k}: expected {want}, got "
                                  f"{line[:60].decode(errors='replace')!r}; fix the line")
        for f in fields:
            try:
                float(f)
            except ValueError:
                return GraphDataError(f"{file} line {k}: {f[:30].decode(errors='replace')!r} "
                                      "is not a number; fix the line")
    return GraphDataError(f"{file}: cannot read it as rows of numbers; fix its format")


def read_numbers(file: Path, cols: int) -> np.ndarray:
    """The numbers of a TU text file (``,`` or spaces between them): ``lines x cols`` float64,
    or 1-D when ``cols`` is 1. Raises ``GraphDataError`` naming the first bad line."""
    data = file.read_bytes()
    if not data.strip():
        raise GraphDataError(f"{file} is empty; a TU folder's files hold one line per item")
    with warnings.catch_warnings():  # numpy warns (not raises) on text it cannot parse
        warnings.simplefilter("error", DeprecationWarning)
        try:
            values = np.fromstring(data.replace(b",", b" "), dtype=np.float64, sep=" ")
        except (ValueError, DeprecationWarning):
            raise _bad_line(file, data, cols) from None
    n = _line_count(data)
    if values.size != n * cols:
        raise _bad_line(file, data, cols)
    return values if cols == 1 else values.reshape(n, cols)


def _whole(values: np.ndarray, file: Path, cols: int) -> np.ndarray:
    bad = np.flatnonzero(~np.isfinite(values.reshape(-1)) | (values.reshape(-1) % 1 != 0))
    if bad.size:
        k = int(bad[0])
        raise GraphDataError(f"{file} line {k // cols + 1}: {values.reshape(-1)[k]} is not a "
                             "whole number; node and graph ids are integers")
    return values.astype(np.int64)


def _check_indicator(file: Path) -> np.ndarray:
    ind = _whole(read_numbers(file, 1), file, 1)  # N: the graph of each node, 1-based
    steps = np.diff(ind, prepend=1)
    bad = np.flatnonzero((steps < 0) | (steps > 1))
    if ind[0] != 1 or bad.size:
        k = 0 if ind[0] != 1 else int(bad[0])
        raise GraphDataError(f"{file} line {k + 1}: graph id {ind[k]} breaks the order; graph "
                             "ids start at 1, never decrease and skip no graph")
    return ind


def _check_edges(file: Path, ind: np.ndarray, indicator: str) -> int:
    edges = _whole(read_numbers(file, 2), file, 2)  # E x 2, 1-based node ids
    n = len(ind)
    out = np.flatnonzero(((edges < 1) | (edges > n)).any(1))
    if out.size:
        k = int(out[0])
        node = int(next(v for v in edges[k] if not 1 <= v <= n))
        raise GraphDataError(f"{file} line {k + 1}: node id {node} is out of range 1..{n} (one "
                             f"id per line of {indicator}); fix the edge or the indicator file")
    graphs = ind[edges - 1]  # E x 2
    cross = np.flatnonzero(graphs[:, 0] != graphs[:, 1])
    if cross.size:
        k = int(cross[0])
        a, b = (int(v) for v in edges[k])
        raise GraphDataError(f"{file} line {k + 1}: edge {a}, {b} joins graph {graphs[k, 0]} to "
                             f"graph {graphs[k, 1]}; an edge must stay within one graph")
    return len(edges)


def check_tu_raw(raw: Path, name: str, need_newline: bool = True) -> None:
    """Check the TU files of ``name`` in the folder ``raw`` (see the module docstring);
    ``need_newline=False`` when PyG reads a staged copy (which gets the missing newline)."""
    for f in sorted(raw.glob(f"{name}_*.txt")) if need_newline else []:
        data = f.read_bytes()
        if data and not data.endswith(b"\n"):
            raise GraphDataError(f"{f}: the last line has no newline at its end (PyG would drop "
                                 "that line); add one")
    indicator = raw / f"{name}_graph_indicator.txt"
    ind = _check_indicator(indicator)
    n_edges = _check_edges(raw / f"{name}_A.txt", ind, indicator.name)
    counts = {"graph_labels": int(ind[-1]), **dict.fromkeys(PER_NODE, len(ind)),
              **dict.fromkeys(PER_EDGE, n_edges)}
    for kind, want in counts.items():
        f = raw / f"{name}_{kind}.txt"
        what = "graphs" if kind == "graph_labels" else f"{kind.split('_')[0]}s"
        if f.is_file() and (have := _line_count(f.read_bytes())) != want:
            raise GraphDataError(f"{f} has {have} lines but the folder has {want} {what}; give "
                                 "one line each")
