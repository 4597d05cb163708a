"""Text specs for augmentation pipelines, usable on the command line:
``"crop(size=32,scale=0.2-1.0), flip, jitter(strength=0.5,p=0.8), grayscale(p=0.2)"``.

Grammar: items separated by commas run in order; ``a | b`` picks one per sample;
``name(key=value, ...)`` passes arguments; ``lo-hi`` is a range; ``p=`` wraps the item in
``RandomApply`` (or goes to the augmentation itself when it takes ``p``, as ``flip`` does).
Names resolve among a modality's registered augmentations.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from anyssl.registry import AUGMENTATIONS, UnknownNameError
from anyssl.types import Augmentation
from anyssl.views import Compose, OneOf, RandomApply

__all__ = ["SpecError", "build_pipeline", "parse_spec"]


class SpecError(ValueError):
    """An augmentation spec that does not parse; the message names the bad token."""


_RANGE = re.compile(r"^(-?\d+(?:\.\d*)?(?:e-?\d+)?)-(-?\d+(?:\.\d*)?(?:e-?\d+)?)$")
_ITEM = re.compile(r"^\s*([A-Za-z_][\w\-]*)\s*(?:\((.*)\))?\s*$", re.S)


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            raise SpecError(f"bad augmentation spec {text!r}: unbalanced ')'")
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise SpecError(f"bad augmentation spec {text!r}: unbalanced '('")
    parts.append("".join(cur))
    return parts


def _value(text: str) -> Any:
    t = text.strip()
    if m := _RANGE.match(t):
        return (float(m.group(1)), float(m.group(2)))
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    for cast in (int, float):
        try:
            return cast(t)
        except ValueError:
            pass
    return t.strip("'\"")


def _params(factory: Any) -> list[str]:
    try:
        return [k for k in inspect.signature(factory).parameters if k != "self"]
    except (TypeError, ValueError):
        return []


def _build_one(token: str, scope: str | None) -> Augmentation:
    m = _ITEM.match(token)
    if not m:
        raise SpecError(
            f"bad augmentation token {token.strip()!r}: expected name or name(key=value,...)"
        )
    name, argtext = m.group(1), m.group(2)
    kwargs: dict[str, Any] = {}
    for arg in _split_top(argtext or "", ","):
        if not arg.strip():
            continue
        if "=" not in arg:
            raise SpecError(
                f"bad argument {arg.strip()!r} in {token.strip()!r}: expected key=value"
            )
        key, val = arg.split("=", 1)
        kwargs[key.strip()] = _value(val)
    p = kwargs.pop("p", None)
    if p is not None and not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):
        raise SpecError(f"bad value in {token.strip()!r}: p must be a probability in [0, 1]")
    try:
        factory = AUGMENTATIONS.get(name, scope)
    except UnknownNameError as err:
        raise SpecError(f"bad augmentation spec token {token.strip()!r}: {err}") from None
    if p is not None and "p" in _params(factory):
        kwargs["p"], p = p, None  # the augmentation draws its own per-sample coin (flip)
    try:
        aug = factory(**kwargs)
    except TypeError as err:
        params = [k for k in _params(factory) if k != "p"]
        raise SpecError(
            f"bad arguments in {token.strip()!r}: {err}; "
            f"{name} takes {', '.join(params) or 'none'} and p"
        ) from None
    except ValueError as err:
        raise SpecError(f"bad value in {token.strip()!r}: {err}") from None
    return RandomApply(aug, float(p)) if p is not None else aug


def parse_spec(spec: str, scope: str | None = None) -> Augmentation:
    """Parse a text spec into a pipeline, resolving names among ``scope``'s augmentations.

    Grammar: items separated by commas, applied in order; ``a | b`` picks one per sample;
    ``name(key=value, ...)`` passes arguments, ``lo-hi`` is a range, ``p=`` wraps the item in
    ``RandomApply``. Raises ``SpecError`` naming the bad token and the valid names.
    """
    if not spec or not spec.strip():
        raise SpecError("empty augmentation spec: give e.g. 'crop(size=32), flip'")
    steps: list[Augmentation] = []
    for item in _split_top(spec, ","):
        if not item.strip():
            raise SpecError(f"bad augmentation spec {spec!r}: empty item between commas")
        alts = [_build_one(a, scope) for a in _split_top(item, "|")]
        steps.append(alts[0] if len(alts) == 1 else OneOf(alts))
    return steps[0] if len(steps) == 1 else Compose(steps)


def build_pipeline(spec: str | Augmentation, scope: str | None = None) -> Augmentation:
    """A pipeline from a text spec or an augmentation object (passed through)."""
    return parse_spec(spec, scope) if isinstance(spec, str) else spec
