"""Experiment configs: one declared schema per kind, strict loading, overrides.

Every experiment kind declares its config as nested dataclasses (one per TOML
table, defaults declared once, constraints in :func:`option`). :func:`parse`
turns the TOML data into that object and rejects

* a key or table the schema does not have, listing the valid keys and
  suggesting the closest (``train.epoch: unknown key; did you mean 'epochs'?``);
* a value of the wrong type (an integer where an integer is wanted: ``2.5`` and
  ``true`` are not integers), out of range, or not among the known names,
  naming the full key (``train.epochs: must be an integer >= 0, got -1``).

Overrides (``--set train.eta.fa=0.02``) are applied to the TOML data before
parsing (:func:`apply_override`), so they are checked the same way.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Callable, Literal, Union

MISSING = dataclasses.MISSING


class ConfigError(ValueError):
    """A config that cannot be used.

    The message is ``"<source>: <key>: <detail>"`` (without the parts that are
    None).

    Parameters
    ----------
    key : str or None
        The full dotted key at fault (``"train.epochs"``), or None for the
        whole config.
    detail : str
        What is wrong.
    source : str, optional
        The file (and/or ``--set``) the config came from.

    Attributes
    ----------
    key, detail, source
        As given.
    """

    def __init__(self, key: str | None, detail: str, source: str | None = None):
        self.key, self.detail, self.source = key, detail, source
        super().__init__(self._text())

    def _text(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.key}: {self.detail}" if self.key else f"{where}{self.detail}"

    def located(self, source: str) -> "ConfigError":
        """The same error with ``source`` (the config file, or the override) named.

        Parameters
        ----------
        source : str
            Where the config came from.

        Returns
        -------
        ConfigError
            A new error.
        """
        return ConfigError(self.key, self.detail, source)


# -- declaring a schema ------------------------------------------------------------------------

def option(default: Any = MISSING, *, ge=None, gt=None, le=None, lt=None, choices=None,
           unique: bool = False, min_len: int = 0, keys=None,
           check: Callable[[Any], str | None] | None = None, doc: str = ""):
    """A dataclass field with constraints.

    ge / gt / le / lt: bounds of a number (of every number in a list or table).
    choices: the allowed strings (of every item of a list). keys: the allowed
    keys of a free-form table. unique / min_len: lists. check(value): extra test
    returning an error text (e.g. ``"must be a multiple of 10"``) or None.
    Mutable defaults (lists) are copied per instance.
    """
    meta = dict(ge=ge, gt=gt, le=le, lt=lt, choices=tuple(choices) if choices else None,
                unique=unique, min_len=min_len, keys=tuple(keys) if keys else None,
                check=check, doc=doc)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d),
                                 metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(cls):
    """A nested table: a dataclass field defaulting to ``cls()``."""
    return dataclasses.field(default_factory=cls, metadata={})


# -- parsing -----------------------------------------------------------------------------------

def parse(cls, data: Any, key: str = ""):
    """``cls`` (a schema dataclass) from ``data`` (parsed TOML), strictly.

    After the fields are set, a ``check(self, key)`` method of the class (if any)
    runs cross-field checks and raises :class:`ConfigError` itself."""
    if not isinstance(data, dict):
        raise ConfigError(key or None, f"must be a table, got {_show(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    for name in data:
        if name not in fields:
            raise unknown_key(key, str(name), list(fields), cls)
    values = {name: convert(hints[name], data[name], _join(key, name), fields[name].metadata)
              for name in fields if name in data}
    obj = cls(**values)
    if hasattr(obj, "check"):
        obj.check(key)
    return obj


def unknown_key(key: str, name: str, valid: list[str], cls=None) -> ConfigError:
    """The error for ``name`` under ``key``: closest valid key, all valid keys."""
    full = _join(key, name)
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    hint = f"did you mean {_join(key, close[0])!r}? " if close else ""
    if not valid:
        return ConfigError(full, f"unknown key; [{key}] takes no keys")
    where = f"valid keys in [{key}]" if key else "valid sections"
    return ConfigError(full, f"unknown {'key' if key else 'section'}; {hint}{where}: "
                             f"{', '.join(valid)}")


def convert(tp, value, key: str, meta: dict | None = None):
    """``value`` checked (and normalised: ints to floats where a float is wanted,
    tables to dataclasses) against the annotation ``tp`` and the field's
    constraints ``meta``; :class:`ConfigError` naming ``key`` otherwise."""
    meta = meta or {}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        arms = [a for a in args if a is not type(None)]
        for arm in arms:
            if _fits(arm, value):
                try:
                    return convert(arm, value, key, meta)
                except ConfigError as exc:   # a number out of range: say every accepted form
                    if arm in (int, float) and exc.key == key and \
                            not exc.detail.startswith("must be a finite"):
                        raise _bad(key, tp, meta, value) from None
                    raise
        raise _bad(key, tp, meta, value)
    if dataclasses.is_dataclass(tp):
        return parse(tp, value, key)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise _bad(key, tp, meta, value)
        out = [convert(args[0], v, f"{key}[{i}]", _item_meta(meta)) for i, v in enumerate(value)]
        least = meta.get("min_len", 0)
        if len(out) < least:
            raise ConfigError(key, f"must have at least {least} "
                                   f"entr{'y' if least == 1 else 'ies'}, got {_show(value)}")
        if meta.get("unique"):
            dup = sorted({_show(v) for v in out if out.count(v) > 1})
            if dup:
                raise ConfigError(key, f"lists {', '.join(dup)} more than once")
        return _checked(out, key, meta)
    if origin is dict:
        if not isinstance(value, dict):
            raise _bad(key, tp, meta, value)
        allowed = meta.get("keys")
        out = {}
        for k, v in value.items():
            if allowed and k not in allowed:
                raise unknown_key(key, str(k), list(allowed))
            out[k] = convert(args[1], v, _join(key, k), _item_meta(meta))
        return _checked(out, key, meta)
    if origin is Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise _bad(key, tp, meta, value)
    if not _fits(tp, value):
        raise _bad(key, tp, meta, value)
    if tp is float:
        if not math.isfinite(value):
            raise ConfigError(key, f"must be a finite number, got {_show(value)}")
        if not _in_range(value, meta):
            raise _bad(key, tp, meta, value)
        value = float(value)
    if tp is int and not _in_range(value, meta):
        raise _bad(key, tp, meta, value)
    if tp is str and meta.get("choices") and value not in meta["choices"]:
        close = difflib.get_close_matches(value, meta["choices"], n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(key, f"unknown {_show(value)}{hint}; choose from "
                               f"{', '.join(map(repr, meta['choices']))}")
    return _checked(value, key, meta)


def _fits(tp, value) -> bool:
    """Whether ``value`` has the shape of ``tp`` (no range checks)."""
    origin = typing.get_origin(tp)
    if origin is list:
        return isinstance(value, (list, tuple))
    if origin is dict or dataclasses.is_dataclass(tp):
        return isinstance(value, dict)
    if origin is Literal:
        return value in typing.get_args(tp) and not isinstance(value, bool)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    return isinstance(value, tp)


def _item_meta(meta: dict) -> dict:
    return {k: meta.get(k) for k in ("ge", "gt", "le", "lt", "choices")}


def _in_range(v, meta) -> bool:
    ge, gt, le, lt = (meta.get(k) for k in ("ge", "gt", "le", "lt"))
    return ((ge is None or v >= ge) and (gt is None or v > gt)
            and (le is None or v <= le) and (lt is None or v < lt))


def _checked(value, key, meta):
    check = meta.get("check")
    if check is not None:
        problem = check(value)
        if problem:
            raise ConfigError(key, problem)
    return value


def _bad(key, tp, meta, value) -> ConfigError:
    return ConfigError(key, f"must be {describe(tp, meta)}, got {_show(value)}")


def describe(tp, meta: dict | None = None, plural: bool = False) -> str:
    """``tp`` with the constraints in words: ``"an integer >= 0"``."""
    meta = meta or {}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        arms = [a for a in args if a is not type(None)]
        text = " or ".join(describe(a, meta, plural) for a in arms)
        return text + (" (or left out)" if type(None) in args and not plural else "")
    if origin is list:
        item = describe(args[0], _item_meta(meta), True)
        return ("lists" if plural else "a list") + " of " + item
    if origin is dict or dataclasses.is_dataclass(tp):
        inner = "" if dataclasses.is_dataclass(tp) else \
            " of " + describe(args[1], _item_meta(meta), True)
        return ("tables" if plural else "a table") + inner
    if origin is Literal:
        return " or ".join(repr(a) for a in args)
    if tp is str and meta.get("choices"):
        return ("names among " if plural else "one of ") + ", ".join(map(repr, meta["choices"]))
    bounds = " and ".join(f"{op} {meta[k]:g}" for k, op in
                          (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
                          if meta.get(k) is not None)
    noun = {int: ("an integer", "integers"), float: ("a number", "numbers"),
            bool: ("true or false", "true or false"), str: ("a string", "strings")}.get(
                tp, (getattr(tp, "__name__", str(tp)),) * 2)[plural]
    return noun + (f" {bounds}" if bounds and tp in (int, float) else "")


def _show(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return "a table"
    return repr(value)


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else str(name)


# -- overrides ---------------------------------------------------------------------------------

def leaf_keys(cls, key: str = "") -> list[str]:
    """Every dotted key of a schema (tables included), for suggestions."""
    out = []
    for f in dataclasses.fields(cls):
        full = _join(key, f.name)
        out.append(full)
        tp = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            out += leaf_keys(tp, full)
    return out


def apply_override(data: dict, dotted: str, value, schema=None) -> None:
    """Set ``data[a][b][c] = value`` for ``dotted = "a.b.c"``, creating tables.

    A key without a section (``epochs=2``) is an error suggesting the full key
    when ``schema`` is given; an intermediate that is not a table (``train.eta``
    holds a number) is an error too. The value itself is checked later, when
    the whole config is parsed."""
    parts = dotted.split(".")
    if not dotted or any(not p for p in parts):
        raise ConfigError(dotted or "''", "an override key is SECTION.KEY (dotted, no empty "
                                          "parts), e.g. train.epochs")
    if len(parts) == 1:
        hint = ""
        if schema is not None:
            keys = leaf_keys(schema)
            exact = [k for k in keys if k.rsplit(".", 1)[-1] == dotted]
            close = exact or difflib.get_close_matches(dotted, keys, n=1, cutoff=0.6) or \
                [k for k in keys if difflib.get_close_matches(dotted, [k.rsplit(".", 1)[-1]],
                                                              cutoff=0.75)]
            if close:
                hint = f"; did you mean {close[0]!r}?"
        raise ConfigError(dotted, f"an override names its section: SECTION.KEY=VALUE{hint}")
    node = data
    for i, p in enumerate(parts[:-1]):
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        elif not isinstance(nxt, dict):
            raise ConfigError(".".join(parts[:i + 1]),
                              f"is {_show(nxt)}, not a table, so {dotted} cannot be set; set "
                              f"the whole value, e.g. {'.'.join(parts[:i + 1])}="
                              f'{{"{parts[i + 1]}": ...}}')
        node = nxt
    node[parts[-1]] = value


def as_dict(obj) -> dict:
    """A schema object as plain nested dicts and lists (JSON-able)."""
    return dataclasses.asdict(obj)


# -- shared checks -----------------------------------------------------------------------------

def folder_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a run folder's name (None if it can)."""
    if not name or not name.strip():
        return "must not be empty (it names the run folder)"
    if name in (".", ".."):
        return f"{name!r} is not a folder name"
    bad = [c for c in ("/", "\\", "\0") if c in name]
    if bad or any(ord(c) < 32 for c in name):
        return (f"{name!r} cannot name a run folder: no '/', '\\', NUL or control characters "
                "(use letters, digits, '-', '_', '.')")
    if len(name) > 200:
        return f"is {len(name)} characters long; at most 200 (it names the run folder)"
    return None


