"""The protocols that need a whole two-tower method, not just its primary encoder: zero-shot
classification and cross-modal retrieval (CLIP, Radford et al. 2021, sec. 3.1 and 3.1.4).

A paired dataset tells these protocols what they need through optional attributes:
``class_names`` (label order), ``prompt_templates`` (``"an emoji of {}."``), ``tokenize``
(class prompts -> the text tower's input) and ``split_rows`` (a batch of the second side -> its
rows and the item each row belongs to, for several captions per image). Options given by the
caller (``{"zeroshot": {"classes": [...], "templates": [...]}}``) override the dataset's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn
from torch.utils.data import Dataset, default_collate

from anyssl.eval.embed import Collate, ToDevice
from anyssl.eval.pair import evaluate_pair
from anyssl.eval.report import PAIR_PROTOCOLS
from anyssl.modality import move_to_device

__all__ = ["DEFAULT_TEMPLATES", "PAIR_PROTOCOLS", "merge_results", "run_pair_protocols",
           "split_protocols"]

#: Used when neither the caller nor the dataset gives prompt templates (a few of open_clip's).
DEFAULT_TEMPLATES = ("a photo of a {}.", "a picture of a {}.", "an image of a {}.", "{}")
Results = dict[str, dict[str, dict[str, float]]]


def split_protocols(protocols: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(frozen-feature protocols, whole-method protocols)``, each in the given order."""
    pair = tuple(p for p in protocols if p in PAIR_PROTOCOLS)
    return tuple(p for p in protocols if p not in PAIR_PROTOCOLS), pair


def _class_names(dataset: Any, given: Sequence[str] | None) -> list[str] | None:
    """The caller's class names (checked against the dataset's label count) or the dataset's."""
    names = getattr(dataset, "class_names", None)
    if not given:
        return list(names) if names else None
    n = getattr(dataset, "num_classes", None)
    if n is not None and len(given) != n:
        raise ValueError(f"--classes names {len(given)} classes but the data has {n} labels; "
                         f"give one name per label, in label order")
    return list(given)


def _check_zeroshot_data(dataset: Any, classes: Sequence[str] | None) -> None:
    """Zero-shot needs labels to score and names for them; say which is missing."""
    targets = getattr(dataset, "targets", None)
    if targets is not None and len(targets) and all(int(t) < 0 for t in targets):
        raise ValueError("zero-shot accuracy needs labeled data, and this data has no labels: "
                         "give a label column (-d label_key=...) or evaluate retrieval")
    if not classes and not getattr(dataset, "class_names", None):
        raise ValueError("zero-shot needs class names: pass --classes 'a,b,...' (one per label, "
                         "in label order)")
    if getattr(dataset, "tokenize", None) is None:
        raise ValueError("zero-shot needs data that can turn class prompts into the second "
                         "tower's input (a dataset with a tokenize method, as image-text has)")


def run_pair_protocols(
    method: nn.Module,
    random_method: nn.Module | None,
    dataset: Dataset[Any],
    protocols: Sequence[str],
    options: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    device: Any = None,
    collate: Collate = default_collate,
    to_device: ToDevice = move_to_device,
    batch_size: int = 256,
) -> Results:
    """Zero-shot accuracy and retrieval recall of ``method`` (and its random init) on
    ``dataset`` (the held-out split). ``options["zeroshot"]`` may hold ``classes`` and
    ``templates``."""
    if not hasattr(method, "encode") or len(getattr(method, "keys", ())) != 2:
        what = " and ".join(protocols) + (" need" if len(protocols) > 1 else " needs")
        raise ValueError(f"{what} a two-tower method such as clip (got "
                         f"{type(method).__name__}); use linear, knn, svm or finetune")
    zs = dict((options or {}).get("zeroshot", {}))
    if "zeroshot" in protocols:
        _check_zeroshot_data(dataset, zs.get("classes"))
    templates = zs.get("templates") or getattr(dataset, "prompt_templates", None) or list(
        DEFAULT_TEMPLATES)
    return evaluate_pair(
        method, random_method, dataset, protocols=tuple(protocols),
        encode_texts_fn=getattr(dataset, "tokenize", None),
        class_names=_class_names(dataset, zs.get("classes")), templates=list(templates),
        split_rows=getattr(dataset, "split_rows", None), collate=collate, to_device=to_device,
        device=device, batch_size=batch_size,
    )


def merge_results(*parts: Results) -> Results:
    """One report from several (``{"pretrained": {...}, "random_init": {...}}`` each)."""
    out: Results = {}
    for part in parts:
        for column, protocols in part.items():
            out.setdefault(column, {}).update(protocols)
    return out
