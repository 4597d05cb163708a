"""Text view recipe: two views of each text by token dropout (random deletion, Wei & Zou 2019)
and token masking (BERT's [MASK], Devlin et al. 2019), each token with probability 0.1."""

from __future__ import annotations

from typing import Any

__all__ = ["text_recipe"]

TEXT_VIEW = "token_dropout(p=0.1), token_mask(p=0.1)"


def text_recipe(method: str, dataset: Any) -> list[str]:
    """Two views, the same spec for every method."""
    return [TEXT_VIEW, TEXT_VIEW]
