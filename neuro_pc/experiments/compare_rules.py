"""Compare learning rules on one dataset: test accuracy and alignment with BP.

For every rule and seed: build the MLP circuit, compile it for the backend,
train online (batch 1), and after every epoch record the test accuracy and
the angle between the rule's hidden-layer update ``dW1`` and BP's on the same
weights and the same batch of training data (both computed by the reference
backend's batched mode, so the angle means the same on every backend).
"""
from __future__ import annotations

import numpy as np

from neuro_pc.analysis import angle
from neuro_pc.backends import compile
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.data import load_dataset
from neuro_pc.experiments import Outcome, pyplot
from neuro_pc.models import mlp


def _data(data_cfg: dict):
    """The dataset with its fixed split (``split_seed``, default 0): the seeds of
    a run vary the weights and the sample order, not the test set."""
    kw = {k: v for k, v in data_cfg.items() if k not in ("name", "split_seed")}
    return load_dataset(data_cfg.get("name", "digits"), seed=int(data_cfg.get("split_seed", 0)),
                        **kw)


def bp_angle(circuit, weights, x, y) -> float:
    """Angle (degrees) between ``circuit``'s update of ``W1`` and BP's, both from
    ``weights`` on the batch ``(x, y)``."""
    meta = circuit.metadata
    rule_sim = ReferenceSimulator(circuit, weights)
    bp = mlp(meta["sizes"], rule="bp", act=meta["act"], eta=1.0)
    bp_sim = ReferenceSimulator(bp, {k: v for k, v in weights.items() if k[0] in "Wb"})
    return angle(rule_sim.compute_updates(x, y)["W1"], bp_sim.compute_updates(x, y)["W1"])


def run(config: dict, backend: str | None = None, progress: bool = True) -> Outcome:
    exp, model, train = config["experiment"], config.get("model", {}), config.get("train", {})
    backend = backend or exp.get("backend", "reference")
    options = dict(config.get("backend", {}).get(backend, {}))
    # Lava: "deploy" (default) trains on the reference and runs inference on
    # Lava with every tag in `tags`; "train" trains on Lava itself (slow).
    mode = options.pop("mode", "deploy") if backend == "lava" else "train"
    tags = tuple(options.pop("tags", ["floating_pt", "fixed_pt"])) if backend == "lava" else ()
    train_backend = "reference" if mode == "deploy" else backend
    if mode == "deploy":
        options = {}
    data_cfg = dict(config.get("data", {"name": "digits"}))
    rules = train.get("rules", ["bp", "fa", "dfa", "pc"])
    seeds = train.get("seeds", [0])
    epochs = int(train.get("epochs", 5))
    etas = train.get("eta", {})
    n_angle = int(config.get("angles", {}).get("samples", 256))
    results = {"rules": {}, "epochs": epochs, "seeds": seeds}
    data = _data(data_cfg)
    sizes = [data.n_features, *model.get("hidden", [128]), data.n_classes]
    Y = data.one_hot(data.y_train)
    xa, ya = data.x_train[:n_angle], Y[:n_angle]
    for rule in rules:
        per_seed = []
        for seed in seeds:
            circuit = mlp(sizes, rule=rule, act=model.get("act", "tanh"),
                          eta=float(etas.get(rule, train.get("default_eta", 0.01))),
                          lam=float(train.get("lam", {}).get(rule, 0.0)))
            sim = compile(circuit, backend=train_backend, seed=seed, **options)
            curve, angles = [], []

            def record(epoch, s, curve=curve, angles=angles, circuit=circuit):
                curve.append(s.evaluate(data.x_test, data.y_test))
                angles.append(bp_angle(circuit, s.weights, xa, ya))

            sim.train(data.x_train, Y, epochs=epochs, seed=seed, progress=progress,
                      callback=record)
            per_seed.append({"seed": seed, "test_accuracy": curve[-1], "curve": curve,
                             "angle_to_bp_deg": angles[-1], "angle_curve": angles})
            if mode == "deploy":
                from neuro_pc.backends.lava.deploy import deploy

                report = deploy(sim.artifact(trained_on="reference"), data.x_test,
                                data.y_test, tags=tags)
                per_seed[-1]["lava"] = {t: {"accuracy": r.accuracy, "per_class": r.per_class,
                                            "steps_per_s": r.steps_per_s}
                                        for t, r in report.items()}
        accs = np.array([r["test_accuracy"] for r in per_seed])
        angs = np.array([r["angle_to_bp_deg"] for r in per_seed])
        results["rules"][rule] = {
            "runs": per_seed, "test_accuracy_mean": float(accs.mean()),
            "test_accuracy_std": float(accs.std()), "angle_to_bp_mean": float(angs.mean()),
            "sizes": sizes}
        for tag in tags:
            results["rules"][rule][f"lava_{tag}_accuracy_mean"] = float(
                np.mean([r["lava"][tag]["accuracy"] for r in per_seed]))
    results["mode"] = mode
    return Outcome(results=results, summary=_table(results, backend, data_cfg, tags),
                   figures=_figures(results))


