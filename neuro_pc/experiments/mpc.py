"""MPC on glimpses of the 8x8 digits: linear-probe accuracy against baselines.

For every seed (the seed picks the data split, the weights, the saccades):

* **mpc**: the MPC circuit (:mod:`neuro_pc.models.mpc`) trained without labels
  on glimpse sequences (random saccades, one window and one M-step per
  glimpse), then frozen;
* **random**: the same circuit, untrained (its initial weights);
* **pixels**: the raw 64 pixels;
* **kmeans**: a classic unsupervised patch learner in place of the circuit
  (Coates, Lee & Ng 2011): per stream, k-means with as many centroids as the
  top latent layer has units, fitted on the unlabelled training glimpses,
  "triangle" encoding, concatenated over the same evaluation glimpses (the
  same feature width as MPC's). A reference point for what *any* per-stream
  feature learner gains over the random circuit on this data;
* **bp**, **pc**: supervised MLPs (``neuro_pc.models.mlp``, rule ``"bp"`` /
  ``"pc"``) on the pixels, as many latent units per layer as MPC has over all
  streams, trained with the same labels the probe gets; their last hidden
  layer is probed.

The probe (:func:`neuro_pc.analysis.probe.linear_probe`) is fitted on the
representation of the training images (MPC/random: the latents concatenated
over the K glimpses of one fixed evaluation saccade sequence) with 100, 300 or
all labels, and scored on the test images (and, for the ``[probe] decoder``
feature sets, the paper's Dec-MSE: :func:`~neuro_pc.analysis.probe.decoder_mse`,
next to the error of always predicting the mean training image). Below all labels, the score of a
seed is the mean over ``[probe] draws`` stratified label subsets (label seeds
``seed + 1000 d``), the supervised nets trained once per subset: a 100-label
draw alone moves the score by 1-2 points.
"""
from __future__ import annotations

import time

import numpy as np

from neuro_pc.analysis.probe import decoder_mse, label_subset, linear_probe
from neuro_pc.backends import compile
from neuro_pc.data import load_dataset
from neuro_pc.experiments import Outcome, pyplot
from neuro_pc.models import mlp
from neuro_pc.models.glimpse import GlimpseGeometry, GlimpseSensor
from neuro_pc.models.mpc import DEFAULTS, initial_weights, mpc

__all__ = ["run", "build", "circuits", "train_mpc", "encode", "hidden_features", "kmeans_encoder"]

#: experiment defaults ([train], [probe], [baselines] tables of the config)
TRAIN = dict(epochs=4, batch_size=100, saccades=10, seeds=[0, 1, 2])
PROBE = dict(labels=[100, 300, "all"], layers=["top"], variable="phi", C=1.0, draws=3,
             decoder=["random", "mpc"], decoder_hidden=1024, decoder_alpha=1.0,
             decoder_epochs=50)
#: the feature sets the decoder can be fitted on
DECODABLE = ("pixels", "random", "kmeans", "mpc")
BASELINES = dict(methods=["pixels", "random", "kmeans", "bp", "pc"], epochs=15, batch_size=32,
                 eta={"bp": 0.05, "pc": 0.05}, act="relu")


def build(config: dict):
    """``(circuit, sensor)`` from the ``[model]`` and ``[glimpse]`` tables."""
    gcfg = dict(config.get("glimpse", {}))
    preset = gcfg.pop("preset", "digits")
    center = gcfg.pop("center", True)
    geometry = getattr(GlimpseGeometry, preset)(**gcfg)
    model = {**DEFAULTS, **config.get("model", {})}
    for key in ("hidden", "normalize"):
        model[key] = tuple(model[key])
    return mpc(geometry, **model), GlimpseSensor(geometry, center=center)


def circuits(config: dict) -> dict:
    """The circuit this experiment trains, for ``neuro-pc locality`` / ``check``."""
    circuit, _ = build(config)
    return {"mpc": circuit}


