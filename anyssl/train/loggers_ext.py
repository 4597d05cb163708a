"""The ``wandb`` and ``mlflow`` loggers (optional extras ``anyssl[wandb]``, ``anyssl[mlflow]``;
each package is imported only when its logger starts).

- ``wandb``: a Weights & Biases run in RUN/wandb, named after the run folder, in the project
  ``$WANDB_PROJECT`` (default ``anyssl``). ``WANDB_MODE=offline`` is honoured (wandb reads it):
  the run is written to ``RUN/wandb/offline-run-*`` for a later ``wandb sync``.
- ``mlflow``: an MLflow run named after the run folder, in the experiment
  ``$MLFLOW_EXPERIMENT_NAME`` (default ``anyssl``), at ``$MLFLOW_TRACKING_URI`` or else in the
  file store ``file:RUN/mlruns`` (``mlflow ui --backend-store-uri RUN/mlruns``; MLflow 3 keeps
  that store in maintenance mode, so the logger sets ``MLFLOW_ALLOW_FILE_STORE=true`` unless it
  is set already).

Each keeps its run id in the run folder, so ``--resume`` continues the same wandb / MLflow run.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from anyssl.train.loggers import LOGGERS, require_package

__all__ = ["MLflowLogger", "WandbLogger", "flat_params"]

WANDB_ID_FILE = "wandb-run-id"  # in RUN/wandb
MLFLOW_ID_FILE = "mlflow-run-id"  # in RUN
MAX_PARAM_CHARS = 500  # MLflow refuses longer parameter values on some stores


def _wandb_id(path: Path, new: str) -> str:
    """The id kept in ``path`` (a resumed run), else ``new``, written there."""
    kept = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
    if kept:
        return kept
    path.write_text(new + "\n", encoding="utf-8")
    return new


@LOGGERS.register("wandb")
class WandbLogger:
    """Weights & Biases (wandb.init in RUN/wandb; WANDB_MODE=offline works without an account)."""

    def __init__(self, run_dir: Path) -> None:
        self.check()
        import wandb

        run_dir = Path(run_dir)
        (run_dir / "wandb").mkdir(parents=True, exist_ok=True)
        run_id = _wandb_id(run_dir / "wandb" / WANDB_ID_FILE, uuid.uuid4().hex[:12])
        self._run: Any = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or "anyssl", name=run_dir.name,
            dir=str(run_dir), id=run_id, resume="allow",
            settings=wandb.Settings(console="off", silent=True),
        )

    @classmethod
    def check(cls) -> None:
        require_package("wandb", "wandb")

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self._run.log(dict(metrics), step=step)

    def log_config(self, config: dict[str, Any]) -> None:
        self._run.config.update(config, allow_val_change=True)

    def close(self) -> None:
        self._run.finish()


@LOGGERS.register("mlflow")
class MLflowLogger:
    """MLflow (tracking URI from MLFLOW_TRACKING_URI, else the file store RUN/mlruns)."""

    def __init__(self, run_dir: Path) -> None:
        self.check()
        from mlflow.tracking import MlflowClient

        run_dir = Path(run_dir)
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:  # the run folder's own file store, which MLflow 3 opens only when asked to
            uri = (run_dir / "mlruns").absolute().as_uri()
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self._client: Any = MlflowClient(tracking_uri=uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "anyssl"
        found = self._client.get_experiment_by_name(name)
        experiment = found.experiment_id if found is not None else \
            self._client.create_experiment(name)
        id_file = run_dir / MLFLOW_ID_FILE
        self.resumed = id_file.is_file()  # a resumed run continues its MLflow run
        if self.resumed:
            self.run_id = id_file.read_text(encoding="utf-8").strip()
        else:
            self.run_id = self._client.create_run(experiment, run_name=run_dir.name).info.run_id
            id_file.write_text(self.run_id + "\n", encoding="utf-8")
        self.uri = uri

    @classmethod
    def check(cls) -> None:
        require_package("mlflow", "mlflow")

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        self._client.log_batch(self.run_id, metrics=batch)

    def log_config(self, config: dict[str, Any]) -> None:
        """The config as parameters (logged once: MLflow parameters cannot change, so a resumed
        run keeps those of its start)."""
        if self.resumed:
            return
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in flat_params(config)]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
            self._client.log_batch(self.run_id, params=params[i:i + 100])

    def close(self) -> None:
        self._client.set_terminated(self.run_id)


def flat_params(config: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """``{"method_args": {"queue_size": 4096}}`` -> ``("method_args.queue_size", "4096")``:
    nested dicts flattened with dots, every value as text of at most ``MAX_PARAM_CHARS``."""
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from flat_params(value, name + ".")
        else:
            text = "nan" if isinstance(value, float) and math.isnan(value) else str(value)
            yield name, text[:MAX_PARAM_CHARS]
