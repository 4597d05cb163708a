"""The trainer's optional method hooks (``anyssl.train.step_hooks``): ``before_optimizer_step``,
``optimizer_overrides`` (fixed-lr groups), ``train_defaults["weight_decay_end"]`` (a cosine
weight decay) and ``bias_lr``, on the toy method, and a resumed run with all of them in use."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from test_trainer_resume import Interrupt, StopAt, assert_same_state
from train_toys import ToyMethod, ToySet, toy_config

from anyssl.train import Trainer
from anyssl.train.optim import build_optimizer
from anyssl.train.schedule import WeightDecaySchedule, warmup_cosine
from anyssl.train.step_hooks import method_overrides

SPE, TOTAL = 8, 16  # toy_config: 64 samples, batch 8, 2 epochs
WD, WD_END = 1e-3, 0.1


class HookToy(ToyMethod):
    """The toy method with every hook: ``encoder.0`` frozen in the first epoch (DINO's last
    layer), ``encoder.4`` at a fixed lr (SimSiam's predictor), a cosine weight decay."""

    train_defaults: ClassVar[dict[str, Any]] = {**ToyMethod.train_defaults,
                                                "weight_decay_end": WD_END}

    def __init__(self) -> None:
        super().__init__()
        self.hook_calls: list[tuple[int, int, int]] = []
        self.before_update: list[bool] = []  # weights still those training_step saw
        self._seen: torch.Tensor | None = None

    def optimizer_overrides(self) -> dict[str, dict[str, Any]]:
        return {"encoder.4.": {"fixed_lr": True}}

    def training_step(self, batch: Any) -> tuple[torch.Tensor, dict[str, Any]]:
        self._seen = self.encoder[4].weight.detach().clone()
        return super().training_step(batch)

    def before_optimizer_step(self, step: int, steps_per_epoch: int, max_steps: int) -> None:
        self.hook_calls.append((step, steps_per_epoch, max_steps))
        assert self._seen is not None and self.encoder[4].weight.grad is not None  # after backward
        self.before_update.append(torch.equal(self.encoder[4].weight, self._seen))
        if step < steps_per_epoch:
            for p in self.encoder[0].parameters():
                p.grad = None


class Recorder:
    """Every step's first-layer weight, and each group's lr and weight decay as used."""

    def __init__(self) -> None:
        self.first: list[torch.Tensor] = []
        self.groups: list[list[tuple[float, float]]] = []

    def on_step_end(self, trainer: Trainer) -> None:
        self.first.append(trainer.method.encoder[0].weight.detach().clone())
        self.groups.append([(g["lr"], g["weight_decay"]) for g in trainer.optimizer.param_groups])


def make_hook_toy(seed: int = 0) -> HookToy:
    torch.manual_seed(seed)
    return HookToy()


def run_hooks(out: Path, callbacks: tuple[Any, ...] = (), **kw: Any) -> Trainer:
    trainer = Trainer(make_hook_toy(), ToySet(64), toy_config(out, **kw), out,
                      modality_name="toy", callbacks=callbacks)
    trainer.fit()
    return trainer


def test_hook_is_called_once_per_step_before_the_update(tmp_path: Path) -> None:
    trainer = run_hooks(tmp_path / "a")
    method: Any = trainer.method
    assert method.hook_calls == [(s, SPE, TOTAL) for s in range(TOTAL)]
    assert all(method.before_update)


def test_a_grad_set_to_none_leaves_the_parameter_unchanged(tmp_path: Path) -> None:
    rec = Recorder()
    init = make_hook_toy().encoder[0].weight.detach().clone()
    run_hooks(tmp_path / "a", (rec,), optimizer="sgd", weight_decay=0.01)  # decay would move it
    for step in range(SPE):  # frozen through the first epoch
        assert torch.equal(rec.first[step], init), step
    assert not torch.equal(rec.first[SPE], init)  # then it trains


@pytest.mark.parametrize("optimizer", ["sgd", "lars", "adamw"])
def test_fixed_lr_group_keeps_its_lr_while_the_others_follow_the_schedule(
    tmp_path: Path, optimizer: str
) -> None:
    rec = Recorder()
    trainer = run_hooks(tmp_path / "a", (rec,), optimizer=optimizer, lr=0.3)
    fixed = [i for i, g in enumerate(trainer.optimizer.param_groups) if g["fixed_lr"]]
    fixed_params = {id(p) for i in fixed for p in trainer.optimizer.param_groups[i]["params"]}
    assert fixed_params == {id(p) for p in trainer.method.encoder[4].parameters()}
    warmup = trainer.hparams["warmup_steps"]
    for step, groups in enumerate(rec.groups):  # the lr the step after ``step`` will use
        for i, (lr, _) in enumerate(groups):
            want = 0.3 if i in fixed else warmup_cosine(step + 1, TOTAL, warmup, 0.3)
            assert lr == pytest.approx(want), (step, i)


def test_weight_decay_follows_the_cosine_to_its_end(tmp_path: Path) -> None:
    rec = Recorder()
    trainer = run_hooks(tmp_path / "a", (rec,), optimizer="adamw")
    decayed = [g["weight_decay"] > 0 for g in trainer.optimizer.param_groups]
    assert any(decayed) and not all(decayed)  # biases and norms keep no decay
    for step, groups in enumerate(rec.groups):  # the decay step ``step`` used
        for (_, wd), has in zip(groups, decayed, strict=True):
            want = warmup_cosine(step, TOTAL, 0, WD, WD_END) if has else 0.0
            assert wd == pytest.approx(want), step
    assert rec.groups[0][0][1] == pytest.approx(WD) and rec.groups[-1][0][1] > 0.09


def test_weight_decay_schedule_changes_the_update() -> None:
    """AdamW reads the scheduled value: a larger decay shrinks the weights more."""
    norms = []
    for end in (WD, 10.0):
        method = make_hook_toy()
        opt = build_optimizer("adamw", method, 0.1, WD)
        schedule = WeightDecaySchedule(opt, 4, end)
        for step in range(4):
            for p in method.parameters():
                p.grad = torch.zeros_like(p)
            schedule.apply(step)
            opt.step()
        norms.append(float(method.encoder[0].weight.detach().norm()))
    assert norms[1] < norms[0]


def test_resumed_run_with_the_hooks_equals_a_straight_run(tmp_path: Path) -> None:
    straight = run_hooks(tmp_path / "a", optimizer="adamw", checkpoint_every=3)
    # killed after step 5, mid-epoch 0: encoder.0 is still frozen when the resumed half starts
    with pytest.raises(Interrupt):
        run_hooks(tmp_path / "b", (StopAt(step=5),), optimizer="adamw", checkpoint_every=3)
    resumed = run_hooks(tmp_path / "b", optimizer="adamw", checkpoint_every=3, resume=True)
    assert_same_state(straight, resumed)
    assert resumed.method.hook_calls[0] == (3, SPE, TOTAL)  # type: ignore[index]


def test_bad_overrides_raise() -> None:
    method = make_hook_toy()
    with pytest.raises(ValueError, match="matches no trainable parameter"):
        build_optimizer("sgd", method, 0.1, 0.0, overrides={"predictor.": {"fixed_lr": True}})
    with pytest.raises(ValueError, match="unknown optimizer override option"):
        build_optimizer("sgd", method, 0.1, 0.0, overrides={"encoder.": {"fixed": True}})
    method.optimizer_overrides = ["encoder."]  # type: ignore[assignment,method-assign]
    with pytest.raises(TypeError, match="prefixes to dicts"):
        method_overrides(method)
