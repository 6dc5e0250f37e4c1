"""Typed configurations, loadable from YAML, with named presets (`tiny` for CPUs, `paper` for GPUs).

Configs are dataclasses; loading checks every field's type and refuses unknown keys with a message
naming the field, because a misspelt hyperparameter that is silently ignored costs a training run.
"""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from remogpt.errors import RemogptError

__all__ = ["ConfigBase", "ConfigError", "DataConfig", "layered_config", "load_yaml"]

C = TypeVar("C", bound="ConfigBase")


class ConfigError(RemogptError, ValueError):
    """A configuration value or file that does not fit the config's schema."""


def load_yaml(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: {value!r} fits none of {_type_name(tp)}")
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {list(get_args(tp))}")
        return value
    if isinstance(tp, type) and issubclass(tp, ConfigBase):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {type(value).__name__}")
        return tp.from_dict(value, where=where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        key_t, val_t = get_args(tp) or (Any, Any)
        return {_coerce(k, key_t, where): _coerce(v, val_t, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            # YAML reads 1e-4 (without a dot) as a string; accept numeric strings.
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{where}: expected a path, got {value!r}")
        return Path(value)
    raise ConfigError(f"{where}: unsupported config type {_type_name(tp)}")  # pragma: no cover


def _plain(value: Any) -> Any:
    if isinstance(value, ConfigBase):
        return value.to_dict()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclasses.dataclass
class ConfigBase:
    """Base for every config: strict dict/YAML round trip and named presets."""

    #: preset name → field overrides (nested dicts for nested configs); the defaults are `tiny`.
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}
    #: old field name → new one, so configs written before a rename (YAML files, the manifests of
    #: trained artifacts) still load.
    RENAMED: ClassVar[dict[str, str]] = {}

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any], where: str = "") -> C:
        hints = get_type_hints(cls)
        for old, new in cls.RENAMED.items():
            if old in data and new in data:
                raise ConfigError(f"{where + '.' if where else ''}{old} is the old name of {new}; give only {new}")
            if old in data:
                data = {(new if k == old else k): v for k, v in data.items()}
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - set(fields))
        prefix = f"{where}." if where else ""
        if unknown:
            raise ConfigError(
                f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(prefix + u for u in unknown)} "
                f"in {cls.__name__} (known: {', '.join(sorted(fields))})"
            )
        kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
        try:
            obj = cls(**kwargs)
        except ConfigError as exc:
            raise ConfigError(f"{where or cls.__name__}: {exc}") from None
        return obj

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.init}

    @classmethod
    def from_yaml(cls: type[C], path: Path | str) -> C:
        try:
            return cls.from_dict(load_yaml(path))
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def to_yaml(self, path: Path | str | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            from remogpt.artifacts import atomic_write_text

            atomic_write_text(path, text)
        return text

    @classmethod
    def preset(cls: type[C], name: str = "tiny", **overrides: Any) -> C:
        if name not in cls.PRESETS and name != "tiny":
            raise ConfigError(f"unknown preset {name!r} for {cls.__name__} (known: tiny, {', '.join(cls.PRESETS)})")
        base = cls().to_dict()
        _deep_update(base, cls.PRESETS.get(name, {}))
        _deep_update(base, overrides)
        return cls.from_dict(base)

    def replace(self: C, **changes: Any) -> C:
        merged = self.to_dict()
        _deep_update(merged, changes)
        return type(self).from_dict(merged)


def _given(values: dict[str, Any]) -> dict[str, Any]:
    """The values the user gave: None means "not given", also inside nested mappings."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = _given(value)
            if value:
                out[key] = value
        elif value is not None:
            out[key] = value
    return out


def _new_names(cls: type[ConfigBase], data: dict[str, Any]) -> dict[str, Any]:
    """`data` with the old field names of `cls` and of its nested configs under their new names."""
    hints = get_type_hints(cls)
    out = {cls.RENAMED.get(k, k) if cls.RENAMED.get(k, k) not in data else k: v for k, v in data.items()}
    for key, value in out.items():
        tp = hints.get(key)
        if isinstance(value, dict) and isinstance(tp, type) and issubclass(tp, ConfigBase):
            out[key] = _new_names(tp, value)
    return out


def layered_config(cls: type[C], preset: str | None, path: Path | str | None, given: dict[str, Any]) -> C:
    """A stage's config as every `train` command builds it: the preset (default `tiny`), then the
    YAML file's fields over it, then the values given on the command line over both (`given`, a
    nested mapping where None means not given). So a flag always wins, and a YAML field is never
    overwritten by a flag's default."""
    merged = cls.preset(preset or "tiny").to_dict()
    if path is not None:
        from_file = load_yaml(path)
        try:
            cls.from_dict(from_file)  # the file's own errors, named with the file
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        _deep_update(merged, _new_names(cls, from_file))
    _deep_update(merged, _given(given))
    return cls.from_dict(merged)


def _deep_update(base: dict[str, Any], updates: dict[str, Any]) -> None:
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = _plain(value)


@dataclasses.dataclass
class DataConfig(ConfigBase):
    """Which data folder and how samples are cut from it (reference data-loader rules)."""

    root: Path = Path("data/embedded")
    skeleton: Literal["auto", "humanml3d", "kit"] = "auto"
    min_frames: int | None = None  # None: the skeleton's (40 for HumanML3D, 24 for KIT-ML)
    max_frames: int | None = None  # exclusive; None: 200
    unit_length: int = 4  # crop lengths to a multiple of this (the tokenizer's downsampling)
    max_length: int = 196  # longest sample after cropping, for padding in batches

    def __post_init__(self) -> None:
        if self.unit_length < 1:
            raise ConfigError(f"unit_length must be ≥ 1, got {self.unit_length}")
        if self.max_length < self.unit_length:
            raise ConfigError(f"max_length {self.max_length} is shorter than unit_length {self.unit_length}")
