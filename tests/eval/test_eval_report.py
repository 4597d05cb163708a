"""evaluate() on a pretrained and a random-init encoder, and the side-by-side report."""

from __future__ import annotations

import io

import pytest
import torch
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.utils.data import TensorDataset

from anyssl.eval.report import (
    FEATURE_PROTOCOLS,
    PAIR_PROTOCOLS,
    evaluate,
    format_report,
    print_report,
    report_rows,
    report_text,
)


class Select(nn.Module):
    """Keeps some input dimensions (the informative ones for the 'pretrained' encoder)."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.out_dim = len(dims)
        self.proj = nn.Linear(8, self.out_dim, bias=False)
        with torch.no_grad():
            self.proj.weight.zero_()
            self.proj.weight[torch.arange(len(dims)), dims] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def _data(n: int, seed: int) -> TensorDataset:
    """Class information lives in dims 0-1 only; dims 2-7 are noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 8, generator=g)
    x[:, :2] += 6 * torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])[y]
    return TensorDataset(x, y)


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, dict[str, float]]]:
    return evaluate(Select([0, 1]), Select([2, 3, 4]), _data(150, 0), _data(60, 1),
                    device="cpu", options={"knn": {"k": 20}})


def test_evaluate_runs_both_encoders(results: dict[str, dict[str, dict[str, float]]]) -> None:
    assert set(results) == {"pretrained", "random_init"}
    for res in results.values():
        assert set(res) == {"linear", "knn"}
        assert all(0.0 <= res[p]["top1"] <= 1.0 for p in res)
    assert results["pretrained"]["knn"]["k"] == 20  # per-protocol options reach the protocol
    assert results["pretrained"]["linear"]["top1"] > 0.95
    assert results["random_init"]["linear"]["top1"] < 0.6  # noise features: near chance (1/3)


def test_every_protocol_dispatches() -> None:
    res = evaluate(Select([0, 1]), None, _data(90, 0), _data(30, 1), device="cpu",
                   protocols=FEATURE_PROTOCOLS, fraction=0.2,
                   options={"finetune": {"epochs": 2, "lr": 0.1}, "svm": {"folds": 3}})
    assert set(res) == {"pretrained"}
    out = res["pretrained"]
    assert set(out) == set(FEATURE_PROTOCOLS)
    assert out["finetune"]["n_labels"] == 18
    assert set(out["svm"]) == {"top1", "std"}  # folds given: svm_cv over train + test


@pytest.mark.parametrize("protocol", PAIR_PROTOCOLS)
def test_pair_protocols_need_the_whole_method(protocol: str) -> None:
    with pytest.raises(ValueError, match="two-tower method"):
        evaluate(Select([0, 1]), None, _data(90, 0), _data(30, 1), protocols=(protocol,))


def test_unknown_protocol_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="linear, knn, finetune, svm") as err:
        evaluate(Select([0]), None, _data(9, 0), _data(9, 1), protocols=("linear", "bogus"))
    assert "'bogus'" in str(err.value)
    with pytest.raises(ValueError, match="valid"):
        evaluate(Select([0]), None, _data(9, 0), _data(9, 1), options={"lin": {}})


def test_report_rows_table_and_text(results: dict[str, dict[str, dict[str, float]]]) -> None:
    rows = report_rows(results)
    top1 = next(r for r in rows if r[:2] == ["linear", "top1"])
    pre, rnd = results["pretrained"]["linear"]["top1"], results["random_init"]["linear"]["top1"]
    assert top1 == ["linear", "top1", f"{100 * pre:.2f}", f"{100 * rnd:.2f}",
                    f"{100 * (pre - rnd):+.2f}"]
    k_row = next(r for r in rows if r[:2] == ["knn", "k"])
    assert k_row == ["knn", "k", "20", "20", ""]

    table = format_report(results)
    assert isinstance(table, Table)
    assert [c.header for c in table.columns] == ["protocol", "metric", "pretrained",
                                                 "random init", "delta"]
    assert table.row_count == len(rows)
    console = Console(record=True, width=120, file=io.StringIO())
    console.print(table)
    assert top1[2] in console.export_text()

    text = report_text(results)
    assert all(cell in text for cell in top1)
    buf = io.StringIO()  # not a terminal: plain text
    print_report(results, file=buf)
    assert buf.getvalue() == text + "\n"