def train_mpc(sim, sensor: GlimpseSensor, images: np.ndarray, epochs: int, batch_size: int,
              saccades: int, seed: int, progress: bool = False):
    """Self-supervised training: for every batch of images, ``saccades`` windows
    (one random fixation per image per window), each ending with the M-step.
    Image order and fixations from ``default_rng([seed, 1])``; no labels."""
    rng = np.random.default_rng([seed, 1])
    n = len(images)
    batches = [(e, s) for e in range(epochs) for s in range(0, n, batch_size)]
    bar = _bar(len(batches) * saccades, progress, "train mpc")
    order = None
    for epoch, start in batches:
        if start == 0:
            order = rng.permutation(n)
        idx = order[start:start + batch_size]
        fix = sensor.saccades(len(idx), saccades, int(rng.integers(2 ** 31)))
        for k in range(saccades):
            sim.present(sensor.glimpse(images[idx], fix[:, k]), train=True)
            bar.update(1)
    bar.close()
    return sim


def encode(sim, sensor: GlimpseSensor, images: np.ndarray, fixations: np.ndarray,
           layers=("top",), variable: str = "phi", batch_size: int = 512) -> np.ndarray:
    """Frozen features ``(n, K * V * sum(width of layers))``: after the window of
    each glimpse, the ``variable`` of the chosen latent layers of every stream,
    concatenated over the K fixations ``fixations`` ``(n, K, 2)``."""
    meta = sim.circuit.metadata
    L = len(meta["hidden"])
    ls = [L if l == "top" else int(l) for l in layers]
    out = []
    for s in range(0, len(images), batch_size):
        per_k = []
        for k in range(fixations.shape[1]):
            sim.present(sensor.glimpse(images[s:s + batch_size], fixations[s:s + batch_size, k]),
                        train=False)
            per_k.append(np.concatenate([sim.state[f"z{l}_{st}.{variable}"]
                                         for l in ls for st in meta["streams"]], axis=1))
        out.append(np.concatenate(per_k, axis=1))
    return np.concatenate(out, axis=0)


def kmeans_encoder(sensor: GlimpseSensor, images: np.ndarray, n_clusters: int, saccades: int,
                   seed: int):
    """Fit one k-means per stream on unlabelled glimpses; return ``encode(images, fixations)``.

    The glimpses are those of ``images`` at ``saccades`` random fixations each
    (``default_rng([seed, 2])``). ``encode`` gives ``(n, K * V * n_clusters)``:
    per glimpse and stream the "triangle" code ``max(0, mean_j d_j - d_i)`` of
    the distances ``d`` to the centroids (Coates, Lee & Ng, AISTATS 2011),
    concatenated like :func:`encode`.
    """
    from sklearn.cluster import MiniBatchKMeans

    rng = np.random.default_rng([seed, 2])
    fix = sensor.saccades(len(images), saccades, int(rng.integers(2 ** 31)))
    streams, _ = sensor.split(sensor.sequence(images, fix))
    kms = [MiniBatchKMeans(n_clusters, random_state=seed, n_init=3)
           .fit(g.reshape(-1, g.shape[-1])) for g in streams]

    def triangle(g, km):
        d = km.transform(g.reshape(-1, g.shape[-1]))                   # distances to centroids
        return np.maximum(d.mean(-1, keepdims=True) - d, 0.0).reshape(*g.shape[:-1], -1)

    def encode_(imgs: np.ndarray, fixations: np.ndarray) -> np.ndarray:
        parts, _ = sensor.split(sensor.sequence(imgs, fixations))      # V x (n, K, S*S)
        codes = np.concatenate([triangle(g, km) for g, km in zip(parts, kms)], axis=-1)
        return codes.reshape(len(imgs), -1)                            # (n, K * V * n_clusters)

    return encode_


