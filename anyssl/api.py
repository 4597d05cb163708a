"""The Python entry points behind the CLI: train a run from a config, reload a checkpoint,
evaluate and embed with it.

    from anyssl.api import train
    result = train(modality="image", method="mocov2", epochs=5)
    print(result.eval["pretrained"]["linear"]["top1"])
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.utils.data import ConcatDataset, Dataset

from anyssl.build import Parts, build_parts, pretrain_set
from anyssl.eval import embed, evaluate
from anyssl.eval.pair_protocols import merge_results, run_pair_protocols, split_protocols
from anyssl.modality import SSLDataset, get_modality
from anyssl.modality_defaults import with_method_defaults
from anyssl.plugin_source import require_modality
from anyssl.registry import import_plugin
from anyssl.train import ConfigError, TrainConfig, Trainer, load_checkpoint
from anyssl.train.checkpoint import check_format
from anyssl.train.config import DEFAULT_EPOCHS
from anyssl.train.init_weights import apply_init
from anyssl.train.monitor import KNNMonitor
from anyssl.train.views_record import keep_recorded_views

__all__ = ["RunResult", "embed_checkpoint", "evaluate_checkpoint", "load_run", "train"]


@dataclass
class RunResult:
    """What a finished run left: its folder, last checkpoint and evaluation (if run)."""

    run_dir: Path
    checkpoint: Path
    eval: dict[str, Any] | None
    notes: list[str]


def _config(
    config: TrainConfig | dict[str, Any] | str | Path | None, overrides: dict[str, Any]
) -> TrainConfig:
    if config is None:
        base = TrainConfig()
    elif isinstance(config, TrainConfig):
        base = config
    elif isinstance(config, dict):
        base = TrainConfig.from_dict(config)
    else:  # a YAML file, or recipe:MODALITY/NAME
        from anyssl.train.recipes import load_config

        base = load_config(config)
    return base.merged(overrides)


def _parts(cfg: TrainConfig, need_test: bool) -> Parts:
    for module in cfg.plugins:
        import_plugin(module)
    torch.manual_seed(cfg.seed)  # the encoder's initial weights depend on the seed only
    return build_parts(
        cfg.modality,
        cfg.method,
        data=cfg.data,
        data_args=cfg.data_args,
        encoder=cfg.encoder,
        encoder_args=cfg.encoder_args,
        aug=cfg.aug,
        views=cfg.views,
        method_args=cfg.method_args,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        need_test=need_test,
        device=cfg.device,
    )


def _with_accelerator_encoder(cfg: TrainConfig) -> TrainConfig:
    """No ``--encoder`` on a GPU: the encoder of the method's recipe there (MoCo v3's and DINO's
    ViT-S on images), written into the config so that evaluation and resume on any device
    rebuild the same network."""
    for module in cfg.plugins:
        import_plugin(module)
    name = None if cfg.encoder else get_modality(cfg.modality).accelerator_encoder(
        cfg.method, cfg.device)
    return cfg.merged({"encoder": name}) if name else cfg


def _random_encoder(parts: Parts, cfg: TrainConfig) -> nn.Module:
    """The same encoder at its initial (random) weights: the baseline every report shows."""
    torch.manual_seed(cfg.seed)
    return parts.modality.encoder(cfg.encoder, parts.train_set, **cfg.encoder_args)


class _PrintNotes:
    """Prints the build notes once the run has really started (after the run-folder checks),
    and the data's notes after each epoch."""

    def __init__(self, notes: list[str]) -> None:
        self.notes = notes

    def on_fit_start(self, trainer: Trainer) -> None:
        if not trainer.is_main:  # several processes: rank 0 speaks for all
            return
        for note in self.notes:
            print(f"note: {note}")

    def on_epoch_end(self, trainer: Trainer) -> None:
        """What the data learned while it was read (samples of shards skipped as unreadable,
        counted across loader workers): ``epoch_notes()`` of a dataset that has it."""
        epoch_notes = getattr(trainer.train_set, "epoch_notes", None)
        if trainer.is_main and callable(epoch_notes):
            for note in epoch_notes():
                print(f"note: {note}")

    on_fit_end = on_epoch_end  # a run stopped mid-epoch (--max-steps) reports too


