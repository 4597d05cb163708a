"""``anyssl train``: pre-train a method on a modality's data, then evaluate it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from anyssl.cli.errors import cli_errors, fail, is_input_check


def parse_key_values(pairs: list[str] | None) -> dict[str, Any]:
    """``["queue_size=4096", "temperature=0.1"]`` -> dict with numbers parsed (YAML scalars,
    read by the config's safe loader: no aliases, no Python tags)."""
    from anyssl.train.safe_yaml import load_yaml_text

    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"bad argument {pair!r}: expected key=value, e.g. temperature=0.1")
        key, value = pair.split("=", 1)
        out[key.strip()] = load_yaml_text(value, f"argument {key.strip()!r}")
    return out


@cli_errors
def train_command(
    ctx: typer.Context,
    modality: Annotated[
        str | None, typer.Option(help="Modality (anyssl list modalities).", show_default="image")
    ] = None,
    method: Annotated[
        str | None, typer.Option(help="Method (anyssl list methods --modality M).",
                                 show_default="mocov2")
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
    epochs: Annotated[int | None, typer.Option(
        min=1, help="Training epochs.", show_default="the dataset's suggestion, else 100")] = None,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many steps (overrides epochs).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=2, help="Batch size per process (a step sees processes x "
                                 "this; the default lr scales with that).",
                                 show_default="the method's, fit to the data; else 256")
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(help="Learning rate (default: the method's, scaled to the batch by its "
                          "--lr-scaling rule)."),
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
        typer.Option(help="View count, per-view specs separated by ';', recipe:NAME, or "
                     "G+L[xS] for multi-crop (dino, swav), e.g. 2+6x96."),
    ] = None,
    queue_size: Annotated[
        int | None, typer.Option(min=1, help="MoCo queue size (paper: 65536).")
    ] = None,
    encoder_arg: Annotated[
        list[str] | None,
        typer.Option("--encoder-arg", "-e", help="Encoder argument key=value (repeatable)."),
    ] = None,
    init: Annotated[
        Path | None,
        typer.Option(help="Start the encoder from this weights file (continued pre-training): "
                     "an anyssl export, a run checkpoint, a torchvision or timm state dict."),
    ] = None,
    method_arg: Annotated[
        list[str] | None,
        typer.Option("--method-arg", "-m", help="Method argument key=value (repeatable)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Run folder (default: runs/<modality>-<method>).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML file with the same keys, or recipe:MODALITY/NAME "
                                  "for a published training recipe (anyssl list recipes); "
                                  "flags override it.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")
    ] = False,
    device: Annotated[str | None, typer.Option(
        help="auto (CUDA when available), cpu, cuda, cuda:N.", show_default="auto")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.", show_default="0")] = None,
    plugin: Annotated[
        list[str] | None,
        typer.Option(help="A module to import first (registers custom parts; repeatable): a "
                     "module name, found in the current folder first, then on PYTHONPATH, or "
                     "the path of a .py file."),
    ] = None,
    num_workers: Annotated[int | None, typer.Option(
        min=0, help="DataLoader workers (default: several for image files, 0 in memory).")] = None,
    precision: Annotated[str | None, typer.Option(
        help="auto, bf16, fp16 (with a gradient scaler) or fp32 (default auto: bf16 on a GPU "
             "that has it, else fp16; fp32 on CPU).")] = None,
    lr_scaling: Annotated[str | None, typer.Option(
        help="How the default lr grows with the global batch: linear, sqrt or none (default: "
             "the method's).")] = None,
    grad_clip: Annotated[float | None, typer.Option(
        min=0.0, help="Clip gradients to this norm (default: the method's; DINO "
                                      "3.0 per parameter, else none).")] = None,
    grad_clip_mode: Annotated[str | None, typer.Option(
        help="global (the norm of all gradients) or per_parameter (each tensor's, as DINO) "
             "(default: the method's).")] = None,
    final_lr_ratio: Annotated[float | None, typer.Option(
        min=0.0, help="The cosine schedule ends at this x the peak lr (default: the method's; "
                      "0.001 for SwAV, Barlow Twins, VICReg, 0.002 for DINO, else 0).")] = None,
    monitor_every: Annotated[int | None, typer.Option(
        min=1, help="kNN on the labelled split every N epochs, logged and shown in the "
                    "progress bar.")] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option(min=1, help="Also checkpoint every N steps.")
    ] = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the encoder.")] = False,
    tensorboard: Annotated[
        bool, typer.Option("--tensorboard", help="Also log to TensorBoard (= --logger "
                           "tensorboard).")
    ] = False,
    logger: Annotated[str | None, typer.Option(
        help="Also log metrics to: none, tensorboard, wandb or mlflow (several: comma-separated; "
             "metrics.jsonl is always written).")] = None,
    no_eval: Annotated[
        bool, typer.Option("--no-eval", help="Skip the evaluation after training.")
    ] = False,
    eval_protocol: Annotated[
        list[str] | None,
        typer.Option("--eval-protocol", help="linear, knn, finetune, svm, zeroshot, "
                     "retrieval or a plugin's (anyssl list protocols; checked before training; "
                     "repeatable; default: the modality's)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Move a run already in --out aside to "
                           "<out>.replaced-<UTC time> and start again.")
    ] = False,
    skip_nonfinite: Annotated[
        bool, typer.Option("--skip-nonfinite", help="Skip (and count) steps whose loss or "
                           "gradients are nan/inf instead of stopping.")
    ] = False,
    devices: Annotated[
        int | None, typer.Option(min=1, help="Train in N processes on this machine (one per "
                                 "GPU, or Gloo on CPU) through torchrun; --batch-size is per "
                                 "process.")
    ] = None,
    sync_bn: Annotated[
        bool, typer.Option("--sync-bn", help="BatchNorm statistics over all processes' "
                           "samples (SyncBatchNorm; CUDA, under a process group).")
    ] = False,
) -> None:
    """Pre-train a method on a modality's data, then report the modality's evaluation protocols
    (linear probe and kNN for images, the SVM for time series) next to the random-init encoder.

    Several processes: `torchrun --nproc-per-node N -m anyssl train ...` (or `--nnodes M` across
    machines), or `anyssl train --devices N ...` on this machine. Each process takes
    --batch-size samples per step, so a step sees N x --batch-size; rank 0 writes the run."""
    if resume and overwrite:
        fail("--resume and --overwrite contradict each other: --resume continues the run in "
             "--out, --overwrite moves it aside and starts again; pass one of them")
    if devices is not None and devices > 1:
        _launch(devices, device, _given_options(ctx, drop={"devices"}))
        return
    from anyssl.api import train
    from anyssl.train import TrainConfig
    from anyssl.train.recipes import load_config

    rank = _torchrun_rank()
    with _quiet() if rank else contextlib.nullcontext():
        base = load_config(config) if config is not None else TrainConfig()
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
            "init": str(init) if init else None,
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
            "precision": precision,
            "lr_scaling": lr_scaling,
            "grad_clip": grad_clip,
            "grad_clip_mode": grad_clip_mode,
            "final_lr_ratio": final_lr_ratio,
            "monitor_every": monitor_every,
            "checkpoint_every": checkpoint_every,
            "method_args": method_args or None,
            "encoder_args": encoder_args or None,
            "data_args": data_args or None,
            "eval_protocols": eval_protocol or None,
            "plugins": plugin or None,
            "resume": True if resume else None,
            "compile": True if compile else None,
            "tensorboard": True if tensorboard else None,
            "logger": logger,
            "eval": False if no_eval or rank else None,  # rank 0 evaluates
            "overwrite": True if overwrite else None,
            "skip_nonfinite": True if skip_nonfinite else None,
            "sync_bn": True if sync_bn else None,
        }
        result = train(base, **overrides)
        typer.echo(f"run folder: {result.run_dir}  checkpoint: {result.checkpoint}")
        if result.eval is not None:
            from anyssl.eval import print_report

            print_report(result.eval)


