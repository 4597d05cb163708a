"""Schedules: values at the warm-up end, half-way and the end; LambdaLR follows them."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from anyssl.train import build_scheduler, constant, step_decay, warmup_cosine


def test_warmup_cosine_landmarks() -> None:
    total, warm, base = 110, 10, 2.0
    assert warmup_cosine(0, total, warm, base) == pytest.approx(0.2)  # never lr 0
    assert warmup_cosine(4, total, warm, base) == pytest.approx(1.0)
    assert warmup_cosine(9, total, warm, base) == pytest.approx(base)  # warm-up end
    assert warmup_cosine(10, total, warm, base) == pytest.approx(base)
    assert warmup_cosine(60, total, warm, base) == pytest.approx(1.0)  # half of the cosine
    assert warmup_cosine(60, total, warm, base, final_lr=0.4) == pytest.approx(1.2)
    assert warmup_cosine(110, total, warm, base) == pytest.approx(0.0, abs=1e-12)  # end
    assert warmup_cosine(35, total, warm, base) == pytest.approx(1 + math.cos(math.pi / 4))


def test_step_decay_and_constant() -> None:
    assert step_decay(0, 100, 0, 1.0) == 1.0
    assert step_decay(59, 100, 0, 1.0) == 1.0
    assert step_decay(60, 100, 0, 1.0) == pytest.approx(0.1)
    assert step_decay(80, 100, 0, 1.0) == pytest.approx(0.01)
    assert step_decay(1, 100, 4, 1.0, milestones=(0.5,)) == pytest.approx(0.5)
    assert constant(1, 100, 4, 3.0) == pytest.approx(1.5) and constant(50, 100, 4, 3.0) == 3.0


@pytest.mark.parametrize("name", ["cosine", "step", "constant"])
def test_lambda_lr_steps_per_optimizer_step(name: str) -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.5)
    sched = build_scheduler(opt, name, total_steps=20, warmup_steps=4)
    refs: dict[str, Callable[[int, int, int, float], float]] = {
        "cosine": warmup_cosine, "step": step_decay, "constant": constant}
    ref = refs[name]
    for step in range(20):
        assert opt.param_groups[0]["lr"] == pytest.approx(ref(step, 20, 4, 0.5))
        opt.step()
        sched.step()


def test_build_scheduler_errors() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="unknown schedule 'poly'; choose one of"):
        build_scheduler(opt, "poly", 10)
    with pytest.raises(ValueError, match="warmup_steps <= total_steps"):
        build_scheduler(opt, "cosine", 10, 11)
    with pytest.raises(ValueError, match="fractions of the run"):
        build_scheduler(opt, "step", 10, 0, milestones=[60, 80])