def train(
    config: TrainConfig | dict[str, Any] | str | Path | None = None,
    *,
    callbacks: Sequence[Any] = (),
    **overrides: Any,
) -> RunResult:
    """Train one run (config object, dict or YAML path, plus keyword overrides), then run the
    evaluation protocols on the pre-trained and the random-init encoder. ``callbacks`` are
    trainer callbacks (objects with ``on_fit_start``/``on_step_end``/``on_epoch_end``/
    ``on_fit_end``, each called with the trainer)."""
    cfg = _config(config, overrides)
    cfg, defaults_notes = with_method_defaults(_with_accelerator_encoder(cfg))
    parts = _parts(cfg, need_test=cfg.eval or cfg.monitor_every is not None)
    parts.notes[:0] = defaults_notes  # the modality's defaults for the method
    # the method's encoder and data defaults join the config, so config.yaml, the checkpoint,
    # the random-init baseline and later evaluations build the same encoder and splits
    cfg = cfg.merged({"encoder_args": parts.encoder_args, "data_args": parts.data_args})
    default_protocols, eval_options = parts.modality.evaluation(parts.train_set)
    protocols = cfg.eval_protocols or list(default_protocols)
    cfg = cfg.merged({"batch_size": parts.batch_size, "eval_protocols": protocols})
    random_encoder = _random_encoder(parts, cfg) if cfg.eval else None
    # zero-shot and retrieval need the whole method at its initial weights as the baseline (and
    # split_protocols refuses an unknown protocol here, before training)
    random_method = copy.deepcopy(parts.method) if cfg.eval and split_protocols(protocols)[1] \
        else None
    if cfg.epochs is None:  # a small embedded dataset suggests a run of about a minute on CPU
        suggested = getattr(parts.train_set, "suggested_epochs", None)
        cfg = cfg.merged({"epochs": int(suggested or DEFAULT_EPOCHS)})
    if cfg.init:  # after the random-init baselines: they stay random
        parts.notes.append(apply_init(parts.method, cfg.init))
    cfg = keep_recorded_views(parts.method, cfg, parts.modality.name)  # config's views_used
    run_dir = Path(str(cfg.out))
    trainer = Trainer(
        parts.method,
        pretrain_set(parts.train_set),
        cfg,
        run_dir,
        collate=parts.modality.collate,
        to_device=parts.modality.to_device,
        conv_encoder=parts.modality.conv_encoder,
        modality_name=parts.modality.name,
        callbacks=(_PrintNotes(parts.notes), *_monitor(parts, cfg), *callbacks),
    )
    result = trainer.fit()
    report = None
    # several processes: rank 0 evaluates alone (fit has destroyed the process group)
    if cfg.eval and trainer.is_main and parts.test_set is not None and random_encoder is not None:
        report = _report(parts, (parts.method, random_method), random_encoder, protocols,
                         eval_options, device=trainer.device, seed=cfg.seed)
        (run_dir / "eval.json").write_text(json.dumps(report, indent=2))
    return RunResult(run_dir, Path(result.checkpoint), report, parts.notes)


def _monitor(parts: Parts, cfg: TrainConfig) -> list[KNNMonitor]:
    """The online kNN monitor when ``monitor_every`` asks for it (``anyssl.train.monitor``)."""
    if cfg.monitor_every is None or parts.test_set is None:
        return []
    return [KNNMonitor(_ds(parts.train_set), _ds(parts.test_set), cfg.monitor_every,
                       encoder_of=_encoder_of, collate=parts.modality.collate,
                       to_device=parts.modality.to_device, seed=cfg.seed)]


@dataclass
class LoadedRun:
    """A checkpoint rebuilt into its parts, with the encoder's trained weights loaded."""

    config: TrainConfig
    parts: Parts
    encoder: nn.Module
    random_encoder: nn.Module


def load_run(checkpoint: str | Path, data: str | None = None,
             data_args: dict[str, Any] | None = None) -> LoadedRun:
    """Rebuild a run from ``checkpoint`` (optionally on other data of the same modality;
    ``data_args`` add to or override the run's own, e.g. another manifest's column names).
    The checkpoint's ``data_state`` (the image-text tokenizer) goes back to the dataset, so
    other data is tokenized as the model was trained."""
    state = load_checkpoint(Path(checkpoint), map_location="cpu")
    check_format(state, checkpoint)
    require_modality(state, checkpoint)  # a missing plugin: "pip install <its package>"
    try:
        cfg = TrainConfig.from_dict(state["config"]).merged({"data": data})
    except ConfigError as err:
        raise ConfigError(f"checkpoint {checkpoint}: {err}") from None
    data_state = state.get("data_state") or {}
    if data_state or data_args:  # the saved state wins: the model was trained on it
        cfg = cfg.merged({"data_args": {**cfg.data_args, **(data_args or {}), **data_state}})
    parts = _parts(cfg, need_test=True)
    try:
        parts.method.load_state_dict(state["method"])
    except RuntimeError as err:
        raise ValueError(
            f"checkpoint {checkpoint} does not fit its method's shapes on this data "
            f"({str(err)[:120]})"
        ) from None
    encoder = copy.deepcopy(_encoder_of(parts.method))
    return LoadedRun(cfg, parts, encoder, _random_encoder(parts, cfg))


