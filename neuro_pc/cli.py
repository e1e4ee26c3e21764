"""``neuro-pc``: run experiments and sweeps, train, evaluate, inspect circuits, plot runs,
export and import NIR.

    neuro-pc run fa_digits [--backend brian2] [--out runs]     (a shipped name or a .toml)
    neuro-pc train fa_digits                    (the run's artifacts/, one .npz per rule, seed)
    neuro-pc evaluate runs/fa_digits-.../artifacts/fa-seed0.npz [--backend B] [--data D]
    neuro-pc check runs/fa_digits-.../artifacts/fa-seed0.npz --target loihi2 [--json]
    neuro-pc locality experiments/fa_digits.toml [--json]
    neuro-pc plot runs/fa_digits-.../                          (redraw the figures)
    neuro-pc export runs/.../artifacts/spiking_fa-seed0.npz --format nir -o net.nir
    neuro-pc import net.nir -o net.npz                          (NIR -> artifact)
    neuro-pc sweep fa_digits --grid train.eta=0.005,0.01,0.02 --seeds 0-9 --jobs 2
    neuro-pc --version
    neuro-pc data fetch mnist [--dir DIR]     (docs/data.md)

``check`` and ``locality`` accept an experiment config (.toml or a shipped
name), a circuit (.json) or a trained artifact (.npz; ``check`` then uses its
trained weights).

Every failure ends with one line ``neuro-pc: error: <what, where, what to do>``
on stderr (``--debug`` adds the traceback) and the exit status says what kind:
0 success, 1 error (a bad config or input file, a run that failed), 2 usage
(a bad command line), 130 interrupted (Ctrl-C, SIGINT), 143 terminated (SIGTERM,
as ``timeout`` and batch schedulers send it): ``128 + signal``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import traceback
from pathlib import Path

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EPILOG = """exit status: 0 success; 1 error (bad config or input file, failed run: the
run folder is kept, marked INCOMPLETE); 2 usage (bad command line); 130
interrupted (Ctrl-C), 143 terminated (SIGTERM). Errors are one line on stderr;
--debug adds the traceback."""


class UsageError(ValueError):
    """The command line itself is wrong (exit status 2)."""


def load_circuits(path: str) -> dict:
    """``{name: Circuit}`` from an experiment config, a circuit JSON or an artifact."""
    from neuro_pc.ir import load_artifact, read_circuit

    p = Path(path)
    if not p.exists() and Path(path).suffix in ("", ".toml"):
        from neuro_pc.experiments import resolve_config

        p = resolve_config(path)   # a shipped config's name
    if not p.exists():
        raise FileNotFoundError(f"{path}: no such file (give an experiment .toml, a circuit "
                                ".json or an artifact .npz)")
    if p.is_dir():
        raise ValueError(f"{path} is a folder; give an experiment .toml, a circuit .json or "
                         "an artifact .npz")
    if p.suffix == ".npz":
        art = load_artifact(p)
        return {art.circuit.name: art.circuit}
    if p.suffix == ".json":
        try:
            text = p.read_bytes()
        except OSError as exc:
            raise OSError(f"cannot read {path}: {exc.strerror or exc}") from None
        c = read_circuit(text, str(p))
        return {c.name: c}
    if p.suffix != ".toml":
        raise ValueError(f"{path}: unknown file type {p.suffix or '(none)'!r}; give an "
                         "experiment .toml, a circuit .json or an artifact .npz")
    from neuro_pc.experiments import kind_module, load_config

    config = load_config(p)
    return kind_module(config.experiment.kind).circuits(config)


def parse_overrides(items) -> dict:
    """``["train.epochs=2", 'train.rules=["fa"]']`` -> ``{"train.epochs": 2, ...}``:
    each value is JSON if it parses as JSON, else the string itself."""
    overrides = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--set {item!r}: write --set SECTION.KEY=VALUE, e.g. "
                             "--set train.epochs=2")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    return overrides


def _cmd_run(args) -> int:
    from neuro_pc.experiments import run_experiment

    overrides = parse_overrides(args.set)
    run_dir, outcome = run_experiment(args.config, backend=args.backend, out_dir=args.out,
                                      progress=not args.no_progress, overrides=overrides)
    print(outcome.summary)
    print(f"\nresults written to {run_dir}/")
    return EXIT_OK


def _cmd_locality(args) -> int:
    from neuro_pc.rules import format_report, locality_report

    circuits = load_circuits(args.path)
    if args.json:
        print(json.dumps({n: [r.as_dict() for r in locality_report(c)]
                          for n, c in circuits.items()}, indent=1))
        return EXIT_OK
    for name, c in circuits.items():
        print(f"== {name}")
        print(format_report(locality_report(c)))
        print()
    return EXIT_OK


def load_checkables(path: str) -> dict:
    """``{name: (circuit, weights, seed)}`` for ``check``: an artifact's trained
    weights and seed; ``(circuit, None, 0)`` (initial weights) for a config or a
    circuit JSON."""
    if Path(path).suffix == ".npz" and Path(path).is_file():
        from neuro_pc.ir import load_artifact

        art = load_artifact(path)
        return {art.circuit.name: (art.circuit, dict(art.weights),
                                   int(art.metadata.get("seed", 0)))}
    return {n: (c, None, 0) for n, c in load_circuits(path).items()}


def _cmd_check(args) -> int:
    from hardware_targets.base import get_target
    from hardware_targets.check import format_check

    from neuro_pc.experiments.onchip import checked_report

    try:
        get_target(args.target)
    except (ValueError, KeyError) as exc:
        raise UsageError(f"--target: {exc}") from None
    checkables = load_checkables(args.path)
    x, y = _check_data(args.path)
    reports = {n: checked_report(c, target=args.target, weights=w, seed=seed,
                                 **_fitting(c, x, y), samples=args.samples,
                                 execute=not args.no_execute)
               for n, (c, w, seed) in checkables.items()}
    for n, (_, w, _) in checkables.items():
        if w is not None:
            reports[n]["weights"] = f"trained ({args.path})"
    if args.json:
        print(json.dumps(reports, indent=1, default=str))
    else:
        for name, rep in reports.items():
            print(f"== {name}  (target {args.target})")
            print(f"weights: {rep.get('weights', '?')}")
            print(format_check(rep))
            print()
    return EXIT_OK


def _check_data(path: str):
    """The training inputs and one-hot targets of an experiment config's data set (the
    activity ``check`` executes rules on), or ``(None, None)``."""
    if Path(path).suffix == ".npz" and Path(path).is_file():
        from neuro_pc.data import load_dataset
        from neuro_pc.ir import load_artifact

        recorded = load_artifact(path).metadata.get("data") or {}
        if not recorded.get("name"):
            return None, None
        data = load_dataset(recorded["name"], seed=int(recorded.get("seed", 0)),
                            **dict(recorded.get("options") or {}))
        return data.x_train, data.one_hot(data.y_train)
    from neuro_pc.experiments import load_config, resolve_config

    try:
        path = resolve_config(path)
    except FileNotFoundError:
        return None, None
    if Path(path).suffix != ".toml":
        return None, None
    data_cfg = getattr(load_config(path), "data", None)
    if data_cfg is None or not hasattr(data_cfg, "name"):
        return None, None
    from neuro_pc.data import load_dataset

    data = load_dataset(data_cfg.name, seed=0, **data_cfg.loader_options())
    return data.x_train, data.one_hot(data.y_train)


def _fitting(circuit, x, y) -> dict:
    """``{"x": x, "y": y}`` if the data set's columns are the circuit's streams, else no
    data (an experiment may feed its circuit something else, e.g. MPC's glimpses: the
    rules are then run on random inputs, and the report says so)."""
    if x is None or x.shape[1] != circuit.streams.get("x"):
        return {}
    if "y" not in circuit.streams:
        return {"x": x, "y": None}
    if y is None or y.shape[1] != circuit.streams["y"]:
        return {}
    return {"x": x, "y": y}


def _cmd_train(args) -> int:
    from neuro_pc.experiments import run_experiment
    from neuro_pc.ir import load_artifact

    overrides = parse_overrides(args.set)
    run_dir, _ = run_experiment(args.config, backend=args.backend, out_dir=args.out,
                                progress=not args.no_progress, overrides=overrides,
                                figures=False)
    paths = sorted((run_dir / "artifacts").glob("*.npz"))
    print(f"{len(paths)} trained artifact(s) in {run_dir}/artifacts/:")
    for path in paths:
        meta = load_artifact(path).metadata
        acc = meta.get("test_accuracy")
        print(f"  {path}  rule {meta.get('rule', '?')}, seed {meta.get('seed', '?')}"
              + (f", test accuracy {100 * acc:.2f} %" if isinstance(acc, float) else ""))
    print(f"\nresults written to {run_dir}/ (draw the figures: neuro-pc plot {run_dir})")
    return EXIT_OK


def _cmd_evaluate(args) -> int:
    from neuro_pc.experiments.evaluate import evaluate_artifact, format_evaluation

    report = evaluate_artifact(args.artifact, backend=args.backend, data=args.data)
    print(json.dumps(report, indent=1) if args.json else format_evaluation(report))
    return EXIT_OK


def _cmd_plot(args) -> int:
    from neuro_pc.experiments import redraw_figures

    paths = redraw_figures(args.run_dir, out_dir=args.out)
    for p in paths:
        print(p)
    if not paths:
        print(f"no figures for {args.run_dir}", file=sys.stderr)
    return EXIT_OK


def _cmd_sweep(args) -> int:
    from neuro_pc.experiments.sweep import parse_grid, parse_seeds, run_sweep

    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: give the number of worker processes, >= 1")
    sched = args.scheduler
    if sched is not None and sched != "local" and not re.match(r"^(tcp|tls)://[^/\s]+$", sched):
        raise UsageError(f"--scheduler {sched!r}: use local (a Dask LocalCluster on this "
                         "machine) or tcp://HOST:PORT (a running Dask scheduler)")
    try:
        grid, seeds = parse_grid(args.grid), parse_seeds(args.seeds)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.resume is None:
        if args.config is None:
            raise UsageError("give an experiment config (a shipped name or a .toml), or "
                             "--resume RUN_DIR to finish a sweep")
        if not seeds:
            raise UsageError("--seeds is required: the seeds every grid point runs, e.g. "
                             "--seeds 0-9")
    overrides = parse_overrides(args.set) if args.set else None
    run_dir, outcome = run_sweep(args.config, grid=grid, seeds=seeds, overrides=overrides,
                                 backend=args.backend, jobs=args.jobs, scheduler=sched,
                                 out_dir=args.out, resume=args.resume,
                                 progress=not args.no_progress, metrics=args.metric)
    print(outcome.summary)
    print(f"\nresults written to {run_dir}/")
    return EXIT_OK


def _cmd_export(args) -> int:
    from neuro_pc.interop import export_nir

    if args.dt is not None and not args.dt > 0:
        raise UsageError(f"--dt {args.dt:g}: give the time step in seconds, > 0 (snnTorch "
                         "imports with 1e-4, Norse with 1e-3)")
    kw = {} if args.dt is None else {"dt": args.dt}
    report = export_nir(args.artifact, args.output, subtract_reset=args.allow_subtract_reset,
                        **kw)
    print(report.summary())
    return EXIT_OK


def _cmd_import(args) -> int:
    from neuro_pc.interop import import_nir
    from neuro_pc.ir import save_artifact

    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps {args.steps}: give the NIR time steps per sample, >= 1")
    if args.dt is not None and not args.dt > 0:
        raise UsageError(f"--dt {args.dt:g}: give the time step in seconds, > 0")
    art = import_nir(args.graph, steps=args.steps, dt=args.dt)
    out = save_artifact(args.output, art)
    c, meta = art.circuit, art.circuit.metadata
    pops = ", ".join(f"{p.name} [{p.size}] {p.model}" for p in c.populations)
    print(f"imported {args.graph}: circuit {c.name!r}: {pops}; window {c.schedule.window} "
          f"steps ({meta['steps']} NIR steps of {meta['dt']:g} s after a depth of "
          f"{meta['depth']}); readout {c.readout[0]}.{c.readout[1]}")
    print(f"written to {out} (neuro-pc evaluate {out} --data digits, or any backend)")
    return EXIT_OK


def version_text() -> str:
    """``neuro-pc <version> (Python <x.y.z>)``."""
    from neuro_pc import __version__

    return f"neuro-pc {__version__} (Python {sys.version.split()[0]})"


def _cmd_data(args) -> int:
    from neuro_pc.data.store import fetch, find

    if args.action == "fetch":
        folder = fetch(args.name, args.dir, log=lambda text: print(text, file=sys.stderr))
        print(f"{args.name}: verified in {folder}")
    else:   # where
        print(find(args.name))
    return EXIT_OK


class _Parser(argparse.ArgumentParser):
    """argparse, with every usage error ending ``neuro-pc: error: ...`` (also in subcommands)."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"neuro-pc: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="on an error, show the Python traceback too")
    parser = _Parser(prog="neuro-pc", description=__doc__.split("\n\n")[0].replace("``", ""),
                                     epilog=EPILOG, parents=[common])
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a configured experiment", parents=[common],
                         epilog=EPILOG)
    _run_arguments(run)
    run.set_defaults(func=_cmd_run)
    _add_train_parser(sub, common)
    _add_evaluate_parser(sub, common)
    loc = sub.add_parser("locality", help="locality table of every rule in a circuit",
                         parents=[common], epilog=EPILOG)
    loc.add_argument("path", help="experiment .toml, circuit .json or artifact .npz")
    loc.add_argument("--json", action="store_true")
    loc.set_defaults(func=_cmd_locality)
    chk = sub.add_parser("check", help="locality, expressibility and resources on a target",
                         parents=[common], epilog=EPILOG)
    chk.add_argument("path", help="experiment .toml (or a shipped name), circuit .json or "
                                  "artifact .npz (checked with its trained weights)")
    chk.add_argument("--target", default="loihi2")
    chk.add_argument("--json", action="store_true")
    chk.add_argument("--samples", type=int, default=100, metavar="N",
                     help="windows of the circuit's own activity each compiled rule is "
                          "executed on in Lava's fixed_pt LearningDense (default 100)")
    chk.add_argument("--no-execute", action="store_true",
                     help="report what compiles without running it through Lava")
    chk.set_defaults(func=_cmd_check)
    _add_plot_parser(sub, common)
    data = sub.add_parser("data", help="data sets kept on disk: fetch (download and verify "
                          "into the cache) or where (the folder in use)", parents=[common],
                          epilog=EPILOG)
    data.add_argument("action", choices=["fetch", "where"])
    data.add_argument("name", choices=["mnist"])
    data.add_argument("--dir", default=None, help="fetch into this folder instead of the "
                      "cache ($XDG_CACHE_HOME/neuro_pc/<name>)")
    data.set_defaults(func=_cmd_data)
    _add_nir_parsers(sub, common)
    _add_sweep_parser(sub, common)
    return parser


