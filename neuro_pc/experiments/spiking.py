"""Spiking FA / DFA / PC on a dataset: test accuracy against the rate FA, spikes per
sample, and a raster plot of one presentation.

For every spiking rule and seed: build :func:`neuro_pc.models.spiking.spiking_mlp`
(rules ``"fa"``, ``"dfa"``) or :func:`neuro_pc.models.spiking.spiking_pc` (rule ``"pc"``),
compile it for the backend, train online (batch 1) and record the test
accuracy after every epoch. The same seeds train the rate circuit
``neuro_pc.models.mlp(rule=baseline.rule)`` of the same width on the reference
backend, for comparison. Spike counts and the raster are measured by the
reference backend with the trained weights (its monitors are the semantics'
own), on the test set.

Config tables (defaults in brackets)::

    [data]     name ["digits"] (+ loader options)
    [model]    hidden [[128]], window [32], target_rate [1.0], rules [["fa"]],
               init_scale [1.0], feedback_scale [1.0], two_rail [true]
    [lif]      v_decay [1.0], thr [1.0], reset ["subtract"], v_reset [0.0],
               refractory [0], i_decay [none]         (hidden and output neurons)
    [trace]    decay [1.0], impulse [1/window], window_reset [true]
    [encoder]  gain [1.0], phase [0.5]
    [pc]       eta [train.eta], gamma [0.2], clamp_step [L]     (rule "pc" only)
    [train]    epochs [10], seeds [[0]], eta [0.01]
    [baseline] rule ["fa"], act ["tanh"], eta [0.01], epochs [train.epochs]; enabled [true]
    [raster]   sample [0] (index into the test set), seed [first seed]
"""
from __future__ import annotations

import time

import numpy as np

from neuro_pc.backends import compile
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.data import load_dataset
from neuro_pc.experiments import Outcome, pyplot
from neuro_pc.models import mlp
from neuro_pc.models.spiking import (LIF, RateEncoder, Trace, spike_variables, spiking_mlp,
                                     spiking_pc)


def _data(config: dict, seed: int = 0):
    data_cfg = dict(config.get("data", {"name": "digits"}))
    return load_dataset(data_cfg.get("name", "digits"), seed=seed,
                        **{k: v for k, v in data_cfg.items() if k != "name"})


def build(config: dict, sizes: list[int], rule: str):
    """The spiking circuit of ``config`` for ``sizes`` and ``rule``."""
    model = config.get("model", {})
    window = int(model.get("window", 32))
    lif_cfg = dict(config.get("lif", {}))
    lif = LIF(**{k: (None if k == "i_decay" and v in ("none", None) else v)
                 for k, v in lif_cfg.items()})
    tr_cfg = config.get("trace", {})
    trace = Trace(decay=float(tr_cfg.get("decay", 1.0)),
                  impulse=float(tr_cfg.get("impulse", 1.0 / window)),
                  window_reset=bool(tr_cfg.get("window_reset", True)))
    encoder = RateEncoder(**config.get("encoder", {}))
    if rule == "pc":
        pc_cfg = dict(config.get("pc", {}))
        return spiking_pc(sizes, window=window,
                          eta=float(pc_cfg.get("eta", config.get("train", {}).get("eta", 0.01))),
                          gamma=float(pc_cfg.get("gamma", 0.2)), lif=lif, trace=trace,
                          encoder=encoder, target_rate=float(model.get("target_rate", 1.0)),
                          clamp_step=pc_cfg.get("clamp_step"),
                          init_scale=float(model.get("init_scale", 1.0)),
                          two_rail=bool(model.get("two_rail", True)))
    return spiking_mlp(sizes, rule=rule, window=window,
                       eta=float(config.get("train", {}).get("eta", 0.01)), lif=lif,
                       trace=trace, encoder=encoder,
                       target_rate=float(model.get("target_rate", 1.0)),
                       init_scale=float(model.get("init_scale", 1.0)),
                       feedback_scale=float(model.get("feedback_scale", 1.0)),
                       two_rail=bool(model.get("two_rail", True)))


def spike_statistics(circuit, weights, x, seed: int = 0, batch_size: int = 256) -> dict:
    """Mean spikes per sample of every spiking population over ``x`` (reference
    backend, inference), and the total."""
    spikes = spike_variables(circuit)
    sim = ReferenceSimulator(circuit, weights, seed=seed, record=spikes)
    totals = {f"{p}": 0.0 for p, _ in spikes}
    for s in range(0, len(x), batch_size):
        sim.present(x[s:s + batch_size], None, train=False)
        for p, v in spikes:
            totals[p] += float(sim.monitor[f"{p}.{v}"].sum())
    per = {p: t / len(x) for p, t in totals.items()}
    per["total"] = float(sum(per.values()))
    return per


