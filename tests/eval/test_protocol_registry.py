"""Every evaluation protocol, built-in or a plugin's, resolves through one registry
(``anyssl.registry.EVAL_PROTOCOLS``): its kind decides what it is called with, ``anyssl list
protocols`` shows it, and an unknown name is refused before a run trains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from anyssl.eval import EvalProtocol, evaluate, get_protocol, register_protocol
from anyssl.eval.pair_protocols import run_pair_protocols, split_protocols
from anyssl.eval.report import PROTOCOLS, check_protocols, protocol_names
from anyssl.registry import EVAL_PROTOCOLS


class Points(torch.utils.data.Dataset):
    """Two separable classes of 4-d points."""

    def __init__(self, n: int = 40, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.y = torch.arange(n) % 2
        self.x = torch.randn(n, 4, generator=g) + 6 * self.y[:, None]

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], int(self.y[i])


class Enc(nn.Module):
    out_dim = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _mean_label(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                test_y: np.ndarray, *, seed: int, shift: float = 0.0) -> dict[str, float]:
    """A toy regression probe: the mean test label plus ``shift``."""
    return {"mean_label": float(np.mean(test_y)) + shift, "seed": float(seed),
            "n_train": float(len(train_x))}


register_protocol("mean_label_probe", _mean_label, override=True)


def test_built_in_protocols_resolve_through_the_registry_with_their_kind() -> None:
    kinds = {p: get_protocol(p).kind for p in PROTOCOLS}
    assert kinds == {"linear": "features", "knn": "features", "finetune": "encoder",
                     "svm": "features", "zeroshot": "method", "retrieval": "method"}
    assert set(PROTOCOLS) <= set(EVAL_PROTOCOLS.names())
    assert "mean_label_probe" in protocol_names()
    assert split_protocols(["knn", "retrieval", "mean_label_probe", "finetune"]) == (
        ("knn", "mean_label_probe", "finetune"), ("retrieval",))


def test_a_plugin_feature_protocol_runs_with_options_and_without_device() -> None:
    """It gets the frozen features and labels, the seed and its options (not ``device``, which
    it does not take), next to a built-in one that shares the embedding."""
    res = evaluate(Enc(), Enc(), Points(), Points(40, 1), protocols=["mean_label_probe", "knn"],
                   device="cpu", seed=3, options={"mean_label_probe": {"shift": 1.0}})
    got = res["pretrained"]["mean_label_probe"]
    assert got == {"mean_label": 1.5, "seed": 3.0, "n_train": 40.0}
    assert 0.5 < res["random_init"]["knn"]["top1"] <= 1.0  # the shared embedding served both


def test_encoder_and_method_kinds_get_what_their_kind_says() -> None:
    seen: dict[str, Any] = {}

    def tune(encoder: nn.Module, train_set: Any, test_set: Any, **kw: Any) -> dict[str, float]:
        seen["encoder"] = (encoder, len(train_set), sorted(kw))
        return {"top1": 0.5}

    def whole(method: nn.Module, random_method: Any, dataset: Any, options: Any,
              **kw: Any) -> dict[str, dict[str, dict[str, float]]]:
        seen["method"] = (method, random_method, options, sorted(kw))
        return {"pretrained": {"whole": {"top1": 0.25}}}

    register_protocol("tune_probe", tune, kind="encoder", override=True)
    register_protocol("whole", whole, kind="method", override=True)
    enc = Enc()
    res = evaluate(enc, None, Points(), Points(), protocols=["tune_probe"], device="cpu",
                   options={"tune_probe": {"epochs": 2}})
    assert res == {"pretrained": {"tune_probe": {"top1": 0.5}}}
    assert seen["encoder"] == (enc, 40, ["collate", "device", "epochs", "fraction",
                                         "num_workers", "seed", "to_device"])
    method = nn.Linear(1, 1)
    out = run_pair_protocols(method, None, Points(), ["whole"], {"whole": {"a": 1}})
    assert out == {"pretrained": {"whole": {"top1": 0.25}}}
    assert seen["method"][:3] == (method, None, {"whole": {"a": 1}})
    with pytest.raises(ValueError, match="needs the whole two-tower method"):
        evaluate(enc, None, Points(), Points(), protocols=["whole"])


def test_bad_registrations_and_names_are_refused() -> None:
    with pytest.raises(ValueError, match="'knn' is built in"):
        register_protocol("knn", _mean_label)
    with pytest.raises(ValueError, match="unknown protocol kind 'frozen'"):
        register_protocol("x_probe", _mean_label, kind="frozen")
    with pytest.raises(ValueError, match="already registered"):
        register_protocol("mean_label_probe", _mean_label)
    with pytest.raises(ValueError, match=r"unknown evaluation protocol\(s\) 'nope'; valid: "
                       r"linear, knn, .*mean_label_probe"):
        check_protocols(["knn", "nope"])
    with pytest.raises(ValueError, match="unknown evaluation protocol"):
        split_protocols(["nope"])
    assert isinstance(get_protocol("knn"), EvalProtocol)


def test_list_protocols_shows_built_in_and_added_ones() -> None:
    from anyssl.cli.app import app

    res = CliRunner().invoke(app, ["list", "protocols"])
    assert res.exit_code == 0, res.output
    names = [line.split()[0] for line in res.output.splitlines() if line.strip()]
    assert {"linear", "knn", "finetune", "svm", "zeroshot", "retrieval",
            "mean_label_probe"} <= set(names)


def test_unknown_protocol_is_refused_before_training(tmp_path: Path) -> None:
    """The check comes before the run folder exists: no training is wasted."""
    from anyssl.cli.app import app

    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", "--modality", "timeseries", "--method", "simclr",
                                   "--eval-protocol", "knn", "--eval-protocol", "linaer",
                                   "--out", str(out), "--max-steps", "1"])
    assert res.exit_code == 2, res.output
    assert "unknown evaluation protocol(s) 'linaer'; valid: linear" in res.output
    assert not out.exists()
