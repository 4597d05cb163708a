"""The reference schedules' last details (``anyssl.train.recipe``): the cosine's lr floor
(``final_lr_ratio``) and gradient clipping from a method's ``train_defaults`` (``grad_clip``,
``grad_clip_mode``), against transcriptions of the reference code, through the trainer, in the
recorded config and across a resume."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
import yaml
from test_trainer_resume import Interrupt, StopAt, assert_same_state
from train_toys import ToyMethod, ToySet, toy_config

from anyssl.methods.barlowtwins import BarlowTwins
from anyssl.methods.dino import DINO
from anyssl.methods.simclr import SimCLR
from anyssl.methods.swav import SwAV
from anyssl.methods.vicreg import VICReg
from anyssl.train import ConfigError, TrainConfig, Trainer, resolve_defaults
from anyssl.train.schedule import build_scheduler
from anyssl.train.step_hooks import clip_gradients


# ---- transcriptions of the reference code ----
def barlow_adjust_learning_rate(step: int, max_steps: int, warmup_steps: int,
                                base_lr: float) -> float:
    """facebookresearch/barlowtwins main.py L155-166 (vicreg main_vicreg.py L167-178 is the
    same), with ``len(loader)`` folded into ``max_steps`` and ``warmup_steps``."""
    if step < warmup_steps:
        lr = base_lr * step / warmup_steps
    else:
        step -= warmup_steps
        max_steps -= warmup_steps
        q = 0.5 * (1 + math.cos(math.pi * step / max_steps))
        end_lr = base_lr * 0.001
        lr = base_lr * q + end_lr * (1 - q)
    return lr


def dino_cosine_scheduler(base_value: float, final_value: float, epochs: int,
                          niter_per_ep: int, warmup_epochs: int = 0,
                          start_warmup_value: float = 0) -> np.ndarray:
    """facebookresearch/dino utils.py L187-198."""
    warmup_schedule = np.array([])
    warmup_iters = warmup_epochs * niter_per_ep
    if warmup_epochs > 0:
        warmup_schedule = np.linspace(start_warmup_value, base_value, warmup_iters)
    iters = np.arange(epochs * niter_per_ep - warmup_iters)
    schedule = final_value + 0.5 * (base_value - final_value) * (
        1 + np.cos(np.pi * iters / len(iters)))
    schedule = np.concatenate((warmup_schedule, schedule))
    assert len(schedule) == epochs * niter_per_ep
    return schedule


def dino_clip_gradients(model_params: list[torch.nn.Parameter], clip: float) -> list[float]:
    """facebookresearch/dino utils.py L132-141 (``model.named_parameters()`` -> a list)."""
    norms = []
    for p in model_params:
        if p.grad is not None:
            param_norm = p.grad.data.norm(2)
            norms.append(param_norm.item())
            clip_coef = clip / (param_norm + 1e-6)
            if clip_coef < 1:
                p.grad.data.mul_(clip_coef)
    return norms


def lrs(total: int, warmup: int, peak: float, ratio: float) -> list[float]:
    """The lr of every step 0..total (the last one: after the run) of ``build_scheduler``."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    sched = build_scheduler(opt, "cosine", total, warmup, final_lr_ratio=ratio)
    out = []
    for _ in range(total + 1):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


# ---- the schedule ----
def test_cosine_ends_at_the_floor() -> None:
    peak, ratio, total, warmup = 2.0, 0.01, 20, 4
    lr = lrs(total, warmup, peak, ratio)
    assert lr[0] == pytest.approx(peak / warmup)  # warm-up never starts at 0
    assert lr[warmup - 1] == pytest.approx(peak) and lr[warmup] == pytest.approx(peak)
    last = ratio * peak + 0.5 * (peak - ratio * peak) * (1 + math.cos(math.pi * 15 / 16))
    assert lr[total - 1] == pytest.approx(last)
    assert lr[total] == pytest.approx(ratio * peak)  # the floor, not 0
    assert min(lr) == pytest.approx(ratio * peak)
    assert lrs(total, warmup, peak, 0.0)[total] == pytest.approx(0.0, abs=1e-12)  # the default