# ---- several processes ---------------------------------------------------------------------------
def _torchrun_rank() -> int:
    """This process's rank when torchrun started it, else 0."""
    return int(os.environ.get("RANK") or 0) if "WORLD_SIZE" in os.environ else 0


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """A rank other than 0: print nothing on stdout (rank 0 reports the run), and exit with the
    code of a user error or a diverged run without repeating the message that every rank raises
    alike (rank 0 prints it). Crashes still print their traceback."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        try:
            yield
        except Exception as err:  # anyssl's input checks: exit quietly; crashes: traceback
            if is_input_check(err) or isinstance(err, ModuleNotFoundError):
                raise typer.Exit(1 if isinstance(err, ArithmeticError) else 2) from None
            raise


def _launch(n: int, device: str | None, options: list[str]) -> None:
    """``--devices N``: this command with ``options`` in N processes through torch's launcher."""
    from anyssl.train.ddp import LaunchError, launch_local

    if "WORLD_SIZE" in os.environ:
        fail("--devices N starts its own processes, but this one was started by torchrun; "
             "drop --devices")
    _check_gpus(n, device)
    try:
        launch_local(n, ["train", *options])
    except LaunchError as err:
        if err.exitcode > 0:  # the process printed its own error
            raise typer.Exit(err.exitcode) from None
        fail(str(err), code=1)


def _check_gpus(n: int, device: str | None) -> None:
    import torch

    spec = device or "auto"
    cuda = spec.startswith("cuda") or (spec == "auto" and torch.cuda.is_available())
    if cuda and ":" in spec:
        fail(f"--devices {n} uses cuda:0 ... cuda:{n - 1}; pass --device cuda, not {spec}")
    if cuda and n > torch.cuda.device_count():
        fail(f"--devices {n} needs {n} GPUs, {torch.cuda.device_count()} visible; pass at most "
             "that many, or --device cpu")


def _given_options(ctx: typer.Context, drop: set[str]) -> list[str]:
    """The options given on the command line, as command-line arguments again."""
    out: list[str] = []
    for param in ctx.command.params:
        name = param.name or ""
        source = ctx.get_parameter_source(name)
        if name in drop or getattr(source, "name", "") != "COMMANDLINE":
            continue
        flag = max((o for o in param.opts if o.startswith("--")), key=len)
        value = ctx.params[name]
        if getattr(param, "is_flag", False):
            out += [flag] if value else []
        elif param.multiple:
            out += [a for v in value for a in (flag, str(v))]
        else:
            out += [flag, str(value)]
    return out

