"""Configured experiments: ``neuro-pc run experiments/<name>.toml``.

A config is TOML with an ``[experiment]`` table whose ``kind`` picks a module
here. Each kind module has ``run(config: dict, backend: str | None, progress:
bool) -> Outcome`` (results as JSON-able data, a printable summary, and
figures). :func:`run_experiment` writes them into a run folder atomically: all
files go into a hidden temporary folder that is renamed into place only after
every file was written, so a run that fails leaves nothing half-written.
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: kind -> module implementing run()
KINDS = {
    "compare_rules": "neuro_pc.experiments.compare_rules",
    "rank_collapse": "neuro_pc.experiments.rank_collapse",
    "mpc": "neuro_pc.experiments.mpc",
    "spiking": "neuro_pc.experiments.spiking",
}


@dataclass
class Outcome:
    results: dict
    summary: str
    figures: dict = field(default_factory=dict)   # file name (…png) -> matplotlib Figure


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend, or None when the
    ``plot`` extra is not installed (experiments then write results only)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def load_config(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no experiment config at {path}")
    with open(path, "rb") as fh:
        try:
            config = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from None
    kind = config.get("experiment", {}).get("kind")
    if kind not in KINDS:
        raise ValueError(f"{path}: [experiment] kind = {kind!r}; known kinds: {sorted(KINDS)}")
    config.setdefault("experiment", {}).setdefault("name", path.stem)
    return config


def run_experiment(path: str | os.PathLike, backend: str | None = None,
                   out_dir: str | os.PathLike = "runs", progress: bool = True,
                   overrides: dict | None = None) -> tuple[Path, Outcome]:
    """Run the experiment at ``path``; returns the run folder and the outcome."""
    config = load_config(path)
    for key, value in (overrides or {}).items():
        section, _, name = key.rpartition(".")
        config.setdefault(section or "experiment", {})[name] = value
    module = importlib.import_module(KINDS[config["experiment"]["kind"]])
    started = time.time()
    outcome: Outcome = module.run(config, backend=backend, progress=progress)
    outcome.results.setdefault("meta", {}).update({
        "config": config, "backend": backend or config["experiment"].get("backend", "reference"),
        "seconds": round(time.time() - started, 2), "python": sys.version.split()[0]})
    return write_run(Path(out_dir), config["experiment"]["name"], outcome), outcome


def write_run(out_dir: Path, name: str, outcome: Outcome) -> Path:
    """Write results.json, summary.txt and figures into ``out_dir/<name>-<time>/``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    k = 1
    while final.exists():
        final = out_dir / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{k}"
        k += 1
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{name}-"))
    try:
        (tmp / "results.json").write_text(json.dumps(outcome.results, indent=1, default=_json))
        (tmp / "summary.txt").write_text(outcome.summary + "\n")
        for fname, fig in outcome.figures.items():
            fig.savefig(tmp / fname, dpi=120, bbox_inches="tight")
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _json(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
