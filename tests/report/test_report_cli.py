"""``anyssl report`` end to end on tiny real runs: the page's sections and numbers, run
comparison, --no-eval runs, every modality, bad input."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from report_helpers import NO_EVAL, run_cli, train

pytest.importorskip("matplotlib", reason="the report draws with matplotlib (anyssl[report])")


def _pngs(page: str) -> list[tuple[int, int]]:
    """The (width, height) of every inlined picture, decoded."""
    from PIL import Image

    return [Image.open(io.BytesIO(base64.b64decode(s))).size
            for s in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def eval_cells(eval_json: Path) -> list[str]:
    """The table cells of eval.json's top-k accuracies, in % as the table prints them."""
    report = json.loads(eval_json.read_text())
    return [f"{100 * v:.2f}" for side in report.values() for metrics in side.values()
            for k, v in metrics.items() if k.startswith("top")]


def test_report_of_an_image_run_holds_every_part(image_run: Path, image_report: Path) -> None:
    page = image_report.read_text()
    for title in ("Runs", "Training curves", "Evaluation", "Embeddings: digits-simclr",
                  "Nearest neighbours: digits-simclr"):
        assert f"<h2>{title}</h2>" in page
    for alt in ("Training loss against the step", "Learning rate against the step",
                "Online kNN top-1 (--monitor-every) against the step", "PCA map of 450 test",
                "t-SNE map of 450 test", "grid of query images and their nearest neighbours"):
        assert f'alt="{alt}' in page
    table = page[page.index("<h2>Evaluation</h2>"):page.index("<h2>Embeddings")]
    for cell in eval_cells(image_run / "eval.json"):
        assert f'<td class="num">{cell}</td>' in table
    knn = json.loads((image_run / "metrics.jsonl").read_text().splitlines()[-1])["knn_top1"]
    assert f"{100 * knn:.2f}" in page[:page.index("<h2>Training curves")]
    sizes = _pngs(page)
    assert len(sizes) == 6 and all(w > 100 and h > 100 for w, h in sizes)
    assert image_report.stat().st_size < 1_000_000
    assert "<script" not in page and "http" not in page  # self-contained


def test_report_never_overwrites(image_run: Path, image_report: Path) -> None:
    before = image_report.read_bytes()
    code, text = run_cli("report", image_run, "--out", image_report, "--no-embeddings")
    assert code == 2 and "already exists; choose another --out" in text
    assert text.count("\n") == 1 and image_report.read_bytes() == before


def test_compare_runs_overlays_curves_in_one_table(image_run: Path, no_eval_run: Path,
                                                    tmp_path: Path) -> None:
    out = tmp_path / "compare.html"
    code, text = run_cli("report", image_run, no_eval_run, "--out", out, "--no-tsne",
                         "--max-points", "60")
    assert code == 0 and ", 2 runs)" in text, text
    page = out.read_text()
    assert "anyssl report: 2 runs compared" in page
    assert page.count("<table>") == 2  # the runs and one evaluation table
    assert "<th>digits-simclr pretrained</th><th>digits-simclr random init</th>" in page
    assert "digits-byol: not evaluated (trained with --no-eval)" in page
    for name in ("digits-simclr", "digits-byol"):
        assert f"<h2>Embeddings: {name}</h2>" in page
    assert "PCA map of 60 test" in page  # --max-points: a class-balanced sample


def test_report_of_a_no_eval_run_says_so(no_eval_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "r.html"
    code, text = run_cli("report", no_eval_run, "--out", out, "--no-embeddings")
    assert code == 0, text
    page = out.read_text()
    assert "not evaluated (trained with --no-eval)" in page
    assert page.count("<table>") == 1 and "<h2>Embeddings" not in page
    assert "no kNN curve: train with --monitor-every N" in page


def test_report_escapes_the_run_name(no_eval_run: Path, tmp_path: Path) -> None:
    odd = tmp_path / 'run<b>"x"&y'
    shutil.copytree(no_eval_run, odd)
    out = tmp_path / "r.html"
    assert run_cli("report", odd, "--out", out, "--no-embeddings")[0] == 0
    page = out.read_text()
    assert "run&lt;b&gt;&quot;x&quot;&amp;y" in page and "<b>" not in page


def test_report_without_a_checkpoint_notes_the_missing_map(no_eval_run: Path,
                                                          tmp_path: Path) -> None:
    run = tmp_path / "no-checkpoint"
    shutil.copytree(no_eval_run, run, ignore=shutil.ignore_patterns("*.pt"))
    out = tmp_path / "r.html"
    assert run_cli("report", run, "--out", out)[0] == 0
    page = out.read_text()
    assert f"no checkpoint {run / 'last.pt'}: no map of the embeddings" in page
    assert 'alt="Training loss against the step"' in page


@pytest.mark.parametrize(("args", "message"), [
    (["/no/such/run"], "run folder /no/such/run does not exist"),
    ([".", "--out", "x.html"], "is not a run folder (no config.yaml)"),
    (["RUN", "--out", "report.txt"], "--out must end in .html"),
    (["RUN", "--max-points", "2"], "--max-points"),
    (["RUN", "--device", "gpu"], "--device 'gpu' is not a device; use auto, cpu, cuda"),
])
def test_bad_input_is_one_line_exit_2(args: list[str], message: str, no_eval_run: Path,
                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, text = run_cli("report", *[str(no_eval_run) if a == "RUN" else a for a in args])
    assert code == 2 and message in text, text
    assert not list(tmp_path.glob("*.html")) and not list(tmp_path.glob("*.txt"))


#: modality, method, extra arguments making it tiny, the panel section the page must show.
MODALITIES = [
    ("timeseries", "simclr", [], "Series and their nearest neighbours"),
    ("image-text", "clip", ["-d", "image_size=16", "-e", "image_width=8", "-e", "text_width=16"],
     "Retrieval examples"),
    ("graph", "simclr", [], None),
    ("text", "simclr", [], None),
]


@pytest.mark.parametrize(("modality", "method", "extra", "panel"), MODALITIES,
                         ids=[m[0] for m in MODALITIES])
def test_every_modality_gets_curves_and_maps(modality: str, method: str, extra: list[str],
                                             panel: str | None, tmp_path: Path) -> None:
    run = train(tmp_path / modality, "--modality", modality, "--method", method, *NO_EVAL,
                *extra)
    out = tmp_path / "r.html"
    code, text = run_cli("report", run, "--out", out, "--no-tsne", "--max-points", "80")
    assert code == 0, text
    page = out.read_text()
    assert f"({modality}, {method})" in page
    assert 'alt="Training loss against the step"' in page and 'alt="PCA map of ' in page
    if panel is not None:
        assert f"<h2>{panel}: {modality}</h2>" in page
    assert all(w > 50 and h > 50 for w, h in _pngs(page))
