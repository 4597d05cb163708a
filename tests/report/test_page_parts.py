"""Reading run folders and writing the page: records, tables, escaping, inlined pictures."""

from __future__ import annotations

import base64
import json
import math
import re
import sys
from pathlib import Path

import pytest

from anyssl.report.html import render_page
from anyssl.report.runs import read_run, run_names, series
from anyssl.report.sections import Picture, Section, Table
from anyssl.report.tables import evaluation_section, runs_section

PNG = base64.b64decode(  # a 1 x 1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
EVAL = {"pretrained": {"knn": {"top1": 0.9, "k": 5}},
        "random_init": {"knn": {"top1": 0.5, "k": 1}}}


def _run(folder: Path, lines: list[str], eval_: dict | None = None,
         config: str = "modality: image\nmethod: simclr\n") -> Path:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(config)
    (folder / "metrics.jsonl").write_text("".join(ln + "\n" for ln in lines))
    if eval_ is not None:
        (folder / "eval.json").write_text(json.dumps(eval_))
    return folder


def test_read_run_splits_training_and_monitor_records(tmp_path: Path) -> None:
    run = read_run(_run(tmp_path / "r", [
        json.dumps({"step": 1, "epoch": 0, "loss": "nan", "lr": 0.5}),
        json.dumps({"step": 0, "epoch": 0, "loss": 2.0, "lr": 1.0}),
        json.dumps({"step": 1, "epoch": 1, "knn_top1": 0.25}),
        '{"step": 2, "loss": 1.',  # a write cut short
        "[1, 2]",
    ], EVAL))
    assert (run.modality, run.method, run.skipped) == ("image", "simclr", 2)
    steps, losses = series(run.train, "loss")
    assert steps == [0, 1] and losses[0] == 2.0 and math.isnan(losses[1])
    assert series(run.monitor, "knn_top1") == ([1], [0.25])
    assert run.eval == EVAL and run.checkpoint == tmp_path / "r" / "last.pt"


def test_read_run_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"not a run folder \(no config.yaml\)"):
        read_run(tmp_path / "empty")
    bad = _run(tmp_path / "bad", [])
    (bad / "eval.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"eval\.json is not valid JSON"):
        read_run(bad)
    (bad / "eval.json").write_text("[]")
    with pytest.raises(ValueError, match="not an anyssl evaluation"):
        read_run(bad)


def test_run_names_stay_distinct(tmp_path: Path) -> None:
    a = read_run(_run(tmp_path / "a" / "run", []))
    b = read_run(_run(tmp_path / "b" / "run", []))
    assert run_names([a]) == ["run"]
    assert run_names([a, b]) == [str(tmp_path / "a" / "run"), str(tmp_path / "b" / "run")]


def test_evaluation_tables_for_one_run_several_and_none(tmp_path: Path) -> None:
    a = read_run(_run(tmp_path / "a", [], EVAL))
    b = read_run(_run(tmp_path / "b", []))
    one = evaluation_section([a]).tables[0]
    assert one.header == ("protocol", "metric", "pretrained", "random init", "delta")
    assert ("knn", "top1", "90.00", "50.00", "+40.00") in one.rows
    both = evaluation_section([a, b])
    assert both.tables[0].header == ("protocol", "metric", "a pretrained", "a random init")
    assert ("knn", "k", "5", "1") in both.tables[0].rows
    assert any("b: not evaluated (trained with --no-eval)" in n for n in both.notes)
    none = evaluation_section([b])
    assert not none.tables and "not evaluated" in none.notes[0]
    assert runs_section([a, b]).tables[0].rows[1][-1] == "no (--no-eval)"


def test_page_escapes_text_and_inlines_pictures() -> None:
    evil = '<script>alert("x")</script>'
    page = render_page(evil, [Section(evil, pictures=[Picture(PNG, alt=evil, caption=evil)],
                                      tables=[Table(("a",), ((evil,),))], notes=[evil])])
    assert "<script" not in page
    # escaped in the title, h1, h2, note, table cell, alt and caption
    assert page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") == 7
    src = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert [base64.b64decode(s) for s in src] == [PNG]
    assert "http" not in page  # self-contained: nothing to fetch


def test_missing_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from anyssl.report.plots import require_matplotlib

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # None: "import matplotlib" fails
    with pytest.raises(ImportError, match=re.escape("pip install 'anyssl[report]'")):
        require_matplotlib()


def test_sections_refuse_bad_parts() -> None:
    with pytest.raises(ValueError, match="not PNG data"):
        Picture(b"GIF89a", alt="x")
    with pytest.raises(ValueError, match="has 1 cells, the header 2"):
        Table(("a", "b"), (("1",),))
