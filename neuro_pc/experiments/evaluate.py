"""``neuro-pc evaluate``: a trained artifact's accuracy on its data set's test split.

A run saves every trained circuit with the data set it was trained on (name,
split seed, loader options) in the artifact's metadata, so
:func:`evaluate_artifact` reloads the same test split by default and the
accuracy it reports equals the one the run recorded (on the backend it was
trained on; another ``backend`` may differ by the backends' documented
tolerances).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def evaluate_artifact(path: str | os.PathLike, backend: str | None = None,
                      data: str | None = None) -> dict:
    """Evaluate the artifact at ``path`` on the test split of ``data`` (default:
    the data set recorded in the artifact) on ``backend`` (default: the backend it
    was trained on). Returns a JSON-able dict: ``accuracy``, ``per_class``
    (accuracy of the samples of each class), ``n_test``, ``recorded_accuracy``
    (the run's, if recorded), ``backend``, ``data``, ``circuit``."""
    from neuro_pc.backends import simulator_class
    from neuro_pc.data import load_dataset
    from neuro_pc.experiments import check_backend
    from neuro_pc.ir import load_artifact

    art = load_artifact(path)
    meta = art.metadata
    task = meta.get("task", "classification")
    if task != "classification":
        raise ValueError(f"{path} is a {task} circuit ({art.circuit.name!r}) with no class "
                         "readout to score; evaluate takes classifiers (neuro-pc check and "
                         "locality take any artifact)")
    trained_on = meta.get("backend")
    backend = backend or (trained_on if trained_on in ("reference", "brian2", "lava")
                          else "reference")
    check_backend(backend)
    options = dict(meta.get("backend_options") or {}) if backend == trained_on else {}
    recorded = meta.get("data") or {}
    if data is None:
        if not recorded.get("name"):
            raise ValueError(f"{path} does not record the data set it was trained on (it was "
                             "not saved by a run); pass --data NAME, e.g. --data digits")
        name, kw = recorded["name"], dict(recorded.get("options") or {})
    else:
        name = data
        kw = dict(recorded.get("options") or {}) if data == recorded.get("name") else {}
    ds = load_dataset(name, seed=int(recorded.get("seed", 0)), **kw)
    sim = simulator_class(backend).from_artifact(art, **options)
    pred = np.asarray(sim.predict(ds.x_test))
    y = ds.y_test
    per_class = {str(c): (float(np.mean(pred[y == c] == c)) if np.any(y == c) else None)
                 for c in range(ds.n_classes)}
    return {"artifact": str(Path(path)), "circuit": art.circuit.name, "backend": backend,
            "trained_on": trained_on, "data": ds.name, "n_test": int(len(y)),
            "accuracy": float(np.mean(pred == y)) if len(y) else None,
            "per_class": per_class, "recorded_accuracy": meta.get("test_accuracy")}


def format_evaluation(report: dict) -> str:
    """The report as a few lines of text."""
    lines = [f"{report['artifact']}: circuit {report['circuit']!r} on {report['backend']}"
             f" (trained on {report['trained_on'] or '?'}), {report['data']} test split, "
             f"{report['n_test']} samples",
             f"accuracy {100 * report['accuracy']:.2f} %" if report["accuracy"] is not None
             else "accuracy: no test samples"]
    if report.get("recorded_accuracy") is not None:
        lines[-1] += f"   (recorded by the run: {100 * report['recorded_accuracy']:.2f} %)"
    lines.append("per class: " + "  ".join(
        f"{c}: {'-' if a is None else f'{100 * a:.1f}'}" for c, a in report["per_class"].items()))
    return "\n".join(lines)


__all__ = ["evaluate_artifact", "format_evaluation"]
