"""``anyssl train``: pre-train a method on a modality's data, then evaluate it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from anyssl.cli.errors import cli_errors
from anyssl.eval import print_report


def parse_key_values(pairs: list[str] | None) -> dict[str, Any]:
    """``["queue_size=4096", "temperature=0.1"]`` -> dict with numbers parsed (YAML scalars)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"bad argument {pair!r}: expected key=value, e.g. temperature=0.1")
        key, value = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


@cli_errors
def train_command(
    modality: Annotated[
        str | None, typer.Option(help="Modality: image, ... (anyssl list modalities).")
    ] = None,
    method: Annotated[
        str | None, typer.Option(help="Method: simclr, mocov1, mocov2, byol, ...")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(help="Dataset name or path (default: the modality's embedded one)."),
    ] = None,
    data_arg: Annotated[
        list[str] | None,
        typer.Option("--data-arg", "-d", help="Dataset argument key=value, e.g. normalize=none."),
    ] = None,
    encoder: Annotated[
        str | None, typer.Option(help="Encoder name (default: the modality's).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Training epochs.")] = None,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many steps (overrides epochs).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(min=2, help="Batch size.")] = None,
    lr: Annotated[
        float | None,
        typer.Option(help="Learning rate (default: the method's, scaled by batch/256)."),
    ] = None,
    optimizer: Annotated[
        str | None, typer.Option(help="sgd, lars, adamw or adam (default: the method's).")
    ] = None,
    aug: Annotated[
        str | None,
        typer.Option(help="Augmentation spec for every view, e.g. 'crop(size=32), flip'."),
    ] = None,
    views: Annotated[
        str | None,
        typer.Option(help="View count, per-view specs separated by ';', or recipe:NAME."),
    ] = None,
    queue_size: Annotated[
        int | None, typer.Option(min=1, help="MoCo queue size (paper: 65536).")
    ] = None,
    encoder_arg: Annotated[
        list[str] | None,
        typer.Option("--encoder-arg", "-e", help="Encoder argument key=value (repeatable)."),
    ] = None,
    method_arg: Annotated[
        list[str] | None,
        typer.Option("--method-arg", "-m", help="Method argument key=value (repeatable)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Run folder (default: runs/<modality>-<method>).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML file with the same keys; flags override it.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")
    ] = False,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    plugin: Annotated[
        list[str] | None,
        typer.Option(help="Python module to import first (registers custom parts; repeatable)."),
    ] = None,
    num_workers: Annotated[int | None, typer.Option(min=0, help="DataLoader workers.")] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option(min=1, help="Also checkpoint every N steps.")
    ] = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the encoder.")] = False,
    tensorboard: Annotated[
        bool, typer.Option("--tensorboard", help="Also log to TensorBoard.")
    ] = False,
    no_eval: Annotated[
        bool, typer.Option("--no-eval", help="Skip the evaluation after training.")
    ] = False,
    eval_protocol: Annotated[
        list[str] | None,
        typer.Option("--eval-protocol", help="linear, knn, finetune, svm, zeroshot or "
                     "retrieval (repeatable; default: the modality's)."),
    ] = None,
) -> None:
    """Pre-train a method on a modality's data, then report the modality's evaluation protocols
    (linear probe and kNN for images, the SVM for time series) next to the random-init encoder."""
    from anyssl.api import train
    from anyssl.train import TrainConfig

    base = TrainConfig.from_yaml(config) if config is not None else TrainConfig()
    method_args = {**base.method_args, **parse_key_values(method_arg)}
    encoder_args = {**base.encoder_args, **parse_key_values(encoder_arg)}
    data_args = {**base.data_args, **parse_key_values(data_arg)}
    if queue_size is not None:
        method_args["queue_size"] = queue_size
    overrides: dict[str, Any] = {
        "modality": modality,
        "method": method,
        "data": data,
        "encoder": encoder,
        "epochs": epochs,
        "max_steps": max_steps,
        "batch_size": batch_size,
        "lr": lr,
        "optimizer": optimizer,
        "aug": aug,
        "views": views,
        "out": str(out) if out else None,
        "device": device,
        "seed": seed,
        "num_workers": num_workers,
        "checkpoint_every": checkpoint_every,
        "method_args": method_args or None,
        "encoder_args": encoder_args or None,
        "data_args": data_args or None,
        "eval_protocols": eval_protocol or None,
        "plugins": plugin or None,
        "resume": True if resume else None,
        "compile": True if compile else None,
        "tensorboard": True if tensorboard else None,
        "eval": False if no_eval else None,
    }
    result = train(base, **overrides)
    typer.echo(f"run folder: {result.run_dir}  checkpoint: {result.checkpoint}")
    if result.eval is not None:
        print_report(result.eval)
