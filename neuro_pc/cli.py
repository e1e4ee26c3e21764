"""``neuro-pc``: run experiments, inspect circuits.

    neuro-pc run experiments/fa_digits.toml [--backend brian2] [--out runs]
    neuro-pc locality experiments/fa_digits.toml [--json]
    neuro-pc check experiments/fa_digits.toml --target loihi2 [--json]
    neuro-pc data fetch mnist [--dir DIR]     (docs/data.md)

``check`` and ``locality`` accept an experiment config (.toml), a circuit
(.json) or a trained artifact (.npz).

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


def _cmd_check(args) -> int:
    from hardware_targets.base import get_target
    from hardware_targets.check import check_report, format_check

    try:
        get_target(args.target)
    except (ValueError, KeyError) as exc:
        raise UsageError(f"--target: {exc}") from None
    circuits = load_circuits(args.path)
    reports = {n: check_report(c, target=args.target) for n, c in circuits.items()}
    if args.json:
        print(json.dumps(reports, indent=1, default=str))
    else:
        for name, rep in reports.items():
            print(f"== {name}  (target {args.target})")
            print(format_check(rep))
            print()
    return EXIT_OK


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
    parser = _Parser(prog="neuro-pc", description=__doc__.split("\n\n")[0],
                                     epilog=EPILOG, parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a configured experiment", parents=[common],
                         epilog=EPILOG)
    run.add_argument("config", help="experiment TOML, e.g. experiments/fa_digits.toml")
    run.add_argument("--backend", choices=["reference", "brian2", "lava"], default=None,
                     help="override the config's backend")
    run.add_argument("--out", default="runs", help="folder for run folders (default: runs)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                     help="override a config value (JSON, else a string), e.g. "
                          "--set train.epochs=2, --set train.eta.fa=0.02, "
                          "--set 'backend.lava.tags=[\"fixed_pt\"]'")
    run.set_defaults(func=_cmd_run)
    loc = sub.add_parser("locality", help="locality table of every rule in a circuit",
                         parents=[common], epilog=EPILOG)
    loc.add_argument("path", help="experiment .toml, circuit .json or artifact .npz")
    loc.add_argument("--json", action="store_true")
    loc.set_defaults(func=_cmd_locality)
    chk = sub.add_parser("check", help="locality, expressibility and resources on a target",
                         parents=[common], epilog=EPILOG)
    chk.add_argument("path", help="experiment .toml, circuit .json or artifact .npz")
    chk.add_argument("--target", default="loihi2")
    chk.add_argument("--json", action="store_true")
    chk.set_defaults(func=_cmd_check)
    data = sub.add_parser("data", help="data sets kept on disk: fetch (download and verify "
                          "into the cache) or where (the folder in use)", parents=[common],
                          epilog=EPILOG)
    data.add_argument("action", choices=["fetch", "where"])
    data.add_argument("name", choices=["mnist"])
    data.add_argument("--dir", default=None, help="fetch into this folder instead of the "
                      "cache ($XDG_CACHE_HOME/neuro_pc/<name>)")
    data.set_defaults(func=_cmd_data)
    return parser


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
    if run_dir is not None:
        text += f"; the finished results are kept in {run_dir}/ (marked INCOMPLETE)"
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
        print(f"neuro-pc: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
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
