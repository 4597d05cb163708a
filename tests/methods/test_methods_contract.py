"""Contract tests every registered method gets for free (parametrized over METHODS)."""

from __future__ import annotations

import copy
import inspect
from typing import Any

import pytest
import torch
from conftest import pair_inputs
from torch import Tensor, nn

import anyssl.methods  # noqa: F401  (registers the methods)
from anyssl.memory import Queue
from anyssl.momentum import MomentumTarget
from anyssl.registry import METHODS
from anyssl.train.config import LR_SCALINGS

# small heads and queues for speed; a method missing here is built with its defaults
SMALL: dict[str, dict[str, Any]] = {
    "simclr": {"hidden_dim": 32, "out_dim": 16},
    "mocov1": {"out_dim": 16, "queue_size": 96, "momentum": 0.9},
    "mocov2": {"hidden_dim": 32, "out_dim": 16, "queue_size": 96, "momentum": 0.9},
    "byol": {"hidden_dim": 32, "out_dim": 16, "pred_hidden_dim": 32, "momentum": 0.9},
    "clip": {"embed_dim": 16},
    "simsiam": {"out_dim": 16, "pred_hidden_dim": 8},
    "barlowtwins": {"hidden_dim": 32, "out_dim": 16},
    "vicreg": {"hidden_dim": 32, "out_dim": 16},
    "mocov3": {"hidden_dim": 32, "out_dim": 16, "momentum": 0.9},
    "nnclr": {"hidden_dim": 32, "out_dim": 16, "pred_hidden_dim": 32, "queue_size": 96},
    "dino": {"out_dim": 32, "hidden_dim": 32, "bottleneck_dim": 8, "momentum": 0.9},
    "swav": {"hidden_dim": 32, "out_dim": 16, "num_prototypes": 12},
}
NAMES = METHODS.names()
OPTIMIZERS = {"sgd", "lars", "adamw"}
SCHEDULES = {"cosine", "step", "constant"}
#: The train_defaults keys the trainer reads.
TRAIN_KEYS = {"optimizer", "lr", "lr_scaling", "weight_decay", "momentum", "schedule",
              "warmup_epochs", "milestones", "batch_size", "weight_decay_end", "bias_lr",
              "final_lr_ratio", "grad_clip", "grad_clip_mode"}
#: Adam-family methods whose reference code scales the lr with the batch (the rest use "none").
ADAM_SCALED = {"dino": "main_dino.py: lr = args.lr * batch_size_per_gpu * world_size / 256"}


def _paired(name: str) -> bool:
    return bool(getattr(METHODS.get(name), "needs_pair", False))


@pytest.fixture
def parts_for(make_parts, make_pair_parts):
    """``parts_for(name, seed=0) -> (encoder, views)``: toy parts shaped for the method."""
    return lambda name, seed=0: (make_pair_parts if _paired(name) else make_parts)(seed)


@pytest.fixture
def batch_for(toy_batch):
    """``batch_for(name)``: the toy batch, as paired inputs for a paired method."""
    return lambda name: pair_inputs(toy_batch) if _paired(name) else toy_batch


def _build(name: str, parts_for, seed: int = 0) -> Any:
    encoder, views = parts_for(name, seed)
    return METHODS.build(name, encoder=encoder, views=views, **SMALL.get(name, {}))


def _trainable(method: nn.Module) -> list[nn.Parameter]:
    return [p for p in method.parameters() if p.requires_grad]


