"""Evaluation of two-tower (image-text) models: zero-shot classification from prompt templates
and cross-modal retrieval recall (CLIP, Radford et al. 2021, sec. 3.1 and 3.1.5; open_clip's
``zero_shot_classifier.py`` and the retrieval protocol of clip_benchmark).

"a" is the primary (image) side and "b" the other (text) side; ``i2t`` is a -> b retrieval and
``t2i`` b -> a. Each metric comes with the value a random ranking or guess would get.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, default_collate

from anyssl.eval.embed import Collate, ToDevice, module_device, topk_accuracies
from anyssl.modality import move_to_device

__all__ = ["PAIR_PROTOCOLS", "evaluate_pair", "retrieval_recall", "zeroshot_accuracy",
           "zeroshot_classifier"]

PAIR_PROTOCOLS: tuple[str, ...] = ("zeroshot", "retrieval")
#: rows of a similarity matrix computed at once (bounds memory on large test sets)
_CHUNK = 1024
_NO_HIT = torch.iinfo(torch.int64).max


def zeroshot_classifier(
    encode_texts: Callable[[list[str]], Tensor], class_names: Sequence[str],
    templates: Sequence[str],
) -> Tensor:
    """Zero-shot class embeddings (CLIP sec. 3.1.4, prompt ensembling; open_clip's
    ``build_zero_shot_classifier``): for each class, embed every template with ``{}`` replaced
    by the class name, L2-normalize, average and renormalize.

    Shape: ``encode_texts``: T strings -> T x D. Returns C x D (unit rows).
    """
    if not class_names or not templates:
        raise ValueError("zero-shot needs at least one class name and one prompt template")
    bad = [t for t in templates if "{}" not in t]
    if bad:
        raise ValueError(f"prompt template {bad[0]!r} has no '{{}}' for the class name")
    rows = []
    for name in class_names:
        texts = [t.replace("{}", name) for t in templates]
        emb = encode_texts(texts)  # T x D
        if not isinstance(emb, Tensor) or emb.dim() != 2 or emb.shape[0] != len(texts):
            shape = tuple(emb.shape) if isinstance(emb, Tensor) else type(emb).__name__
            raise ValueError(f"encode_texts must return {len(texts)} x D for {len(texts)} "
                             f"prompts, got {shape}")
        rows.append(F.normalize(F.normalize(emb.float(), dim=1).mean(dim=0), dim=0))  # D
    return torch.stack(rows)  # C x D


def zeroshot_accuracy(emb: Tensor, labels: Tensor, classifier: Tensor) -> dict[str, float]:
    """Zero-shot accuracy: each sample's class is the most similar class embedding.

    Samples labeled -1 are left out. Returns ``top1`` (and ``top5`` when C > 5), ``chance``
    (1/C) and ``majority`` (the share of the most common label among the evaluated samples).

    Shape: emb: N x D, labels: N, classifier: C x D.
    """
    if emb.dim() != 2 or classifier.dim() != 2 or emb.shape[1] != classifier.shape[1]:
        raise ValueError(f"emb (N x D) and classifier (C x D) must share D, got "
                         f"{tuple(emb.shape)} and {tuple(classifier.shape)}")
    if labels.shape != (emb.shape[0],):
        raise ValueError(f"labels must have shape ({emb.shape[0]},), got {tuple(labels.shape)}")
    keep = labels >= 0
    if not bool(keep.any()):
        raise ValueError("zero-shot accuracy needs labeled samples; every label is -1")
    num_classes = classifier.shape[0]
    y = labels[keep].long()
    if int(y.max()) >= num_classes:
        raise ValueError(f"label {int(y.max())} is outside the classifier's {num_classes} classes")
    scores = emb[keep].float() @ classifier.float().to(emb.device).T  # n x C
    out = topk_accuracies(scores, y)
    out["chance"] = 1 / num_classes
    out["majority"] = float(torch.bincount(y).max()) / y.shape[0]
    return out


def _first_hit(q: Tensor, c: Tensor, q_label: Tensor, c_label: Tensor, kmax: int) -> Tensor:
    """For each query, the first rank (0-based) among its ``kmax`` most similar candidates at
    which a candidate has the query's label; ``kmax`` when none has. Computed ``_CHUNK``
    queries at a time.

    Shape: q: Q x D, c: C x D (unit rows), q_label: Q, c_label: C. Returns Q long (CPU).
    """
    first = []
    for start in range(0, q.shape[0], _CHUNK):
        sims = q[start:start + _CHUNK] @ c.T  # q x C
        top = sims.topk(kmax, dim=1).indices  # q x kmax
        hit = c_label[top] == q_label[start:start + _CHUNK, None]  # q x kmax
        ranks = torch.where(hit, torch.arange(kmax, device=hit.device), _NO_HIT)  # q x kmax
        first.append(ranks.min(dim=1).values.cpu())
    return torch.cat(first)


def _chance_i2t(m: Tensor, total: int, k: int) -> float:
    """Mean over items of ``1 - C(M - m_i, k) / C(M, k)``, the miss probability written as
    ``prod_{j<k} (M - m_i - j) / (M - j)`` (float64; a factor is 0 once ``k > M - m_i``)."""
    j = torch.arange(k, dtype=torch.float64)
    miss = ((total - m.double()[:, None] - j) / (total - j)).prod(dim=1)  # N
    return float((1 - miss).mean())


def retrieval_recall(a_emb: Tensor, b_emb: Tensor, b_owner: Tensor,
                     ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Cross-modal recall@k by cosine similarity (CLIP sec. 3.1.5 / Table 13).

    ``i2t_r{k}``: share of a-items with ANY of their b rows among their k nearest b rows
    (items without b rows are left out). ``t2i_r{k}``: share of b rows whose owner is among
    their k nearest a-items. ``chance_*`` is the expected recall of a random ranking: ``k/N``
    for t2i, the mean of ``1 - C(M - m_i, k) / C(M, k)`` for i2t (``m_i`` = item i's rows).
    A k larger than the candidates counts as all of them.

    Shape: a_emb: N x D, b_emb: M x D, b_owner: M long in ``0..N-1``.
    """
    n, m = a_emb.shape[0], b_emb.shape[0]
    if a_emb.dim() != 2 or b_emb.dim() != 2 or a_emb.shape[1] != b_emb.shape[1] or not n * m:
        raise ValueError(f"a_emb (N x D) and b_emb (M x D) must be non-empty and share D, got "
                         f"{tuple(a_emb.shape)} and {tuple(b_emb.shape)}")
    owner = b_owner.long()
    if owner.shape != (m,) or int(owner.min()) < 0 or int(owner.max()) >= n:
        raise ValueError(f"b_owner must be {m} indices in 0..{n - 1}, got {tuple(b_owner.shape)}")
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive ints, got {tuple(ks)}")
    a = F.normalize(a_emb.float(), dim=1)
    b = F.normalize(b_emb.float(), dim=1).to(a.device)
    owner, items = owner.to(a.device), torch.arange(n, device=a.device)
    counts = torch.bincount(owner, minlength=n).cpu()  # N: b rows per item
    has_rows = counts > 0
    i2t = _first_hit(a, b, items, owner, min(max(ks), m))[has_rows]  # first hit rank per item
    t2i = _first_hit(b, a, owner, items, min(max(ks), n))  # first hit rank per b row
    out: dict[str, float] = {}
    for k in ks:
        out[f"i2t_r{k}"] = float((i2t < k).double().mean())
        out[f"t2i_r{k}"] = float((t2i < k).double().mean())
    for k in ks:
        out[f"chance_i2t_r{k}"] = _chance_i2t(counts[has_rows], m, min(k, m))
        out[f"chance_t2i_r{k}"] = min(k, n) / n
    return out


