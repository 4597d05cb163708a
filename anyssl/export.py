"""Export a run's encoder alone (``anyssl export``): weights as a state dict or safetensors in
the plain model's key names, or the whole encoder as TorchScript or ONNX, each with a JSON file
beside it (``<out>.json``) that says how to build the input and load the file.

The plain key names come from a *weight layout* registered for the encoder's class
(``register_layout``): image ResNets export torchvision's names, ViTs timm's (the image
modality's ``export`` module). Any other encoder exports its own ``state_dict()``
(``OwnLayout``). ``anyssl train --init`` reads the same layouts back
(``anyssl.train.init_weights``).

    from anyssl.export import export_encoder
    export_encoder("runs/image-simclr/last.pt", "encoder.safetensors")
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from torch import Tensor, nn

from anyssl.pair import PairEncoder

__all__ = ["FORMATS", "Exported", "OwnLayout", "PlainWeights", "WeightLayout",
           "export_encoder", "layout_of", "normalization", "pick_tower", "register_layout"]

FORMATS = ("state_dict", "safetensors", "torchscript", "onnx")
#: ``--format`` when it is not given, from the suffix of ``--out``.
SUFFIX_FORMATS = {".pt": "state_dict", ".pth": "state_dict", ".bin": "state_dict",
                  ".safetensors": "safetensors", ".ts": "torchscript", ".onnx": "onnx"}
#: How far a TorchScript / ONNX output may be from the encoder's on the example batch.
RTOL, ATOL = 1e-3, 1e-4


@dataclass
class PlainWeights:
    """An encoder's weights under the key names of the model that users load them into."""

    state_dict: dict[str, Tensor]  # tensors under the plain model's names
    layout: str  # "anyssl" (the encoder's own keys), "torchvision", "timm", ...
    model: str  # what the weights load into, e.g. torchvision.models.resnet18
    load: list[str]  # Python lines that build that model and load the file (JSON, docs)
    extra: dict[str, Any] = field(default_factory=dict)  # more facts for the JSON (stem ...)


class WeightLayout(Protocol):
    """Maps one encoder class to a plain model's keys and back."""

    def to_plain(self, encoder: nn.Module) -> PlainWeights:
        """The encoder's weights under the plain model's names."""
        ...

    def key_map(self, encoder: nn.Module, state: Mapping[str, Tensor]) -> dict[str, str | None]:
        """``file key -> encoder key`` for a plain state dict (``None``: a key to ignore, such
        as a classifier's ``fc.*``); a key it leaves out is one the encoder has no place for."""
        ...


class OwnLayout:
    """The fallback: the encoder's own ``state_dict()`` keys, loaded back as they are."""

    def to_plain(self, encoder: nn.Module) -> PlainWeights:
        cls = f"{type(encoder).__module__}.{type(encoder).__qualname__}"
        return PlainWeights(_tensors(encoder.state_dict()), "anyssl", cls, [
            "from anyssl.registry import ENCODERS",
            "# the JSON's encoder.name, modality, encoder.build_args and encoder.args:",
            "encoder = ENCODERS.get(NAME, MODALITY)(**BUILD_ARGS, **ARGS)",
            "state_dict = torch.load(FILE)  # or safetensors.torch.load_file(FILE)",
            "encoder.load_state_dict(state_dict)"])

    def key_map(self, encoder: nn.Module, state: Mapping[str, Tensor]) -> dict[str, str | None]:
        return {k: k for k in state}


_LAYOUTS: dict[type, WeightLayout] = {}
L = TypeVar("L", bound=WeightLayout)


def register_layout(cls: type, *, override: bool = False) -> Callable[[type[L]], type[L]]:
    """Class decorator: instances of encoder class ``cls`` (and its subclasses) export and
    ``--init`` through the decorated layout. A second layout for ``cls`` needs ``override``."""

    def deco(layout_cls: type[L]) -> type[L]:
        if cls in _LAYOUTS and not override:
            raise ValueError(f"a weight layout for {cls.__name__} is already registered "
                             f"({type(_LAYOUTS[cls]).__name__}); pass override=True to replace it")
        _LAYOUTS[cls] = layout_cls()
        return layout_cls

    return deco


def layout_of(encoder: nn.Module) -> WeightLayout:
    """The layout registered for the encoder's class or its nearest base, else ``OwnLayout``."""
    for cls in type(encoder).__mro__:
        if cls in _LAYOUTS:
            return _LAYOUTS[cls]
    return OwnLayout()


