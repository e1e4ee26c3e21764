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

import dataclasses
import time
from typing import Literal

import numpy as np

from neuro_pc.analysis.probe import decoder_mse, label_subset, linear_probe
from neuro_pc.backends import compile
from neuro_pc.backends.base import check_weights
from neuro_pc.data import load_dataset
from neuro_pc.experiments import Outcome, pyplot
from neuro_pc.experiments.config import (Backends, ConfigError, Data, Experiment, coerce, option,
                                         section)
from neuro_pc.models import ACTIVATIONS, mlp
from neuro_pc.models.glimpse import GlimpseGeometry, GlimpseSensor
from neuro_pc.models.mpc import DEFAULTS, TOPOLOGIES, initial_weights, mpc

__all__ = ["run", "build", "circuits", "train_mpc", "encode", "hidden_features", "kmeans_encoder",
           "Config"]

#: the feature sets the decoder can be fitted on
DECODABLE = ("pixels", "random", "kmeans", "mpc")
#: the baselines
METHODS = ("pixels", "random", "kmeans", "bp", "pc")
#: the variables of a latent population (``probe.variable``, ``model.homeo_var``)
LATENT_VARIABLES = ("mu", "z", "e", "phi", "dphi")


# -- the config schema: [model] defaults are the builder's (neuro_pc.models.mpc.DEFAULTS) ------

@dataclasses.dataclass
class MPCExperiment(Experiment):
    """``[experiment]``; blas_threads caps the BLAS thread pools (0 or unset: no cap)."""
    blas_threads: int | None = option(1, ge=0)


_GEOMETRY = ("image", "fovea", "n_fovea", "fovea_overlap", "para", "n_para", "periph",
             "n_periph", "pool", "margin")


@dataclasses.dataclass
class Glimpse:
    """``[glimpse]``: a :class:`GlimpseGeometry` preset, any of its fields changed."""
    preset: str = option("digits", choices=("digits", "mnist"))
    center: bool = True
    image: int | None = option(None, ge=1)
    fovea: int | None = option(None, ge=1)
    n_fovea: int | None = option(None, ge=1)
    fovea_overlap: int | None = option(None, ge=0)
    para: int | None = option(None, ge=1)
    n_para: int | None = option(None, ge=0)
    periph: int | None = option(None, ge=1)
    n_periph: int | None = option(None, ge=0)
    pool: int | None = option(None, ge=1)
    margin: int | None = option(None, ge=0)

    def geometry(self) -> GlimpseGeometry:
        return getattr(GlimpseGeometry, self.preset)(
            **{k: getattr(self, k) for k in _GEOMETRY if getattr(self, k) is not None})

    def check(self, key: str) -> None:
        try:
            self.geometry()
        except ValueError as exc:
            raise ConfigError(key or "glimpse", str(exc)) from None


_D = DEFAULTS


@dataclasses.dataclass
class Model:
    """``[model]``: the keyword arguments of :func:`neuro_pc.models.mpc.mpc`."""
    hidden: list[int] = option(list(_D["hidden"]), ge=1, min_len=1)
    k: int = option(_D["k"], ge=1)
    topology: str = option(_D["topology"], choices=TOPOLOGIES)
    gamma: float = option(_D["gamma"], gt=0)
    relax_steps: int = option(_D["relax_steps"], ge=0)
    eta: float = option(_D["eta"], gt=0)
    eta_feedback: float | None = option(_D["eta_feedback"], gt=0)
    lam: float = option(_D["lam"], ge=0)
    feedback: str = option(_D["feedback"], choices=("learned", "tied"))
    normalize: list[str] = option(list(_D["normalize"]), choices=("W", "R", "A"), unique=True)
    target_term: bool = _D["target_term"]
    cross_precision: float = option(_D["cross_precision"], ge=0)
    homeostasis: float = option(_D["homeostasis"], ge=0)
    homeo_target: float | None = option(_D["homeo_target"], gt=0)
    homeo_rate: float = option(_D["homeo_rate"], gt=0)
    homeo_var: str = option(_D["homeo_var"], choices=LATENT_VARIABLES)
    decorrelation: float = option(_D["decorrelation"], ge=0)
    decor_gain: float = _D["decor_gain"]
    decor_target: float = _D["decor_target"]

    def kwargs(self) -> dict:
        kw = dataclasses.asdict(self)
        kw["hidden"], kw["normalize"] = tuple(kw["hidden"]), tuple(kw["normalize"])
        return kw


@dataclasses.dataclass
class Train:
    epochs: int = option(4, ge=0)
    batch_size: int = option(100, ge=1)
    saccades: int = option(10, ge=1)
    seeds: list[int] = option([0, 1, 2], ge=0, unique=True, min_len=1)


