"""Text augmentations on token-id batches, on their device, with per-caption random draws.

Inputs are long tensors of rows ``START tok... END PAD...`` (see ``tokenizer.py``): ``B x L``,
or ``B x K x L`` for items with ``K`` captions (all-PAD rows = no caption). ``token_dropout``
and ``token_mask`` act on every row (so on either layout) and keep the shape, so ``RandomApply``
and ``OneOf`` can pick them per sample; they touch only ordinary tokens (ids >= ``N_SPECIAL``),
never START / END / PAD, and never leave a caption without a text token. ``sample_caption``
picks one caption per item (``B x K x L`` -> ``B x L``); put it first, outside ``p=`` / ``|``.

Random token deletion is EDA's "random deletion" (Wei & Zou 2019, "EDA: Easy data augmentation
techniques for boosting performance on text classification tasks"); masking replaces tokens by a
MASK token as BERT's masked language model does (Devlin et al. 2019). In a spec ``p=`` is the
per-token probability here (the augmentation takes ``p``), not a ``RandomApply`` coin:
``"sample_caption, token_dropout(p=0.2), token_mask(p=0.1)"``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from anyssl.modalities.text.tokenizer import MASK, N_SPECIAL, PAD
from anyssl.registry import AUGMENTATIONS

__all__ = ["SampleCaption", "TokenDropout", "TokenMask", "check_tokens", "draw_tokens"]


def check_tokens(x: Any, what: str, dims: tuple[int, ...] = (2, 3)) -> Tensor:
    """``x`` if it is a long tensor with ``x.dim()`` in ``dims``, else a one-line ``ValueError``."""
    if not isinstance(x, Tensor) or x.dtype != torch.long or x.dim() not in dims:
        got = (f"a {x.dtype} tensor of shape {tuple(x.shape)}" if isinstance(x, Tensor)
               else type(x).__name__)
        layouts = " or ".join({2: "B x L", 3: "B x K x L"}[d] for d in dims)
        raise ValueError(f"{what} takes {layouts} long token ids (Tokenizer.encode), got {got}")
    return x


def _check_p(p: Any, name: str) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} p must be a probability in [0, 1], got {p!r}")
    return float(p)


def draw_tokens(x: Tensor, p: float, generator: torch.Generator | None) -> Tensor:
    """Pick each ordinary token (id >= ``N_SPECIAL``) with probability ``p``, never all of a row.

    When every ordinary token of a row is drawn, the one with the largest uniform draw (a
    uniformly random one) is left out. Shape: ``x`` ... x L long -> same shape bool.
    """
    ordinary = x >= N_SPECIAL
    u = torch.rand(x.shape, generator=generator, device=x.device)
    picked = ordinary & (u < p)
    all_picked = (picked == ordinary).all(dim=-1, keepdim=True)  # ... x 1 (empty rows too)
    spare = u.masked_fill(~ordinary, -1.0).argmax(dim=-1, keepdim=True)  # ... x 1
    spare_mask = torch.zeros_like(picked).scatter_(-1, spare, True) & ordinary & all_picked
    return picked & ~spare_mask


@AUGMENTATIONS.register("token_dropout", scope="text")
class TokenDropout:
    """Delete each text token with probability ``p``; the rest close up, END follows them.

    Random deletion (Wei & Zou 2019): kept tokens move left in their order (a stable batched
    compaction, no loop over captions), so END lands right after the last kept token and PAD
    fills the rest; at least one text token of a caption is kept. Shape: ... x L -> same.
    """

    def __init__(self, p: float = 0.1) -> None:
        self.p = _check_p(p, "token_dropout")

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = check_tokens(x, "token_dropout")
        drop = draw_tokens(x, self.p, generator)  # ... x L
        order = torch.argsort(drop.to(torch.uint8), dim=-1, stable=True)  # kept first, in order
        out = x.gather(-1, order)
        n_kept = (~drop).sum(dim=-1, keepdim=True)  # ... x 1
        pos = torch.arange(x.shape[-1], device=x.device)
        return out.masked_fill(pos >= n_kept, PAD)

    def __repr__(self) -> str:
        return f"token_dropout(p={self.p!r})"


@AUGMENTATIONS.register("token_mask", scope="text")
class TokenMask:
    """Replace each text token by MASK with probability ``p``, never all of a caption.

    BERT-style masking (Devlin et al. 2019; 0.15 is BERT's rate), without its 80/10/10 split:
    every picked token becomes MASK. Shape: ... x L -> same.
    """

    def __init__(self, p: float = 0.15) -> None:
        self.p = _check_p(p, "token_mask")

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = check_tokens(x, "token_mask")
        return x.masked_fill(draw_tokens(x, self.p, generator), MASK)

    def __repr__(self) -> str:
        return f"token_mask(p={self.p!r})"


@AUGMENTATIONS.register("sample_caption", scope="text")
class SampleCaption:
    """Pick one caption per item, uniformly among its non-empty rows (``B x K x L`` -> ``B x L``).

    A row is a caption when it has any non-PAD id; an item with none is an error. A ``B x L``
    batch (one caption each) passes through unchanged. As each epoch draws again, every caption
    of an item is seen (CLIP-style training on COCO's five captions per image).
    """

    def __call__(self, x: Any, generator: torch.Generator | None = None) -> Tensor:
        x = check_tokens(x, "sample_caption")
        if x.dim() == 2:
            return x
        present = (x != PAD).any(dim=-1)  # B x K
        if not bool(present.any(dim=1).all()):
            empty = int((~present.any(dim=1)).nonzero()[0, 0])
            raise ValueError(
                f"sample_caption: item {empty} of the batch has no caption (all its rows are "
                "PAD); drop such items from the dataset or give each at least one caption"
            )
        u = torch.rand(present.shape, generator=generator, device=x.device)
        choice = u.masked_fill(~present, -1.0).argmax(dim=1)  # B: uniform over present rows
        return x[torch.arange(x.shape[0], device=x.device), choice]

    def __repr__(self) -> str:
        return "sample_caption"
