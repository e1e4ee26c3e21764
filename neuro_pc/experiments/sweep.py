"""``neuro-pc sweep``: one experiment over a grid of config values and seeds.

Every (grid point, seed) is a job: the experiment config with the grid point's
values and ``train.seeds = [seed]`` applied as overrides (the ``--set`` machinery,
so every value is checked by the config's schema before anything runs). The jobs run
through :func:`neuro_pc.experiments.jobs.run_jobs`: serially, on joblib worker
processes (``jobs=N``), or on Dask (``scheduler="local"``: a ``LocalCluster``;
``"tcp://host:port"``: a running cluster). Jobs of the Lava backend (and the
``onchip`` kind, which always runs Lava) each run in a process of their own.

The sweep's folder (docs/scale-out.md)::

    runs/<name>-sweep-<YYYYmmdd-HHMMSS>[-k]/
        INCOMPLETE          while running; after a failure or an interruption, why
        sweep.json          what the sweep is: config, grid, seeds, overrides, jobs
        config.toml         the config as it was when the sweep started (jobs read it)
        jobs/<job>.json     one per finished job, written as it finishes: its grid
                            point, seed, metrics and the experiment's results
        jobs/<job>.error.txt  a failed job's error (gone once it succeeds)
        artifacts/<job>/    its trained circuits
        results.json        mean ± sd per grid point of every metric (over the seeds)
        summary.txt         the table; sweep.png the plot

Every file appears whole (temporary file, then ``os.replace``). ``resume=DIR`` runs
only the jobs that have no ``jobs/<job>.json`` yet. A failing job is recorded and
the others go on; the table then covers the finished jobs, the folder stays
``INCOMPLETE`` and the error names the failed jobs.

A job's metrics are the numbers its experiment reports per grid point: every
``*_mean`` entry of its results (one seed each, so the value of that seed), e.g.
``rules.fa.test_accuracy``; a kind may define ``sweep_metrics(results)`` instead.
"""
from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from neuro_pc.experiments import (ConfigError, Outcome, check_backend, kind_module,
                                  load_config, pyplot, read_toml, resolve_config)
from neuro_pc.experiments.config import leaf_keys
from neuro_pc.experiments.jobs import in_subprocess, run_jobs
from neuro_pc.experiments.runs import INCOMPLETE, RESULTS, RunFolder, RunFolderError, \
    to_jsonable

SPEC = "sweep.json"
CONFIG = "config.toml"
JOBS = "jobs"


class SweepError(RuntimeError):
    """A sweep that could not run or finish; ``run_dir`` (when set) keeps what finished."""


# ----------------------------------------------------------------------------- parsing
def _split_top(text: str) -> list[str]:
    """``text`` split at the commas outside brackets and quotes."""
    out, depth, quote, cur = [], 0, None, ""
    for ch in text:
        if quote:
            cur += ch
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_grid(items) -> dict[str, list]:
    """``["train.eta=0.005,0.01,0.02", "model.hidden=[64],[128]"]`` ->
    ``{"train.eta": [0.005, 0.01, 0.02], "model.hidden": [[64], [128]]}``: each value
    JSON if it parses as JSON, else the string. A :class:`ValueError` names the item
    and shows the form for a missing ``=``, an empty value, a repeated key or value,
    and for ``train.seeds`` (which ``--seeds`` gives)."""
    grid: dict[str, list] = {}
    for item in items or []:
        key, eq, rest = str(item).partition("=")
        key = key.strip()
        if not eq or not key:
            raise ValueError(f"--grid {item!r}: write --grid SECTION.KEY=V1,V2,... (e.g. "
                             "--grid train.eta=0.005,0.01,0.02)")
        if key == "train.seeds":
            raise ValueError("--grid train.seeds: give the seeds with --seeds (e.g. --seeds "
                             "0-9); every grid point runs every seed")
        if key in grid:
            raise ValueError(f"--grid {key} is given twice; give every value of a key in one "
                             f"--grid (e.g. --grid {key}=A,B,C)")
        parts = [p.strip() for p in _split_top(rest)]
        if not rest.strip() or any(not p for p in parts):
            raise ValueError(f"--grid {item!r}: an empty value; write --grid "
                             f"{key}=V1,V2,... with no empty entries")
        values = [_value(p) for p in parts]
        seen = [json.dumps(v, sort_keys=True) for v in values]
        dup = sorted({s for s in seen if seen.count(s) > 1})
        if dup:
            raise ValueError(f"--grid {key} lists {', '.join(dup)} more than once")
        grid[key] = values
    return grid


