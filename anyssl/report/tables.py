"""The report's tables: what each run is, and its evaluation next to random init (one table for
several runs), in the cells ``anyssl.eval.report`` prints (accuracies in %)."""

from __future__ import annotations

import math
from typing import Any

from anyssl.eval.report import HEADER, report_rows
from anyssl.report.runs import RunRecord, run_names
from anyssl.report.sections import Section, Table

__all__ = ["evaluation_section", "runs_section"]

EVAL_TITLE = "Evaluation (accuracies in %)"


def _last(records: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in records if isinstance(r.get(key), (int, float))]
    if not values:
        return "-"
    v = float(values[-1])
    return f"{v:.4g}" if math.isfinite(v) else str(v)


def runs_section(runs: list[RunRecord]) -> Section:
    """One row per run: its folder, modality, method, data, encoder, steps and last values."""
    header = ("run", "modality", "method", "data", "encoder", "steps", "last loss",
              "last kNN top-1 (%)", "evaluated")
    rows = []
    for name, run in zip(run_names(runs), runs, strict=True):
        steps = max((int(r["step"]) + 1 for r in run.train), default=0)
        knn = [r["knn_top1"] for r in run.monitor if isinstance(r.get("knn_top1"), float)]
        rows.append((name, run.modality, run.method, str(run.config.get("data") or "default"),
                     str(run.config.get("encoder") or "default"), str(steps),
                     _last(run.train, "loss"), f"{100 * knn[-1]:.2f}" if knn else "-",
                     "yes" if run.eval is not None else "no (--no-eval)"))
    notes = [f"{name}: {run.skipped} line(s) of metrics.jsonl were not whole records and are "
             "left out (a write cut short)"
             for name, run in zip(run_names(runs), runs, strict=True) if run.skipped]
    return Section("Runs", tables=[Table(header, tuple(rows))], notes=notes)


def evaluation_section(runs: list[RunRecord]) -> Section:
    """The evaluation table: one run as ``anyssl train`` prints it (pretrained, random init,
    delta); several runs as one table with a pretrained and a random-init column per run.
    Runs without ``eval.json`` are named in a note."""
    names = run_names(runs)
    evaluated = [(n, r) for n, r in zip(names, runs, strict=True) if r.eval is not None]
    notes = [f"{n}: not evaluated (trained with --no-eval); run anyssl eval on its checkpoint "
             "for a table" for n, r in zip(names, runs, strict=True) if r.eval is None]
    if not evaluated:
        return Section("Evaluation", notes=notes)
    if len(runs) == 1:
        rows = tuple(tuple(r) for r in report_rows(evaluated[0][1].eval or {}))
        return Section("Evaluation", tables=[Table(HEADER, rows, EVAL_TITLE)], notes=notes)
    cells: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}
    for name, run in evaluated:
        for proto, metric, pre, rnd, _ in report_rows(run.eval or {}):
            cells.setdefault((proto, metric), {})[name] = (pre, rnd)
    header = ("protocol", "metric",
              *(f"{n} {col}" for n, _ in evaluated for col in ("pretrained", "random init")))
    rows = tuple((proto, metric, *(c for n, _ in evaluated for c in found.get(n, ("-", "-"))))
                 for (proto, metric), found in cells.items())
    return Section("Evaluation", tables=[Table(header, rows, EVAL_TITLE)], notes=notes)
