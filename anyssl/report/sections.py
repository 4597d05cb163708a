"""What a report page is made of: sections holding pictures (PNG bytes), tables and notes.
Everything here is plain data; ``html.py`` turns it into the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Picture", "Section", "Table"]


@dataclass(frozen=True)
class Picture:
    """A PNG image with its alternative text (shown when it cannot be displayed) and caption."""

    png: bytes
    alt: str
    caption: str = ""

    def __post_init__(self) -> None:
        if not self.png.startswith(b"\x89PNG\r\n\x1a\n"):
            raise ValueError(f"picture {self.alt!r} is not PNG data; render it with "
                             "anyssl.report.plots.to_png")


@dataclass(frozen=True)
class Table:
    """A header and rows of cells (text; escaped when the page is written)."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""

    def __post_init__(self) -> None:
        bad = [r for r in self.rows if len(r) != len(self.header)]
        if bad:
            raise ValueError(f"table row {bad[0]} has {len(bad[0])} cells, the header "
                             f"{len(self.header)}")


@dataclass
class Section:
    """One titled part of the page: notes (paragraphs), then tables, then pictures."""

    title: str
    pictures: list[Picture] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