@dataclasses.dataclass
class Probe:
    labels: list[int | Literal["all"]] = option([100, 300, "all"], ge=1, unique=True, min_len=1)
    layers: list[int | Literal["top"]] = option(["top"], ge=1, unique=True, min_len=1)
    variable: str = option("phi", choices=LATENT_VARIABLES)
    C: float = option(1.0, gt=0)
    draws: int = option(3, ge=1)
    decoder: list[str] = option(["random", "mpc"], choices=DECODABLE, unique=True)
    decoder_hidden: int = option(1024, ge=1)
    decoder_alpha: float = option(1.0, ge=0)
    decoder_epochs: int = option(50, ge=1)


@dataclasses.dataclass
class BaselineEtas:
    bp: float = option(0.05, gt=0)
    pc: float = option(0.05, gt=0)


@dataclasses.dataclass
class Baselines:
    methods: list[str] = option(list(METHODS), choices=METHODS, unique=True)
    act: str = option("relu", choices=ACTIVATIONS)
    epochs: int = option(15, ge=1)    # full-label epochs
    batch_size: int = option(32, ge=1)
    eta: BaselineEtas = section(BaselineEtas)


@dataclasses.dataclass
class Config:
    """The ``mpc`` experiment's config (see docs/configs.md)."""
    experiment: MPCExperiment = section(MPCExperiment)
    data: Data = section(Data)
    glimpse: Glimpse = section(Glimpse)
    model: Model = section(Model)
    train: Train = section(Train)
    probe: Probe = section(Probe)
    baselines: Baselines = section(Baselines)
    backend: Backends = section(Backends)

    def check(self, key: str = "") -> None:
        if self.experiment.backend != "reference":
            raise ConfigError("experiment.backend", "the MPC experiment runs in the reference "
                              f"backend's batched mode; got {self.experiment.backend!r}")
        depth = len(self.model.hidden)
        for i, layer in enumerate(self.probe.layers):
            if layer != "top" and layer > depth:
                raise ConfigError(f"probe.layers[{i}]", f"the circuit has latent layers "
                                  f"1..{depth} (model.hidden), got {layer}")


def build(config):
    """``(circuit, sensor)`` from the ``[model]`` and ``[glimpse]`` tables."""
    cfg = coerce(Config, config)
    geometry = cfg.glimpse.geometry()
    return mpc(geometry, **cfg.model.kwargs()), GlimpseSensor(geometry, center=cfg.glimpse.center)


def preflight(cfg: Config) -> None:
    """Checks that need the data, before anything trains."""
    data = load_dataset(cfg.data.name, seed=cfg.train.seeds[0], **cfg.data.loader_options())
    _, sensor = build(cfg)
    side = sensor.geometry.image
    if data.n_features != side * side:
        raise ConfigError("glimpse", f"the geometry is for {side}x{side} images, the data "
                          f"({cfg.data.name}) has {data.n_features} features; set "
                          "[glimpse] image/preset")


def circuits(config) -> dict:
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
    bar = _bar(epochs * n, progress, "train mpc")
    order = None
    for epoch, start in batches:
        if start == 0:
            order = rng.permutation(n)
        idx = order[start:start + batch_size]
        fix = sensor.saccades(len(idx), saccades, int(rng.integers(2 ** 31)))
        for k in range(saccades):
            sim.present(sensor.glimpse(images[idx], fix[:, k]), train=True)
        bar.update(len(idx))   # images (each seen in `saccades` windows)
        if start + batch_size >= n:     # the epoch's last batch: the weights must be finite
            check_weights(sim, epoch, epochs)
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


def run(config, backend: str | None = None, progress: bool = True,
        checkpoint=None, artifacts=None) -> Outcome:
    """The experiment (see the module docstring). ``[experiment] blas_threads``
    (default 1) caps the BLAS thread pools: the matrices are small, and on a
    loaded 2-core machine one thread per process is several times faster.
    ``checkpoint(entry)`` gets each seed's scores as soon as they are finished."""
    cfg = coerce(Config, config)
    threads = cfg.experiment.blas_threads
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - ships with scikit-learn
        return _run(cfg, backend, progress, checkpoint, artifacts)
    with threadpool_limits(limits=None if threads in (None, 0) else int(threads)):
        return _run(cfg, backend, progress, checkpoint, artifacts)