def _tensors(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """CPU, contiguous, unshared copies (safetensors refuses tensors that share memory)."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}


def normalization(encoder: nn.Module) -> dict[str, list[float]] | None:
    """The per-channel ``mean`` / ``std`` an encoder applies to its input inside (its
    ``normalize`` submodule's buffers), or None when it has none."""
    norm = getattr(encoder, "normalize", None)
    mean, std = getattr(norm, "mean", None), getattr(norm, "std", None)
    if not isinstance(mean, Tensor) or not isinstance(std, Tensor):
        return None
    return {"mean": [round(float(v), 6) for v in mean.flatten()],
            "std": [round(float(v), 6) for v in std.flatten()]}


def pick_tower(encoder: nn.Module, tower: str | None) -> tuple[nn.Module, str | None]:
    """One tower of a two-tower encoder (default: its primary one, the one ``embed`` uses), or
    the encoder itself; ``tower`` given for a one-tower encoder is an error."""
    if isinstance(encoder, PairEncoder):
        name = tower or encoder.primary
        return encoder.tower(name), name
    if tower is not None:
        raise ValueError(f"--tower {tower}: this run's encoder ({type(encoder).__name__}) has "
                         "one tower; drop --tower")
    return encoder, None


@dataclass
class Exported:
    """What ``export_encoder`` wrote: the file, its JSON and the JSON's content."""

    path: Path
    info_path: Path
    info: dict[str, Any]


def resolve_format(fmt: str | None, out: Path) -> str:
    """``fmt``, or the format of ``out``'s suffix; a one-line error listing the choices."""
    if fmt is None:
        fmt = SUFFIX_FORMATS.get(out.suffix.lower())
        if fmt is None:
            raise ValueError(f"cannot tell the format from {out.name!r}; pass --format "
                             f"{'|'.join(FORMATS)}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; valid: {', '.join(FORMATS)}")
    return fmt


def export_encoder(checkpoint: str | Path, out: str | Path, fmt: str | None = None, *,
                   tower: str | None = None) -> Exported:
    """Write the encoder of ``checkpoint`` to ``out`` in ``fmt`` (see ``FORMATS``; default from
    the suffix) and ``<out>.json`` beside it. Refuses to overwrite either file."""
    from anyssl.api import load_run  # the API imports the trainer; export needs it only here

    out = Path(out)
    fmt = resolve_format(fmt, out)
    info_path = Path(f"{out}.json")
    for path in (out, info_path):
        if path.exists():
            raise FileExistsError(f"{path} already exists; choose another --out or remove it")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"folder {out.parent} does not exist; create it first")
    run = load_run(checkpoint)
    module, tower_name = pick_tower(run.encoder, tower)
    module = module.cpu().eval()
    example = example_input(run, tower_name)
    plain = layout_of(module).to_plain(module) if fmt in ("state_dict", "safetensors") else None
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        verified = write_file(fmt, tmp, module, example, plain)
        info = describe(checkpoint, run, module, tower_name, example, fmt, out, plain, verified)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    info_path.write_text(json.dumps(info, indent=2))
    return Exported(out, info_path, info)


# ---- the example batch, the writers and the JSON ----------------------------------------------
def example_input(run: Any, tower: str | None) -> Any:
    """Two training samples as the encoder sees them in ``embed``: collated, on the CPU,
    through the dataset's ``eval_transform``; of a two-tower batch the tower's key, the second
    tower's through the dataset's ``split_rows`` (several captions per image -> rows), as the
    pair protocols do."""
    from anyssl.eval.embed import eval_transform

    data = run.parts.train_set
    batch = run.parts.modality.collate([data[i] for i in range(min(2, len(data)))])
    inputs, _ = run.parts.modality.to_device(batch, torch.device("cpu"), False)
    transform = eval_transform(data)
    inputs = transform(inputs) if transform is not None else inputs
    if tower is None:
        return inputs
    split_rows = getattr(data, "split_rows", None)
    if tower != run.encoder.primary and split_rows is not None:
        return split_rows(inputs[tower])[0][:2]
    return inputs[tower]


def write_file(fmt: str, path: Path, module: nn.Module, example: Any,
               plain: PlainWeights | None) -> bool | None:
    """Write ``path`` in ``fmt``; True when the written model's output on ``example`` was
    checked against the encoder's (TorchScript; ONNX when onnxruntime is installed)."""
    if plain is not None:
        if fmt == "safetensors":
            from safetensors.torch import save_file

            save_file(plain.state_dict, str(path), metadata={"layout": plain.layout,
                                                             "model": plain.model})
        else:
            torch.save(plain.state_dict, path)
        return None
    if not isinstance(example, Tensor):
        raise ValueError(f"--format {fmt} traces the encoder with a tensor batch, but this "
                         f"encoder takes a {type(example).__name__}; export state_dict or "
                         "safetensors instead")
    with torch.no_grad():
        ref = module(example)
    return (_write_torchscript if fmt == "torchscript" else _write_onnx)(
        path, module, example, ref)


def _write_torchscript(path: Path, module: nn.Module, example: Tensor, ref: Tensor) -> bool:
    """``torch.jit.trace`` on the example batch (tracing works for every encoder's Python
    control flow; the branches it fixes, input dtype and size, are the JSON's ``input``)."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings about those fixed branches
        traced = torch.jit.trace(module, (example,), check_trace=False)
        traced.save(str(path))
        compare(torch.jit.load(str(path))(example), ref, "TorchScript")
    return True


def _write_onnx(path: Path, module: nn.Module, example: Tensor, ref: Tensor) -> bool:
    """``torch.onnx.export`` (the torch.export-based exporter) with a dynamic batch size, one
    file (no external data); checked with onnxruntime when it is installed."""
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(path), input_names=["input"],
                          output_names=["features"], dynamic_shapes=({0: batch},),
                          external_data=False, verbose=False)
    try:
        import onnxruntime
    except ImportError:
        return False
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": example.numpy()})[0]
    compare(torch.from_numpy(got), ref, "ONNX")
    return True


def compare(got: Tensor, ref: Tensor, what: str) -> None:
    """A one-line error when an exported model's output is not the encoder's."""
    if got.shape != ref.shape or not torch.allclose(got.float(), ref.float(), RTOL, ATOL):
        diff = (got.float() - ref.float()).abs().max() if got.shape == ref.shape else "shape"
        raise ValueError(f"the {what} export does not reproduce the encoder (max difference "
                         f"{diff}); export state_dict or safetensors instead")


def describe(checkpoint: str | Path, run: Any, module: nn.Module, tower: str | None,
             example: Any, fmt: str, out: Path, plain: PlainWeights | None,
             verified: bool | None) -> dict[str, Any]:
    """The JSON beside an export: modality, encoder name and arguments, input shape and
    normalization, how to load the file, the anyssl version and the run's evaluation."""
    import anyssl
    from anyssl.train.checkpoint import load_checkpoint

    state = load_checkpoint(Path(checkpoint), map_location="cpu")
    built = state.get("encoder") or {}
    norm = normalization(module)
    inside = plain is None or any(k.startswith("normalize.") for k in plain.state_dict)
    run_eval = Path(checkpoint).parent / "eval.json"
    return {
        "anyssl_version": anyssl.__version__,
        "format": fmt,
        "file": out.name,
        "modality": run.config.modality,
        "method": run.config.method,
        "encoder": {"name": built.get("name") or _default_encoder(run),
                    "args": run.config.encoder_args,
                    "build_args": built.get("kwargs", {}), "tower": tower,
                    "class": f"{type(module).__module__}.{type(module).__qualname__}",
                    "out_dim": int(getattr(module, "out_dim", 0)) or None},
        "input": _input_info(example, norm, inside),
        "weights": None if plain is None else {
            "layout": plain.layout, "model": plain.model, "load": plain.load, **plain.extra},
        "verified": verified,
        "checkpoint": {"path": str(checkpoint), "step": state.get("step"),
                       "anyssl_version": state.get("anyssl_version")},
        "evaluation": json.loads(run_eval.read_text()) if run_eval.is_file() else None,
    }


def _default_encoder(run: Any) -> str:
    """The encoder a run without ``--encoder`` built (``Modality.encoder``'s choice)."""
    return str(getattr(run.parts.train_set, "suggested_encoder", None)
               or run.parts.modality.default_encoder)


def _input_info(example: Any, norm: dict[str, Any] | None, inside: bool) -> dict[str, Any]:
    """The input's shape (``batch`` first) and dtype, and the normalization: ``inside`` true
    when the exported model applies it, false when the user must (plain weights)."""
    info: dict[str, Any] = {"type": type(example).__name__}
    if isinstance(example, Tensor):
        info = {"shape": ["batch", *example.shape[1:]],
                "dtype": str(example.dtype).removeprefix("torch.")}
    if norm is not None:
        info["normalization"] = {**norm, "inside": inside}
    return info