@pytest.mark.parametrize("method", [BarlowTwins, VICReg])
def test_cosine_matches_barlow_twins_and_vicreg_after_warmup(method: Any) -> None:
    h = resolve_defaults(TrainConfig(batch_size=2048), method.train_defaults, steps_per_epoch=5)
    total, warmup = h["total_steps"], h["warmup_steps"]
    ours = lrs(total, warmup, h["lr"], h["final_lr_ratio"])
    # the reference warms up from lr 0 (step / warmup); ours from lr / warmup, as schedule.py says
    for step in range(warmup, total):
        ref = barlow_adjust_learning_rate(step, total, warmup, h["lr"])
        assert ours[step] == pytest.approx(ref, rel=1e-12), step


def test_cosine_matches_dino_at_its_reference_batch() -> None:
    h = resolve_defaults(TrainConfig(batch_size=256, epochs=100), DINO.train_defaults,
                         steps_per_epoch=3)
    assert h["lr"] * h["final_lr_ratio"] == pytest.approx(1e-6)  # main_dino.py --min_lr 1e-6
    ref = dino_cosine_scheduler(h["lr"], 1e-6, 100, 3, warmup_epochs=10)
    ours = lrs(h["total_steps"], h["warmup_steps"], h["lr"], h["final_lr_ratio"])
    assert h["warmup_steps"] == 30
    np.testing.assert_allclose(ours[30:300], ref[30:], rtol=1e-12)


def test_reference_floors_resolve_from_train_defaults() -> None:
    def h(method: Any, **kw: Any) -> dict[str, Any]:
        return resolve_defaults(TrainConfig(batch_size=256, **kw), method.train_defaults)

    swav = h(SwAV)
    assert swav["lr"] * swav["final_lr_ratio"] == pytest.approx(0.0006)  # --final_lr 0.0006
    assert h(BarlowTwins)["final_lr_ratio"] == h(VICReg)["final_lr_ratio"] == 0.001
    dino = h(DINO)
    assert (dino["grad_clip"], dino["grad_clip_mode"]) == (3.0, "per_parameter")
    simclr = h(SimCLR)
    assert (simclr["final_lr_ratio"], simclr["grad_clip"], simclr["grad_clip_mode"]) == (
        0.0, None, "global")
    mine = h(DINO, grad_clip=1.0, grad_clip_mode="global", final_lr_ratio=0.0)
    assert (mine["grad_clip"], mine["grad_clip_mode"], mine["final_lr_ratio"]) == (
        1.0, "global", 0.0)


@pytest.mark.parametrize("kw", [{"grad_clip": 0.0}, {"grad_clip": -1.0},
                                {"grad_clip_mode": "layer"}, {"final_lr_ratio": 1.5},
                                {"final_lr_ratio": -0.1}])
def test_bad_config_values_are_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(kw))):
        TrainConfig.from_dict(kw)


@pytest.mark.parametrize("defaults", [{"final_lr_ratio": 2.0}, {"grad_clip": 0},
                                      {"grad_clip_mode": "layer"}, {"grad_clip": "3"}])
def test_bad_method_defaults_are_refused(defaults: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(defaults))):
        resolve_defaults(TrainConfig(), {**ToyMethod.train_defaults, **defaults})


def test_scheduler_refuses_a_floor_outside_0_1() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="final_lr_ratio"):
        build_scheduler(opt, "cosine", 10, 0, final_lr_ratio=1.5)


# ---- clipping ----
def _params(seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.zeros(n)) for n in (5, 7, 3)]
    for p, scale in zip(params, (10.0, 0.1, 4.0), strict=True):
        p.grad = scale * torch.randn(p.shape, generator=g)
    params.append(torch.nn.Parameter(torch.zeros(2)))  # no gradient (a frozen layer)
    return params