def _run(cfg: Config, backend: str | None, progress: bool, checkpoint=None,
         artifacts=None) -> Outcome:
    backend = backend or cfg.experiment.backend
    options = cfg.backend.options(backend)
    tcfg, pcfg, bcfg = cfg.train, cfg.probe, cfg.baselines
    labels = _labels(pcfg.labels)
    probe_kw = dict(C=pcfg.C)
    n_draws = pcfg.draws
    dec_kw = dict(hidden=pcfg.decoder_hidden, alpha=pcfg.decoder_alpha,
                  epochs=pcfg.decoder_epochs)
    dec = {}   # method -> list over seeds of the decoder's test MSE
    results = {"seeds": list(tcfg.seeds), "labels": [lab or "all" for lab in labels],
               "draws": n_draws, "methods": {}, "timing": {}}
    acc = {}   # method -> label key -> list over seeds
    this_seed = {}   # the scores of the seed being run (checkpointed when it finishes)

    def record(method, lab, seed, value):
        acc.setdefault(method, {}).setdefault(str(lab or "all"), []).append(value)
        this_seed.setdefault("scores", {}).setdefault(method, {})[str(lab or "all")] = value

    extra = {}
    for seed in tcfg.seeds:
        this_seed = {"seed": seed}
        data = load_dataset(cfg.data.name, seed=seed, **cfg.data.loader_options())
        circuit, sensor = build(cfg)
        side = sensor.geometry.image
        if data.n_features != side * side:
            raise ValueError(f"glimpse geometry is for {side}x{side} images, the data has "
                             f"{data.n_features} features; set [glimpse] image/preset")
        w0 = initial_weights(circuit, seed)
        K = tcfg.saccades
        eval_fix = sensor.fixed_saccades(1, K, seed + 1000)
        fx_tr = np.broadcast_to(eval_fix, (len(data.x_train), K, 2))
        fx_te = np.broadcast_to(eval_fix, (len(data.x_test), K, 2))
        enc_kw = dict(layers=pcfg.layers, variable=pcfg.variable)
        methods = bcfg.methods

        def draws(lab):
            """Label-draw seeds: one for all labels, ``draws`` subsets below that."""
            return [seed] if lab is None else [seed + 1000 * d for d in range(n_draws)]

        def probe_all(method, f_tr, f_te):
            for lab in labels:
                record(method, lab, seed, float(np.mean([
                    linear_probe(f_tr, data.y_train, f_te, data.y_test, lab, ls, **probe_kw)
                    for ls in draws(lab)])))
            if method in pcfg.decoder:
                dec.setdefault(method, []).append(decoder_mse(
                    f_tr, data.x_train, f_te, data.x_test, seed=seed, **dec_kw))
                this_seed.setdefault("decoder", {})[method] = dec[method][-1]

        if pcfg.decoder:
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
        train_mpc(sim, sensor, data.x_train, tcfg.epochs, tcfg.batch_size, K, seed, progress)
        results["timing"].setdefault("mpc_train_s", []).append(time.time() - t)
        if artifacts is not None:   # the self-supervised encoder (no class readout)
            this_seed["artifact"] = artifacts.save(
                f"mpc-seed{seed}", sim, experiment=cfg.experiment.name, rule="mpc",
                task="self-supervised", epochs=tcfg.epochs,
                data={"name": cfg.data.name, "seed": seed,
                      "options": cfg.data.loader_options()})
            results.setdefault("artifacts", []).append(this_seed["artifact"])
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
                              act=bcfg.act, eta=getattr(bcfg.eta, rule))
                    s2 = compile(net, backend=backend, seed=seed, **options)
                    # the same number of weight updates whatever the label budget
                    epochs = max(1, int(round(bcfg.epochs * len(data.y_train) / len(idx))))
                    epochs = min(epochs, 40 * bcfg.epochs)
                    s2.train(data.x_train[idx], data.one_hot(data.y_train[idx]), epochs=epochs,
                             seed=seed, batch_size=bcfg.batch_size)
                    h_tr, h_te = hidden_features(s2, data.x_train), hidden_features(s2, data.x_test)
                    per_draw.append(linear_probe(h_tr, data.y_train, h_te, data.y_test, lab, ls,
                                                 **probe_kw))
                    if lab is None:
                        extra.setdefault(f"{rule}_readout_accuracy", []).append(
                            s2.evaluate(data.x_test, data.y_test))
                record(rule, lab, seed, float(np.mean(per_draw)))
        results["timing"].setdefault("supervised_s", []).append(time.time() - t)
        if checkpoint is not None:
            checkpoint(this_seed)
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
                   figures=figures(results))


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


def figures(results: dict) -> dict:
    """``probe_accuracy.png`` from the results (``{}`` without the plot extra)."""
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
    plt.close(fig)
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

    return tqdm(total=total, desc=desc, unit="sample", unit_scale=True, leave=False,
                mininterval=0.5)
