"""TS2Vec: the loss against the reference code's math, masking, the crops and the method."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl.modalities.timeseries import ts2vec_loss
from anyssl.modalities.timeseries.crops import AlignedView, OverlapCrops, take_windows
from anyssl.modalities.timeseries.series import fill, masked_max_pool, valid_steps
from anyssl.modalities.timeseries.ts2vec import (
    TS2Vec,
    grouped_nt_xent,
    hierarchical_contrastive_loss,
)
from anyssl.objectives import nt_xent


# --- the reference: TS2Vec's models/losses.py (Yue et al. 2022), written out by hand -----------
def ref_instance(z1: Tensor, z2: Tensor) -> Tensor:
    b = z1.size(0)
    if b == 1:
        return z1.new_tensor(0.0)
    z = torch.cat([z1, z2], dim=0).transpose(0, 1)  # T x 2B x C
    sim = torch.matmul(z, z.transpose(1, 2))
    logits = torch.tril(sim, diagonal=-1)[:, :, :-1]
    logits += torch.triu(sim, diagonal=1)[:, :, 1:]
    logits = -F.log_softmax(logits, dim=-1)
    i = torch.arange(b)
    return (logits[:, i, b + i - 1].mean() + logits[:, b + i, i].mean()) / 2


def ref_temporal(z1: Tensor, z2: Tensor) -> Tensor:
    t = z1.size(1)
    if t == 1:
        return z1.new_tensor(0.0)
    z = torch.cat([z1, z2], dim=1)  # B x 2T x C
    sim = torch.matmul(z, z.transpose(1, 2))
    logits = torch.tril(sim, diagonal=-1)[:, :, :-1]
    logits += torch.triu(sim, diagonal=1)[:, :, 1:]
    logits = -F.log_softmax(logits, dim=-1)
    s = torch.arange(t)
    return (logits[:, s, t + s - 1].mean() + logits[:, t + s, s].mean()) / 2


def ref_hierarchical(z1: Tensor, z2: Tensor, alpha: float = 0.5, temporal_unit: int = 0) -> Tensor:
    loss, d = torch.tensor(0.0), 0
    while z1.size(1) > 1:
        if alpha != 0:
            loss = loss + alpha * ref_instance(z1, z2)
        if d >= temporal_unit and 1 - alpha != 0:
            loss = loss + (1 - alpha) * ref_temporal(z1, z2)
        d += 1
        z1 = F.max_pool1d(z1.transpose(1, 2), kernel_size=2).transpose(1, 2)
        z2 = F.max_pool1d(z2.transpose(1, 2), kernel_size=2).transpose(1, 2)
    if z1.size(1) == 1:
        if alpha != 0:
            loss = loss + alpha * ref_instance(z1, z2)
        d += 1
    return loss / d


@pytest.mark.parametrize("shape", [(4, 16, 8), (5, 13, 6), (3, 1, 4), (1, 7, 3)])
@pytest.mark.parametrize("alpha,unit", [(0.5, 0), (0.3, 1), (1.0, 0), (0.0, 0)])
def test_hierarchical_loss_matches_reference(shape: tuple[int, ...], alpha: float, unit: int):
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)
    ours = hierarchical_contrastive_loss(z1, z2, alpha=alpha, temporal_unit=unit)
    torch.testing.assert_close(ours, ref_hierarchical(z1, z2, alpha, unit), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("chunk", [1 << 22, 50])  # 50: one group per chunk, several chunks
@pytest.mark.parametrize("shape", [(4, 16, 8), (3, 9, 5), (1, 6, 3)])
def test_hierarchical_loss_gradients_match_reference(shape: tuple[int, ...], chunk: int,
                                                     monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(ts2vec_loss, "CHUNK_SIMILARITIES", chunk)
    g = torch.Generator().manual_seed(4)
    z1, z2 = torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)
    ours = [z.clone().requires_grad_(True) for z in (z1, z2)]
    theirs = [z.clone().requires_grad_(True) for z in (z1, z2)]
    hierarchical_contrastive_loss(*ours).backward()
    ref_hierarchical(*theirs).backward()
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("holes", ["none", "some", "empty groups"])
def test_fused_nt_xent_matches_the_row_subset_path(holes: str):
    """``own=None`` (the fused forward/backward) against ``own=all`` (plain autograd)."""
    g = torch.Generator().manual_seed(5)
    a, b = torch.randn(4, 7, 5, generator=g), torch.randn(4, 7, 5, generator=g)
    valid = torch.rand(4, 7, generator=g) > (0.0 if holes == "none" else 0.4)
    if holes == "empty groups":
        valid[1], valid[2] = False, torch.arange(7) == 3  # no item; a single item
    results = []
    for own in (None, slice(None)):
        x, y = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
        total, count = grouped_nt_xent(x, y, valid, own)
        (total * 0.7).backward()
        results.append((total, count, x.grad, y.grad))
    for fused, plain in zip(*results, strict=True):
        torch.testing.assert_close(fused, plain)
    assert results[0][2] is not None and results[0][2].abs().sum() > 0


def test_fused_loss_refuses_a_second_backward():
    z1 = torch.randn(2, 6, 3, requires_grad=True)
    loss = hierarchical_contrastive_loss(z1, torch.randn(2, 6, 3))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="inplace"):
        loss.backward()


def test_grouped_nt_xent_is_the_cores_nt_xent_per_group():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(3, 6, 5, generator=g), torch.randn(3, 6, 5, generator=g)
    total, count = grouped_nt_xent(a, b, torch.ones(3, 6, dtype=torch.bool))
    per_group = [nt_xent(a[i], b[i], 1.0, normalize=False) for i in range(3)]
    assert count.item() == 36
    torch.testing.assert_close(total / count, torch.stack(per_group).mean())


def test_masked_items_are_neither_anchors_nor_negatives():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(2, 5, 4, generator=g), torch.randn(2, 5, 4, generator=g)
    valid = torch.tensor([[1, 1, 0, 1, 1], [1, 0, 1, 1, 1]], dtype=torch.bool)
    total, count = grouped_nt_xent(a, b, valid)
    expect = [nt_xent(a[i][valid[i]], b[i][valid[i]], 1.0, normalize=False) for i in range(2)]
    assert count.item() == 16
    torch.testing.assert_close(total / count, torch.stack(expect).mean())


def test_a_masked_series_does_not_change_the_loss():
    g = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(4, 12, 6, generator=g), torch.randn(4, 12, 6, generator=g)
    junk = torch.full((1, 12, 6), 1e3)
    valid = torch.ones(5, 12, dtype=torch.bool)
    valid[4] = False
    with_junk = hierarchical_contrastive_loss(torch.cat([z1, junk]), torch.cat([z2, -junk]), valid)
    torch.testing.assert_close(with_junk, hierarchical_contrastive_loss(z1, z2))


def test_loss_is_finite_and_differentiable_when_everything_is_masked():
    z1 = torch.randn(3, 8, 4, requires_grad=True)
    loss = hierarchical_contrastive_loss(z1, torch.randn(3, 8, 4),
                                         torch.zeros(3, 8, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and z1.grad is not None and torch.isfinite(z1.grad).all()


def test_loss_rejects_bad_shapes_and_alpha():
    with pytest.raises(ValueError, match="N x T x D"):
        hierarchical_contrastive_loss(torch.randn(2, 3, 4), torch.randn(2, 4, 4))
    with pytest.raises(ValueError, match="alpha"):
        hierarchical_contrastive_loss(torch.randn(2, 3, 4), torch.randn(2, 3, 4), alpha=2.0)


# --- crops ------------------------------------------------------------------------------------
def _ramps(n: int, t: int, c: int = 2) -> Tensor:
    """Series whose value is its own time stamp (plus 1000 x the series index)."""
    base = torch.arange(t, dtype=torch.float32).expand(n, c, t)
    return base + 1000.0 * torch.arange(n, dtype=torch.float32).view(n, 1, 1)


def test_take_windows_takes_per_series_windows():
    x = _ramps(3, 10)
    out = take_windows(x, torch.tensor([0, 4, 6]), 4)
    for i, s in enumerate([0, 4, 6]):
        assert torch.equal(out[i], x[i, :, s:s + 4])


@pytest.mark.parametrize("seed", range(5))
def test_overlap_crops_show_the_same_time_stamps_on_the_overlap(seed: int):
    crops = OverlapCrops(min_length=2)
    crops.manual_seed(seed)
    x = _ramps(6, 40)
    v1, v2 = crops(x)
    assert isinstance(v1, AlignedView) and v1.length == v2.length >= 2
    o1 = v1.x[..., v1.start:v1.start + v1.length]
    o2 = v2.x[..., v2.start:v2.start + v2.length]
    assert torch.equal(o1, o2)
    assert v1.start + v1.length == v1.x.shape[-1] and v2.start == 0  # overlap = view 1's end
    assert v1.time_mask is not None and v1.time_mask.shape == v1.x.shape[::2]


def test_overlap_crops_are_seeded_and_masks_keep_about_half():
    a, b = OverlapCrops(), OverlapCrops()
    a.manual_seed(7)
    b.manual_seed(7)
    x = _ramps(64, 200, 1)
    va, vb = a(x), b(x)
    assert all(torch.equal(p.x, q.x) and torch.equal(p.time_mask, q.time_mask)  # type: ignore[arg-type]
               for p, q in zip(va, vb, strict=True))
    mask = torch.cat([v.time_mask.flatten() for v in a(x)])  # type: ignore[union-attr]
    assert 0.45 < mask.float().mean().item() < 0.55
    assert OverlapCrops(mask_p=0.0)(x)[0].time_mask is None


@pytest.mark.parametrize("seed", range(5))
def test_overlap_crops_cut_long_batches_to_one_window_of_max_length(seed: int):
    """TS2Vec's ``fit`` cuts a batch longer than ``max_train_length`` to one random window of
    that length (the same offset for every series) before drawing the crops."""
    crops = OverlapCrops(max_length=16)
    crops.manual_seed(seed)
    x = _ramps(6, 40)
    series = 1000.0 * torch.arange(6, dtype=torch.float32).view(6, 1, 1)
    stamps = torch.cat([(v.x - series).flatten() for v in crops(x)])  # every view's time stamps
    assert stamps.max() - stamps.min() < 16  # both views inside one 16-step window
    short = OverlapCrops(max_length=64)
    short.manual_seed(seed)
    plain = OverlapCrops()
    plain.manual_seed(seed)
    assert all(torch.equal(p.x, q.x) for p, q in zip(short(x), plain(x), strict=True))


def test_overlap_crops_reject_too_short_series_and_bad_args():
    with pytest.raises(ValueError, match="shorter than the crop length 4"):
        OverlapCrops(min_length=4)(torch.randn(2, 1, 3))
    with pytest.raises(ValueError, match="mask_p"):
        OverlapCrops(mask_p=1.0)
    with pytest.raises(ValueError, match="max_length must be >= min_length"):
        OverlapCrops(min_length=4, max_length=3)
    with pytest.raises(ValueError, match="N x C x T"):
        OverlapCrops()(torch.randn(2, 3))


# --- the method ---------------------------------------------------------------------------------
class TinyEncoder(nn.Module):
    """A per-step conv encoder with the time-series encoder calls (test stand-in)."""

    def __init__(self, c: int = 1, d: int = 8) -> None:
        super().__init__()
        self.out_dim = d
        self.conv = nn.Conv1d(c, d, 3, padding=1)

    def timesteps(self, x: Tensor, time_mask: Tensor | None = None) -> Tensor:
        keep = valid_steps(x) if time_mask is None else valid_steps(x) & time_mask
        h = self.conv(fill(x) * keep.unsqueeze(1)).transpose(1, 2)  # N x T x D
        return h * keep.unsqueeze(-1)

    def forward(self, x: Tensor) -> Tensor:
        return masked_max_pool(self.timesteps(x), valid_steps(x))


def test_ts2vec_step_is_finite_with_padding_and_missing_values():
    torch.manual_seed(0)
    x = torch.randn(8, 1, 30)
    x[:3, :, 20:] = float("nan")  # shorter series
    x[5, 0, 4] = float("nan")  # a missing value
    views = OverlapCrops()
    views.manual_seed(0)
    method = TS2Vec(TinyEncoder(), views)
    loss, logs = method.training_step((x, torch.zeros(8, dtype=torch.long)))
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0 and logs["loss"] == loss.detach()
    assert all(torch.isfinite(p.grad).all() for p in method.encoder.parameters()  # type: ignore[arg-type]
               if p.grad is not None)


def test_ts2vec_evaluates_the_uniform_weight_average():
    torch.manual_seed(0)
    views = OverlapCrops()
    views.manual_seed(0)
    method = TS2Vec(TinyEncoder(), views)
    opt = torch.optim.SGD(method.encoder.parameters(), lr=0.5)
    snapshots = []
    for step in range(3):
        loss, _ = method.training_step((torch.randn(8, 1, 24), torch.zeros(8)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        method.on_step_end(step, 3)
        snapshots.append(method.encoder.conv.weight.detach().clone())
    avg = torch.stack(snapshots).mean(0)
    torch.testing.assert_close(method.eval_encoder.conv.weight, avg)  # type: ignore[union-attr]
    assert TS2Vec(TinyEncoder(), views, average=False).eval_encoder is not None


def test_ts2vec_accepts_aligned_full_views_and_rejects_bad_parts():
    from anyssl.views import Identity, ViewGenerator

    method = TS2Vec(TinyEncoder(), ViewGenerator(Identity()))
    loss, _ = method.training_step((torch.randn(4, 1, 16), torch.zeros(4)))
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="timesteps"):
        TS2Vec(nn.Linear(3, 3), OverlapCrops())
    with pytest.raises(ValueError, match="exactly 2 views"):
        TS2Vec(TinyEncoder(), ViewGenerator(Identity(), n_views=3))
