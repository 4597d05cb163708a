"""``anyssl eval linear|knn|finetune|svm|zeroshot|retrieval CHECKPOINT``: evaluation protocols
on a trained encoder (zero-shot and retrieval: on a two-tower method such as CLIP)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from anyssl.cli.errors import cli_errors
from anyssl.cli.listing import PluginOption, import_plugins

app = typer.Typer(
    help="Evaluate a checkpoint's encoder (always next to its random init).",
    no_args_is_help=True, add_completion=False,
)

Checkpoint = Annotated[Path, typer.Argument(help="A checkpoint written by anyssl train (last.pt).")]
Data = Annotated[
    str | None, typer.Option(help="Other data of the same modality (default: the run's).")
]
DataArg = Annotated[
    list[str] | None,
    typer.Option("--data-arg", "-d", help="Dataset argument key=value for --data (adds to or "
                 "overrides the run's, e.g. caption_key=text); repeatable."),
]
Device = Annotated[str | None, typer.Option(
    help="auto (CUDA when available), cpu, cuda, cuda:N.", show_default="auto")]
Out = Annotated[Path | None, typer.Option(help="Also write the report as JSON here (a new file).")]
Seed = Annotated[int, typer.Option(help="Seed for label subsets and heads.")]


def _run(
    protocol: str,
    checkpoint: Path,
    data: tuple[str | None, list[str] | None],
    device: str | None,
    out: Path | None,
    seed: int,
    fraction: float = 0.01,
    options: dict[str, dict[str, Any]] | None = None,
    plugins: list[str] | None = None,
) -> None:
    """Evaluate ``protocol`` on ``checkpoint``; ``data`` is ``(--data, --data-arg pairs)``;
    ``plugins``: ``--plugin`` modules, imported first."""
    from anyssl.api import evaluate_checkpoint
    from anyssl.cli.train import parse_key_values
    from anyssl.eval import print_report

    import_plugins(plugins)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    if out is not None and out.exists():  # checked first: no evaluation is wasted
        raise ValueError(f"{out} already exists; choose another --out (nothing is overwritten)")
    report = evaluate_checkpoint(checkpoint, (protocol,), data=data[0],
                                 data_args=parse_key_values(data[1]), fraction=fraction,
                                 device=device, seed=seed, options=options)
    print_report(report)
    if out is not None:
        out.write_text(json.dumps(report, indent=2))


@app.command("linear")
@cli_errors
def linear(
    checkpoint: Checkpoint,
    data: Data = None,
    data_arg: DataArg = None,
    device: Device = None,
    out: Out = None,
    seed: Seed = 0,
    plugin: PluginOption = None,
) -> None:
    """Linear probe: logistic regression on frozen, standardized features."""
    _run("linear", checkpoint, (data, data_arg), device, out, seed, plugins=plugin)


@app.command("knn")
@cli_errors
def knn(
    checkpoint: Checkpoint,
    data: Data = None,
    data_arg: DataArg = None,
    device: Device = None,
    out: Out = None,
    seed: Seed = 0,
    k: Annotated[int | None, typer.Option(
        min=1, help="Neighbours (default: chosen on the training split from 1..200; 200 is "
                    "InstDisc's and MoCo's fixed value).")] = None,
    temperature: Annotated[float | None, typer.Option(
        help="Vote temperature (> 0; default: chosen with k; 0.07 when "
                                     "--k is given).")] = None,
    plugin: PluginOption = None,
) -> None:
    """Weighted kNN (cosine) on frozen features; k and the temperature are chosen on the
    training split unless given (--k 200 --temperature 0.07 is the InstDisc/MoCo protocol)."""
    opts = {key: v for key, v in (("k", k), ("temperature", temperature)) if v is not None}
    _run("knn", checkpoint, (data, data_arg), device, out, seed, options={"knn": opts},
         plugins=plugin)


@app.command("finetune")
@cli_errors
def finetune(
    checkpoint: Checkpoint,
    data: Data = None,
    data_arg: DataArg = None,
    fraction: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of train labels used (class balanced).")
    ] = 0.01,
    device: Device = None,
    out: Out = None,
    seed: Seed = 0,
    plugin: PluginOption = None,
) -> None:
    """Fine-tune encoder + linear head on a small labelled fraction (1%, 10%)."""
    _run("finetune", checkpoint, (data, data_arg), device, out, seed, fraction, plugins=plugin)


@app.command("svm")
@cli_errors
def svm(
    checkpoint: Checkpoint,
    data: Data = None,
    data_arg: DataArg = None,
    folds: Annotated[
        int | None,
        typer.Option(min=2, help="Cross-validate over train + test with this many folds (the "
                     "GraphCL protocol); default: fit on train, score on test (TS2Vec)."),
    ] = None,
    kernel: Annotated[str | None, typer.Option(help="rbf or linear (default: the protocol's).")]
    = None,
    device: Device = None,
    out: Out = None,
    seed: Seed = 0,
    plugin: PluginOption = None,
) -> None:
    """SVM on frozen features: RBF, C by 5-fold grid search on train, test accuracy (TS2Vec's
    UCR protocol); with --folds, k-fold cross-validation (InfoGraph/GraphCL)."""
    if kernel is not None and kernel not in ("rbf", "linear", "poly", "sigmoid"):
        raise ValueError(f"unknown SVM kernel {kernel!r}; valid: rbf, linear, poly, sigmoid")
    opts: dict[str, Any] = {}
    if folds is not None:
        opts["folds"] = folds
    if kernel is not None:
        opts["kernel"] = kernel
    _run("svm", checkpoint, (data, data_arg), device, out, seed, options={"svm": opts},
         plugins=plugin)


@app.command("zeroshot")
@cli_errors
def zeroshot(
    checkpoint: Checkpoint,
    classes: Annotated[
        str | None,
        typer.Option(help="Comma-separated class names, one per label in label order (default: "
                     "the data's own names, e.g. OpenMoji's 12 groups)."),
    ] = None,
    template: Annotated[
        list[str] | None,
        typer.Option(help="A prompt template with {} for the class name; repeat for several, "
                     "whose text embeddings are averaged (default: the data's templates)."),
    ] = None,
    data: Data = None,
    data_arg: DataArg = None,
    device: Device = None,
    out: Out = None,
    seed: Seed = 0,
    plugin: PluginOption = None,
) -> None:
    """Zero-shot classification of the held-out split: each class's prompt embeddings from the
    text tower, averaged over templates, against the image embeddings (CLIP)."""
    opts: dict[str, Any] = {}
    if classes is not None:
        names = [c.strip() for c in classes.split(",") if c.strip()]
        if len(names) < 2:
            raise ValueError("--classes needs at least two comma-separated class names")
        opts["classes"] = names
    if template:
        bad = [t for t in template if "{}" not in t]
        if bad:
            raise ValueError(f"template {bad[0]!r} has no {{}} for the class name")
        opts["templates"] = list(template)
    _run("zeroshot", checkpoint, (data, data_arg), device, out, seed, options={"zeroshot": opts},
         plugins=plugin)


@app.command("retrieval")
@cli_errors
def retrieval(
    checkpoint: Checkpoint,
    data: Data = None,
    data_arg: DataArg = None,
    device: Device = None,
    out: Out = None,
    seed: Seed = 0,
    plugin: PluginOption = None,
) -> None:
    """Image->text and text->image Recall@1/5/10 on the held-out split (an image counts as
    found when any of its captions is in the top k), with the chance level of each."""
    _run("retrieval", checkpoint, (data, data_arg), device, out, seed, plugins=plugin)