def test_registry_has_the_methods() -> None:
    assert {"simclr", "mocov1", "mocov2", "byol"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_training_step_returns_scalar_loss_and_detached_logs(name, parts_for, batch_for):
    method = _build(name, parts_for)
    assert isinstance(method.encoder, nn.Module)
    assert method.views.n_views >= (1 if _paired(name) else 2)  # paired: one view per tower
    loss, logs = method.training_step(batch_for(name))
    assert isinstance(loss, Tensor) and loss.dim() == 0 and loss.requires_grad
    assert torch.isfinite(loss)
    assert "loss" in logs
    for key, value in logs.items():
        assert isinstance(value, Tensor) and value.dim() == 0 and not value.requires_grad, key
    torch.testing.assert_close(logs["loss"], loss.detach())
    loss.backward()
    assert all(p.grad is not None for p in method.encoder.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_train_defaults_are_complete(name) -> None:
    defaults: dict[str, Any] = getattr(METHODS.get(name), "train_defaults")  # noqa: B009
    assert {"optimizer", "lr", "lr_scaling", "weight_decay", "momentum", "schedule",
            "warmup_epochs"} <= set(defaults)  # every method states its lr scaling rule
    # the trainer reads only these keys; a misspelt one would be silently ignored
    assert set(defaults) <= TRAIN_KEYS
    assert defaults["optimizer"] in OPTIMIZERS and defaults["schedule"] in SCHEDULES
    assert defaults["lr_scaling"] in LR_SCALINGS
    if defaults["optimizer"] in ("adam", "adamw"):  # Adam-family papers give a fixed lr ...
        assert defaults["lr_scaling"] == ("linear" if name in ADAM_SCALED else "none")
    assert defaults["lr"] > 0 and defaults["weight_decay"] >= 0 and defaults["warmup_epochs"] >= 0
    if defaults["schedule"] == "step":
        assert all(0 < f < 1 for f in defaults["milestones"])


@pytest.mark.parametrize("name", NAMES)
def test_scale_defaults_name_real_keys(name) -> None:
    """A method's per-scale defaults only touch train keys and constructor arguments."""
    factory = METHODS.get(name)
    params = inspect.signature(factory).parameters
    for scale, preset in (getattr(factory, "scale_defaults", None) or {}).items():
        assert scale in ("small", "large") and isinstance(preset.get("source"), str)
        assert set(preset.get("train", {})) <= TRAIN_KEYS, scale
        assert set(preset.get("args", {})) <= set(params), scale


@pytest.mark.parametrize("name", NAMES)
def test_sgd_on_a_fixed_batch_decreases_the_loss(name, parts_for, batch_for) -> None:
    """Same views every step. Buffers (queue, BN statistics) are restored after each step so
    the objective stays fixed: with a queue, the batch's own keys would otherwise come back as
    negatives of the same batch and raise the loss, which is not what this test is about."""
    method, toy_batch = _build(name, parts_for), batch_for(name)
    buffers = {k: v.clone() for k, v in method.named_buffers()}
    opt = torch.optim.SGD(_trainable(method), lr=0.05, momentum=0.9)
    losses = []
    for step in range(12):
        method.views.manual_seed(0)
        loss, _ = method.training_step(toy_batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        method.on_step_end(step, 12)
        with torch.no_grad():
            for k, v in method.named_buffers():
                v.copy_(buffers[k])
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


@pytest.mark.parametrize("name", NAMES)
def test_momentum_target_moves_and_gets_no_gradient(name, parts_for, batch_for) -> None:
    method, toy_batch = _build(name, parts_for), batch_for(name)
    targets = [m for m in method.modules() if isinstance(m, MomentumTarget)]
    if not targets:
        pytest.skip(f"{name} has no momentum target")
    before = [p.clone() for t in targets for p in t.parameters()]
    opt = torch.optim.SGD(_trainable(method), lr=0.1)
    loss, _ = method.training_step(toy_batch)
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for t in targets for p in t.parameters())
    opt.step()
    method.on_step_end(0, 10)
    after = [p for t in targets for p in t.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_queue_pointer_advances(name, parts_for, batch_for) -> None:
    method, toy_batch = _build(name, parts_for), batch_for(name)
    queues = [m for m in method.modules() if isinstance(m, Queue)]
    if not queues:
        pytest.skip(f"{name} has no queue")
    starts = [int(q.ptr) for q in queues]
    method.training_step(toy_batch)
    b = toy_batch[0].shape[0]
    for q, s in zip(queues, starts, strict=True):  # one batch of keys (two if symmetric)
        assert (int(q.ptr) - s) % q.size in {b % q.size, 2 * b % q.size}


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name, parts_for, batch_for) -> None:
    method, toy_batch = _build(name, parts_for, seed=0), batch_for(name)
    opt = torch.optim.SGD(_trainable(method), lr=0.1)
    loss, _ = method.training_step(toy_batch)
    loss.backward()
    opt.step()
    method.on_step_end(0, 10)
    other = _build(name, parts_for, seed=1)
    other.load_state_dict(copy.deepcopy(method.state_dict()))
    for (k, a), (k2, b) in zip(method.state_dict().items(), other.state_dict().items(),
                               strict=True):
        assert k == k2 and torch.equal(a, b), k
    method.views.manual_seed(7)
    other.views.manual_seed(7)
    torch.testing.assert_close(method.training_step(toy_batch)[0],
                               other.training_step(toy_batch)[0])


@pytest.mark.parametrize("name", NAMES)
def test_needs_an_encoder_with_out_dim(name, parts_for) -> None:
    encoder, views = parts_for(name)
    with pytest.raises(ValueError, match="out_dim"):
        if _paired(name):  # a tower without out_dim is refused when the pair is built
            encoder = type(encoder)({"a": nn.Linear(16, 8), "b": nn.Linear(16, 8)})
        else:
            encoder = nn.Linear(16, 8)
        METHODS.build(name, encoder=encoder, views=views, **SMALL.get(name, {}))


@pytest.mark.parametrize("name", NAMES)
def test_unknown_hyperparameter_raises_type_error(name, parts_for) -> None:
    encoder, views = parts_for(name)
    with pytest.raises(TypeError):
        METHODS.build(name, encoder=encoder, views=views, not_a_hparam=1)


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_autocast_gives_a_float32_loss(name, parts_for, batch_for) -> None:
    """The trainer runs training_step under bf16 autocast on GPUs; CPU autocast checks the
    same dtype mixing (bf16 matmuls, float32 queue and loss)."""
    method, toy_batch = _build(name, parts_for), batch_for(name)
    buffer_dtypes = {k: v.dtype for k, v in method.named_buffers()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, logs = method.training_step(toy_batch)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert logs["loss"].dtype == torch.float32
    loss.backward()
    method.on_step_end(0, 10)
    assert {k: v.dtype for k, v in method.named_buffers()} == buffer_dtypes
    assert all(p.dtype == torch.float32 for p in method.parameters())
