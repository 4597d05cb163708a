"""Text augmentations: parity with per-row reference code, specials kept, never-empty captions,
per-sample and seeded draws, empirical rates, the spec parser and RandomApply / OneOf."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from anyssl.modalities.text.augment import SampleCaption, TokenDropout, TokenMask, draw_tokens
from anyssl.modalities.text.tokenizer import END, MASK, N_SPECIAL, PAD, START
from anyssl.registry import AUGMENTATIONS
from anyssl.views import Compose, OneOf, RandomApply, SpecError, ViewGenerator, build_pipeline

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
V, L = 60, 12


def _gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _rows(lengths: list[int], seed: int = 0, length: int = L) -> Tensor:
    """Rows ``START tok... END PAD...``; a length > ``length - 2`` is truncated, END last."""
    g = _gen(seed)
    x = torch.full((len(lengths), length), PAD, dtype=torch.long)
    for i, n in enumerate(lengths):
        n = min(n, length - 2)
        x[i, 0] = START
        x[i, 1 : n + 1] = torch.randint(N_SPECIAL, V, (n,), generator=g)
        x[i, n + 1] = END
    return x


def _text_tokens(row: list[int]) -> list[int]:
    return [t for t in row if t >= N_SPECIAL]


def test_registered_in_text_scope() -> None:
    assert {"token_dropout", "token_mask", "sample_caption"} <= set(AUGMENTATIONS.names("text"))


@pytest.mark.parametrize("device", DEVICES)
def test_token_dropout_matches_a_per_row_reference(device: str) -> None:
    x = _rows([10, 3, 1, 0, 20, 6], seed=1).to(device)
    drop = draw_tokens(x, 0.4, _gen(5, device)).cpu()
    out = TokenDropout(p=0.4)(x, _gen(5, device))
    assert out.device == x.device and out.dtype == torch.long and out.shape == x.shape
    for row, d, got in zip(x.cpu().tolist(), drop.tolist(), out.cpu().tolist(), strict=True):
        kept = [t for t, dropped in zip(row, d, strict=True) if not dropped and t != PAD]
        assert got == kept + [PAD] * (L - len(kept))


@pytest.mark.parametrize("p", [0.3, 1.0])
def test_token_dropout_keeps_specials_and_a_token(p: float) -> None:
    x = _rows([10, 3, 1, 0, 20, 6] * 20, seed=2)
    out = TokenDropout(p=p)(x, _gen(0))
    for row, got in zip(x.tolist(), out.tolist(), strict=True):
        toks, new = _text_tokens(row), _text_tokens(got)
        n = len(new)
        assert got[0] == START and got[n + 1] == END and set(got[n + 2 :]) <= {PAD}
        assert (n >= 1) == (len(toks) >= 1) and (p < 1.0 or n == min(len(toks), 1))
        it = iter(toks)
        assert all(t in it for t in new)  # a subsequence, order kept


@pytest.mark.parametrize("p", [0.3, 1.0])
def test_token_mask_only_masks_text_tokens_never_all(p: float) -> None:
    x = _rows([10, 3, 1, 0, 20, 6] * 20, seed=3)
    out = TokenMask(p=p)(x, _gen(0))
    changed = out != x
    assert bool((out[changed] == MASK).all()) and bool((x[changed] >= N_SPECIAL).all())
    left = ((out >= N_SPECIAL).sum(1))
    had = (x >= N_SPECIAL).sum(1)
    assert torch.equal(left >= 1, had >= 1)
    if p == 1.0:
        assert torch.equal(left, had.clamp(max=1))


@pytest.mark.parametrize("aug", [TokenDropout, TokenMask])
def test_p_zero_is_identity_and_input_is_not_mutated(aug: type) -> None:
    x = _rows([10, 3, 0, 7])
    before = x.clone()
    assert torch.equal(aug(p=0.0)(x, _gen(0)), x)
    aug(p=0.9)(x, _gen(0))
    assert torch.equal(x, before)


@pytest.mark.parametrize("aug", [TokenDropout(p=0.5), TokenMask(p=0.5)])
def test_draws_are_per_sample_and_seeded(aug: TokenDropout | TokenMask) -> None:
    x = _rows([10]).repeat(64, 1)  # identical captions
    out = aug(x, _gen(1))
    assert len({tuple(r) for r in out.tolist()}) > 10
    assert torch.equal(aug(x, _gen(1)), out)
    assert not torch.equal(aug(x, _gen(2)), out)


@pytest.mark.parametrize("p", [0.1, 0.4])
def test_empirical_rates(p: float) -> None:
    x = _rows([40] * 256, length=42)
    n = (x >= N_SPECIAL).sum().item()
    dropped = n - (TokenDropout(p=p)(x, _gen(0)) >= N_SPECIAL).sum().item()
    masked = (TokenMask(p=p)(x, _gen(1)) == MASK).sum().item()
    for k in (dropped, masked):
        assert abs(k / n - p) < 4 * (p * (1 - p) / n) ** 0.5


def test_the_spared_token_is_uniform() -> None:
    x = _rows([5] * 4000, length=7)
    kept = (TokenMask(p=1.0)(x, _gen(0)) >= N_SPECIAL).float()  # one per row
    freq = kept[:, 1:6].mean(0)
    assert torch.allclose(freq, torch.full((5,), 0.2), atol=0.03)


@pytest.mark.parametrize("aug", [TokenDropout(p=0.5), TokenMask(p=0.5)])
def test_multi_caption_layout(aug: TokenDropout | TokenMask) -> None:
    x = _rows([10, 0, 3, 5, 7, 1], seed=4).view(2, 3, L)
    x[0, 1] = PAD  # no caption
    out = aug(x, _gen(0))
    assert out.shape == x.shape and bool((out[0, 1] == PAD).all())
    flat = aug(x.view(6, L), _gen(0)).view(2, 3, L)
    assert torch.equal(out, flat)


@pytest.mark.parametrize("device", DEVICES)
def test_sample_caption_picks_non_empty_rows_uniformly(device: str) -> None:
    x = _rows([4, 0, 6, 2, 9, 0], seed=5).view(2, 3, L).to(device)
    x[0, 1] = PAD
    x[1, 2] = PAD  # item 0: rows 0, 2; item 1: rows 0, 1
    batch = x.repeat(500, 1, 1)  # 1000 items
    out = SampleCaption()(batch, _gen(0, device))
    assert out.shape == (1000, L) and out.device == batch.device
    hits = (out.unsqueeze(1) == batch).all(-1).float().cpu()  # 1000 x 3: which row was taken
    assert bool((hits.sum(1) == 1).all())
    freq = hits.view(500, 2, 3).mean(0)
    allowed = torch.tensor([[0.5, 0.0, 0.5], [0.5, 0.5, 0.0]])
    assert torch.allclose(freq, allowed, atol=0.07)


def test_sample_caption_passes_single_captions_and_rejects_empty_items() -> None:
    x = _rows([3, 4])
    assert SampleCaption()(x, _gen(0)) is x
    y = x.view(2, 1, L).clone()
    y[1] = PAD
    with pytest.raises(ValueError, match=r"item 1 .*no caption"):
        SampleCaption()(y)
    with pytest.raises(ValueError, match="B x L or B x K x L"):
        SampleCaption()(x[0])


def test_bad_input_and_parameters() -> None:
    for aug in (TokenDropout(), TokenMask(), SampleCaption()):
        with pytest.raises(ValueError, match="long token ids"):
            aug(_rows([3]).float())
    for factory in (TokenDropout, TokenMask):
        for p in (-0.1, 1.5, "x", True):
            with pytest.raises(ValueError, match="probability"):
                factory(p=p)
    with pytest.raises(SpecError, match="probability"):
        build_pipeline("token_dropout(p=2)", "text")


def test_spec_passes_p_to_the_augmentations() -> None:
    pipe = build_pipeline("token_dropout(p=0.2), token_mask(p=0.1)", "text")
    assert isinstance(pipe, Compose)
    drop, mask = pipe.augmentations
    assert isinstance(drop, TokenDropout) and drop.p == 0.2
    assert isinstance(mask, TokenMask) and mask.p == 0.1
    assert repr(pipe) == "token_dropout(p=0.2), token_mask(p=0.1)"
    x = _rows([10, 2, 8] * 4).view(4, 3, L)
    out = build_pipeline("sample_caption, token_dropout, token_mask", "text")(x, _gen(0))
    assert out.shape == (4, L) and bool((out[:, 0] == START).all())


@pytest.mark.parametrize("device", DEVICES)
def test_random_apply_and_one_of(device: str) -> None:
    x = _rows([10] * 64, seed=6).to(device)
    out = RandomApply(TokenDropout(p=1.0), p=0.5)(x, _gen(0, device))
    touched = (out != x).any(1)
    assert 10 < int(touched.sum()) < 54
    assert bool(((out[touched] >= N_SPECIAL).sum(1) == 1).all())  # p=1: one token left
    both = OneOf([TokenDropout(p=1.0), TokenMask(p=1.0)])(x, _gen(0, device))
    n_mask, n_text = (both == MASK).sum(1), (both >= N_SPECIAL).sum(1)
    assert bool(((n_mask == 9) | (n_mask == 0)).all()) and bool((n_text == 1).all())
    assert 10 < int((n_mask == 9).sum()) < 54


def test_view_generator_is_reproducible() -> None:
    x = _rows([10, 5, 8] * 8)
    views = ViewGenerator(build_pipeline("token_dropout(p=0.3) | token_mask(p=0.3)", "text"))
    views.manual_seed(3)
    a = views(x)
    views.manual_seed(3)
    b = views(x)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not torch.equal(a[0], a[1])
