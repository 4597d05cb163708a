"""distributed helpers: identities without a process group; real gathers on a 2-process gloo
group (CPU), checked against the single-process full-batch loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from anyssl import distributed
from anyssl.objectives import InfoNCELoss, NTXentLoss, nt_xent

N, D, WORLD = 3, 4, 2


def test_no_process_group_defaults() -> None:
    assert not distributed.is_distributed()
    assert distributed.rank() == 0 and distributed.world_size() == 1
    x = torch.randn(N, D, requires_grad=True)
    assert distributed.gather_with_grad(x) is x
    g = distributed.gather_no_grad(x)
    assert torch.equal(g, x) and not g.requires_grad


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(WORLD * N, D, generator=g), torch.randn(WORLD * N, D, generator=g)


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD)
    try:
        a_all, b_all = _data()
        rows = slice(rank * N, (rank + 1) * N)
        # gather_with_grad: values, and a gradient summed over every rank's loss
        x = a_all[rows].clone().requires_grad_()
        y = distributed.gather_with_grad(x)
        ((rank + 1.0) * (y * b_all).sum()).backward()
        # NT-Xent and symmetric InfoNCE through the modules, which gather themselves
        za, zb = a_all[rows].clone().requires_grad_(), b_all[rows].clone().requires_grad_()
        ntx = NTXentLoss(temperature=0.5)(za, zb)
        ntx.backward()
        q, k = a_all[rows].clone().requires_grad_(), b_all[rows].clone().requires_grad_()
        nce = InfoNCELoss(temperature=0.5, symmetric=True)(q, k)
        nce.backward()
        torch.save(
            {"rank": distributed.rank(), "world": distributed.world_size(), "y": y.detach(),
             "x_grad": x.grad, "ntx": ntx.detach(), "za_grad": za.grad, "zb_grad": zb.grad,
             "nce": nce.detach(), "q_grad": q.grad,
             "no_grad": distributed.gather_no_grad(x)},
            Path(out_dir) / f"rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo")
def test_two_process_gather_and_losses(tmp_path: Path) -> None:
    # spawn, not fork: a forked child can hang in OpenMP after the parent ran parallel ops
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    res = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    a_all, b_all = _data()
    for r, out in enumerate(res):
        rows = slice(r * N, (r + 1) * N)
        assert out["rank"] == r and out["world"] == WORLD
        torch.testing.assert_close(out["y"], a_all)
        torch.testing.assert_close(out["no_grad"], a_all)
        # d/dx_r of sum_r' (r'+1) * <y, b>: every rank's loss reaches x_r -> (1 + 2) * b_r
        torch.testing.assert_close(out["x_grad"], 3.0 * b_all[rows])
    # the mean of the per-rank losses is the full-batch loss, and with DDP's gradient averaging
    # (1/W) the local gradients are the full-batch gradients
    za, zb = a_all.clone().requires_grad_(), b_all.clone().requires_grad_()
    full = nt_xent(za, zb, 0.5)
    full.backward()
    torch.testing.assert_close((res[0]["ntx"] + res[1]["ntx"]) / 2, full.detach())
    q, k = a_all.clone().requires_grad_(), b_all.clone().requires_grad_()
    full_nce = InfoNCELoss(temperature=0.5, symmetric=True)(q, k)
    full_nce.backward()
    torch.testing.assert_close((res[0]["nce"] + res[1]["nce"]) / 2, full_nce.detach())
    assert za.grad is not None and zb.grad is not None and q.grad is not None
    for r, out in enumerate(res):
        rows = slice(r * N, (r + 1) * N)
        torch.testing.assert_close(out["za_grad"] / WORLD, za.grad[rows])
        torch.testing.assert_close(out["zb_grad"] / WORLD, zb.grad[rows])
        torch.testing.assert_close(out["q_grad"] / WORLD, q.grad[rows])