def coerce(cls, config):
    """``config`` as a ``cls`` schema object: parsed (strictly) if it is a dict."""
    if isinstance(config, cls):
        return config
    if isinstance(config, dict):
        return parse(cls, config)
    raise TypeError(f"expected a {cls.__name__} or a dict, got {type(config).__name__}")


# -- tables shared by the kinds ----------------------------------------------------------------

#: the backends (= neuro_pc.backends.BACKENDS), Brian2 targets (= brian2 backend's
#: TARGETS) and Lava tags (= Lava backend's TAGS), here without importing Brian2 or
#: Lava (tests/hardening/test_configs.py checks they agree)
BACKEND_NAMES = ("reference", "brian2", "lava")
BRIAN2_TARGETS = ("numpy", "cython", "cpp_standalone")
LAVA_TAGS = ("floating_pt", "fixed_pt")

#: the data sets known by name, and the loader options each takes
DATASET_OPTIONS = {"digits": ("test_size", "scale"), "mnist1d": ("n", "test_size"),
                   "mnist": ("limit_train", "limit_test")}


def dataset_problem(name: str) -> str | None:
    """Why ``name`` cannot be given to :func:`neuro_pc.data.load_dataset` (None if it can)."""
    import importlib.util
    from pathlib import Path

    key = name.strip().lower()
    if key == "digits":
        return None
    if key == "mnist":   # the published files, looked for in $NEURO_PC_DATA and the cache
        from neuro_pc.data.store import DataNotFoundError, find

        try:
            find("mnist")
        except DataNotFoundError as exc:
            return str(exc)
        return None
    if key == "mnist1d":
        if importlib.util.find_spec("mnist1d") is None:
            return ("'mnist1d' needs the optional mnist1d package: pip install mnist1d "
                    "(or the neuro-pc[analysis] extra)")
        return None
    path = name.strip()[len("mnist:"):] if key.startswith("mnist:") else name.strip()
    looks_like_path = key.startswith("mnist:") or path.endswith(".npz") or "/" in path \
        or "\\" in path or Path(path).expanduser().exists()
    if not looks_like_path:
        close = difflib.get_close_matches(key, ["digits", "mnist1d", "mnist"], n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return (f"unknown data set {name!r}; {hint}known: 'digits', 'mnist1d', 'mnist', "
                "'mnist:<path>' or a path to MNIST idx files / a .npz")
    if not Path(path).expanduser().exists():
        return (f"no MNIST data at {path!r}: give a folder of the four idx files or a "
                "mnist.npz (nothing is downloaded)")
    return None


def dataset_kind(name: str) -> str:
    key = name.strip().lower()
    return key if key in ("digits", "mnist1d") else "mnist"


@dataclasses.dataclass
class Experiment:
    """``[experiment]``: what runs, under which name, on which backend."""
    kind: str = ""
    name: str | None = option(None, check=lambda v: folder_name_problem(v))
    backend: str = option("reference", choices=BACKEND_NAMES)


@dataclasses.dataclass
class Data:
    """``[data]``: a data set of :func:`neuro_pc.data.load_dataset` and its loader
    options (each only for the data sets whose loader takes it)."""
    name: str = option("digits", check=dataset_problem)
    test_size: float | None = option(None, gt=0, lt=1)
    scale: bool | None = None
    n: int | None = option(None, ge=10, check=lambda v: None if v % 10 == 0 else
                           f"must be a multiple of 10 (n // 10 samples per class), got {v}")
    limit_train: int | None = option(None, ge=1)
    limit_test: int | None = option(None, ge=1)

    def check(self, key: str) -> None:
        takes = DATASET_OPTIONS[dataset_kind(self.name)]
        for opt in ("test_size", "scale", "n", "limit_train", "limit_test"):
            if getattr(self, opt) is not None and opt not in takes:
                raise ConfigError(_join(key, opt), f"the {dataset_kind(self.name)!r} loader "
                                  f"does not take {opt!r}; it takes {', '.join(takes)}")

    def loader_options(self) -> dict:
        """The options given (not None), as keyword arguments of the loader."""
        return {k: getattr(self, k) for k in ("test_size", "scale", "n", "limit_train",
                                               "limit_test") if getattr(self, k) is not None}


@dataclasses.dataclass
class ReferenceOptions:
    """``[backend.reference]``: the reference backend takes no options."""


@dataclasses.dataclass
class Brian2Options:
    """``[backend.brian2]``: options of :class:`~neuro_pc.backends.brian2.Brian2Simulator`."""
    target: str = option("numpy", choices=BRIAN2_TARGETS)
    build_dir: str | None = None


@dataclasses.dataclass
class LavaOptions:
    """``[backend.lava]``: options of :class:`~neuro_pc.backends.lava.LavaSimulator`."""
    tag: str = option("floating_pt", choices=LAVA_TAGS)
    frac_bits: int | None = option(None, ge=1)


@dataclasses.dataclass
class Backends:
    """``[backend.<name>]`` tables: the options each backend is compiled with."""
    reference: ReferenceOptions = section(ReferenceOptions)
    brian2: Brian2Options = section(Brian2Options)
    lava: LavaOptions = section(LavaOptions)

    def options(self, backend: str) -> dict:
        """Keyword arguments of ``compile(..., backend=backend)``."""
        return dataclasses.asdict(getattr(self, backend))


def validation_split(data, n: int, seed: int = 0):
    """``data.hold_out(n, seed)`` (:meth:`neuro_pc.data.Dataset.hold_out`), its
    ValueError as a ConfigError naming ``data.validation``."""
    try:
        return data.hold_out(n, seed)
    except ValueError as exc:
        raise ConfigError("data.validation", str(exc)) from None


def require_reference_modes(train, trains_on: str) -> None:
    """``train.batch_size`` > 1 and ``train.dtype = "float32"`` (where the table has
    them) are the reference backend's batched mode: on another backend, an error
    naming the key before training."""
    if trains_on == "reference":
        return
    for k, plain in (("batch_size", 1), ("dtype", "float64")):
        v = getattr(train, k, plain)
        if v != plain:
            raise ConfigError(f"train.{k}", f"{v!r} needs the reference backend's batched "
                              f"mode (batch_size > 1 and float32 are the reference's); the "
                              f"{trains_on} backend trains online in float64 (set {plain!r})")


def require_trainable(backends: Backends, backend: str, key: str = "backend") -> None:
    """Lava's fixed_pt runs inference only: an error before training if it would train."""
    if backend == "lava" and backends.lava.tag == "fixed_pt":
        raise ConfigError(f"{key}.lava.tag", "'fixed_pt' runs inference only and this "
                          "experiment trains on the backend; use 'floating_pt'")
