"""``anyssl report``: one self-contained HTML page of a run (or several runs compared): training
curves, the evaluation next to random init, a 2-D map of the held-out embeddings and the
modality's panels (image nearest neighbours, series with their neighbours, image-text
retrievals). Drawing needs matplotlib (``pip install 'anyssl[report]'``).

    from anyssl.report import build_report
    build_report(["runs/image-simclr"], "report.html")
"""

from __future__ import annotations

from typing import Any

from anyssl.report.panels import REPORT_PANELS, PanelContext, ReportPanel, register_panel
from anyssl.report.sections import Picture, Section, Table

__all__ = ["REPORT_PANELS", "PanelContext", "Picture", "ReportPanel", "Section", "Table",
           "build_report", "register_panel", "render_report"]


def __getattr__(name: str) -> Any:
    # build_report pulls in the training API; panels (imported by modality plugins) must not
    if name in ("build_report", "render_report"):
        from anyssl.report import build

        return getattr(build, name)
    raise AttributeError(f"module 'anyssl.report' has no attribute {name!r}")
