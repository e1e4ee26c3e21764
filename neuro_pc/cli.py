"""``neuro-pc``: run experiments, inspect circuits.

    neuro-pc run experiments/fa_digits.toml [--backend brian2] [--out runs]
    neuro-pc locality experiments/fa_digits.toml [--json]
    neuro-pc check experiments/fa_digits.toml --target loihi2 [--json]

``check`` and ``locality`` accept an experiment config (.toml), a circuit
(.json) or a trained artifact (.npz).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def load_circuits(path: str) -> dict:
    """``{name: Circuit}`` from an experiment config, a circuit JSON or an artifact."""
    from neuro_pc.ir import Circuit, load_artifact

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{path}: no such file (give an experiment .toml, a circuit "
                                ".json or an artifact .npz)")
    if p.suffix == ".npz":
        art = load_artifact(p)
        return {art.circuit.name: art.circuit}
    if p.suffix == ".json":
        c = Circuit.from_json(p.read_text()).validate()
        return {c.name: c}
    from neuro_pc.experiments import kind_module, load_config

    config = load_config(p)
    return kind_module(config.experiment.kind).circuits(config)


def _cmd_run(args) -> int:
    from neuro_pc.experiments import run_experiment

    overrides = {}
    for item in args.set or []:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    run_dir, outcome = run_experiment(args.config, backend=args.backend, out_dir=args.out,
                                      progress=not args.no_progress, overrides=overrides)
    print(outcome.summary)
    print(f"\nresults written to {run_dir}/")
    return 0


def _cmd_locality(args) -> int:
    from neuro_pc.rules import format_report, locality_report

    circuits = load_circuits(args.path)
    if args.json:
        print(json.dumps({n: [r.as_dict() for r in locality_report(c)]
                          for n, c in circuits.items()}, indent=1))
        return 0
    for name, c in circuits.items():
        print(f"== {name}")
        print(format_report(locality_report(c)))
        print()
    return 0


def _cmd_check(args) -> int:
    try:
        from hardware_targets.check import check_report, format_check
    except ImportError as exc:  # pragma: no cover - a broken install
        raise SystemExit(f"hardware_targets.check is unavailable: {exc}")
    circuits = load_circuits(args.path)
    reports = {n: check_report(c, target=args.target) for n, c in circuits.items()}
    if args.json:
        print(json.dumps(reports, indent=1, default=str))
    else:
        for name, rep in reports.items():
            print(f"== {name}  (target {args.target})")
            print(format_check(rep))
            print()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuro-pc", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a configured experiment")
    run.add_argument("config", help="experiment TOML, e.g. experiments/fa_digits.toml")
    run.add_argument("--backend", choices=["reference", "brian2", "lava"], default=None,
                     help="override the config's backend")
    run.add_argument("--out", default="runs", help="folder for run folders (default: runs)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                     help="override a config value, e.g. --set train.epochs=2")
    run.set_defaults(func=_cmd_run)
    loc = sub.add_parser("locality", help="locality table of every rule in a circuit")
    loc.add_argument("path", help="experiment .toml, circuit .json or artifact .npz")
    loc.add_argument("--json", action="store_true")
    loc.set_defaults(func=_cmd_locality)
    chk = sub.add_parser("check", help="locality, expressibility and resources on a target")
    chk.add_argument("path", help="experiment .toml, circuit .json or artifact .npz")
    chk.add_argument("--target", default="loihi2")
    chk.add_argument("--json", action="store_true")
    chk.set_defaults(func=_cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        print(f"neuro-pc: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
