"""Configured experiments: ``neuro-pc run experiments/<name>.toml``.

A config is TOML with an ``[experiment]`` table whose ``kind`` picks a module
here. Each kind module declares its config schema ``Config`` (nested
dataclasses, :mod:`neuro_pc.experiments.config`) and has ``run(config,
backend, progress, checkpoint) -> Outcome`` (results as JSON-able data, a
printable summary, and figures) and ``circuits(config)``; optionally
``preflight(config)`` (checks that need the data).

:func:`load_config` reads a config strictly (unknown keys, wrong types and
out-of-range values raise :class:`ConfigError` naming the key).
:func:`run_experiment` checks everything it can before training (config,
backend, output folder, circuits), then reserves the run folder, records each
finished entry in it and writes the results file by file
(:mod:`neuro_pc.experiments.runs`; docs/runs.md): a failed run keeps its folder,
marked ``INCOMPLETE``, with what was finished.
"""
from __future__ import annotations

import importlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from neuro_pc.experiments.config import ConfigError, apply_override, as_dict, parse
from neuro_pc.experiments.runs import RunFolder, RunFolderError, dumps

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: kind -> module implementing run()
KINDS = {
    "compare_rules": "neuro_pc.experiments.compare_rules",
    "rank_collapse": "neuro_pc.experiments.rank_collapse",
    "cnn_depth": "neuro_pc.experiments.cnn_depth",
    "mpc": "neuro_pc.experiments.mpc",
    "spiking": "neuro_pc.experiments.spiking",
    "onchip": "neuro_pc.experiments.onchip",
}


@dataclass
class Outcome:
    """What an experiment kind's ``run`` returns.

    Attributes
    ----------
    results : dict
        The results, as JSON-able data.
    summary : str
        A printable summary.
    figures : dict
        ``{file name (…png): matplotlib Figure}``.
    """
    results: dict
    summary: str
    figures: dict = field(default_factory=dict)   # file name (…png) -> matplotlib Figure


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend.

    Returns
    -------
    module or None
        ``matplotlib.pyplot``, or None when the ``plot`` extra is not installed
        (experiments then write results only).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def kind_module(kind: str):
    """The module implementing experiment ``kind``.

    Parameters
    ----------
    kind : str
        A key of :data:`KINDS`.

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    KeyError
        For an unknown ``kind``.
    """
    return importlib.import_module(KINDS[kind])


def config_dirs() -> list[Path]:
    """Where shipped configs are looked up.

    The checkout's top-level ``experiments/`` folder when neuro_pc runs from a
    source checkout (an editable install), and the copy a built wheel carries in
    ``neuro_pc/experiments/configs/`` (setup.py).

    Returns
    -------
    list of pathlib.Path
        The folders that exist, in lookup order.
    """
    here = Path(__file__).resolve().parent
    root = here.parents[1]
    dirs = []
    if (root / "pyproject.toml").is_file() and (root / "experiments").is_dir():
        dirs.append(root / "experiments")
    if (here / "configs").is_dir():
        dirs.append(here / "configs")
    return dirs


def shipped_configs() -> dict[str, Path]:
    """The experiment configs shipped with neuro-pc.

    Returns
    -------
    dict of str to pathlib.Path
        ``{name: path}`` (``fa_digits``, ``spiking_fa_digits``, ...), the first
        found in :func:`config_dirs`.
    """
    found: dict[str, Path] = {}
    for d in config_dirs():
        for f in sorted(d.glob("*.toml")):
            found.setdefault(f.stem, f)
    return found