def _table(results: dict, backend: str, data_cfg: dict, tags=()) -> str:
    how = " (trained on reference, deployed to Lava)" if tags else ""
    lines = [f"data={data_cfg.get('name', 'digits')}  backend={backend}{how}  "
             f"epochs={results['epochs']}  seeds={results['seeds']}",
             f"{'rule':6} {'test accuracy':>22} {'angle dW1 vs BP (deg)':>24}"]
    for rule, r in results["rules"].items():
        accs = ", ".join(f"{x['test_accuracy']:.4f}" for x in r["runs"])
        lines.append(f"{rule:6} {100 * r['test_accuracy_mean']:8.2f} ± "
                     f"{100 * r['test_accuracy_std']:4.2f} %  {r['angle_to_bp_mean']:18.1f}"
                     f"      [{accs}]")
    if tags:
        lines.append("")
        lines.append(f"{'rule':6} " + " ".join(f"{'Lava ' + t:>18}" for t in tags)
                     + ("   fixed - float" if set(tags) >= {"fixed_pt", "floating_pt"} else ""))
        for rule, r in results["rules"].items():
            vals = [r[f"lava_{t}_accuracy_mean"] for t in tags]
            row = f"{rule:6} " + " ".join(f"{100 * v:17.2f}%" for v in vals)
            if set(tags) >= {"fixed_pt", "floating_pt"}:
                row += (f"   {100 * (r['lava_fixed_pt_accuracy_mean'] - r['lava_floating_pt_accuracy_mean']):+.2f}"
                        " points")
            lines.append(row)
    return "\n".join(lines)


def _figures(results: dict) -> dict:
    plt = pyplot()
    if plt is None:  # the plot extra is not installed: results only
        return {}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for rule, r in results["rules"].items():
        curves = np.array([x["curve"] for x in r["runs"]])
        angs = np.array([x["angle_curve"] for x in r["runs"]])
        ep = np.arange(1, curves.shape[1] + 1)
        ax1.plot(ep, 100 * curves.mean(0), marker="o", label=rule)
        ax2.plot(ep, angs.mean(0), marker="o", label=rule)
    ax1.set(xlabel="epoch", ylabel="test accuracy (%)", title="learning curves")
    ax2.set(xlabel="epoch", ylabel="angle to BP update of W1 (deg)", title="alignment")
    ax1.legend()
    ax2.legend()
    fig.tight_layout()
    plt.close(fig)
    return {"learning_curves.png": fig}


def circuits(config: dict) -> dict:
    """The circuits this experiment trains (first seed's data shape), by rule."""
    model, train = config.get("model", {}), config.get("train", {})
    data = _data(dict(config.get("data", {"name": "digits"})))
    sizes = [data.n_features, *model.get("hidden", [128]), data.n_classes]
    return {rule: mlp(sizes, rule=rule, act=model.get("act", "tanh"),
                      lam=float(train.get("lam", {}).get(rule, 0.0)))
            for rule in train.get("rules", ["bp", "fa", "dfa", "pc"])}