def _one_row_each(x: Any) -> tuple[Any, Tensor]:
    """Default ``split_rows``: every item has exactly one row. Shape: B x ... -> (B x ..., B)."""
    return x, torch.arange(len(x), device=x.device if isinstance(x, Tensor) else None)


def _check_protocols(protocols: str | Sequence[str]) -> tuple[str, ...]:
    names = (protocols,) if isinstance(protocols, str) else tuple(protocols)
    bad = [p for p in names if p not in PAIR_PROTOCOLS]
    if bad or not names:
        what = f"unknown pair protocol(s) {bad}" if bad else "no pair protocol given"
        raise ValueError(f"{what}; valid: {', '.join(PAIR_PROTOCOLS)}")
    return names


def _embed_pairs(
    method: Any, loader: DataLoader[Any], device: torch.device, to_device: ToDevice,
    split_rows: Callable[[Any], tuple[Any, Tensor]], with_b: bool,
) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor]:
    """Primary-side embeddings, the other side's rows and their owners (when ``with_b``) and
    the labels of a whole dataset. Shape: N x E, M x E, M, N (CPU)."""
    k0, k1 = method.keys
    a_parts, b_parts, owners, labels = [], [], [], []
    seen = 0
    for batch in loader:
        inputs, y = to_device(batch, device, device.type == "cuda")
        a = method.encode(k0, inputs[k0])  # B x E
        a_parts.append(a.float().cpu())
        labels.append(torch.as_tensor(y).long().cpu())
        if with_b:
            rows, owner = split_rows(inputs[k1])  # M_b rows, M_b owners in 0..B-1
            b_parts.append(method.encode(k1, rows).float().cpu())  # M_b x E
            owners.append(owner.long().cpu() + seen)
        seen += a.shape[0]
    b = torch.cat(b_parts) if with_b else None
    owner_all = torch.cat(owners) if with_b else None
    return torch.cat(a_parts), b, owner_all, torch.cat(labels)