def evaluate_checkpoint(
    checkpoint: str | Path,
    protocols: tuple[str, ...],
    *,
    data: str | None = None,
    data_args: dict[str, Any] | None = None,
    fraction: float = 0.01,
    device: str | None = None,
    seed: int = 0,
    options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run evaluation protocols on a checkpoint's encoder and on its random-init twin
    (``options``: per-protocol keywords, e.g. ``{"svm": {"folds": 10}}``)."""
    run = load_run(checkpoint, data, data_args)
    if run.parts.test_set is None:
        raise ValueError("this dataset has no test split to evaluate on")
    random_method = _parts(run.config, need_test=False).method if split_protocols(
        protocols)[1] else None  # the method at its seeded initial weights
    opts = _merge_options(run.parts.modality.evaluation(run.parts.train_set)[1], options)
    return _report(run.parts, (run.parts.method, random_method), run.random_encoder, protocols,
                   opts, device=_device(device), seed=seed, fraction=fraction,
                   encoder=run.encoder)


def _report(
    parts: Parts, methods: tuple[nn.Module, nn.Module | None], random_encoder: nn.Module,
    protocols: Sequence[str], options: dict[str, dict[str, Any]], *, device: Any, seed: int,
    fraction: float = 0.01, encoder: nn.Module | None = None,
) -> dict[str, Any]:
    """Frozen-feature protocols on the encoders and whole-method protocols (zero-shot,
    retrieval) on the methods, merged into one report."""
    frozen, pair = split_protocols(protocols)
    kw: dict[str, Any] = dict(device=device, collate=parts.modality.collate,
                              to_device=parts.modality.to_device)
    reports = []
    if frozen:
        reports.append(evaluate(encoder if encoder is not None else _encoder_of(parts.method),
                                random_encoder, _ds(parts.train_set), _ds(parts.test_set),
                                protocols=frozen, options=options, fraction=fraction, seed=seed,
                                **kw))
    if pair:
        reports.append(run_pair_protocols(methods[0], methods[1], _ds(parts.test_set), pair,
                                          options, **kw))
    return merge_results(*reports)


def embed_checkpoint(
    checkpoint: str | Path,
    data: str | None,
    *,
    split: str = "all",
    device: str | None = None,
    batch_size: int = 256,
    data_args: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features (N x D) and labels (N) of a dataset under a checkpoint's encoder."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be train, test or all, got {split!r}")
    run = load_run(checkpoint, data, data_args)
    train_set, test_set = run.parts.train_set, run.parts.test_set
    chosen: dict[str, list[SSLDataset | None]] = {
        "train": [train_set], "test": [test_set], "all": [train_set, test_set],
    }
    sets = chosen[split]
    dataset: Dataset[Any] = ConcatDataset([_ds(s) for s in sets if s is not None and len(s) > 0])
    dev = _device(device)
    return embed(
        run.encoder.to(dev),
        dataset,
        batch_size=batch_size,
        device=dev,
        collate=run.parts.modality.collate,
        to_device=run.parts.modality.to_device,
    )


def _merge_options(
    defaults: dict[str, dict[str, Any]], given: dict[str, dict[str, Any]] | None
) -> dict[str, dict[str, Any]]:
    """The dataset's per-protocol options, with the caller's keywords winning."""
    out = {k: dict(v) for k, v in defaults.items()}
    for protocol, kw in (given or {}).items():
        out[protocol] = {**out.get(protocol, {}), **kw}
    return out


def _ds(dataset: SSLDataset | None) -> Dataset[Any]:
    if dataset is None:
        raise ValueError("this dataset has no test split to evaluate on")
    return cast(Dataset[Any], dataset)


def _encoder_of(method: nn.Module) -> nn.Module:
    """The encoder to evaluate: the method's ``eval_encoder`` when it names one (TS2Vec's weight
    average), else its ``encoder``."""
    chosen = getattr(method, "eval_encoder", None)  # not `or`: a Module's truth is its length
    return cast(nn.Module, method.encoder if chosen is None else chosen)


def _device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
