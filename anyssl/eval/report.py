"""Run the evaluation protocols on a pretrained and a randomly initialized encoder and show the
two side by side (the random-init column is the baseline every SSL paper's table implies).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.utils.data import Dataset, default_collate

from anyssl.eval.embed import Collate, ToDevice, embed
from anyssl.eval.finetune import finetune
from anyssl.eval.knn import knn_classify
from anyssl.eval.linear import linear_probe
from anyssl.eval.svm import svm_cv, svm_split
from anyssl.modality import move_to_device
from anyssl.registry import EVAL_PROTOCOLS

#: The built-in protocols on the (primary) encoder: frozen features, and fine-tuning.
FEATURE_PROTOCOLS: tuple[str, ...] = ("linear", "knn", "finetune", "svm")
#: The built-in protocols that need a whole two-tower method (``anyssl.eval.pair_protocols``).
PAIR_PROTOCOLS: tuple[str, ...] = ("zeroshot", "retrieval")
PROTOCOLS: tuple[str, ...] = FEATURE_PROTOCOLS + PAIR_PROTOCOLS
#: What a protocol is run on (``EvalProtocol.kind``).
PROTOCOL_KINDS: tuple[str, ...] = ("features", "encoder", "method")
#: metrics that are fractions in [0, 1], shown as percentages (and names starting with these).
ACCURACY_KEYS = ("top1", "top5", "std", "majority")
ACCURACY_PREFIXES = ("top", "i2t_", "t2i_", "chance", "micro_f1", "macro_f1")
Results = dict[str, dict[str, dict[str, float]]]


@dataclass(frozen=True)
class EvalProtocol:
    """One evaluation protocol as ``anyssl.registry.EVAL_PROTOCOLS`` holds it.

    ``kind`` says what ``run`` is called with:

    - ``"features"``: ``run(train_x, train_y, test_x, test_y, *, seed, **options) -> metrics``
      on the frozen embeddings (N x D arrays, labels N); ``device`` too when ``run`` names
      it (linear probe, kNN, SVM, a plugin's regression probe ...).
    - ``"encoder"``: ``run(encoder, train_set, test_set, *, fraction, seed, device, collate,
      to_device, num_workers, **options) -> metrics`` (fine-tuning).
    - ``"method"``: ``run(method, random_method, test_set, options, *, device, collate,
      to_device, batch_size) -> {"pretrained": {name: metrics}, "random_init": ...}`` on the
      whole trained method (CLIP's zero-shot and retrieval).

    Metrics are floats; fractions in [0, 1] under ``top1`` ... are shown as percentages.
    """

    run: Callable[..., Any]
    kind: str = "features"

    def __post_init__(self) -> None:
        if self.kind not in PROTOCOL_KINDS:
            raise ValueError(f"unknown protocol kind {self.kind!r}; choose one of: "
                             f"{', '.join(PROTOCOL_KINDS)}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.run(*args, **kwargs)


def register_protocol(name: str, fn: Callable[..., Any], *, kind: str = "features",
                      description: str | None = None, override: bool = False) -> None:
    """Make ``fn`` the protocol that ``--eval-protocol name`` runs (a plugin's, e.g. the graph
    modality's ``logreg_cv``); ``kind`` says what it gets (``EvalProtocol``; default: frozen
    features, ``fn(train_x, train_y, test_x, test_y, *, seed, **options) -> metrics``).
    Every protocol, built-in or added, resolves through ``anyssl.registry.EVAL_PROTOCOLS``;
    a built-in name is refused, a name registered twice needs ``override=True``."""
    if name in PROTOCOLS:
        raise ValueError(f"protocol {name!r} is built in; register another name")
    _add(name, fn if isinstance(fn, EvalProtocol) else EvalProtocol(fn, kind), description,
         override)


def _add(name: str, protocol: EvalProtocol, description: str | None,
         override: bool = False) -> None:
    desc = description or (protocol.run.__doc__ or "").strip().split("\n", 1)[0].strip()
    EVAL_PROTOCOLS.add(name, protocol, description=desc, override=override)


def get_protocol(name: str) -> EvalProtocol:
    """The registered protocol ``name`` (``UnknownNameError`` listing the valid ones); an entry
    added straight to ``EVAL_PROTOCOLS`` counts as a frozen-feature function."""
    found = EVAL_PROTOCOLS.get(name)
    return found if isinstance(found, EvalProtocol) else EvalProtocol(found)


def protocol_names() -> tuple[str, ...]:
    """Every protocol name: the built-in ones, then the registered ones (plugins loaded)."""
    return PROTOCOLS + tuple(n for n in EVAL_PROTOCOLS.names() if n not in PROTOCOLS)


def check_protocols(protocols: str | Sequence[str]) -> tuple[str, ...]:
    """The protocol names as a tuple; ``ValueError`` naming the valid ones on a bad name (a
    run checks its protocols this way before it trains)."""
    names = (protocols,) if isinstance(protocols, str) else tuple(protocols)
    valid = protocol_names()
    bad = [p for p in names if p not in valid]
    if bad or not names:
        what = f"unknown evaluation protocol(s) {', '.join(map(repr, bad))}" if bad else (
            "no evaluation protocol given")
        raise ValueError(f"{what}; valid: {', '.join(valid)} (anyssl list protocols)")
    return names


def _svm(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray,
         **opts: Any) -> dict[str, float]:
    """SVM on frozen features: ``svm_split`` on the given split, or ``svm_cv`` over train +
    test when ``folds`` is set (TS2Vec's UCR and InfoGraph/GraphCL's protocols)."""
    if "folds" not in opts:
        return svm_split(xtr, ytr, xte, yte, **opts)
    res = svm_cv(np.concatenate([xtr, xte]), np.concatenate([ytr, yte]), **opts)
    return {"top1": res["mean"], "std": res["std"]}


for _name, _protocol, _desc in (  # the built-in ones resolve through the registry too
    ("linear", EvalProtocol(linear_probe), "logistic regression on frozen, standardized features"),
    ("knn", EvalProtocol(knn_classify), "weighted kNN (cosine) on frozen features"),
    ("finetune", EvalProtocol(finetune, "encoder"),
     "fine-tune encoder + linear head on a labelled fraction (1%, 10%)"),
    ("svm", EvalProtocol(_svm), "SVM on frozen features (TS2Vec; with folds: GraphCL's CV)"),
):
    _add(_name, _protocol, _desc)


def _takes(fn: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _evaluate_one(
    encoder: nn.Module, train_set: Dataset[Any], test_set: Dataset[Any],
    protocols: tuple[str, ...], options: Mapping[str, Mapping[str, Any]], *, device: Any,
    collate: Collate, to_device: ToDevice, fraction: float, seed: int, batch_size: int,
    num_workers: int,
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    found = {p: get_protocol(p) for p in protocols}
    if any(f.kind == "features" for f in found.values()):  # they share one embedding
        kw: dict[str, Any] = dict(batch_size=batch_size, device=device, collate=collate,
                                  to_device=to_device, num_workers=num_workers)
        xtr, ytr = embed(encoder, train_set, **kw)
        xte, yte = embed(encoder, test_set, **kw)
    for p, protocol in found.items():
        opts = dict(options.get(p, {}))  # per-protocol keywords override the shared ones
        if protocol.kind == "encoder":
            out[p] = protocol(encoder, train_set, test_set, **{
                "fraction": fraction, "seed": seed, "device": device, "collate": collate,
                "to_device": to_device, "num_workers": num_workers, **opts})
        else:
            shared = {"device": device} if _takes(protocol.run, "device") else {}
            out[p] = protocol(xtr, ytr, xte, yte, **{**shared, "seed": seed, **opts})
    return out


def evaluate(
    encoder: nn.Module,
    random_encoder: nn.Module | None,
    train_set: Dataset[Any],
    test_set: Dataset[Any],
    *,
    protocols: str | Sequence[str] = ("linear", "knn"),
    device: Any = None,
    collate: Collate = default_collate,
    to_device: ToDevice = move_to_device,
    fraction: float = 0.01,
    seed: int = 0,
    batch_size: int = 256,
    num_workers: int = 0,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Results:
    """Run each protocol on the pretrained and the random-init encoder.

    Returns ``{"pretrained": {protocol: metrics}, "random_init": {...}}`` (no ``random_init``
    when ``random_encoder`` is None); metrics hold ``top1`` (and ``top5`` when classes > 5) in
    [0, 1] plus what each protocol reports (``weight_decay``, ``k``, ``temperature``,
    ``n_labels``; ``cv_folds`` or ``holdout`` where a hyper-parameter was chosen on the training
    split). ``options`` passes extra keywords per protocol, e.g. ``{"knn": {"k": 200}}`` (the fixed
    InstDisc protocol instead of choosing k and T), ``{"finetune":
    {"epochs": 10}}``; ``{"svm": {"folds": 10}}`` runs the cross-validated ``svm_cv`` over
    train + test instead of ``svm_split``. ``device=None``: embedding and fine-tuning follow
    each encoder's device; the linear probe and kNN use CUDA when available.
    """
    names = check_protocols(protocols)
    pair = [p for p in names if get_protocol(p).kind == "method"]
    if pair:
        raise ValueError(f"{pair[0]} needs the whole two-tower method, not an encoder: use "
                         "anyssl.eval.pair_protocols.run_pair_protocols or anyssl eval "
                         f"{pair[0]}")
    options = options or {}
    unknown = [k for k in options if k not in protocol_names()]
    if unknown:
        raise ValueError(
            f"options for unknown protocol(s) {unknown}; valid: {', '.join(protocol_names())}")
    encoders = {"pretrained": encoder, "random_init": random_encoder}
    return {
        key: _evaluate_one(enc, train_set, test_set, names, options, device=device,
                           collate=collate, to_device=to_device, fraction=fraction, seed=seed,
                           batch_size=batch_size, num_workers=num_workers)
        for key, enc in encoders.items() if enc is not None
    }


def _cell(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}" if _is_accuracy(metric) else f"{value:g}"


def _is_accuracy(metric: str) -> bool:
    return metric in ACCURACY_KEYS or metric.startswith(ACCURACY_PREFIXES)


def report_rows(results: Results) -> list[list[str]]:
    """One row per (protocol, metric): protocol, metric, pretrained, random init, difference
    (percentage points, for top-k accuracies)."""
    pre, rnd = results.get("pretrained", {}), results.get("random_init", {})
    rows = []
    for proto in dict.fromkeys([*pre, *rnd]):
        a, b = pre.get(proto, {}), rnd.get(proto, {})
        for metric in dict.fromkeys([*a, *b]):
            va, vb = a.get(metric), b.get(metric)
            delta = (f"{100 * (va - vb):+.2f}" if metric.startswith(("top", "i2t_", "t2i_"))
                     and va is not None and vb is not None else "")
            rows.append([proto, metric, _cell(metric, va), _cell(metric, vb), delta])
    return rows


HEADER = ("protocol", "metric", "pretrained", "random init", "delta")


def format_report(results: Results, title: str = "Evaluation (accuracies in %)") -> Table:
    """A rich ``Table`` of ``evaluate()`` results, pretrained next to random init."""
    table = Table(title=title)
    for i, name in enumerate(HEADER):
        table.add_column(name, justify="left" if i < 2 else "right")
    for row in report_rows(results):
        table.add_row(*row)
    return table


def report_text(results: Results, title: str = "Evaluation (accuracies in %)") -> str:
    """The same table as plain, aligned text (logs, files, non-TTY output)."""
    rows = [list(HEADER), *report_rows(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(r, widths, strict=True))).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([title, *lines])


def print_report(results: Results, file: TextIO | None = None) -> None:
    """Print the rich table on a terminal, the plain-text table elsewhere."""
    console = Console(file=file or sys.stdout)
    if console.is_terminal:
        console.print(format_report(results))
    else:
        console.file.write(report_text(results) + "\n")


__all__ = ["FEATURE_PROTOCOLS", "PAIR_PROTOCOLS", "PROTOCOLS", "PROTOCOL_KINDS", "EvalProtocol",
           "check_protocols", "evaluate", "format_report", "get_protocol", "print_report",
           "protocol_names", "register_protocol", "report_rows", "report_text"]
