"""Deploy a trained circuit (an artifact) to Lava and report accuracy per class.

    from neuro_pc.backends.lava.deploy import deploy, format_report
    report = deploy("fa_digits.npz", x_test, y_test, tags=("floating_pt", "fixed_pt"))
    print(format_report(report))

Each tag is one Lava run streaming every test sample (inference, no learning).
``python -m neuro_pc.backends.lava.deploy ARTIFACT`` evaluates on the digits
test split (:func:`neuro_pc.data.load_digits`).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import numpy as np

from neuro_pc.ir import Artifact, load_artifact


@dataclass
class TagResult:
    tag: str
    accuracy: float
    per_class: dict[int, float]
    n_per_class: dict[int, int]
    seconds: float
    steps_per_s: float
    extra: dict = field(default_factory=dict)


def per_class_accuracy(pred: np.ndarray, labels: np.ndarray) -> tuple[dict, dict]:
    pred, labels = np.asarray(pred), np.asarray(labels)
    classes = np.unique(labels)
    acc = {int(k): float(np.mean(pred[labels == k] == k)) for k in classes}
    cnt = {int(k): int(np.sum(labels == k)) for k in classes}
    return acc, cnt


def deploy(artifact: Artifact | str | os.PathLike, x: np.ndarray, labels: np.ndarray,
           tags=("floating_pt", "fixed_pt"), frac_bits: int | None = None) -> dict[str, TagResult]:
    """Run the artifact's circuit and weights on Lava for every tag; ``{tag: TagResult}``."""
    import time

    from neuro_pc.backends.lava.simulator import LavaSimulator

    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    out = {}
    for tag in tags:
        kw = {"frac_bits": frac_bits} if (tag == "fixed_pt" and frac_bits) else {}
        sim = LavaSimulator.from_artifact(art, tag=tag, **kw)
        t0 = time.perf_counter()
        pred = sim.predict(x)
        dt = time.perf_counter() - t0
        acc, cnt = per_class_accuracy(pred, labels)
        out[tag] = TagResult(tag=tag, accuracy=float(np.mean(pred == np.asarray(labels))),
                             per_class=acc, n_per_class=cnt, seconds=dt,
                             steps_per_s=sim.last_run["steps"] / max(sim.last_run["run_s"], 1e-9),
                             extra={"last_run": dict(sim.last_run)})
    return out


def format_report(report: dict[str, TagResult], reference: dict | None = None) -> str:
    """A per-class accuracy table, one column per tag (plus ``reference`` if given:
    ``{"name": str, "per_class": {...}, "accuracy": float}``)."""
    cols = [(r.tag, r.per_class, r.accuracy) for r in report.values()]
    if reference is not None:
        cols.insert(0, (reference["name"], reference["per_class"], reference["accuracy"]))
    classes = sorted(next(iter(report.values())).per_class)
    head = "class  n    " + "  ".join(f"{c[0]:>12}" for c in cols)
    lines = [head, "-" * len(head)]
    n = next(iter(report.values())).n_per_class
    for k in classes:
        lines.append(f"{k:>5}  {n[k]:<4} " + "  ".join(f"{c[1][k]:>12.3f}" for c in cols))
    lines.append(f"{'all':>5}  {sum(n.values()):<4} " + "  ".join(f"{c[2]:>12.3f}" for c in cols))
    if "floating_pt" in report and "fixed_pt" in report:
        loss = 100 * (report["floating_pt"].accuracy - report["fixed_pt"].accuracy)
        lines.append(f"fixed_pt loses {loss:+.2f} points of accuracy against floating_pt")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print("usage: python -m neuro_pc.backends.lava.deploy ARTIFACT.npz", file=sys.stderr)
        return 2
    from neuro_pc.data import load_digits

    ds = load_digits()
    report = deploy(argv[0], ds.x_test, ds.y_test)
    print(format_report(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