def resolve_config(name_or_path: str | os.PathLike) -> Path:
    """The config file ``name_or_path`` names.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        An existing path (taken as it is), else a shipped config by name
        (``"fa_digits"`` or ``"fa_digits.toml"``).

    Returns
    -------
    pathlib.Path
        The config file.

    Raises
    ------
    FileNotFoundError
        For a name that is neither, listing the shipped names.
    """
    path = Path(name_or_path)
    if path.exists():
        return path
    text = str(name_or_path)
    shipped = shipped_configs()
    if "/" not in text and os.sep not in text:
        stem = text[:-5] if text.endswith(".toml") else text
        if stem in shipped:
            return shipped[stem]
    import difflib

    close = difflib.get_close_matches(path.stem, list(shipped), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise FileNotFoundError(f"no experiment config at {text}: no such file, nor a shipped "
                            f"config of that name ({hint}shipped: "
                            f"{', '.join(shipped) or 'none'})")


def read_toml(path: str | os.PathLike) -> dict:
    """The TOML data at ``path``, with clear errors.

    Parameters
    ----------
    path : str or os.PathLike
        The TOML file.

    Returns
    -------
    dict
        The data.

    Raises
    ------
    FileNotFoundError
        For a missing file.
    ConfigError
        For a folder, and for text that is not valid TOML (or not UTF-8).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no experiment config at {path}")
    if path.is_dir():
        raise ConfigError(None, "is a folder, not an experiment config (a .toml file, e.g. "
                                "experiments/fa_digits.toml)", str(path))
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(None, f"not valid TOML: {exc}", str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(None, f"not valid TOML: not UTF-8 text ({exc.reason})",
                          str(path)) from None


def load_config(path: str | os.PathLike, overrides: dict | None = None,
                backend: str | None = None):
    """The validated config object of the TOML at ``path``.

    The object is of the kind's ``Config`` schema; ``overrides`` and
    ``backend`` are applied first.

    Parameters
    ----------
    path : str or os.PathLike
        The config file, or a shipped config's name (:func:`resolve_config`).
    overrides : dict, optional
        ``{"train.epochs": 2, "train.eta.fa": 0.02}``: dotted keys and values.
    backend : str, optional
        Sets ``experiment.backend``.

    Returns
    -------
    object
        The config (nested dataclasses, :mod:`neuro_pc.experiments.config`);
        ``experiment.name`` defaults to the file's stem.

    Raises
    ------
    ConfigError
        Naming the file (or ``--set``) and the key at fault.
    FileNotFoundError
        For a path that is neither a file nor a shipped config's name.
    """
    path = resolve_config(path)
    source = str(path)
    raw = read_toml(path)
    exp = raw.get("experiment")
    kind = exp.get("kind") if isinstance(exp, dict) else None
    if kind not in KINDS:
        import difflib

        close = difflib.get_close_matches(str(kind), list(KINDS), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        what = ("has no [experiment] kind" if kind is None else
                f"[experiment] kind = {kind!r} is not a known kind{hint}")
        raise ConfigError(None, f"{what}; known kinds: {', '.join(sorted(KINDS))}", source)
    schema = kind_module(kind).Config
    overridden = []
    for key, value in (overrides or {}).items():
        try:
            apply_override(raw, key, value, schema)
        except ConfigError as exc:
            raise exc.located("--set") from None
        overridden.append(key)
    if backend is not None:
        raw.setdefault("experiment", {})["backend"] = backend
    try:
        cfg = parse(schema, raw)
    except ConfigError as exc:
        def hit(keys):
            return exc.key is not None and any(
                exc.key == k or exc.key.startswith((k + ".", k + "["))
                or k.startswith(exc.key + ".") for k in keys)

        how = " (with --backend)" if backend is not None and hit(["experiment.backend"]) else \
            " (with --set)" if hit(overridden) else ""
        raise exc.located(source + how) from None
    if cfg.experiment.kind != kind:   # pragma: no cover - an override changed the kind
        raise ConfigError("experiment.kind", "cannot be changed by an override", source)
    if cfg.experiment.name is None:
        name = Path(path).stem
        from neuro_pc.experiments.config import folder_name_problem

        problem = folder_name_problem(name)
        if problem:
            raise ConfigError("experiment.name", f"not set, and the file name {problem}; set "
                                                 "[experiment] name", source)
        cfg.experiment.name = name
    return cfg


def check_backend(backend: str) -> None:
    """Import ``backend``'s simulator now.

    A missing extra (Lava needs Python 3.10 and lava-nc) is then one clear error
    before anything trains.

    Parameters
    ----------
    backend : str
        The backend's name.

    Raises
    ------
    ImportError
        When the backend cannot be imported here.
    ValueError
        For an unknown backend.
    """
    from neuro_pc.backends import simulator_class

    try:
        simulator_class(backend)
    except ImportError as exc:
        raise ImportError(f"backend {backend!r} is not available here: {exc}") from None


def run_experiment(path: str | os.PathLike, backend: str | None = None,
                   out_dir: str | os.PathLike = "runs", progress: bool = True,
                   overrides: dict | None = None, figures: bool = True) -> tuple[Path, Outcome]:
    """Run the experiment at ``path``; returns the run folder and the outcome.

    Before training: the config (with ``overrides`` and ``backend``), the
    backend's import, the kind's circuits (and ``preflight``) and the output
    folder are checked; nothing is written if one fails. Then the run
    folder is reserved and every finished entry recorded in it; if the run
    fails (or is interrupted) the folder stays, marked ``INCOMPLETE`` with the
    error, and the exception (with ``.run_dir``) propagates. The run folder
    keeps every trained circuit in ``artifacts/``.

    Parameters
    ----------
    path : str or os.PathLike
        A config file, or a shipped config's name.
    backend : str, optional
        Overrides the config's ``experiment.backend``.
    out_dir : str or os.PathLike, default "runs"
        The folder the run folder is made in.
    progress : bool, default True
        Show progress.
    overrides : dict, optional
        Dotted config keys and values (:func:`load_config`).
    figures : bool, default True
        ``figures=False`` writes no figures (``neuro-pc train``; draw them later
        with :func:`redraw_figures`).

    Returns
    -------
    run_dir : pathlib.Path
        The run folder.
    outcome : Outcome
        The kind's outcome (its results with ``meta``, :func:`run_meta`).

    Raises
    ------
    ConfigError
        For a config that cannot be used.
    ImportError
        For a backend that is not available.
    RunFolderError
        When the run folder cannot be made or written.
    """
    t0 = time.time()
    path = resolve_config(path)
    cfg = load_config(path, overrides=overrides, backend=backend)
    module = kind_module(cfg.experiment.kind)
    check_backend(cfg.experiment.backend)
    if hasattr(module, "preflight"):   # checks that need the data, and the circuits build
        module.preflight(cfg)
    else:
        module.circuits(cfg)
    run = RunFolder.reserve(out_dir, cfg.experiment.name)   # checks the output folder first
    started = time.time()
    try:
        outcome: Outcome = module.run(cfg, progress=progress, checkpoint=run.checkpoint,
                                      artifacts=run.artifacts)
        finished = time.time()
        if not figures:
            outcome.figures = {}
        phases = {"check": started - t0, "run": finished - started}
        outcome.results.setdefault("meta", {}).update(
            run_meta(cfg, path, phases=phases, started=run.started))
        run.finish(outcome.results, outcome.summary, outcome.figures)
    except BaseException as exc:
        run.fail(exc)
        try:
            exc.run_dir = run.path
        except AttributeError:  # pragma: no cover - an exception without a __dict__
            pass
        raise
    return run.path, outcome


def run_meta(cfg, path, phases: dict, started: str | None = None) -> dict:
    """``results.json``'s ``meta``.

    The resolved config, the backend and its options (Brian2 target, Lava
    tag...), the seeds, wall time per phase and
    :func:`~neuro_pc.experiments.provenance.provenance` (versions, git commit,
    machine).

    Parameters
    ----------
    cfg : object
        The config object (:func:`load_config`).
    path : str or os.PathLike
        The config file.
    phases : dict
        Seconds per phase (``check``: config, data and circuits before the run
        folder exists; ``run``: training, measuring and drawing).
    started : str, optional
        When the run started.

    Returns
    -------
    dict
        The metadata.
    """
    from neuro_pc.experiments.provenance import provenance

    backend = cfg.experiment.backend
    options = getattr(getattr(cfg, "backend", None), backend, None)
    train = getattr(cfg, "train", None)
    return {"config": as_dict(cfg), "config_file": str(Path(path)),
            "backend": backend,
            "backend_options": as_dict(options) if options is not None else {},
            "seeds": list(getattr(train, "seeds", []) or []),
            "started": started, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "seconds": round(sum(phases.values()), 2),
            "phases": {k: round(v, 2) for k, v in phases.items()},
            **provenance()}


def redraw_figures(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> list:
    """(Re)draw a finished run's figures from its ``results.json``.

    Parameters
    ----------
    run_dir : str or os.PathLike
        The run folder.
    out_dir : str or os.PathLike, optional
        Where the figures go (default: the run folder; created if needed).

    Returns
    -------
    list of pathlib.Path
        The paths written.

    Raises
    ------
    FileNotFoundError
        When ``run_dir`` is not a folder.
    RunFolderError
        For a run without ``results.json`` (an incomplete run), a results file
        that is not neuro-pc's, or an unknown experiment kind.
    ImportError
        Without matplotlib.
    """
    from neuro_pc.experiments.runs import RESULTS, save_figure

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run folder")
    res = run_dir / RESULTS
    if not res.is_file():
        state = " (it is marked INCOMPLETE: the run failed or is still running)" if (
            run_dir / "INCOMPLETE").exists() else ""
        raise RunFolderError(f"{run_dir} has no {RESULTS} to plot{state}")
    import json

    try:
        results = json.loads(res.read_text(encoding="utf-8"))
        kind = results["meta"]["config"]["experiment"]["kind"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RunFolderError(f"{res} is not a neuro-pc results file ({type(exc).__name__}: "
                             f"{exc}); it needs meta.config.experiment.kind") from None
    if kind not in KINDS:
        raise RunFolderError(f"{res}: unknown experiment kind {kind!r}")
    if pyplot() is None:
        raise ImportError("drawing figures needs matplotlib: pip install 'neuro-pc[plot]'")
    out = Path(out_dir) if out_dir is not None else run_dir
    out.mkdir(parents=True, exist_ok=True)
    return [save_figure(out / name, fig)
            for name, fig in kind_module(kind).figures(results).items()]


def write_run(out_dir: Path, name: str, outcome: Outcome) -> Path:
    """Write results.json, summary.txt and figures into a new ``out_dir/<name>-<time>/``.

    Parameters
    ----------
    out_dir : pathlib.Path
        The folder of runs.
    name : str
        The run's name.
    outcome : Outcome
        What is written.

    Returns
    -------
    pathlib.Path
        The run folder.

    Raises
    ------
    RunFolderError
        When the run folder cannot be made or written.
    """
    run = RunFolder.reserve(out_dir, name)
    try:
        return run.finish(outcome.results, outcome.summary, outcome.figures)
    except BaseException as exc:
        run.fail(exc)
        raise


__all__ = ["KINDS", "ConfigError", "Outcome", "RunFolder", "RunFolderError", "check_backend",
           "config_dirs", "dumps", "kind_module", "load_config", "pyplot", "read_toml",
           "redraw_figures", "resolve_config", "run_experiment", "run_meta", "shipped_configs",
           "write_run"]
