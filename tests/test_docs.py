"""The documentation site builds in strict mode, and every relative link in README.md and docs/
points at a file (and heading) that exists."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")  # [text](target), not images
SNIPPET = re.compile(r'^-{1,}8<-{1,} "([^"]+)"', re.M)  # pymdownx.snippets: --8<-- "file[:section]"
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def slug(heading: str) -> str:
    """Python-Markdown's toc slug (mkdocs' anchors; GitHub's agree for these headings)."""
    text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def expanded(page: Path) -> str:
    """The page's text with its snippet includes in place (headings of included files count)."""
    def include(m: re.Match[str]) -> str:
        name, _, section = m.group(1).partition(":")
        text = (ROOT / name).read_text()
        if section:
            text = text.split(f"[start:{section}]", 1)[1].split(f"[end:{section}]", 1)[0]
        return text
    return SNIPPET.sub(include, page.read_text())


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", expanded(page))
    return {slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


def links(page: Path) -> list[str]:
    return [t for t in LINK.findall(FENCE.sub("", page.read_text()))
            if not re.match(r"[a-z][a-z0-9+.-]*:", t)]  # http:, https:, mailto: ...


def test_every_relative_link_resolves() -> None:
    bad = []
    for page in PAGES:
        for target in links(page):
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                bad.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                bad.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_snippet_includes_resolve() -> None:
    """``--8<-- "README.md:setup"`` needs the file and both section markers."""
    for page in PAGES:
        for ref in SNIPPET.findall(page.read_text()):
            name, _, section = ref.partition(":")
            assert (ROOT / name).is_file(), f"{page.name}: {name} does not exist"
            text = (ROOT / name).read_text()
            for mark in ([f"[start:{section}]", f"[end:{section}]"] if section else []):
                assert mark in text, f"{page.name}: {name} has no {mark}"


def test_the_install_page_states_the_declared_torch_floor() -> None:
    floor = re.search(r'"torch>=([\d.]+)', (ROOT / "pyproject.toml").read_text())
    assert floor, "pyproject.toml declares no torch floor"
    assert f"torch {floor.group(1)} or newer" in (ROOT / "docs" / "install.md").read_text()


def test_the_link_check_catches_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("# Top\n\n[a](p.md#top) [b](missing.md) [c](https://x.org/y.md)\n"
                    "```\n[d](inside-code.md)\n```\n")
    assert links(page) == ["p.md#top", "missing.md"]
    assert anchors(page) == {"top"}
    heading = "1. View throughput (`view_throughput.py`)"
    assert slug(heading) == "1-view-throughput-view_throughputpy"


@pytest.mark.slow  # 8-11 s on 2 cores; CI runs `mkdocs build --strict` as its own step
@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("mkdocs", "mkdocstrings", "material")),
    reason="mkdocs, mkdocstrings or mkdocs-material not installed (pip install -e '.[docs]')",
)
def test_site_builds_in_strict_mode(tmp_path: Path) -> None:
    """Any broken link, anchor, snippet or ``::: module`` reference fails the build."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "registry" / "index.html").read_text()
    assert 'id="anyssl.registry.Registry"' in api  # the reference was read from the source
    install = (tmp_path / "site" / "install" / "index.html").read_text()
    assert install.count(".venv/bin/activate") >= 4  # README's set-up commands, included
