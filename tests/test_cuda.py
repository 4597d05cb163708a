"""The CUDA paths, on a real GPU: bf16 autocast, channels_last, ``--compile``, pinned memory with
non-blocking copies, CUDA RNG state in checkpoints (and an exact resume), a one-process NCCL
group with ``--sync-bn``, and the linear probe on the GPU.

Every test is marked ``cuda`` and skipped when ``torch.cuda.is_available()`` is false, so the
default CPU run skips them; ``python -m pytest -q -m cuda tests/test_cuda.py`` runs them on a GPU
machine (``benchmarks/gpu_check.sh`` does). Tiny runs on the embedded digits keep the whole file
under a minute on one H200 (the compiled run's first compile takes most of it).
"""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import yaml
from test_api_resume import flat_state
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from anyssl.api import train
from anyssl.build import build_parts
from anyssl.eval import linear_probe
from anyssl.modality import move_to_device
from anyssl.train import TrainConfig, Trainer, load_checkpoint
from anyssl.train import loop as train_loop

# cuBLAS is deterministic only with this workspace setting, read when its handle is created
# (before any test here runs a matmul); the resume test asks for deterministic algorithms.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(),
                       reason="needs a CUDA GPU (torch.cuda.is_available() is false)"),
]

#: A run of a few steps on digits (1,347 training images, 1 x 32 x 32) with a narrow smallcnn.
TINY: dict[str, Any] = {
    "modality": "image", "method": "simclr", "data": "digits", "batch_size": 64,
    "max_steps": 4, "eval": False, "seed": 1, "device": "cuda", "log_every": 1,
    "encoder_args": {"width": 8}, "method_args": {"hidden_dim": 64},
}


class Interrupted(Exception):
    """Raised to simulate a run killed at the end of an epoch."""


class StopAfterEpoch:
    def on_epoch_end(self, trainer: Trainer) -> None:
        raise Interrupted


class OnFitStart:
    """Calls ``fn(trainer)`` once the trainer has set itself up (device, layout, precision)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def on_fit_start(self, trainer: Trainer) -> None:
        self.fn(trainer)


def losses(run_dir: Path) -> list[float]:
    """The training losses ``metrics.jsonl`` recorded, in step order."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [float(r["loss"]) for r in map(json.loads, lines) if "loss" in r]


def test_auto_precision_trains_in_bf16(tmp_path: Path) -> None:
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16 (auto resolves to fp16 there)")
    dtypes: list[torch.dtype] = []

    def watch(trainer: Trainer) -> None:
        trainer.encoder.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))

    result = train(TINY, precision="auto", out=str(tmp_path / "run"),
                   callbacks=[OnFitStart(watch)])
    config = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert config["precision"] == "bf16"
    assert dtypes and set(dtypes) == {torch.bfloat16}  # the encoder ran under bf16 autocast
    assert len(losses(result.run_dir)) == TINY["max_steps"]
    assert all(math.isfinite(v) for v in losses(result.run_dir))


def test_conv_encoder_weights_are_channels_last(tmp_path: Path) -> None:
    convs: list[torch.Tensor] = []

    def grab(trainer: Trainer) -> None:
        assert trainer.device.type == "cuda"
        convs.extend(p for p in trainer.encoder.parameters() if p.dim() == 4)

    train(TINY, max_steps=1, out=str(tmp_path / "run"), callbacks=[OnFitStart(grab)])
    assert convs and all(p.is_cuda for p in convs)
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert any(not p.is_contiguous() for p in convs)  # a layout that differs from NCHW


def test_compiled_encoder_matches_eager(tmp_path: Path) -> None:
    eager = train(TINY, out=str(tmp_path / "eager"))
    compiled = train(TINY, compile=True, out=str(tmp_path / "compiled"))
    a, b = losses(eager.run_dir), losses(compiled.run_dir)
    assert len(b) == TINY["max_steps"] and all(math.isfinite(v) for v in b)
    # bf16 autocast: inductor fuses and rounds differently from eager, so only loosely equal
    torch.testing.assert_close(torch.tensor(b), torch.tensor(a), rtol=0.05, atol=0.05)


