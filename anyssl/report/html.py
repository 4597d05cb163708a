"""Write report sections as one self-contained HTML page: pictures inlined as base64 PNG data
URLs, the style in the page, no script and nothing fetched, every text escaped.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from anyssl.report.sections import Picture, Section, Table

__all__ = ["render_page"]

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 70em; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.3em; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figcaption { font-size: 0.85em; color: #555; max-width: 40em; }
img { max-width: 100%; height: auto; }
p.note { color: #555; font-style: italic; }
"""


def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)


def _numeric(cell: str) -> bool:
    try:
        float(cell.lstrip("+"))
    except ValueError:
        return False
    return True


def _table(table: Table) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in table.header)
    rows = "".join(
        "<tr>" + "".join(f'<td class="num">{_esc(c)}</td>' if _numeric(c) else f"<td>{_esc(c)}</td>"
                         for c in row) + "</tr>\n" for row in table.rows)
    caption = f"<caption>{_esc(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}</tbody></table>\n"


def _picture(picture: Picture) -> str:
    data = base64.b64encode(picture.png).decode("ascii")
    caption = f"<figcaption>{_esc(picture.caption)}</figcaption>" if picture.caption else ""
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(picture.alt)}">'
            f"{caption}</figure>\n")


def _section(section: Section) -> str:
    parts = [f"<section>\n<h2>{_esc(section.title)}</h2>\n"]
    parts += [f'<p class="note">{_esc(n)}</p>\n' for n in section.notes]
    parts += [_table(t) for t in section.tables]
    parts += [_picture(p) for p in section.pictures]
    parts.append("</section>\n")
    return "".join(parts)


def render_page(title: str, sections: Sequence[Section], *, footer: str = "") -> str:
    """The whole page: ``title`` as heading and document title, then each section."""
    body = "".join(_section(s) for s in sections)
    foot = f'<footer><p class="note">{_esc(footer)}</p></footer>\n' if footer else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        # no favicon request: the page fetches nothing
        '<link rel="icon" href="data:,">\n'
        f"<title>{_esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{_esc(title)}</h1>\n{body}{foot}</body>\n</html>\n"
    )
