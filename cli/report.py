"""Printing evaluation reports: a rich table on a terminal, plain aligned text otherwise."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console

from anyssl.eval import format_report


def print_report(report: dict[str, Any]) -> None:
    """Pre-trained vs random-init numbers for each protocol."""
    Console(file=sys.stdout, force_terminal=None).print(format_report(report))
