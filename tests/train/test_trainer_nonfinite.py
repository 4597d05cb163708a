"""Non-finite gradients stop the run naming the step (the last good checkpoint stays); with
``skip_nonfinite`` a step with a non-finite loss or gradient is skipped: no update, counted in
the metrics and the checkpoint, while the step counter, schedule and ``on_step_end`` go on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor
from train_toys import ToyMethod, ToySet, make_method, toy_config

from anyssl.train import NonFiniteLossError, Trainer, load_checkpoint, warmup_cosine
from anyssl.train.loop import NonFiniteGradientError
from anyssl.train.nonfinite import grad_max, nonfinite_error


class _InfGrad(torch.autograd.Function):
    """Identity forward; an all-inf gradient backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return torch.full_like(grad, float("inf"))


class InfGradMethod(ToyMethod):
    """The toy whose gradients are inf at the steps in ``bad`` (its loss stays finite)."""

    def __init__(self, bad: set[int]) -> None:
        super().__init__()
        self.bad = bad

    def training_step(self, batch: Any) -> tuple[Tensor, dict[str, Any]]:
        step = self.calls
        loss, logs = super().training_step(batch)
        return (_InfGrad.apply(loss) if step in self.bad else loss), logs


class Weights:
    """Records the first layer's weights after every step."""

    def __init__(self) -> None:
        self.after: list[Tensor] = []

    def on_step_end(self, trainer: Trainer) -> None:
        self.after.append(trainer.encoder[0].weight.detach().clone())  # type: ignore[index]


def fit(out: Path, method: Any, callbacks: Any = (), **kw: Any) -> Trainer:
    t = Trainer(method, ToySet(64), toy_config(out, **kw), out, modality_name="toy",
                callbacks=callbacks)
    t.fit()
    return t


def test_grad_max_sees_nan_and_inf() -> None:
    a, b = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
    assert float(grad_max([a, b])) == 0.0  # no gradients yet
    a.grad, b.grad = torch.tensor([1.0, -7.0, 2.0]), torch.tensor([3.0, 0.5])
    assert float(grad_max([a, b])) == 7.0
    b.grad[1] = float("inf")
    assert grad_max([a, b]).isinf()
    a.grad[0] = float("nan")
    assert grad_max([a, b]).isnan()


def test_error_names_what_went_wrong() -> None:
    assert nonfinite_error(1.0, 2.0, 3, "kept") is None
    err = nonfinite_error(float("-inf"), float("nan"), 3, "kept")
    assert isinstance(err, NonFiniteLossError) and str(err).startswith("loss became inf at step 3")
    err = nonfinite_error(1.0, float("nan"), 9, "kept")
    assert isinstance(err, NonFiniteGradientError)
    assert str(err).startswith("gradients became nan at step 9 (the loss was finite); kept;")


def test_inf_gradients_stop_naming_the_step(tmp_path: Path) -> None:
    # an inf loss gradient meets weights of both signs on its way back: nan parameter grads
    with pytest.raises(NonFiniteGradientError, match=r"gradients became nan at step 5 \(the "
                       r"loss was finite\); the last good checkpoint .*last.pt \(step 4\) is kept"):
        fit(tmp_path, InfGradMethod({5}), checkpoint_every=4)
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["method"].values() if v.is_floating_point())


def test_skip_nonfinite_drops_the_update_and_counts(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    weights = Weights()
    t = fit(tmp_path, InfGradMethod({5, 6}), (weights,), skip_nonfinite=True, log_every=1)
    assert t.step == 16 and t.skipped_steps == 2
    assert torch.equal(weights.after[5], weights.after[4])  # no update at the skipped steps
    assert torch.equal(weights.after[6], weights.after[4])
    assert not torch.equal(weights.after[7], weights.after[6])  # training went on
    assert t.method.step_ends == [(i, 16) for i in range(16)]  # type: ignore[attr-defined]
    rows = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["skipped_steps"] for r in rows[3:8]] == [0, 0, 1, 2, 2]
    for r in rows:  # the schedule follows the step index, skipped or not
        assert r["lr"] == pytest.approx(warmup_cosine(r["step"], 16, 2, 0.4 * 8 / 256))
    assert load_checkpoint(tmp_path / "last.pt")["skipped_steps"] == 2
    assert "skipped 2 of 16 steps" in capsys.readouterr().out
    assert all(torch.isfinite(p).all() for p in t.method.parameters())


def test_skip_nonfinite_also_skips_a_nan_loss(tmp_path: Path) -> None:
    t = fit(tmp_path, make_method(nan_at=12), skip_nonfinite=True)
    assert t.skipped_steps == 4 and t.step == 16
    assert all(torch.isfinite(p).all() for p in t.method.parameters())