def _add_sweep_parser(sub, common) -> None:
    p = sub.add_parser("sweep", parents=[common], epilog=EPILOG,
                       help="run an experiment over a grid of values and seeds, in parallel",
                       description="Run CONFIG for every combination of the --grid values and "
                                   "every seed, each (grid point, seed) a job: serially, on "
                                   "--jobs joblib processes, or on Dask (--scheduler local: a "
                                   "LocalCluster; tcp://HOST:PORT: a running cluster). Each "
                                   "finished job is written at once; a failed job does not "
                                   "stop the others; --resume RUN_DIR runs the rest. Writes "
                                   "a table (mean ± sd per grid point) and sweep.png "
                                   "(docs/scale-out.md).")
    p.add_argument("config", nargs="?", default=None,
                   help="experiment config: a shipped name (fa_digits...) or a .toml")
    p.add_argument("--grid", action="append", metavar="SECTION.KEY=V1,V2,...",
                   help="values of one config key (JSON each, else a string), e.g. "
                        "--grid train.eta=0.005,0.01,0.02; repeat for more keys (all "
                        "combinations)")
    p.add_argument("--seeds", default=None, metavar="SEEDS",
                   help="the seeds of every grid point: N, N-M or a list, e.g. 0-9")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="worker processes (joblib; with --scheduler local, the LocalCluster's "
                        "workers); default 1: serial")
    p.add_argument("--scheduler", default=None, metavar="local|tcp://HOST:PORT",
                   help="run on Dask: local (a LocalCluster of --jobs workers) or the address "
                        "of a running scheduler")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override a config value for every job, as in neuro-pc run")
    p.add_argument("--backend", choices=["reference", "brian2", "lava"], default=None,
                   help="override the config's backend (Lava jobs run one process each)")
    p.add_argument("--out", default="runs", help="folder for the sweep's folder (default: runs)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="finish a sweep: run only its jobs without a result")
    p.add_argument("--metric", action="append", default=None, metavar="NAME",
                   help="a metric to tabulate and plot (default: the accuracies); "
                        "results.json has every metric")
    p.add_argument("--no-progress", action="store_true", help="no line per finished job")
    p.set_defaults(func=_cmd_sweep)


def _add_nir_parsers(sub, common) -> None:
    p = sub.add_parser("export", parents=[common], epilog=EPILOG,
                       help="write a trained artifact's inference graph as NIR",
                       description="Write the inference graph of a trained artifact (spiking "
                                   "LIF/IF circuits; linear rate circuits) as a NIR graph "
                                   "(HDF5) for snnTorch, Norse, Lava-dl, Rockpool, Sinabs... "
                                   "Learning rules are not NIR and stay in the artifact "
                                   "(docs/interop.md).")
    p.add_argument("artifact", help="a trained artifact .npz")
    p.add_argument("--format", required=True, choices=["nir"], help="the format: nir")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="e.g. net.nir")
    p.add_argument("--dt", type=float, default=None, metavar="SECONDS",
                   help="the time step the importer will use (default 1e-4 s, snnTorch's; "
                        "Norse uses 1e-3)")
    p.add_argument("--allow-subtract-reset", action="store_true",
                   help="export a reset by subtraction as v_reset = 0 plus node metadata "
                        "(only neuro_pc reads it back exactly)")
    p.set_defaults(func=_cmd_export)
    p = sub.add_parser("import", parents=[common], epilog=EPILOG,
                       help="read a NIR graph into a circuit artifact (inference)",
                       description="Read a NIR graph (HDF5) into a neuro_pc circuit with its "
                                   "weights, saved as an artifact any backend runs; "
                                   "unsupported nodes are named in one error.")
    p.add_argument("graph", help="a NIR file, e.g. net.nir")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the artifact .npz")
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help="NIR time steps per sample (default: the graph's neuro_pc metadata, "
                        "else 32)")
    p.add_argument("--dt", type=float, default=None, metavar="SECONDS",
                   help="the time step (default: the graph's neuro_pc metadata, else 1e-4 s)")
    p.set_defaults(func=_cmd_import)