def parse_seeds(text: str | None) -> list[int]:
    """``"0-9"`` -> ``[0, ..., 9]``; ``"0,2,5"``; ``"0-2,7"``. A :class:`ValueError`
    shows the form for anything else (negative, descending, repeated)."""
    if text is None:
        return []
    form = "write --seeds N, N-M or a list such as 0-4,7 (whole numbers >= 0)"
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not m:
            raise ValueError(f"--seeds {text!r}: {part!r} is not a seed or a range; {form}")
        lo, hi = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        if hi < lo:
            raise ValueError(f"--seeds {text!r}: the range {part} runs backwards; write "
                             f"{hi}-{lo}")
        seeds.extend(range(lo, hi + 1))
    dup = sorted({s for s in seeds if seeds.count(s) > 1})
    if dup:
        raise ValueError(f"--seeds {text!r} lists seed(s) {dup} more than once")
    return seeds


def _label(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def job_id(point: dict, seed: int) -> str:
    """A file name for one job: ``train.eta=0.01-seed3`` (several keys joined by ``_``)."""
    text = "_".join(f"{k}={_label(v)}" for k, v in point.items()) or "base"
    return re.sub(r"[^A-Za-z0-9_.=,+-]+", "_", f"{text}-seed{seed}").strip("._")[:200]


# ----------------------------------------------------------------------------- the spec
@dataclass
class SweepSpec:
    """What a sweep is (``sweep.json``): the config's text and where it came from, the
    grid, the seeds, the ``--set`` overrides and the backend. Jobs are derived from it."""

    config_file: str
    config_text: str
    name: str
    kind: str
    grid: dict
    seeds: list
    overrides: dict = field(default_factory=dict)
    backend: str | None = None

    def points(self) -> list[dict]:
        keys = list(self.grid)
        out = [{}]
        for k in keys:
            out = [{**p, k: v} for p in out for v in self.grid[k]]
        return out

    def jobs(self) -> list[dict]:
        return [{"id": job_id(p, s), "point": p, "seed": s,
                 "overrides": {**self.overrides, **p, "train.seeds": [s],
                               "experiment.name": self.name}}
                for p in self.points() for s in self.seeds]

    def compare(self, other: "SweepSpec") -> list[str]:
        """What differs between two specs (for a resume given the arguments again)."""
        out = []
        for f in ("grid", "seeds", "overrides", "backend"):
            if json.dumps(getattr(self, f), sort_keys=True) != \
                    json.dumps(getattr(other, f), sort_keys=True):
                out.append(f"{f}: {getattr(other, f)!r} here, {getattr(self, f)!r} in the sweep")
        if Path(self.config_file).resolve() != Path(other.config_file).resolve():
            out.append(f"config: {other.config_file} here, {self.config_file} in the sweep")
        return out


def prepare(config, grid: dict, seeds: list[int], overrides: dict | None = None,
            backend: str | None = None) -> tuple[SweepSpec, list[dict]]:
    """Check everything before anything runs: the config, every grid point's values
    (with the seeds) against the schema, the backend's import, every point's circuits.
    Returns the spec and its jobs, each with ``isolate`` (a Lava job). Raises
    :class:`ConfigError` naming the key and ``--grid`` / ``--set``."""
    path = resolve_config(config)
    if not seeds:
        raise ValueError("--seeds: give at least one seed (e.g. --seeds 0-9)")
    overrides = dict(overrides or {})
    clash = sorted(set(grid) & set(overrides))
    if clash:
        raise ValueError(f"{', '.join(clash)} is given by --set and by --grid; drop one")
    if "train.seeds" in overrides:
        raise ValueError("--set train.seeds: give the seeds with --seeds (e.g. --seeds 0-9)")
    base = load_config(path, overrides=overrides, backend=backend)
    module = kind_module(base.experiment.kind)
    if "train.seeds" not in leaf_keys(module.Config):
        raise ValueError(f"experiment kind {base.experiment.kind!r} has no train.seeds to "
                         "sweep over")
    spec = SweepSpec(config_file=str(Path(path).resolve()),
                     config_text=Path(path).read_text(encoding="utf-8"),
                     name=base.experiment.name, kind=base.experiment.kind,
                     grid=grid, seeds=list(seeds), overrides=overrides, backend=backend)
    return spec, _checked_jobs(spec, path)


def _checked_jobs(spec: SweepSpec, path) -> list[dict]:
    jobs, checked = [], set()
    backends = set()
    for job in spec.jobs():
        try:
            cfg = load_config(path, overrides=job["overrides"], backend=spec.backend)
        except ConfigError as exc:
            point = ", ".join(f"{k}={_label(v)}" for k, v in job["point"].items())
            hit = exc.key is not None and any(exc.key == k or exc.key.startswith(k + ".")
                                              or k.startswith(exc.key + ".")
                                              for k in job["point"])
            where = f"{path} (with --grid {point})" if hit else (exc.source or str(path))
            raise ConfigError(exc.key, exc.detail, where) from None
        module = kind_module(cfg.experiment.kind)
        job["isolate"] = cfg.experiment.backend == "lava" or getattr(module, "ALWAYS_LAVA",
                                                                     False)
        backends.add(cfg.experiment.backend)
        key = json.dumps(job["point"], sort_keys=True)
        if key not in checked:   # the circuits (and data) of every grid point build
            checked.add(key)
            if hasattr(module, "preflight"):
                module.preflight(cfg)
            else:
                module.circuits(cfg)
        jobs.append(job)
    for b in sorted(backends):
        check_backend(b)
    return jobs


# ----------------------------------------------------------------------------- one job
class MemoryArtifacts:
    """An artifact store (``save(name, sim, **metadata)``) that keeps the files' bytes,
    so that a job on any worker sends its trained circuits back with its result and
    the sweep's own process writes them."""

    def __init__(self, prefix: str):
        self.prefix, self.files = prefix, {}

    def save(self, name: str, sim, **metadata) -> str:
        from neuro_pc.ir.artifact import artifact_bytes

        safe = re.sub(r"[^A-Za-z0-9_.=-]+", "_", name).strip("._") or "circuit"
        rel = f"{self.prefix}/{safe}.npz"
        self.files[rel] = artifact_bytes(sim.artifact(**metadata))
        return rel


def sweep_metrics(module, results: dict) -> dict[str, float]:
    """The numbers a job reports: ``module.sweep_metrics(results)`` if the kind has it,
    else every finite ``*_mean`` number in ``results`` (``rules.fa.test_accuracy_mean``
    becomes ``rules.fa.test_accuracy``), and ``<path>.mean`` entries as ``<path>``."""
    if hasattr(module, "sweep_metrics"):
        return dict(module.sweep_metrics(results))
    out: dict[str, float] = {}

    def walk(node, path):
        if not isinstance(node, dict):
            return
        for k, v in node.items():
            if k == "meta":
                continue
            full = f"{path}.{k}" if path else str(k)
            if isinstance(v, dict):
                walk(v, full)
            elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                if str(k).endswith("_mean"):
                    out[full[:-5]] = float(v)
                elif k == "mean" and path:
                    out[path] = float(v)

    walk(results, "")
    return out


def execute(job: dict) -> dict:
    """Run one job wherever this is called (a worker): in this process, or in a
    process of its own for Lava. Returns its record (metrics, results, artifacts)."""
    if job.get("isolate"):
        return in_subprocess(_execute_here, job)
    return _execute_here(job)


def _execute_here(job: dict) -> dict:
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="neuro_pc_sweep_") as tmp:
        path = Path(tmp) / f"{job['name']}.toml"
        path.write_text(job["config_text"], encoding="utf-8")
        cfg = load_config(path, overrides=job["overrides"], backend=job.get("backend"))
    module = kind_module(cfg.experiment.kind)
    store = MemoryArtifacts(f"artifacts/{job['id']}")
    outcome: Outcome = module.run(cfg, progress=False, checkpoint=None, artifacts=store)
    results = to_jsonable(outcome.results)
    return {"metrics": sweep_metrics(module, results), "results": results,
            "artifacts": store.files, "seconds": round(time.time() - started, 2),
            "host": socket.gethostname(), "pid": os.getpid()}