def hidden_features(sim, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The last hidden layer's rate ``r`` of a trained ``mlp`` circuit, inference mode."""
    layer = len(sim.circuit.metadata["sizes"]) - 2
    out = []
    for s in range(0, len(x), batch_size):
        sim.present(x[s:s + batch_size], None, train=False)
        out.append(sim.state[f"h{layer}.r"].copy())
    return np.concatenate(out, axis=0)


def _labels(spec) -> list:
    return [None if (lab == "all" or lab is None) else int(lab) for lab in spec]


def run(config: dict, backend: str | None = None, progress: bool = True) -> Outcome:
    """The experiment (see the module docstring). ``[experiment] blas_threads``
    (default 1) caps the BLAS thread pools: the matrices are small, and on a
    loaded 2-core machine one thread per process is several times faster."""
    threads = config.get("experiment", {}).get("blas_threads", 1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - ships with scikit-learn
        return _run(config, backend, progress)
    with threadpool_limits(limits=None if threads in (None, 0) else int(threads)):
        return _run(config, backend, progress)


def _run(config: dict, backend: str | None, progress: bool) -> Outcome:
    exp = config.get("experiment", {})
    backend = backend or exp.get("backend", "reference")
    options = dict(config.get("backend", {}).get(backend, {}))
    tcfg = {**TRAIN, **config.get("train", {})}
    pcfg = {**PROBE, **config.get("probe", {})}
    bcfg = {**BASELINES, **config.get("baselines", {})}
    data_cfg = dict(config.get("data", {"name": "digits"}))
    labels = _labels(pcfg["labels"])
    unknown = set(bcfg["methods"]) - set(BASELINES["methods"])
    if unknown:
        raise ValueError(f"[baselines] methods: unknown {sorted(unknown)}; "
                         f"choose from {BASELINES['methods']}")
    probe_kw = dict(C=float(pcfg["C"]))
    n_draws = int(pcfg["draws"])
    if n_draws < 1:
        raise ValueError(f"[probe] draws must be >= 1, got {n_draws}")
    bad = set(pcfg["decoder"]) - set(DECODABLE)
    if bad:
        raise ValueError(f"[probe] decoder: unknown {sorted(bad)}; choose from {list(DECODABLE)}")
    dec_kw = dict(hidden=int(pcfg["decoder_hidden"]), alpha=float(pcfg["decoder_alpha"]),
                  epochs=int(pcfg["decoder_epochs"]))
    dec = {}   # method -> list over seeds of the decoder's test MSE
    results = {"seeds": list(tcfg["seeds"]), "labels": [lab or "all" for lab in labels],
               "draws": n_draws, "methods": {}, "timing": {}}
    acc = {}   # method -> label key -> list over seeds

    def record(method, lab, seed, value):
        acc.setdefault(method, {}).setdefault(str(lab or "all"), []).append(value)

    extra = {}
    for seed in tcfg["seeds"]:
        data = load_dataset(data_cfg.get("name", "digits"), seed=seed,
                            **{k: v for k, v in data_cfg.items() if k != "name"})
        circuit, sensor = build(config)
        side = sensor.geometry.image
        if data.n_features != side * side:
            raise ValueError(f"glimpse geometry is for {side}x{side} images, the data has "
                             f"{data.n_features} features; set [glimpse] image/preset")
        w0 = initial_weights(circuit, seed)
        K = int(tcfg["saccades"])
        eval_fix = sensor.fixed_saccades(1, K, seed + 1000)
        fx_tr = np.broadcast_to(eval_fix, (len(data.x_train), K, 2))
        fx_te = np.broadcast_to(eval_fix, (len(data.x_test), K, 2))
        enc_kw = dict(layers=pcfg["layers"], variable=pcfg["variable"])
        methods = bcfg["methods"]

        def draws(lab):
            """Label-draw seeds: one for all labels, ``draws`` subsets below that."""
            return [seed] if lab is None else [seed + 1000 * d for d in range(n_draws)]

        def probe_all(method, f_tr, f_te):
            for lab in labels:
                record(method, lab, seed, float(np.mean([
                    linear_probe(f_tr, data.y_train, f_te, data.y_test, lab, ls, **probe_kw)
                    for ls in draws(lab)])))
            if method in pcfg["decoder"]:
                dec.setdefault(method, []).append(decoder_mse(
                    f_tr, data.x_train, f_te, data.x_test, seed=seed, **dec_kw))

        if pcfg["decoder"]:
            dec.setdefault("mean image", []).append(float(np.mean(np.sum(
                (data.x_test - data.x_train.mean(axis=0)) ** 2, axis=1))))

        t = time.time()
        if "pixels" in methods:
            probe_all("pixels", data.x_train, data.x_test)
        if "random" in methods:
            sim = compile(circuit, backend=backend, weights=w0, seed=seed, **options)
            f_tr, f_te = (encode(sim, sensor, data.x_train, fx_tr, **enc_kw),
                          encode(sim, sensor, data.x_test, fx_te, **enc_kw))
            probe_all("random", f_tr, f_te)
        if "kmeans" in methods:
            enc = kmeans_encoder(sensor, data.x_train, circuit.metadata["hidden"][-1], K, seed)
            f_tr, f_te = enc(data.x_train, fx_tr), enc(data.x_test, fx_te)
            probe_all("kmeans", f_tr, f_te)
        results["timing"].setdefault("baselines_unsupervised_s", []).append(time.time() - t)
        t = time.time()
        sim = compile(circuit, backend=backend, weights=w0, seed=seed, **options)
        train_mpc(sim, sensor, data.x_train, int(tcfg["epochs"]), int(tcfg["batch_size"]), K,
                  seed, progress)
        results["timing"].setdefault("mpc_train_s", []).append(time.time() - t)
        f_tr, f_te = (encode(sim, sensor, data.x_train, fx_tr, **enc_kw),
                      encode(sim, sensor, data.x_test, fx_te, **enc_kw))
        probe_all("mpc", f_tr, f_te)
        extra.setdefault("feature_dim", f_tr.shape[1])
        extra.setdefault("mpc_active_fraction", []).append(float(np.mean(f_tr != 0)))
        extra.setdefault("feedback_angle_deg", []).append(_feedback_angle(sim))
        t = time.time()
        width = sum(circuit.metadata["hidden"]) // len(circuit.metadata["hidden"])
        hid = [width * len(circuit.metadata["streams"])] * len(circuit.metadata["hidden"])
        for rule in [m for m in ("bp", "pc") if m in methods]:
            for lab in labels:
                per_draw = []
                for ls in draws(lab):     # a net per label draw, trained on those labels only
                    idx = label_subset(data.y_train, lab, ls)
                    net = mlp([data.n_features, *hid, data.n_classes], rule=rule,
                              act=bcfg["act"], eta=float(bcfg["eta"][rule]))
                    s2 = compile(net, backend=backend, seed=seed, **options)
                    # the same number of weight updates whatever the label budget
                    epochs = max(1, int(round(bcfg["epochs"] * len(data.y_train) / len(idx))))
                    epochs = min(epochs, 40 * int(bcfg["epochs"]))
                    s2.train(data.x_train[idx], data.one_hot(data.y_train[idx]), epochs=epochs,
                             seed=seed, batch_size=int(bcfg["batch_size"]))
                    h_tr, h_te = hidden_features(s2, data.x_train), hidden_features(s2, data.x_test)
                    per_draw.append(linear_probe(h_tr, data.y_train, h_te, data.y_test, lab, ls,
                                                 **probe_kw))
                    if lab is None:
                        extra.setdefault(f"{rule}_readout_accuracy", []).append(
                            s2.evaluate(data.x_test, data.y_test))
                record(rule, lab, seed, float(np.mean(per_draw)))
        results["timing"].setdefault("supervised_s", []).append(time.time() - t)
    for method, per in acc.items():
        results["methods"][method] = {
            lab: {"runs": vals, "mean": float(np.mean(vals)), "std": float(np.std(vals))}
            for lab, vals in per.items()}
    results["decoder"] = {m: {"runs": v, "mean": float(np.mean(v)), "std": float(np.std(v))}
                          for m, v in dec.items()}
    results["extra"] = extra
    results["circuit"] = {"name": circuit.name, "populations": len(circuit.populations),
                          "projections": len(circuit.projections),
                          "window": circuit.schedule.window,
                          **{k: v for k, v in circuit.metadata.items() if k != "selections"}}
    return Outcome(results=results, summary=_table(results, backend),
                   figures=_figures(results))


def _feedback_angle(sim) -> float:
    """Mean angle (degrees) between each learned feedback matrix and the transpose
    of the forward matrix it mirrors (0 = exact transport-free mirror)."""
    from neuro_pc.analysis import angle

    angles = []
    for p in sim.circuit.projections:
        if p.rule is not None and p.init.kind == "transpose_of":
            angles.append(angle(sim.weights[p.name], sim.weights[p.init.of].T))
    return float(np.mean(angles)) if angles else 0.0


def _table(results: dict, backend: str) -> str:
    c = results["circuit"]
    labs = [str(lab) for lab in results["labels"]]
    lines = [f"MPC on digits glimpses  backend={backend}  seeds={results['seeds']}  "
             f"circuit={c['name']} ({c['populations']} populations, {c['projections']} "
             f"projections, T={c['window']})",
             "linear-probe test accuracy, mean ± sd over seeds (probe fitted on N labels; "
             f"below all, each seed's score is the mean of {results['draws']} label draws)",
             f"{'method':8}" + "".join(f"{'N=' + lab:>18}" for lab in labs)]
    for method, per in results["methods"].items():
        lines.append(f"{method:8}" + "".join(
            f"{per[lab]['mean'] * 100:>11.2f} ± {per[lab]['std'] * 100:4.2f}" for lab in labs))
    if "mpc" in results["methods"] and "bp" in results["methods"]:
        gap = [(results["methods"]["bp"][lab]["mean"] - results["methods"]["mpc"][lab]["mean"])
               * 100 for lab in labs]
        lines.append(f"{'bp-mpc':8}" + "".join(f"{g:>+18.2f}" for g in gap))
    dec = results.get("decoder", {})
    if dec:
        lines.append("decoder MSE (1024-ReLU decoder, test mean of the summed squared pixel "
                     "error; paper's Dec-MSE): " + ", ".join(
                         f"{m} {v['mean']:.3f} ± {v['std']:.3f}" for m, v in dec.items()))
    ex = results.get("extra", {})
    if ex:
        lines.append(f"feature dim (mpc/random) {ex.get('feature_dim')}; active fraction "
                     f"{np.mean(ex.get('mpc_active_fraction', [0])):.3f}; learned-feedback angle "
                     f"to transpose {np.mean(ex.get('feedback_angle_deg', [0])):.2f} deg")
        for rule in ("bp", "pc"):
            if f"{rule}_readout_accuracy" in ex:
                lines.append(f"{rule} own readout accuracy (all labels): "
                             f"{np.mean(ex[f'{rule}_readout_accuracy']) * 100:.2f}")
    tm = results.get("timing", {})
    lines.append("seconds per seed: " + ", ".join(f"{k}={np.mean(v):.1f}" for k, v in tm.items()))
    return "\n".join(lines)


def _figures(results: dict) -> dict:
    plt = pyplot()
    if plt is None:  # the plot extra is not installed: results only
        return {}
    labs = [str(lab) for lab in results["labels"]]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    xs = np.arange(len(labs))
    for method, per in results["methods"].items():
        m = np.array([per[lab]["mean"] for lab in labs]) * 100
        s = np.array([per[lab]["std"] for lab in labs]) * 100
        ax.errorbar(xs, m, yerr=s, marker="o", capsize=3, label=method)
    ax.set_xticks(xs, [f"{lab}" for lab in labs])
    ax.set_xlabel("labels used by the probe (and the supervised nets)")
    ax.set_ylabel("linear-probe test accuracy (%)")
    ax.set_title(f"digits, {len(results['seeds'])} seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return {"probe_accuracy.png": fig}


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


def _bar(total, enabled, desc):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="win", leave=False, mininterval=0.5)