def _zeroshot(
    method: Any, a: Tensor, labels: Tensor, encode_texts_fn: Callable[[list[str]], Any],
    class_names: Sequence[str], templates: Sequence[str], device: torch.device,
    to_device: ToDevice,
) -> dict[str, float]:
    """Zero-shot accuracy of the primary-side embeddings ``a`` (N x E) against the prompts."""
    k1 = method.keys[1]

    def encode_texts(texts: list[str]) -> Tensor:
        return method.encode(k1, to_device(encode_texts_fn(texts), device, False))  # T x E

    classifier = zeroshot_classifier(encode_texts, class_names, templates)  # C x E
    return zeroshot_accuracy(a, labels, classifier.cpu())


def _evaluate_one(method: Any, dataset: Dataset[Any], protocols: tuple[str, ...],
                  zs: dict[str, Any], split_rows: Callable[[Any], tuple[Any, Tensor]],
                  collate: Collate, to_device: ToDevice, device: torch.device | str | None,
                  batch_size: int) -> dict[str, dict[str, float]]:
    dev = module_device(method) if device is None else torch.device(device)
    method.to(dev)
    loader: DataLoader[Any] = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                         collate_fn=collate)
    was_training = method.training
    method.eval()
    out: dict[str, dict[str, float]] = {}
    try:
        with torch.no_grad():
            a, b, owner, labels = _embed_pairs(method, loader, dev, to_device, split_rows,
                                               "retrieval" in protocols)
            for p in protocols:
                if p == "retrieval" and b is not None and owner is not None:
                    out[p] = retrieval_recall(a, b, owner)
                elif p == "zeroshot":
                    out[p] = _zeroshot(method, a, labels, device=dev, to_device=to_device, **zs)
    finally:
        method.train(was_training)
    return out


def evaluate_pair(
    method: nn.Module,
    random_method: nn.Module | None,
    dataset: Dataset[Any],
    *,
    protocols: str | Sequence[str] = PAIR_PROTOCOLS,
    encode_texts_fn: Callable[[list[str]], Any] | None = None,
    class_names: Sequence[str] | None = None,
    templates: Sequence[str] | None = None,
    split_rows: Callable[[Any], tuple[Any, Tensor]] | None = None,
    collate: Collate = default_collate,
    to_device: ToDevice = move_to_device,
    device: torch.device | str | None = None,
    batch_size: int = 256,
) -> dict[str, dict[str, dict[str, float]]]:
    """Zero-shot accuracy and retrieval recall of a two-tower method (``keys``, ``encode``, e.g.
    ``anyssl.methods.clip.CLIP``) and of its random-init copy, on one (test) dataset of dict
    batches ``{keys[0]: ..., keys[1]: ...}``.

    ``split_rows(x[keys[1]]) -> (rows, owner)`` turns a batch's other side into the rows to
    embed and the index in the batch of the item each row belongs to (B x K x L captions -> the
    M non-empty rows); default: one row per item. Zero-shot embeds ``templates`` filled with
    ``class_names`` through ``encode_texts_fn(prompts) -> keys[1] input`` (e.g. token ids);
    each defaults to the dataset's ``class_names``, ``prompt_templates`` (else ``"{}"``) and
    ``tokenize``. ``device=None`` runs where each method's parameters are.

    Returns ``{"pretrained": {protocol: metrics}, "random_init": {...}}`` (no ``random_init``
    when ``random_method`` is None).
    """
    names = _check_protocols(protocols)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    zs: dict[str, Any] = {}
    if "zeroshot" in names:
        zs = {"encode_texts_fn": encode_texts_fn or getattr(dataset, "tokenize", None),
              "class_names": class_names or getattr(dataset, "class_names", None),
              "templates": templates or getattr(dataset, "prompt_templates", None) or ("{}",)}
        if zs["encode_texts_fn"] is None or not zs["class_names"]:
            raise ValueError("the zeroshot protocol needs class_names and encode_texts_fn "
                             "(strings -> text input), or a dataset with class_names and tokenize")
    methods = {"pretrained": method, "random_init": random_method}
    return {key: _evaluate_one(m, dataset, names, zs, split_rows or _one_row_each, collate,
                               to_device, device, batch_size)
            for key, m in methods.items() if m is not None}