def raster(circuit, weights, x, seed: int = 0) -> dict[str, np.ndarray]:
    """``{population: (T, n) spikes}`` and the output trace of one presentation."""
    spikes = spike_variables(circuit)
    pop, var = circuit.readout
    sim = ReferenceSimulator(circuit, weights, seed=seed, record=[*spikes, (pop, var)])
    sim.present(np.atleast_2d(x), None, train=False)
    out = {p: sim.monitor[f"{p}.{v}"][:, 0, :] for p, v in spikes}
    out["readout"] = sim.monitor[f"{pop}.{var}"][:, 0, :]
    return out


def run(config: dict, backend: str | None = None, progress: bool = True) -> Outcome:
    exp, model, train = config["experiment"], config.get("model", {}), config.get("train", {})
    backend = backend or exp.get("backend", "reference")
    options = dict(config.get("backend", {}).get(backend, {}))
    seeds = [int(s) for s in train.get("seeds", [0])]
    epochs = int(train.get("epochs", 10))
    rules = list(model.get("rules", ["fa"]))
    base_cfg = dict(config.get("baseline", {}))
    results = {"backend": backend, "epochs": epochs, "seeds": seeds, "rules": {},
               "baseline": None}
    trained = {}
    for rule in rules:
        runs = []
        for seed in seeds:
            data = _data(config, seed)
            sizes = [data.n_features, *model.get("hidden", [128]), data.n_classes]
            circuit = build(config, sizes, rule)
            sim = compile(circuit, backend=backend, seed=seed, **options)
            curve = []

            def record(epoch, s, curve=curve, data=data):
                curve.append(s.evaluate(data.x_test, data.y_test))

            started = time.time()
            sim.train(data.x_train, data.one_hot(data.y_train), epochs=epochs, seed=seed,
                      progress=progress, callback=record)
            seconds = time.time() - started
            weights = {k: np.array(v) for k, v in sim.weights.items()}
            stats = spike_statistics(circuit, weights, data.x_test, seed=seed)
            runs.append({"seed": seed, "test_accuracy": curve[-1], "curve": curve,
                         "spikes_per_sample": stats, "train_seconds": round(seconds, 2)})
            trained[(rule, seed)] = (circuit, weights, data)
        accs = np.array([r["test_accuracy"] for r in runs])
        results["rules"][rule] = {
            "runs": runs, "sizes": sizes, "window": circuit.schedule.window,
            "test_accuracy_mean": float(accs.mean()), "test_accuracy_std": float(accs.std()),
            "spikes_per_sample_mean": float(np.mean([r["spikes_per_sample"]["total"]
                                                     for r in runs]))}
    if base_cfg.get("enabled", True):
        results["baseline"] = _baseline(config, base_cfg, seeds, epochs, progress)
    figures = {}
    raster_cfg = config.get("raster", {})
    r_seed = int(raster_cfg.get("seed", seeds[0]))
    if (rules[0], r_seed) in trained:
        circuit, weights, data = trained[(rules[0], r_seed)]
        k = int(raster_cfg.get("sample", 0))
        ras = raster(circuit, weights, data.x_test[k], seed=r_seed)
        results["raster"] = {"rule": rules[0], "seed": r_seed, "test_index": k,
                             "label": int(data.y_test[k]),
                             "predicted": int(ras["readout"][-1].argmax()),
                             "spikes": {p: int(v.sum()) for p, v in ras.items()
                                        if p != "readout"}}
        figures = _figures(results, ras)
    return Outcome(results=results, summary=_summary(results, config), figures=figures)


def _baseline(config, base_cfg, seeds, epochs, progress) -> dict:
    """The rate circuit (default: FA, tanh) of the same width on the reference backend."""
    model = config.get("model", {})
    rule = base_cfg.get("rule", "fa")
    runs = []
    for seed in seeds:
        data = _data(config, seed)
        sizes = [data.n_features, *model.get("hidden", [128]), data.n_classes]
        circuit = mlp(sizes, rule=rule, act=base_cfg.get("act", "tanh"),
                      eta=float(base_cfg.get("eta", 0.01)))
        sim = ReferenceSimulator(circuit, seed=seed)
        curve = []
        sim.train(data.x_train, data.one_hot(data.y_train),
                  epochs=int(base_cfg.get("epochs", epochs)), seed=seed, progress=progress,
                  callback=lambda e, s, curve=curve, data=data:
                  curve.append(s.evaluate(data.x_test, data.y_test)))
        runs.append({"seed": seed, "test_accuracy": curve[-1], "curve": curve})
    accs = np.array([r["test_accuracy"] for r in runs])
    return {"rule": rule, "act": base_cfg.get("act", "tanh"), "runs": runs,
            "test_accuracy_mean": float(accs.mean()), "test_accuracy_std": float(accs.std())}


