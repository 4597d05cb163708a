"""Text encoders: END / mean pooling against hand-written gathers, PAD masking, causality, no
NaN on degenerate rows, gradients, the registry factories and bad input."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from anyssl.modalities.text.encoders import BagOfEmbeddings, TextTransformer
from anyssl.modalities.text.tokenizer import END, MASK, N_SPECIAL, PAD, START
from anyssl.registry import ENCODERS

V, L = 40, 10


def _rows(lengths: list[int], seed: int = 0, length: int = L) -> Tensor:
    """Rows ``START tok... END PAD...`` with ``lengths[i]`` random text tokens."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((len(lengths), length), PAD, dtype=torch.long)
    for i, n in enumerate(lengths):
        x[i, 0] = START
        x[i, 1 : n + 1] = torch.randint(N_SPECIAL, V, (n,), generator=g)
        x[i, n + 1] = END
    return x


def _transformer(**kw: object) -> TextTransformer:
    torch.manual_seed(0)
    kw = {"width": 32, "layers": 2, "heads": 4, **kw}
    return ENCODERS.build("transformer", "text", vocab_size=V, context_length=L, **kw).eval()


def test_registered_factories_ignore_other_towers_kwargs() -> None:
    assert {"transformer", "bag"} <= set(ENCODERS.names("text"))
    extra = {"in_channels": 3, "image_size": 32}
    tr = ENCODERS.build("transformer", "text", vocab_size=V, context_length=L, **extra)
    bag = ENCODERS.build("bag", "text", vocab_size=V, context_length=L, width=48, **extra)
    assert isinstance(tr, TextTransformer) and tr.out_dim == 256
    assert isinstance(bag, BagOfEmbeddings) and bag.out_dim == 48
    x = _rows([3, 8, 1])
    assert tr(x).shape == (3, 256) and bag(x).shape == (3, 48)


def test_end_pooling_is_the_features_at_the_end_token() -> None:
    enc, x = _transformer(), _rows([3, 8, 1, 0])
    h = enc.forward_tokens(x)  # B x L x W
    pos = (x == END).int().argmax(dim=1)
    assert pos.tolist() == [4, 9, 2, 1]
    torch.testing.assert_close(enc(x), h[torch.arange(4), pos])


def test_mean_pooling_averages_non_pad_positions() -> None:
    enc, x = _transformer(pool="mean"), _rows([3, 8])
    h = enc.forward_tokens(x)
    expected = torch.stack([h[0, :5].mean(0), h[1, :10].mean(0)])
    torch.testing.assert_close(enc(x), expected)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("pool", ["end", "mean"])
def test_pad_columns_change_nothing(causal: bool, pool: str) -> None:
    enc, x = _transformer(causal=causal, pool=pool), _rows([2, 5], length=L)
    short = x[:, :7]  # the same rows with fewer PAD columns
    torch.testing.assert_close(enc(x), enc(short))


@pytest.mark.parametrize("causal", [True, False])
def test_pad_keys_are_masked(causal: bool) -> None:
    enc, x = _transformer(causal=causal), _rows([3])
    y = x.clone()
    y[0, 6:] = torch.arange(6, 10) + N_SPECIAL  # ids after END
    out_x, out_y = enc(x), enc(y)
    if causal:
        torch.testing.assert_close(out_x, out_y)  # later positions are never seen
    else:
        assert not torch.allclose(out_x, out_y)  # now they are keys: the test can tell


def test_causal_positions_only_see_the_past() -> None:
    t = 4
    x = _rows([8])
    y = x.clone()
    y[0, t + 1 :] = torch.randint(N_SPECIAL, V, (L - t - 1,), generator=torch.Generator())
    causal, full = _transformer(causal=True), _transformer(causal=False)
    hc_x, hc_y = causal.forward_tokens(x), causal.forward_tokens(y)
    torch.testing.assert_close(hc_x[:, : t + 1], hc_y[:, : t + 1])
    assert not torch.allclose(hc_x[:, t + 1 :], hc_y[:, t + 1 :])
    assert not torch.allclose(full.forward_tokens(x)[:, :t], full.forward_tokens(y)[:, :t])


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("pool", ["end", "mean"])
def test_degenerate_rows_are_finite(causal: bool, pool: str) -> None:
    x = torch.tensor([[PAD] * L, [START] + [PAD] * (L - 1), [START, END] + [PAD] * (L - 2)])
    enc = _transformer(causal=causal, pool=pool)
    assert torch.isfinite(enc(x)).all()
    # every query keeps a key: an all-masked softmax row is NaN (CPU SDPA happens to give 0)
    assert bool(enc.attention_mask(x).any(-1).all())
    bag = BagOfEmbeddings(V, width=16)
    out = bag(x)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, bag.norm(torch.zeros(3, 16)))  # nothing to average


def test_bag_is_the_layer_norm_of_the_text_token_mean() -> None:
    torch.manual_seed(0)
    bag = BagOfEmbeddings(V, width=16)
    x = _rows([3, 6])
    x[1, 2] = MASK  # MASK counts as a token
    emb = bag.embedding.weight
    means = torch.stack([emb[x[0, 1:4]].mean(0), emb[x[1, 1:7]].mean(0)])
    torch.testing.assert_close(bag(x), bag.norm(means))
    wider = torch.cat([x, torch.full((2, 5), PAD)], dim=1)
    torch.testing.assert_close(bag(wider), bag(x))


@pytest.mark.parametrize("name", ["transformer", "bag"])
def test_gradients_reach_every_parameter(name: str) -> None:
    enc = ENCODERS.build(name, "text", vocab_size=V, context_length=L, width=16, **(
        {"layers": 1, "heads": 2} if name == "transformer" else {}))
    enc(_rows([3, 8])).pow(2).sum().backward()
    for pname, p in enc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_init_follows_clip() -> None:
    torch.manual_seed(0)
    enc = TextTransformer(vocab_size=2000, context_length=77, width=256, layers=4)
    assert abs(enc.token_embedding.weight.std().item() - 0.02) < 0.002
    assert abs(enc.positional_embedding.std().item() - 0.01) < 0.001
    proj_std = 256**-0.5 * 8**-0.5
    assert abs(enc.blocks[0].out.weight.std().item() - proj_std) < 0.1 * proj_std


@pytest.mark.parametrize("name", ["transformer", "bag"])
def test_bad_inputs(name: str) -> None:
    enc = ENCODERS.build(name, "text", vocab_size=V, context_length=L, width=8,
                         **({"layers": 1, "heads": 2} if name == "transformer" else {}))
    x = _rows([3])
    for bad in (x.float(), x[0], x.unsqueeze(0), [[1, 2]]):
        with pytest.raises(ValueError, match="B x L long token ids"):
            enc(bad)
    for value in (V, -1):
        y = x.clone()
        y[0, 2] = value
        with pytest.raises(ValueError, match="tokenizer and the encoder disagree"):
            enc(y)


def test_transformer_rejects_rows_longer_than_its_positions() -> None:
    enc = _transformer()
    with pytest.raises(ValueError, match="context_length"):
        enc(_rows([3], length=L + 1))


def test_transformer_bad_construction() -> None:
    with pytest.raises(ValueError, match="divisible"):
        TextTransformer(V, L, width=30, heads=4)
    with pytest.raises(ValueError, match="pool"):
        TextTransformer(V, L, pool="max")
    with pytest.raises(ValueError, match="context_length"):
        TextTransformer(V, 0)
