"""Where a run's metrics go besides ``metrics.jsonl`` (always written): one small interface,
``TrainLogger``, and the registry ``LOGGERS`` of its implementations (``none``,
``tensorboard`` here; ``wandb`` and ``mlflow`` in ``anyssl.train.loggers_ext``).

A plugin adds a logger like any other part::

    @LOGGERS.register("mylogger")
    class MyLogger:
        def __init__(self, run_dir: Path) -> None: ...
        def log_metrics(self, step: int, metrics: dict[str, float]) -> None: ...
        def log_config(self, config: dict[str, Any]) -> None: ...
        def close(self) -> None: ...

and ``anyssl train --plugin my_module --logger mylogger`` uses it. A factory may have a
``check()`` class method that raises ``LoggerUnavailableError`` when its package is missing: the
trainer calls it before it writes anything. Only rank 0 builds loggers (``MetricsLogger``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from anyssl.registry import Registry

__all__ = ["LOGGERS", "LoggerUnavailableError", "NoLogger", "TensorBoardLogger", "TrainLogger",
           "build_loggers", "check_loggers", "logger_names", "require_package"]


@runtime_checkable
class TrainLogger(Protocol):
    """A sink for training scalars. ``metrics`` keys are ``train/<name>`` or
    ``monitor/<name>``, values floats (nan/inf possible); ``step`` is the optimizer step."""

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None: ...

    def log_config(self, config: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class LoggerUnavailableError(ValueError):
    """A logger whose package is missing or that cannot start (a ``ValueError``: CLI exit code
    2 with this one line)."""


#: Loggers by name; each factory takes the run folder (``factory(run_dir)``).
LOGGERS: Registry[TrainLogger] = Registry("logger")


def require_package(module: str, logger: str, extra: str | None = None) -> None:
    """Raise ``LoggerUnavailableError`` naming ``module`` and the pip command when it cannot
    be imported (checked without importing it, so the check is cheap)."""
    if importlib.util.find_spec(module) is None:
        raise LoggerUnavailableError(
            f"--logger {logger} needs the {module} package, which is not installed; "
            f"pip install 'anyssl[{extra or logger}]', or choose another --logger")


_TENSORBOARD_MISSING = ("--tensorboard needs the tensorboard package ({}); pip install "
                        "tensorboard (or 'anyssl[all]'), or drop --tensorboard / --logger "
                        "tensorboard")


@LOGGERS.register("none")
class NoLogger:
    """No logger besides metrics.jsonl (always written)."""

    def __init__(self, run_dir: Path | None = None) -> None:
        self.run_dir = run_dir

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        return None

    def log_config(self, config: dict[str, Any]) -> None:
        return None

    def close(self) -> None:
        return None


@LOGGERS.register("tensorboard")
class TensorBoardLogger:
    """TensorBoard scalars in RUN/tensorboard (torch.utils.tensorboard.SummaryWriter)."""

    def __init__(self, run_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:  # found by check() but broken
            raise ImportError(_TENSORBOARD_MISSING.format(err)) from None
        self._writer: Any = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    @classmethod
    def check(cls) -> None:
        if importlib.util.find_spec("tensorboard") is None:
            raise LoggerUnavailableError(_TENSORBOARD_MISSING.format("not installed"))

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self._writer.add_scalar(key, value, step)

    def log_config(self, config: dict[str, Any]) -> None:
        import yaml  # the run's config as text, shown in TensorBoard's "Text" tab

        text = yaml.safe_dump(config, sort_keys=False)
        self._writer.add_text("config", "    " + text.replace("\n", "\n    "), 0)

    def close(self) -> None:
        self._writer.close()


def logger_names(config: Any) -> list[str]:
    """The loggers a ``TrainConfig`` asks for: its ``logger`` (a name, or several joined by
    commas) plus ``tensorboard`` when ``tensorboard`` is true (the old ``--tensorboard`` flag);
    ``none`` drops out, duplicates count once."""
    raw = getattr(config, "logger", None) or "none"
    names = [n.strip() for n in str(raw).split(",") if n.strip()]
    if getattr(config, "tensorboard", False):
        names.append("tensorboard")
    return [n for n in dict.fromkeys(names) if n != "none"]


def check_loggers(names: list[str]) -> None:
    """Resolve every name (an unknown one: a one-line error listing the valid ones) and run its
    factory's ``check`` (a missing package: ``LoggerUnavailableError``), before anything is
    written."""
    for name in names:
        check = getattr(LOGGERS.get(name), "check", None)
        if callable(check):
            check()


def build_loggers(names: list[str], run_dir: Path) -> list[TrainLogger]:
    """One logger per name, each writing under ``run_dir``. One that fails to start (wandb
    online without a login, an unreachable MLflow server) closes the ones already started and
    raises a one-line ``LoggerUnavailableError`` naming it."""
    check_loggers(names)
    built: list[TrainLogger] = []
    for name in names:
        try:
            built.append(LOGGERS.build(name, run_dir=Path(run_dir)))
        except Exception as err:
            for logger in built:
                logger.close()
            if isinstance(err, LoggerUnavailableError):
                raise
            reason = " ".join(str(err).split())[:300]
            raise LoggerUnavailableError(f"--logger {name} could not start: {reason}") from err
    return built


# wandb and mlflow register themselves (their packages are imported only when used)
from anyssl.train import loggers_ext  # noqa: E402, F401
