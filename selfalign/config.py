"""Typed configuration: dataclasses with help text, loaded from TOML, overridden by the CLI.

Each stage owns a dataclass whose fields carry ``metadata={"help": ..., "choices": ...}``
and validate themselves in ``__post_init__``. A TOML file sets values section by
section (``[seeds]``, ``[respond]``, ...); command-line options override them. An
unknown key, a value of the wrong type or a value outside its choices fails at
once with a message naming the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import tomli_w

from selfalign.errors import UserError
from selfalign.store import RunDir, atomic_write_text

C = TypeVar("C")


class ConfigError(UserError, ValueError):
    """Bad configuration. The message says which key is wrong and what would be right."""


def field_help(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("help", ""))


def field_choices(f: dataclasses.Field[Any]) -> tuple[str, ...] | None:
    choices = f.metadata.get("choices")
    return tuple(choices) if choices else None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _check_value(tp: Any, value: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widened to float)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_value(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_check_value(item_tp, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        key_tp, val_tp = typing.get_args(tp) or (Any, Any)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table of key = value, got {value!r}")
        return {
            _check_value(key_tp, k, where): _check_value(val_tp, v, f"{where}.{k}")
            for k, v in value.items()
        }
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def build(cls: type[C], section: str, values: Mapping[str, Any]) -> C:
    """Instantiate the config dataclass ``cls`` from ``values``, validating every key."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key {section}.{unknown[0]}; allowed keys in [{section}]: "
            + ", ".join(sorted(fields))
        )
    checked: dict[str, Any] = {}
    for name, value in values.items():
        f = fields[name]
        value = _check_value(hints[name], value, f"{section}.{name}")
        choices = field_choices(f)
        if choices is not None and value is not None:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if item not in choices:
                    raise ConfigError(
                        f"{section}.{name} = {item!r} is not allowed; choose one of: "
                        + ", ".join(choices)
                    )
        checked[name] = value
    try:
        return cls(**checked)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"[{section}] {exc}") from exc


def load_toml(path: str | Path | None) -> dict[str, Any]:
    """Read a TOML config file; ``None`` gives an empty config."""
    if path is None:
        return {}
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist; check the --config path")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from exc


def check_sections(data: Mapping[str, Any], known: Mapping[str, Any]) -> None:
    """Fail on a section (top-level key) no stage knows."""
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown section [{unknown[0]}] in the config file; known sections: "
            + ", ".join(sorted(known))
        )


def resolve(
    cls: type[C], section: str, file_values: Mapping[str, Any], overrides: Mapping[str, Any]
) -> C:
    """File values for ``section``, then command-line ``overrides`` (``None`` means not given)."""
    raw = file_values.get(section, {})
    if not isinstance(raw, dict):
        raise ConfigError(f"[{section}] must be a table of key = value")
    merged = dict(raw)
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return build(cls, section, merged)


def to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a TOML-ready dict (``None`` values left out: TOML has no null)."""
    return {k: v for k, v in dataclasses.asdict(config).items() if v is not None}


def save_resolved(run: RunDir, sections: Mapping[str, Any]) -> None:
    """Merge the resolved config of the given sections into ``RUN/config.toml``."""
    run.ensure()
    current: dict[str, Any] = {}
    if run.config_path.is_file():
        current = tomllib.loads(run.config_path.read_text(encoding="utf-8"))
    for name, config in sections.items():
        *parents, leaf = name.split(".")
        node = current
        for part in parents:
            node = node.setdefault(part, {})
        # A section's own sub-sections (``[judge.model]`` under ``[judge]``) are kept.
        kept = {k: v for k, v in node.get(leaf, {}).items() if isinstance(v, dict)}
        node[leaf] = {**kept, **to_dict(config)}
    atomic_write_text(run.config_path, tomli_w.dumps(current))
