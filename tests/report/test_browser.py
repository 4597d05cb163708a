"""The report page in a real headless browser: Playwright driving the system's Chromium (its
own browser download is not reachable offline). The page must load without console errors or
requests beyond itself, every picture must decode, and the evaluation table must hold the
numbers of eval.json."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib", reason="the report draws with matplotlib (anyssl[report])")
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (pip install playwright)")

#: Chromium flags of a quiet, offline, sandbox-free headless run (CI containers run as root).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium() -> str | None:
    """The browser to drive: $ANYSSL_CHROMIUM, else Debian's /usr/bin/chromium, else one on
    PATH."""
    for candidate in (os.environ.get("ANYSSL_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


BROWSER = chromium()
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium found (apt-get install "
                                "chromium, or set ANYSSL_CHROMIUM to a Chromium executable)")


def _open(page_path: Path) -> dict[str, Any]:
    """Load the page; return what the browser saw: console errors, requests, pictures and the
    evaluation table's rows."""
    seen: dict[str, Any] = {"errors": [], "requests": []}
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=BROWSER, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error"
                    else None)
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            seen["images"] = page.evaluate(
                "Array.from(document.images).map(i => [i.complete, i.naturalWidth, "
                "i.naturalHeight, i.alt])")
            seen["table"] = page.evaluate(
                "Array.from(document.querySelectorAll('section')).find(s => "
                "s.querySelector('h2').textContent === 'Evaluation').querySelector('table')"
                ".innerText")
        finally:
            browser.close()
    return seen


def test_report_page_in_a_real_browser(image_run: Path, image_report: Path) -> None:
    seen = _open(image_report)
    assert seen["errors"] == []
    assert seen["requests"] == [image_report.resolve().as_uri()]  # nothing else fetched
    assert len(seen["images"]) == 6
    for complete, width, height, alt in seen["images"]:
        assert complete and width > 0 and height > 0, alt
    rows = [line.split("\t") for line in seen["table"].splitlines()]
    report = json.loads((image_run / "eval.json").read_text())
    for protocol, metrics in report["pretrained"].items():
        for metric, value in metrics.items():
            if metric.startswith("top"):
                random_init = report["random_init"][protocol][metric]
                expected = [protocol, metric, f"{100 * value:.2f}", f"{100 * random_init:.2f}",
                            f"{100 * (value - random_init):+.2f}"]
                assert expected in rows, (expected, rows)
