"""Text view recipes.

Two views of each text by token dropout (random deletion, Wei & Zou 2019) and token masking
(BERT's [MASK], Devlin et al. 2019), each token with probability 0.1, for every method
(``simsiam``, ``barlowtwins``, ``vicreg``, ``mocov3``, ``nnclr`` too). ``dino`` and ``swav``
(multi-crop, Caron et al. 2020, sec. 3.2; 2021, sec. 3.1) add 6 local views: a contiguous span
(``span``) of a share U(size/4, size) of each caption's tokens, size 0.5, then the same dropout
and masking. ``--views 2+6x0.3`` sets the counts and the size (a share, 0-1].
"""

from __future__ import annotations

from typing import Any

from anyssl.modalities.text import augment_span  # noqa: F401  (registers span)
from anyssl.multicrop import MultiCrop

__all__ = ["LOCAL_SIZE", "TEXT_VIEW", "local_view", "text_recipe"]

TEXT_VIEW = "token_dropout(p=0.1), token_mask(p=0.1)"
#: The largest share of a caption's tokens a local view keeps.
LOCAL_SIZE = 0.5
N_LOCAL = 6  # SwAV's 6 local crops (README: --nmb_crops 2 6)


def local_view(size: Any) -> str:
    """The local view: a span of a share U(size/4, size) of each caption, then ``TEXT_VIEW``."""
    share = float(size)
    if not 0.0 < share <= 1.0:
        raise ValueError(f"text local views keep a share of each caption in (0, 1], got "
                         f"{size!r} (e.g. --views 2+6x0.3)")
    return f"span(scale={share / 4:g}-{share:g}), {TEXT_VIEW}"


def text_recipe(method: str, dataset: Any) -> list[str] | MultiCrop:
    """Two views, the same spec for every method; a ``MultiCrop`` for ``dino`` and ``swav``."""
    if method.lower().replace("-", "").replace("_", "") in ("dino", "swav"):
        return MultiCrop((TEXT_VIEW, TEXT_VIEW), local_view, N_LOCAL, LOCAL_SIZE,
                         modality="text")
    return [TEXT_VIEW, TEXT_VIEW]