def _summary(results: dict, config: dict) -> str:
    data = config.get("data", {}).get("name", "digits")
    lines = [f"data={data}  backend={results['backend']}  epochs={results['epochs']}  "
             f"seeds={results['seeds']}",
             f"{'circuit':18} {'test accuracy':>18} {'spikes/sample':>14}   per seed"]
    for rule, r in results["rules"].items():
        accs = ", ".join(f"{x['test_accuracy']:.4f}" for x in r["runs"])
        lines.append(f"{'spiking ' + rule + ' T=' + str(r['window']):18} "
                     f"{100 * r['test_accuracy_mean']:7.2f} ± "
                     f"{100 * r['test_accuracy_std']:4.2f} %"
                     f" {r['spikes_per_sample_mean']:14.1f}   [{accs}]")
    b = results.get("baseline")
    if b:
        accs = ", ".join(f"{x['test_accuracy']:.4f}" for x in b["runs"])
        lines.append(f"{'rate ' + b['rule'] + ' (' + b['act'] + ')':18} "
                     f"{100 * b['test_accuracy_mean']:7.2f} ± "
                     f"{100 * b['test_accuracy_std']:4.2f} %"
                     f" {'-':>14}   [{accs}]")
    for rule, r in results["rules"].items():
        per = r["runs"][0]["spikes_per_sample"]
        lines.append(f"spikes per test sample, spiking {rule}, seed {r['runs'][0]['seed']}: "
                     + ", ".join(f"{k}={v:.1f}" for k, v in per.items()))
    return "\n".join(lines)


def _figures(results: dict, ras: dict) -> dict:
    plt = pyplot()
    if plt is None:  # the plot extra is not installed: results only
        return {}
    pops = [p for p in ras if p != "readout"]
    sizes = [ras[p].shape[1] for p in pops]
    fig, axes = plt.subplots(len(pops) + 1, 1, figsize=(8, 2 + 0.025 * sum(sizes) + 2),
                             sharex=True,
                             gridspec_kw={"height_ratios": [max(s, 10) for s in sizes] + [30]})
    info = results["raster"]
    for ax, p in zip(axes, pops):
        t, n = np.nonzero(ras[p])
        ax.scatter(t, n, s=4, marker="|", color="k")
        ax.set_ylabel(f"{p}\nunit")
        ax.set_ylim(-0.5, ras[p].shape[1] - 0.5)
    T = ras["readout"].shape[0]
    for j in range(ras["readout"].shape[1]):
        axes[-1].plot(np.arange(T), ras["readout"][:, j], label=str(j),
                      lw=2.5 if j == info["label"] else 1)
    axes[-1].set(xlabel="step in the presentation window", ylabel="out trace")
    axes[-1].legend(ncol=5, fontsize=6, loc="upper left")
    axes[0].set_title(f"spiking {info['rule']}, test sample {info['test_index']} "
                      f"(label {info['label']}, predicted {info['predicted']})")
    fig.tight_layout()
    plt.close(fig)
    figs = {"raster.png": fig}
    fig2, ax = plt.subplots(figsize=(5, 3.5))
    for rule, r in results["rules"].items():
        c = 100 * np.array([x["curve"] for x in r["runs"]])
        ax.plot(np.arange(1, c.shape[1] + 1), c.mean(0), marker="o", label=f"spiking {rule}")
    b = results.get("baseline")
    if b:
        c = 100 * np.array([x["curve"] for x in b["runs"]])
        ax.plot(np.arange(1, c.shape[1] + 1), c.mean(0), marker="s", ls="--",
                label=f"rate {b['rule']}")
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="spiking vs rate")
    ax.legend()
    fig2.tight_layout()
    plt.close(fig2)
    figs["learning_curves.png"] = fig2
    return figs


def circuits(config: dict) -> dict:
    """The spiking circuits this experiment trains (first seed's data shape), by rule."""
    model = config.get("model", {})
    data = _data(config)
    sizes = [data.n_features, *model.get("hidden", [128]), data.n_classes]
    return {f"spiking_{rule}": build(config, sizes, rule) for rule in model.get("rules", ["fa"])}
