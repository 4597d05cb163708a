"""Text encoders: token ids ``B x L`` (rows ``START tok... END PAD...``) -> ``B x out_dim``.

* ``transformer``: CLIP's text tower (Radford et al. 2021, Sec. 2.4; the GPT-2 style pre-LN
  Transformer of Radford et al. 2019): token embedding + learned positions, ``layers`` pre-LN
  blocks with causal self-attention, a final LayerNorm, features taken at the END token.
* ``bag``: the mean of the text tokens' embeddings and a LayerNorm (a bag of words; a fast
  baseline that ignores order).

Both are registered in ``ENCODERS`` with scope ``"text"`` as factories
``f(vocab_size=, context_length=, **kw)``; keywords meant for other towers (``in_channels``,
``image_size``) are accepted and ignored, so a dataset's ``encoder_kwargs`` can be passed whole.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anyssl.modalities.text.tokenizer import END, PAD, START
from anyssl.registry import ENCODERS

__all__ = ["BagOfEmbeddings", "TextTransformer", "check_ids", "end_positions"]


def check_ids(x: Any, vocab_size: int, max_length: int | None = None) -> Tensor:
    """``x`` if it is a ``B x L`` long tensor of ids in ``[0, vocab_size)``, else ``ValueError``."""
    if not isinstance(x, Tensor) or x.dim() != 2 or x.dtype != torch.long:
        got = (f"a {x.dtype} tensor of shape {tuple(x.shape)}" if isinstance(x, Tensor)
               else type(x).__name__)
        raise ValueError(f"text encoders take B x L long token ids (Tokenizer.encode), got {got}")
    if max_length is not None and x.shape[1] > max_length:
        raise ValueError(
            f"token ids have length {x.shape[1]} but the encoder has {max_length} positions; "
            "build it with context_length equal to the tokenizer's"
        )
    if x.numel() and bool(((x < 0) | (x >= vocab_size)).any()):
        raise ValueError(
            f"token ids outside [0, {vocab_size}) (max {int(x.max())}): the tokenizer and the "
            "encoder disagree; build the encoder with vocab_size=tokenizer.vocab_size"
        )
    return x


def end_positions(x: Tensor) -> Tensor:
    """Position of each row's END token (its first END; rows from ``Tokenizer.encode`` and the
    text augmentations have one, right before the PADs). A row without END uses its last
    non-PAD position, an all-PAD row position 0.

    Shape: ``x`` B x L -> ``B`` long.
    """
    is_end, nonpad = x == END, x != PAD
    first_end = is_end.int().argmax(dim=1)
    last = x.shape[1] - 1 - nonpad.flip(1).int().argmax(dim=1)  # first True from the end
    last = torch.where(nonpad.any(dim=1), last, torch.zeros_like(last))
    return torch.where(is_end.any(dim=1), first_end, last)


class Block(nn.Module):
    """Pre-LN Transformer block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))`` (GELU MLP).

    Shape: ``x`` B x L x width, ``allowed`` bool broadcastable to B x 1 x L x L (True: the
    query may attend to the key) -> B x L x width.
    """

    def __init__(self, width: int, heads: int, mlp_ratio: float, depth: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        hidden = round(width * mlp_ratio)
        self.fc, self.proj = nn.Linear(width, hidden), nn.Linear(hidden, width)
        # CLIP's init (open_clip TextTransformer.init_parameters); depth = number of blocks
        proj_std = width**-0.5 * (2 * depth) ** -0.5
        for lin, std in ((self.qkv, width**-0.5), (self.out, proj_std),
                         (self.fc, (2 * width) ** -0.5), (self.proj, proj_std)):
            nn.init.normal_(lin.weight, std=std)
            nn.init.zeros_(lin.bias)

    def attention(self, x: Tensor, allowed: Tensor) -> Tensor:
        b, n, w = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # B x H x L x (w/H)
        return self.out(h.transpose(1, 2).reshape(b, n, w))

    def forward(self, x: Tensor, allowed: Tensor) -> Tensor:
        x = x + self.attention(self.ln_1(x), allowed)
        return x + self.proj(F.gelu(self.fc(self.ln_2(x))))


class TextTransformer(nn.Module):
    """CLIP's text Transformer (Radford et al. 2021): ``B x L`` ids -> ``B x width``.

    Token embedding plus learned positional embedding (``context_length x width``), ``layers``
    pre-LN blocks, a final LayerNorm. ``causal=True`` masks attention to later positions as
    CLIP's text tower does; PAD keys are always masked (position 0 stays visible, so an all-PAD
    row gives finite features rather than ``NaN``). ``pool="end"`` takes the features at the END
    token (``end_positions``: the last non-PAD position of a tokenizer row; CLIP's EOT pooling),
    ``pool="mean"`` averages the non-PAD positions. Rows shorter than ``context_length`` use
    the first positions (open_clip). CLIP's text tower (ViT-B/32) is width 512, 12 layers, 8
    heads; the defaults here are CPU-sized. Init as CLIP: token embedding N(0, 0.02^2),
    positions N(0, 0.01^2), attention and MLP weights with CLIP's width- and depth-scaled stds.

    Shape:
        ``forward_tokens``: ``B x L`` long (``L <= context_length``) -> ``B x L x width``;
        ``forward``: ``B x L`` long -> ``B x width``.
    """

    def __init__(self, vocab_size: int, context_length: int, width: int = 256, layers: int = 4,
                 heads: int = 4, mlp_ratio: float = 4.0, causal: bool = True,
                 pool: Literal["end", "mean"] = "end") -> None:
        super().__init__()
        for name, v in {"vocab_size": vocab_size, "context_length": context_length,
                        "width": width, "layers": layers, "heads": heads}.items():
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"text transformer {name} must be a positive int, got {v!r}")
        if width % heads:
            raise ValueError(f"text transformer width {width} must be divisible by heads {heads}")
        if pool not in ("end", "mean"):
            raise ValueError(f"text transformer pool must be 'end' or 'mean', got {pool!r}")
        self.vocab_size, self.context_length = vocab_size, context_length
        self.causal, self.pool, self.out_dim = causal, pool, width
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio, layers) for _ in range(layers))
        self.ln_final = nn.LayerNorm(width)
        nn.init.normal_(self.token_embedding.weight, std=0.02)  # CLIP's init
        nn.init.normal_(self.positional_embedding, std=0.01)

    def attention_mask(self, x: Tensor) -> Tensor:
        """Which key each query may attend to: ``B x 1 x L x L`` bool (True: allowed)."""
        n = x.shape[1]
        keys = (x != PAD).clone()  # B x L
        keys[:, 0] = True  # never a fully masked row (NaN softmax)
        allowed = keys[:, None, None, :]  # B x 1 x 1 x L
        if self.causal:
            tril = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()  # L x L
            allowed = allowed & tril
        return allowed

    def forward_tokens(self, x: Tensor) -> Tensor:
        """Per-position features after the final LayerNorm (``B x L x width``)."""
        x = check_ids(x, self.vocab_size, self.context_length)
        allowed = self.attention_mask(x)
        h = self.token_embedding(x) + self.positional_embedding[: x.shape[1]]  # B x L x width
        for blk in self.blocks:
            h = blk(h, allowed)
        return self.ln_final(h)

    def forward(self, x: Tensor) -> Tensor:
        h = self.forward_tokens(x)  # B x L x width
        if self.pool == "end":
            return h[torch.arange(h.shape[0], device=h.device), end_positions(x)]
        keep = (x != PAD).unsqueeze(-1).to(h.dtype)  # B x L x 1
        return (h * keep).sum(1) / keep.sum(1).clamp_min(1.0)


class BagOfEmbeddings(nn.Module):
    """Mean of the text tokens' embeddings, then LayerNorm: ``B x L`` ids -> ``B x width``.

    PAD, START and END are left out of the mean (MASK counts, as a learned "unknown word"); a row
    with no such token gives the LayerNorm of zeros (its bias), never ``NaN``. Rows may have any
    length, so extra PAD columns change nothing.
    """

    def __init__(self, vocab_size: int, width: int = 256) -> None:
        super().__init__()
        if not isinstance(vocab_size, int) or vocab_size < 1 or width < 1:
            raise ValueError(f"bag needs positive vocab_size and width, got {vocab_size}, {width}")
        self.vocab_size, self.out_dim = vocab_size, width
        self.embedding = nn.Embedding(vocab_size, width, padding_idx=PAD)
        nn.init.normal_(self.embedding.weight, std=0.02)
        with torch.no_grad():
            self.embedding.weight[PAD].zero_()
        self.norm = nn.LayerNorm(width)

    def forward(self, x: Tensor) -> Tensor:
        x = check_ids(x, self.vocab_size)
        keep = ((x != PAD) & (x != START) & (x != END)).unsqueeze(-1)  # B x L x 1
        e = self.embedding(x) * keep  # B x L x width
        mean = e.sum(1) / keep.sum(1).clamp_min(1).to(e.dtype)  # B x width
        return self.norm(mean)


@ENCODERS.register("transformer", scope="text")
def text_transformer(vocab_size: int, context_length: int, width: int = 256, layers: int = 4,
                     heads: int = 4, mlp_ratio: float = 4.0, causal: bool = True,
                     pool: Literal["end", "mean"] = "end", **_: Any) -> TextTransformer:
    """CLIP's causal pre-LN text Transformer, features at the END token (Radford et al. 2021)."""
    return TextTransformer(vocab_size, context_length, width, layers, heads, mlp_ratio, causal,
                           pool)


@ENCODERS.register("bag", scope="text")
def bag(vocab_size: int, context_length: int | None = None, width: int = 256,
        **_: Any) -> BagOfEmbeddings:
    """Mean of the text tokens' embeddings plus LayerNorm (an order-free baseline)."""
    return BagOfEmbeddings(vocab_size, width)
