"""``build_report``: one self-contained HTML page for one run, or comparing several.

The page holds, per run folder (``anyssl train --out``): the loss, learning-rate and (with
``--monitor-every``) kNN curves, overlaid when there are several runs; the evaluation table
(``eval.json``) next to random init; a 2-D map (PCA, t-SNE) of the held-out embeddings by label;
and the modality's panels (``anyssl.report.panels``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import torch

from anyssl.report.html import render_page
from anyssl.report.panels import ReportPanel, resolve_panels
from anyssl.report.plots import curves_png, require_matplotlib
from anyssl.report.runs import RunRecord, finite, read_run, run_names, series
from anyssl.report.sections import Picture, Section
from anyssl.report.tables import evaluation_section, runs_section

__all__ = ["CURVES", "build_report", "render_report"]

#: (metrics key, which records, title, y label, shown in %).
CURVES = (("loss", "train", "Training loss", "loss", False),
          ("lr", "train", "Learning rate", "lr", False),
          ("knn_top1", "monitor", "Online kNN top-1 (--monitor-every)", "kNN top-1", True))


def curves_section(runs: list[RunRecord]) -> Section:
    """The training curves, one picture per metric with a line per run."""
    pictures, names = [], run_names(runs)
    for key, kind, title, ylabel, percent in CURVES:
        curves = [(name, *series(run.train if kind == "train" else run.monitor, key))
                  for name, run in zip(names, runs, strict=True)]
        curves = [c for c in curves if c[1] and finite(c[2])]
        if curves:
            pictures.append(Picture(curves_png(curves, title=title, ylabel=ylabel,
                                               percent=percent),
                                    alt=f"{title} against the step", caption=title))
    notes = [] if any("knn_top1" in r for run in runs for r in run.monitor) else [
        "no kNN curve: train with --monitor-every N to log one"]
    if not pictures:
        notes.insert(0, "metrics.jsonl holds no training records yet")
    return Section("Training curves", pictures=pictures, notes=notes)


def embedding_sections(run: RunRecord, name: str, *, max_points: int, tsne: bool,
                       device: torch.device, seed: int,
                       panels: Sequence[str | ReportPanel] | None) -> list[Section]:
    """The 2-D map and the modality's panels of one run, from its checkpoint."""
    from anyssl.report.embedding import embed_run, map_section

    if not run.checkpoint.is_file():
        return [Section(f"Embeddings: {name}", notes=[
            f"no checkpoint {run.checkpoint}: no map of the embeddings"])]
    ctx = embed_run(run.checkpoint, max_points=max_points, device=device, seed=seed)
    sections = [map_section(ctx, title=f"Embeddings: {name}", max_points=max_points, tsne=tsne)]
    for panel in resolve_panels(run.modality, panels):
        section = panel(ctx)
        if section is not None:
            section.title = f"{section.title}: {name}"
            sections.append(section)
    return sections


def _device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device`` (None, ``auto``: CUDA when available)."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device {device!r} is not a device; use auto, cpu, cuda or "
                         "cuda:N") from None


def render_report(
    run_dirs: Sequence[str | Path], *, embeddings: bool = True, max_points: int = 2000,
    tsne: bool = True, device: str | torch.device | None = None, seed: int = 0,
    panels: Sequence[str | ReportPanel] | None = None,
) -> str:
    """The report page of ``run_dirs`` as HTML text (see the module docstring).
    ``embeddings=False`` leaves out what needs the checkpoint (maps and panels); ``panels``
    names (or gives) the panels to draw, default every panel of each run's modality."""
    if not run_dirs:
        raise ValueError("give at least one run folder")
    if max_points < 4:
        raise ValueError(f"--max-points must be at least 4, got {max_points}")
    require_matplotlib()
    runs = [read_run(d) for d in run_dirs]
    names = run_names(runs)
    dev = _device(device)
    sections = [runs_section(runs), curves_section(runs), evaluation_section(runs)]
    if embeddings:
        for name, run in zip(names, runs, strict=True):
            sections += embedding_sections(run, name, max_points=max_points, tsne=tsne,
                                           device=dev, seed=seed, panels=panels)
    title = (f"anyssl report: {names[0]} ({runs[0].modality}, {runs[0].method})"
             if len(runs) == 1 else f"anyssl report: {len(runs)} runs compared")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return render_page(title, sections, footer=f"Written by anyssl report on {stamp}.")


def build_report(
    run_dirs: Sequence[str | Path], out: str | Path, *, embeddings: bool = True,
    max_points: int = 2000, tsne: bool = True, device: str | torch.device | None = None,
    seed: int = 0, panels: Sequence[str | ReportPanel] | None = None,
) -> Path:
    """Write the ``render_report`` page of ``run_dirs`` (same keywords) to ``out``, a new
    ``.html`` file (an existing one is never overwritten), and return its path."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"--out must end in .html, got {out}")
    if out.exists():
        raise FileExistsError(f"{out} already exists; choose another --out (nothing is "
                              "overwritten)")
    page = render_report(run_dirs, embeddings=embeddings, max_points=max_points, tsne=tsne,
                         device=device, seed=seed, panels=panels)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with out.open("x", encoding="utf-8") as f:  # "x": fails if out appeared meanwhile
            f.write(page)
    except FileExistsError:
        raise FileExistsError(f"{out} already exists; choose another --out (nothing is "
                              "overwritten)") from None
    return out