def test_per_parameter_clipping_matches_dino() -> None:
    ours, ref = _params(), _params()
    before = torch.cat([p.grad for p in ours[:3]]).norm()
    norm = clip_gradients(ours, 3.0, "per_parameter")
    ref_norms = dino_clip_gradients(ref, 3.0)
    torch.testing.assert_close(norm, before)  # the global norm before clipping
    assert ref_norms[0] > 3.0 > ref_norms[1]  # one clipped, one left alone
    for a, b in zip(ours, ref, strict=True):
        if b.grad is None:
            assert a.grad is None
        else:
            torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)
    assert all(float(p.grad.norm()) <= 3.0 for p in ours if p.grad is not None)
    assert float(torch.cat([p.grad for p in ours[:3]]).norm()) > 3.0  # not a global bound


def test_unknown_clip_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="per_parameter"):
        clip_gradients(_params(), 1.0, "layer")


# ---- through the trainer ----
class RecipeToy(ToyMethod):
    """The toy method with a reference recipe's clipping and lr floor in its train_defaults."""

    train_defaults: ClassVar[dict[str, Any]] = {
        **ToyMethod.train_defaults, "grad_clip": 1e-3, "grad_clip_mode": "per_parameter",
        "final_lr_ratio": 0.05}


def fit(out: Path, callbacks: tuple[Any, ...] = (), **kw: Any) -> Trainer:
    torch.manual_seed(0)
    trainer = Trainer(RecipeToy(), ToySet(64), toy_config(out, **kw), out, modality_name="toy",
                      callbacks=callbacks)
    trainer.fit()
    return trainer


def _grad_norms(trainer: Trainer) -> list[float]:
    return [float(p.grad.norm()) for p in trainer.method.parameters() if p.grad is not None]


def test_clipping_and_floor_come_from_the_method_defaults(tmp_path: Path) -> None:
    t = fit(tmp_path, log_every=1, max_steps=4)
    norms = _grad_norms(t)  # the last step's gradients, as the optimizer used them
    assert norms and max(norms) <= 1e-3 * (1 + 1e-5)
    assert sum(n * n for n in norms) ** 0.5 > 1e-3 * 1.5  # each tensor bounded, not the total
    rows = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(r["grad_norm"] > 1e-3 for r in rows)
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(0.05 * t.hparams["lr"])
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert (saved["grad_clip"], saved["grad_clip_mode"], saved["final_lr_ratio"]) == (
        1e-3, "per_parameter", 0.05)


def test_an_explicit_config_wins(tmp_path: Path) -> None:
    t = fit(tmp_path / "loose", grad_clip=1e6, grad_clip_mode="global", final_lr_ratio=0.0,
            max_steps=4)
    assert max(_grad_norms(t)) > 1e-3 * 1.5  # the default's bound was not applied
    assert t.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    tight = fit(tmp_path / "tight", grad_clip=1e-5, grad_clip_mode="global", max_steps=4)
    assert sum(n * n for n in _grad_norms(tight)) ** 0.5 <= 1e-5 * (1 + 1e-4)
    saved = yaml.safe_load((tmp_path / "tight" / "config.yaml").read_text())
    assert (saved["grad_clip"], saved["grad_clip_mode"]) == (1e-5, "global")


def test_resume_equals_a_straight_run(tmp_path: Path) -> None:
    straight = fit(tmp_path / "a")
    with pytest.raises(Interrupt):
        fit(tmp_path / "b", (StopAt(step=5),))
    resumed = fit(tmp_path / "b", resume=True)
    assert_same_state(straight, resumed)


@pytest.mark.parametrize("kw", [{"final_lr_ratio": 0.5}, {"grad_clip": 2e-3},
                                {"grad_clip_mode": "global"}])
def test_a_changed_floor_or_clipping_on_resume_is_warned(tmp_path: Path, caplog: Any,
                                                         kw: dict[str, Any]) -> None:
    fit(tmp_path, max_steps=2)
    with caplog.at_level("WARNING", logger="anyssl.train.loop"):
        fit(tmp_path, max_steps=2, resume=True)
    assert "will not match" not in caplog.text  # the same run: resolved defaults compare equal
    with caplog.at_level("WARNING", logger="anyssl.train.loop"):
        fit(tmp_path, max_steps=2, resume=True, **kw)
    assert re.search(rf"changed {next(iter(kw))}: it will not match", caplog.text)
