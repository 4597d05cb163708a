"""Small checks shared by the methods."""

from __future__ import annotations

from torch import nn

from anyssl.types import ViewSource


def encoder_dim(encoder: nn.Module) -> int:
    """The encoder's feature size ``out_dim``, which every encoder fixes at construction."""
    dim = getattr(encoder, "out_dim", None)
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ValueError(
            f"the encoder {type(encoder).__name__} needs a positive int attribute out_dim (its "
            f"feature size), got {dim!r}"
        )
    return dim


def check_views(views: ViewSource, method: str, exactly: int | None = None) -> None:
    """Raise ``ValueError`` when ``views`` makes fewer than 2 views (or not ``exactly``)."""
    n = getattr(views, "n_views", None)
    if not isinstance(n, int) or n < 2 or (exactly is not None and n != exactly):
        want = f"exactly {exactly}" if exactly is not None else "at least 2"
        raise ValueError(f"{method} needs {want} views, got a view generator with {n} views")
