"""The protocols that need a whole two-tower method, not just its primary encoder: zero-shot
classification and cross-modal retrieval (CLIP, Radford et al. 2021, sec. 3.1 and 3.1.4).

A paired dataset tells these protocols what they need through optional attributes:
``class_names`` (label order), ``prompt_templates`` (``"an emoji of {}."``), ``tokenize``
(class prompts -> the text tower's input) and ``split_rows`` (a batch of the second side -> its
rows and the item each row belongs to, for several captions per image). Options given by the
caller (``{"zeroshot": {"classes": [...], "templates": [...]}}``) override the dataset's.

Both register in ``anyssl.registry.EVAL_PROTOCOLS`` as protocols of kind ``"method"``, as a
plugin's whole-method protocol would (``anyssl.eval.report.register_protocol``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn
from torch.utils.data import Dataset, default_collate

from anyssl.eval.embed import Collate, ToDevice
from anyssl.eval.pair import evaluate_pair
from anyssl.eval.report import PAIR_PROTOCOLS, EvalProtocol, _add, check_protocols, get_protocol
from anyssl.modality import move_to_device

__all__ = ["DEFAULT_TEMPLATES", "PAIR_PROTOCOLS", "merge_results", "run_pair_protocols",
           "split_protocols"]

#: Used when neither the caller nor the dataset gives prompt templates (a few of open_clip's).
DEFAULT_TEMPLATES = ("a photo of a {}.", "a picture of a {}.", "an image of a {}.", "{}")
Results = dict[str, dict[str, dict[str, float]]]


def split_protocols(protocols: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(encoder protocols, whole-method protocols)`` (by each one's registered ``kind``), in
    the given order; an unknown name raises ``ValueError`` listing the valid ones (so a run
    that evaluates checks its protocols here, before it trains)."""
    names = check_protocols(protocols)
    whole = tuple(p for p in names if get_protocol(p).kind == "method")
    return tuple(p for p in names if p not in whole), whole


def _check_two_tower(method: nn.Module, protocols: Sequence[str]) -> None:
    if not hasattr(method, "encode") or len(getattr(method, "keys", ())) != 2:
        what = " and ".join(protocols) + (" need" if len(protocols) > 1 else " needs")
        raise ValueError(f"{what} a two-tower method such as clip (got "
                         f"{type(method).__name__}); use linear, knn, svm or finetune")


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
    ``dataset`` (the held-out split), and any other whole-method protocol a plugin registered
    (each called as ``EvalProtocol`` says). ``options["zeroshot"]`` may hold ``classes`` and
    ``templates``."""
    kw: dict[str, Any] = dict(device=device, collate=collate, to_device=to_device,
                              batch_size=batch_size)
    builtin = [p for p in protocols if p in PAIR_PROTOCOLS]
    parts = [get_protocol(p)(method, random_method, dataset, options or {}, **kw)
             for p in protocols if p not in PAIR_PROTOCOLS]
    if builtin:
        parts.insert(0, _run_builtin(method, random_method, dataset, builtin, options, **kw))
    return merge_results(*parts)


def _run_builtin(
    method: nn.Module, random_method: nn.Module | None, dataset: Dataset[Any],
    protocols: Sequence[str], options: Mapping[str, Mapping[str, Any]] | None, *, device: Any,
    collate: Collate, to_device: ToDevice, batch_size: int,
) -> Results:
    """Zero-shot and retrieval in one pass over the data (``anyssl.eval.pair``)."""
    _check_two_tower(method, protocols)
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


def _builtin_runner(name: str) -> Callable[..., Results]:
    def run(method: nn.Module, random_method: nn.Module | None, dataset: Dataset[Any],
            options: Mapping[str, Mapping[str, Any]], **kw: Any) -> Results:
        return run_pair_protocols(method, random_method, dataset, (name,), options, **kw)
    return run


_add("zeroshot", EvalProtocol(_builtin_runner("zeroshot"), "method"),
     "zero-shot classification with class prompts (two-tower methods: CLIP)")
_add("retrieval", EvalProtocol(_builtin_runner("retrieval"), "method"),
     "cross-modal Recall@1/5/10 (two-tower methods: CLIP)")