# ----------------------------------------------------------------------------- the sweep
@dataclass
class SweepOutcome:
    results: dict
    summary: str
    failed: list = field(default_factory=list)


class _Terminated(KeyboardInterrupt):
    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


def _on_sigterm(signum, frame):
    raise _Terminated(signum)


def run_sweep(config=None, grid: dict | None = None, seeds: list[int] | None = None,
              overrides: dict | None = None, backend: str | None = None, jobs: int = 1,
              scheduler: str | None = None, out_dir="runs", resume=None,
              progress: bool = True, metrics: list[str] | None = None
              ) -> tuple[Path, SweepOutcome]:
    """Run (or, with ``resume``, finish) a sweep; returns its folder and outcome. See
    the module docstring. ``metrics``: the metric names the table and the plot show
    (default: every ``…accuracy`` metric, else all)."""
    if resume is not None:
        folder, spec, job_list = _resumed(Path(resume), config, grid, seeds, overrides,
                                          backend)
        run = RunFolder(folder)
        run.write_text(INCOMPLETE, f"running: resumed {time.strftime('%Y-%m-%dT%H:%M:%S')} "
                                   f"by process {os.getpid()} on {socket.gethostname()}\n")
    else:
        if config is None:
            raise ValueError("give an experiment config (or --resume a sweep's folder)")
        spec, job_list = prepare(config, dict(grid or {}), list(seeds or []), overrides,
                                 backend)
        run = RunFolder.reserve(out_dir, f"{spec.name}-sweep")
        run.write_text(CONFIG, spec.config_text)
        run.write_json(SPEC, {**asdict(spec), "jobs": [j["id"] for j in job_list],
                              "created": run.started})
        (run.path / JOBS).mkdir(exist_ok=True)
    folder = run.path
    for job in job_list:
        job.update(config_text=spec.config_text, name=spec.name, backend=spec.backend)
    done = _finished(folder, job_list)
    pending = [j for j in job_list if j["id"] not in done]
    failed: dict[str, str] = {}
    t0 = time.time()
    count = [len(done)]

    def on_done(job, record):
        for rel, data in record.pop("artifacts", {}).items():
            run.write_bytes(rel, data)
        entry = {"id": job["id"], "point": job["point"], "seed": job["seed"], **record,
                 "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        run.write_json(f"{JOBS}/{job['id']}.json", entry)
        _unlink(folder / JOBS / f"{job['id']}.error.txt")
        failed.pop(job["id"], None)
        count[0] += 1
        if progress:
            shown = _shown(list(entry["metrics"]), metrics)
            vals = "  ".join(f"{m} {entry['metrics'][m]:.4g}" for m in shown[:4])
            print(f"[{count[0]}/{len(job_list)} {time.time() - t0:6.0f} s] {job['id']}: "
                  f"{vals} ({record.get('seconds', 0):.0f} s on {record.get('host')})",
                  flush=True)

    def on_error(job, failure):
        failed[job["id"]] = failure.error
        run.write_text(f"{JOBS}/{job['id']}.error.txt",
                       f"{failure.error}\n\n{failure.traceback}")
        if progress:
            print(f"[failed {time.time() - t0:6.0f} s] {job['id']}: {failure.error}",
                  file=sys.stderr, flush=True)

    previous = None
    try:
        try:
            previous = signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:   # not the main thread: leave SIGTERM alone
            previous = None
        run_jobs(execute, pending, workers=jobs, scheduler=scheduler,
                 on_done=on_done, on_error=on_error)
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        _mark(run, f"{status}: {count[0]} of {len(job_list)} jobs finished ({JOBS}/); "
                   f"resume with: neuro-pc sweep --resume {folder}\n"
                   f"{'' if status == 'interrupted' else type(exc).__name__ + ': ' + str(exc)}\n")
        exc.run_dir, exc.resume_hint = folder, f"neuro-pc sweep --resume {folder}"
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    records = [_read_job(folder, j["id"]) for j in job_list]
    records = [r for r in records if r is not None]
    results = aggregate(spec, job_list, records, failed)
    results["meta"] = _meta(spec, jobs, scheduler, time.time() - t0, resume is not None)
    shown = _shown(results["metrics"], metrics)
    summary = table(results, shown)
    figures = figure(results, shown)
    if not results["complete"]:
        run.write_json(RESULTS, results)
        run.write_text("summary.txt", summary + "\n")
        for fname, fig in figures.items():
            run.save_figure(fname, fig)
        first = next(iter(failed.items()))
        _mark(run, f"failed: {len(failed)} of {len(job_list)} jobs failed; the table covers "
                   f"the {len(records)} finished; resume with: neuro-pc sweep --resume "
                   f"{folder}\n" + "".join(f"{k}: {v}\n" for k, v in failed.items()))
        err = SweepError(f"{len(failed)} of {len(job_list)} jobs failed (first: {first[0]}: "
                         f"{first[1]}; the errors are in {folder}/{JOBS}/*.error.txt); the "
                         f"table covers the {len(records)} finished ones; rerun the failed "
                         f"ones with: neuro-pc sweep --resume {folder}")
        err.run_dir = folder
        raise err
    run.finish(results, summary, figures)
    return folder, SweepOutcome(results, summary)


def _mark(run: RunFolder, text: str) -> None:
    try:
        run.write_text(INCOMPLETE, text)
    except OSError:   # the disk is the problem: keep the original error
        pass


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _read_job(folder: Path, jid: str) -> dict | None:
    try:
        rec = json.loads((folder / JOBS / f"{jid}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("metrics"), dict) else None


def _finished(folder: Path, job_list: list[dict]) -> set[str]:
    return {j["id"] for j in job_list if _read_job(folder, j["id"]) is not None}


def _resumed(folder: Path, config, grid, seeds, overrides, backend):
    if not folder.is_dir():
        raise FileNotFoundError(2, "no such sweep folder", str(folder))
    try:
        data = json.loads((folder / SPEC).read_text(encoding="utf-8"))
        spec = SweepSpec(**{k: data[k] for k in ("config_file", "config_text", "name", "kind",
                                                  "grid", "seeds", "overrides", "backend")})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunFolderError(f"{folder} is not a sweep's folder: no readable {SPEC} "
                             f"({type(exc).__name__}: {exc}); give the folder neuro-pc "
                             "sweep made") from None
    if config is not None or grid or seeds or overrides or backend:
        given = SweepSpec(config_file=str(resolve_config(config)) if config is not None
                          else spec.config_file, config_text="", name=spec.name,
                          kind=spec.kind, grid=dict(grid or spec.grid),
                          seeds=list(seeds or spec.seeds),
                          overrides=dict(overrides if overrides is not None else
                                         spec.overrides), backend=backend or spec.backend)
        diff = spec.compare(given)
        if diff:
            raise ValueError(f"--resume {folder}: this command is not the sweep's ("
                             f"{'; '.join(diff)}); resume with --resume alone, or start a new "
                             "sweep")
    (folder / JOBS).mkdir(exist_ok=True)
    path = folder / CONFIG   # the config as the sweep started (every job reads this text)
    if not path.is_file() or path.read_text(encoding="utf-8") != spec.config_text:
        RunFolder(folder).write_text(CONFIG, spec.config_text)
    read_toml(path)
    return folder, spec, _checked_jobs(spec, path)


def aggregate(spec: SweepSpec, job_list: list[dict], records: list[dict],
              failed: dict | None = None) -> dict:
    """``results.json`` of a sweep: per grid point, every metric's mean, sd (over the
    seeds, ``ddof = 0`` as the experiments' own tables) and per-seed values."""
    failed = dict(failed or {})
    by_point: dict[str, list] = {}
    for r in records:
        by_point.setdefault(json.dumps(r["point"], sort_keys=True), []).append(r)
    names = sorted({m for r in records for m in r["metrics"]})
    points = []
    for p in spec.points():
        rs = sorted(by_point.get(json.dumps(p, sort_keys=True), []), key=lambda r: r["seed"])
        stats = {}
        for m in names:
            vals = [r["metrics"][m] for r in rs if m in r["metrics"]]
            stats[m] = {"mean": float(np.mean(vals)) if vals else None,
                        "sd": float(np.std(vals)) if vals else None,
                        "n": len(vals), "values": vals}
        points.append({"point": p, "seeds": [r["seed"] for r in rs], "metrics": stats,
                       "seconds": [r.get("seconds") for r in rs]})
    missing = [j["id"] for j in job_list if j["id"] not in {r["id"] for r in records}]
    return {"complete": not missing, "experiment": spec.name, "kind": spec.kind,
            "config_file": spec.config_file, "grid": spec.grid, "seeds": spec.seeds,
            "overrides": spec.overrides, "backend": spec.backend, "metrics": names,
            "points": points, "missing": missing, "failed": failed,
            "job_seconds": round(sum(r.get("seconds") or 0 for r in records), 2)}


def _meta(spec: SweepSpec, jobs: int, scheduler, seconds: float, resumed: bool) -> dict:
    from neuro_pc.experiments.provenance import provenance

    return {"workers": jobs, "scheduler": scheduler or ("joblib" if jobs > 1 else "serial"),
            "seconds_this_run": round(seconds, 2), "resumed": resumed,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), **provenance()}


def _shown(names: list[str], wanted: list[str] | None) -> list[str]:
    if wanted:
        missing = [m for m in wanted if m not in names]
        if missing and names:
            import difflib

            close = difflib.get_close_matches(missing[0], names, n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"--metric {missing[0]!r} is not a metric of this sweep{hint}; "
                             f"its metrics: {', '.join(names)}")
        return list(wanted)
    acc = [m for m in names if m.endswith("accuracy")]
    return acc or names


def table(results: dict, shown: list[str]) -> str:
    """The results as text: one row per grid point, ``mean ± sd (n)`` per metric."""
    keys = list(results["grid"])
    head = f"sweep of {results['experiment']} ({results['kind']}): seeds {results['seeds']}"
    if results["overrides"]:
        head += f", --set {results['overrides']}"
    lines = [head, "mean ± sd over seeds (n seeds)"]
    cols = [" ".join(keys) or "point"] + shown
    rows = []
    for p in results["points"]:
        row = [" ".join(_label(p["point"][k]) for k in keys) or "base"]
        for m in shown:
            st = p["metrics"].get(m)
            if not st or st["mean"] is None:
                row.append("-")
            else:
                row.append(f"{st['mean']:.4f} ± {st['sd']:.4f} ({st['n']})")
        rows.append(row)
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    lines.append("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    if results["failed"]:
        lines.append(f"failed jobs: {', '.join(results['failed'])}")
    if results["missing"]:
        lines.append(f"not finished: {len(results['missing'])} job(s)")
    return "\n".join(lines)


def figure(results: dict, shown: list[str]) -> dict:
    """``sweep.png``: each shown metric against the first grid key (mean ± sd error
    bars; one line per value of the other keys). ``{}`` without matplotlib or grid."""
    plt = pyplot()
    keys = list(results["grid"])
    if plt is None or not keys or not shown:
        return {}
    x_key, rest = keys[0], keys[1:]
    xs = results["grid"][x_key]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs)
    fig, axes = plt.subplots(1, len(shown), figsize=(4.6 * len(shown), 3.6), squeeze=False)
    groups: dict[str, list] = {}
    for p in results["points"]:
        groups.setdefault(" ".join(f"{k}={_label(p['point'][k])}" for k in rest), []).append(p)
    for ax, m in zip(axes[0], shown):
        for k, (label, ps) in enumerate(groups.items()):
            ps = [p for p in ps if p["metrics"].get(m) and p["metrics"][m]["mean"] is not None]
            if not ps:
                continue
            x = [p["point"][x_key] if numeric else xs.index(p["point"][x_key]) for p in ps]
            ax.errorbar(x, [p["metrics"][m]["mean"] for p in ps],
                        yerr=[p["metrics"][m]["sd"] for p in ps], marker="o", capsize=3,
                        color=f"C{k}", label=label or None)
        if numeric and min(xs) > 0 and max(xs) / min(xs) >= 4:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(xs)), [_label(v) for v in xs])
        ax.set(xlabel=x_key, ylabel=m, title=m)
        ax.grid(alpha=0.3)
        if rest:
            ax.legend(fontsize=7)
    fig.suptitle(f"{results['experiment']}: mean ± sd over {len(results['seeds'])} seed(s)")
    fig.tight_layout()
    plt.close(fig)
    return {"sweep.png": fig}


__all__ = ["MemoryArtifacts", "SweepError", "SweepOutcome", "SweepSpec", "aggregate",
           "execute", "figure", "job_id", "parse_grid", "parse_seeds", "prepare",
           "run_sweep", "sweep_metrics", "table"]