def _run_arguments(p) -> None:
    """The arguments ``run`` and ``train`` share."""
    p.add_argument("config", help="experiment config: a shipped name (fa_digits, "
                                  "spiking_fa_digits, rank_collapse, mpc_digits) or a .toml")
    p.add_argument("--backend", choices=["reference", "brian2", "lava"], default=None,
                   help="override the config's backend")
    p.add_argument("--out", default="runs", help="folder for run folders (default: runs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override a config value (JSON, else a string), e.g. "
                        "--set train.epochs=2, --set train.eta.fa=0.02, "
                        "--set 'backend.lava.tags=[\"fixed_pt\"]'")


def _add_train_parser(sub, common) -> None:
    p = sub.add_parser("train", parents=[common], epilog=EPILOG,
                       help="train a config's circuits; list the trained artifacts",
                       description="Run the experiment without drawing figures and list its "
                                   "trained artifacts (RUN_DIR/artifacts/<rule>-seed<k>.npz, one "
                                   "per rule and seed), for evaluate, check and locality.")
    _run_arguments(p)
    p.set_defaults(func=_cmd_train)


def _add_evaluate_parser(sub, common) -> None:
    p = sub.add_parser("evaluate", parents=[common], epilog=EPILOG,
                       help="accuracy (and per class) of a trained artifact on a test split",
                       description="Accuracy and per-class accuracy of a trained artifact on "
                                   "the test split of the data set it was trained on (or --data).")
    p.add_argument("artifact", help="a trained artifact .npz (a run's artifacts/...)")
    p.add_argument("--backend", choices=["reference", "brian2", "lava"], default=None,
                   help="backend to run it on (default: the one it was trained on)")
    p.add_argument("--data", default=None, metavar="D",
                   help="data set: digits, mnist1d, mnist:<path> or a path (default: the one "
                        "recorded in the artifact, same split)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_cmd_evaluate)


def _add_plot_parser(sub, common) -> None:
    p = sub.add_parser("plot", parents=[common], epilog=EPILOG,
                       help="(re)draw a run's figures from its results.json",
                       description="(Re)draw the figures of a finished run from its "
                                   "results.json (needs the plot extra: matplotlib).")
    p.add_argument("run_dir", help="a run folder, e.g. runs/fa_digits-20261201-114254")
    p.add_argument("--out", default=None, help="write the PNGs here (default: the run folder)")
    p.set_defaults(func=_cmd_plot)


def describe_error(exc: BaseException) -> tuple[int, str]:
    """The exit status and the one-line message for ``exc``."""
    from neuro_pc.experiments.config import ConfigError
    from neuro_pc.experiments.runs import RunFolderError
    from neuro_pc.ir import CircuitError
    from neuro_pc.numerics import NonFiniteError

    if isinstance(exc, UsageError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, (ConfigError, NonFiniteError, CircuitError, RunFolderError)):
        text = str(exc)
    elif isinstance(exc, OSError):
        text = _os_error(exc)
    elif isinstance(exc, ImportError):
        text = f"{exc}" if str(exc) else f"an import failed: {type(exc).__name__}"
    elif isinstance(exc, MemoryError):
        text = "out of memory; use a smaller config (fewer samples, seeds or units)"
    elif isinstance(exc, (ValueError, FloatingPointError, RuntimeError)) and str(exc):
        text = str(exc)
    else:
        text = (f"unexpected {type(exc).__name__}: {exc}" if str(exc) else
                f"unexpected {type(exc).__name__}")
        text += " (rerun with --debug for the traceback)"
    lines = [line for line in text.strip().splitlines() if line.strip()] or [type(exc).__name__]
    text = lines[0] + (" [...; rerun with --debug for the whole message]" if len(lines) > 1
                       else "")
    run_dir = getattr(exc, "run_dir", None)
    if run_dir is not None and "--resume" not in text:
        text += f"; the finished results are kept in {run_dir}/ (marked INCOMPLETE)"
        hint = getattr(exc, "resume_hint", None)
        text += f"; resume: {hint}" if hint else ""
    return EXIT_ERROR, text


def _os_error(exc: OSError) -> str:
    if exc.filename is None:
        return str(exc)
    what = {FileNotFoundError: "no such file or folder", IsADirectoryError:
            "is a folder, where a file is expected", NotADirectoryError: "is not a folder",
            PermissionError: "permission denied"}.get(type(exc), exc.strerror or str(exc))
    return f"{exc.filename}: {what}"


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv``; returns the exit status (never raises)."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:   # argparse: --help (0) or a usage error (2, already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        print("neuro-pc: interrupted (SIGINT)", file=sys.stderr)
        return EXIT_INTERRUPTED
    debug = debug or getattr(args, "debug", False)
    try:
        return args.func(args)
    except KeyboardInterrupt as exc:   # Ctrl-C; SIGTERM during a Lava run (lifecycle.Interrupted)
        import signal

        if debug:
            traceback.print_exc()
        signum = getattr(exc, "signum", signal.SIGINT)
        kept = getattr(exc, "run_dir", None)
        hint = getattr(exc, "resume_hint", None)
        where = (f"; the finished results are kept in {kept}/" if kept else "") + \
            (f" (resume: {hint})" if hint else "")
        print(f"neuro-pc: interrupted ({signal.Signals(signum).name}){where}", file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:   # e.g. `neuro-pc locality x.toml | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:  # pragma: no cover
            pass
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the one place every error becomes one line
        if debug:
            traceback.print_exc()
        code, text = describe_error(exc)
        print(f"neuro-pc: error: {text}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