def test_loader_pins_memory_and_copies_without_blocking(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = build_parts("image", "simclr", data="digits", encoder_args={"width": 8},
                        method_args={"hidden_dim": 64}, batch_size=64, need_test=False,
                        device="cuda")
    config = TrainConfig.from_dict({**TINY, "out": str(tmp_path / "run")})
    loaders: list[Any] = []
    real_make_loader = train_loop.make_loader

    def make_loader(*args: Any, **kwargs: Any) -> Any:
        loaders.append(real_make_loader(*args, **kwargs))  # the loader the trainer builds
        return loaders[-1]

    monkeypatch.setattr(train_loop, "make_loader", make_loader)
    copies: list[tuple[bool, bool, str]] = []

    def to_device(batch: Any, device: torch.device, non_blocking: bool) -> Any:
        moved = parts.modality.to_device(batch, device, non_blocking)
        copies.append((batch[0].is_pinned(), non_blocking, moved[0].device.type))
        return moved

    Trainer(parts.method, parts.train_set, config, tmp_path / "run",
            collate=parts.modality.collate, to_device=to_device,
            conv_encoder=parts.modality.conv_encoder).fit()
    assert len(loaders) == 1 and loaders[0].pin_memory
    steps = [c for c in copies if c[1]]  # the preflight's copy (non_blocking=False) aside
    assert steps == [(True, True, "cuda")] * TINY["max_steps"]

    pinned = torch.arange(12, dtype=torch.uint8).view(3, 4).pin_memory()
    x, y = move_to_device((pinned, {"y": pinned + 1}), torch.device("cuda"), non_blocking=True)
    torch.cuda.current_stream().synchronize()
    assert x.is_cuda and y["y"].is_cuda
    assert torch.equal(x.cpu(), pinned) and torch.equal(y["y"].cpu(), pinned + 1)


@pytest.fixture
def deterministic() -> Iterator[None]:
    """cuDNN's and torch's deterministic algorithms for the test, the previous modes after.

    Without them the straight and the resumed run can differ in the last bits: cuDNN may pick
    convolution backward kernels that accumulate with atomics (non-deterministic order)."""
    before = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
              torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[:2]
        torch.use_deterministic_algorithms(before[2], warn_only=before[3])


def test_cuda_rng_in_checkpoint_and_exact_resume(tmp_path: Path, deterministic: None) -> None:
    run = {**TINY, "method": "mocov2", "max_steps": None, "epochs": 2, "batch_size": 128,
           "method_args": {"hidden_dim": 64, "queue_size": 512}}
    straight = train(run, out=str(tmp_path / "straight"))
    with pytest.raises(Interrupted):
        train(run, out=str(tmp_path / "resumed"), callbacks=[StopAfterEpoch()])
    half = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert half["epoch"] == 1
    cuda_rng = half["rng"]["cuda"]
    assert len(cuda_rng) == torch.cuda.device_count() and all(s.numel() > 0 for s in cuda_rng)
    resumed = train(run, out=str(tmp_path / "resumed"), resume=True)

    a = flat_state(load_checkpoint(straight.checkpoint)["method"])
    b = flat_state(load_checkpoint(resumed.checkpoint)["method"])
    assert a.keys() == b.keys() and any("queue" in k for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_one_process_nccl_group_with_sync_bn(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    if not dist.is_available() or not dist.is_nccl_available():
        pytest.skip("this torch has no NCCL")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    torch.cuda.set_device(0)
    dist.init_process_group("nccl", init_method="env://", rank=0, world_size=1,
                            device_id=torch.device("cuda", 0))
    layers: list[nn.Module] = []
    try:
        result = train(TINY, sync_bn=True, out=str(tmp_path / "run"),
                       callbacks=[OnFitStart(lambda t: layers.extend(t.method.modules()))])
        assert dist.is_initialized()  # the trainer leaves a group it did not create alone
    finally:
        dist.destroy_process_group()
    synced = [m for m in layers if isinstance(m, nn.SyncBatchNorm)]
    plain = [m for m in layers if isinstance(m, _BatchNorm) and not isinstance(
        m, nn.SyncBatchNorm)]
    assert synced and not plain  # every BatchNorm converted, the encoder's and the head's
    assert len(losses(result.run_dir)) == TINY["max_steps"]
    assert all(math.isfinite(v) for v in losses(result.run_dir))


def test_linear_probe_on_the_gpu_matches_the_cpu() -> None:
    gen = torch.Generator().manual_seed(0)
    centers = 0.3 * torch.randn(10, 32, generator=gen)  # 10 overlapping classes in 32-d

    def blobs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 10, (n,), generator=gen)
        return centers[y] + torch.randn(n, 32, generator=gen), y  # n x 32, n

    (xtr, ytr), (xte, yte) = blobs(2000), blobs(500)
    cpu = linear_probe(xtr, ytr, xte, yte, device="cpu", max_iter=200)
    gpu = linear_probe(xtr, ytr, xte, yte, device="cuda", max_iter=200)
    assert 0.3 < cpu["top1"] < 0.9  # neither trivial nor saturated (0.506 on the CPU)
    assert gpu["top1"] == pytest.approx(cpu["top1"], abs=0.01)
    assert gpu["top5"] == pytest.approx(cpu["top5"], abs=0.01)
