"""The CLI on graphs: GraphCL and GRACE on the embedded defaults, core methods on graphs, the
10-fold SVM protocol, MUTAG from the shared folder, and bad input (one line, exit code 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from cli_helpers import run_cli

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"
FAST = ["--max-steps", "2", "--seed", "0"]


def test_graphcl_on_the_default_graphs(tmp_path: Path):
    out = tmp_path / "graphcl"
    code, text = run_cli("train", "--modality", "graph", "--method", "graphcl", *FAST,
                         "--eval-protocol", "knn", "--out", str(out))
    assert code == 0, text
    cfg = (out / "config.yaml").read_text()
    assert "batch_size: 128" in cfg  # GraphCL's batch on the 1,617 training digit graphs
    assert 0.1 < json.loads((out / "eval.json").read_text())["pretrained"]["knn"]["top1"] <= 1


def test_grace_defaults_to_the_node_level_graph(tmp_path: Path):
    out = tmp_path / "grace"
    code, text = run_cli("train", "--modality", "graph", "--method", "grace", *FAST,
                         "-e", "out_dim=32", "-m", "proj_dim=32", "--eval-protocol", "linear",
                         "--out", str(out))
    assert code == 0, text
    report = json.loads((out / "eval.json").read_text())
    assert 0.1 < report["pretrained"]["linear"]["top1"] <= 1.0  # on the 1,437 test digits
    assert "batch_size: 1" in (out / "config.yaml").read_text()


@pytest.mark.parametrize("method", ["simclr", "mocov2", "byol"])
def test_core_methods_train_on_graphs(method: str, tmp_path: Path):
    code, text = run_cli("train", "--modality", "graph", "--method", method, *FAST,
                         "-e", "hidden_dim=16", "--no-eval", "--out", str(tmp_path / method))
    assert code == 0, text


@pytest.fixture(scope="module")
def mutag_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = SHARED / "tu" / "MUTAG"
    if not src.is_dir():
        pytest.skip(f"MUTAG not found at {src} (the shared datasets folder is absent)")
    root = tmp_path_factory.mktemp("tu")
    shutil.copytree(src, root / "MUTAG")
    return root


def test_mutag_graphcl_then_eval_svm_10_fold(mutag_root: Path, tmp_path: Path):
    out = tmp_path / "mutag"
    code, text = run_cli("train", "--modality", "graph", "--method", "graphcl", "--data",
                         str(mutag_root), *FAST, "--out", str(out))
    assert code == 0, text
    report = json.loads((out / "eval.json").read_text())
    assert {"top1", "std"} <= set(report["pretrained"]["svm"])  # 10-fold CV: mean and std
    code, text = run_cli("eval", "svm", str(out / "last.pt"), "--folds", "3", "--out",
                         str(tmp_path / "svm.json"))
    assert code == 0, text
    assert json.loads((tmp_path / "svm.json").read_text())["pretrained"]["svm"]["top1"] > 0.5


def test_a_tu_folder_missing_a_file_is_named(mutag_root: Path, tmp_path: Path):
    broken = tmp_path / "tu"
    shutil.copytree(mutag_root / "MUTAG" / "raw", broken / "MUTAG" / "raw")
    (broken / "MUTAG" / "raw" / "MUTAG_graph_indicator.txt").unlink()
    code, text = run_cli("train", "--modality", "graph", "--method", "graphcl", "--data",
                         str(broken), "--out", str(tmp_path / "run"))
    assert code == 2 and "MUTAG_graph_indicator.txt" in text and "Traceback" not in text, text


def test_node_level_data_for_a_graph_level_method_is_refused(tmp_path: Path):
    code, text = run_cli("train", "--modality", "graph", "--method", "graphcl", "--data",
                         "digits-knn", "--out", str(tmp_path / "run"))
    assert code == 2 and "graph-level method" in text and "node-level" in text, text
    code, text = run_cli("train", "--modality", "graph", "--method", "grace", "--data",
                         "digits-graphs", "--out", str(tmp_path / "run2"))
    assert code == 2 and "node-level" in text, text


def _save_graphs(path: Path, graphs: list) -> Path:
    torch.save(graphs, path)
    return path


def test_bad_graph_files_exit_2_with_one_line(tmp_path: Path):
    from torch_geometric.data import Data

    ok = Data(x=torch.ones(3, 2), edge_index=torch.tensor([[0, 1], [1, 0]]), y=torch.tensor([0]))
    no_edges = torch.zeros(2, 0, dtype=torch.long)
    nan = Data(x=torch.tensor([[float("nan"), 1.0]]), edge_index=no_edges, y=torch.tensor([1]))
    wide = Data(x=torch.ones(2, 5), edge_index=no_edges, y=torch.tensor([1]))
    for name, graphs, expect in [("nan.pt", [ok] * 10 + [nan], "NaN"),
                                 ("wide.pt", [ok] * 10 + [wide], "feature")]:
        data = _save_graphs(tmp_path / name, graphs)
        code, text = run_cli("train", "--modality", "graph", "--method", "graphcl", "--data",
                             str(data), "--out", str(tmp_path / name / "run"))
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        assert code == 2 and lines[-1].startswith("error:") and expect in lines[-1], text
