"""YAML from untrusted files and flags, read as plain values and nothing else.

``yaml.safe_load`` already builds no Python object from a tag; this loader also refuses aliases
(nested aliases expand exponentially: the "billion laughs" memory bomb, refused at the first
``*alias``, never expanded), duplicate keys, files over ``MAX_CONFIG_BYTES`` and text nested too
deeply to parse. Every refusal is a one-line ``ConfigError`` (a ``ValueError``: CLI exit code 2).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

__all__ = ["MAX_CONFIG_BYTES", "ConfigError", "load_yaml_text", "read_config_text"]

#: A config larger than this is refused unread (a config is a few hundred bytes).
MAX_CONFIG_BYTES = 1_000_000

_STD_TAG = "tag:yaml.org,2002:"  # what ``!!`` stands for


class ConfigError(ValueError):
    """A config key or value that is not valid; the message lists the valid choices."""


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _too_big(source: str) -> ConfigError:
    return ConfigError(f"{source} is over {MAX_CONFIG_BYTES // 1_000_000} MB; a config holds a "
                       "few keys: is this the right file?")


# ---- loader --------------------------------------------------------------------------------------
class _Refused(Exception):
    """Something ``_ConfigLoader`` will not load; the message completes "<source> ..."."""


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader (plain values only: a ``!!python/...`` tag is an error, never a
    call) that also refuses aliases, whose nesting expands exponentially ("billion laughs"),
    and duplicate keys, of which YAML would silently keep the last."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(
                f"uses the YAML alias *{event.anchor} (line {event.start_mark.line + 1}): anyssl "
                "configs allow no aliases (nested ones are a memory bomb); write the value out"
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value in seen:
                    raise _Refused(f"gives the key {key_node.value!r} twice (line "
                                   f"{key_node.start_mark.line + 1}); keep one")
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str, source: str = "config") -> Any:
    """Parse YAML ``text`` into plain values (dicts, lists, strings, numbers, booleans, None)
    with ``_ConfigLoader``; anything else is a one-line ``ConfigError`` starting with
    ``source``. Nothing in the text is executed or instantiated."""
    if len(text) > MAX_CONFIG_BYTES:
        raise _too_big(source)
    try:
        return yaml.load(text, Loader=_ConfigLoader)
    except _Refused as err:
        raise ConfigError(f"{source} {err}") from None
    except yaml.constructor.ConstructorError as err:
        tag = re.search(r"tag '([^']*)'", str(err.problem or ""))
        if tag is None:
            raise ConfigError(f"{source} is not valid YAML: {_one_line(err)}") from None
        line = err.problem_mark.line + 1 if err.problem_mark is not None else "?"
        name = tag.group(1).replace(_STD_TAG, "!!")
        raise ConfigError(
            f"{source} uses the YAML tag {name!r} (line {line}): configs hold plain values only "
            "(no Python object is built from a config); remove the tag"
        ) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{source} is not valid YAML: {_short(_one_line(err), 300)}") from None
    except RecursionError:
        raise ConfigError(f"{source} is nested too deeply; keep configs flat") from None


def read_config_text(path: Path) -> str:
    """The text of a config file, refusing a folder, a non-UTF-8 file or one over
    ``MAX_CONFIG_BYTES`` (read no further than that, so /dev/zero is refused too)."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder; give a YAML file") from None
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror or err}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise _too_big(f"config file {path}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text (a binary file?); give a "
                          "YAML file") from None
