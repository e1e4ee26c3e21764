"""MPC on glimpses of digit images: linear-probe accuracy against baselines.

The data are sklearn's 8x8 digits (``experiments/mpc_digits.toml``) or MNIST
(``experiments/mpc_mnist.toml``, the paper's glimpse geometry). For every seed
(the seed picks the weights, the saccades, the label draws and the subsets
below; on digits also the data split):

* **mpc**: the MPC circuit (:mod:`neuro_pc.models.mpc`) trained without labels
  on glimpse sequences (random saccades, one window and one M-step per
  glimpse) of ``[train] images`` training images (default all), then frozen;
* **random**: the same circuit, untrained (its initial weights);
* **pixels**: the raw pixels;
* **kmeans**: a classic unsupervised patch learner in place of the circuit
  (Coates, Lee & Ng 2011): per stream, k-means with as many centroids as the
  top latent layer has units, fitted on the unlabelled training glimpses,
  "triangle" encoding, concatenated over the same evaluation glimpses (the
  same feature width as MPC's). A reference point for what *any* per-stream
  feature learner gains over the random circuit on this data;
* **bp**, **pc**: supervised ReLU MLPs (``neuro_pc.models.mlp``, rule ``"bp"`` /
  ``"pc"``) on the pixels (``[baselines] hidden``; default as many units per
  layer as MPC has over all streams), trained with the same labels the probe
  gets; their last hidden layer is probed (their own output's accuracy is
  recorded too).

The probe (:func:`neuro_pc.analysis.probe.linear_probe`) is fitted on the
representation of the training images of the *pool* (``[probe] pool``
images, default all; MPC/random: the latents concatenated over the K
glimpses of one fixed evaluation saccade sequence) with each label budget of
``[probe] labels`` ("all" = the pool), and scored on the test images (or, with
``[data] validation``, on training images held out for choosing a
configuration). Below all labels, the score of a seed is the mean over
``[probe] draws`` stratified label subsets (label seeds ``seed + 1000 d``),
the supervised nets trained once per subset. For the ``[probe] decoder``
feature sets also the paper's Dec-MSE
(:func:`~neuro_pc.analysis.probe.decoder_mse`, on ``decoder_images`` pool
images), next to the error of always predicting the mean training image.
``[paper]`` holds published numbers, printed beside ours.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Literal

import numpy as np

from neuro_pc.analysis.probe import decoder_mse, label_subset, linear_probe
from neuro_pc.backends import compile
from neuro_pc.backends.base import check_weights
from neuro_pc.data import Dataset, load_dataset
from neuro_pc.experiments import Outcome, pyplot
from neuro_pc.experiments.config import (Backends, ConfigError, Data, Experiment, coerce, option,
                                         section, validation_split)
from neuro_pc.models import ACTIVATIONS, mlp
from neuro_pc.models.glimpse import GlimpseGeometry, GlimpseSensor
from neuro_pc.models.mpc import DEFAULTS, TOPOLOGIES, mpc

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


@dataclasses.dataclass
class MPCData(Data):
    """``[data]``; ``validation > 0`` holds that many training images out (the
    same ones for every seed: a permutation from ``default_rng(0)``) and
    evaluates every method on them instead of the test set (for choosing a
    configuration without looking at the test set); ``test = N`` scores on N
    of the evaluation images (the same for every seed: ``default_rng(1)``;
    default all) -- a subsample to fit a time budget, reported in the table."""
    validation: int = option(0, ge=0)
    test: int | None = option(None, ge=1)


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
    norm_axis: str = option(_D["norm_axis"], choices=("columns", "rows"))
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
    """``[train]``: MPC's self-supervised training. ``images``: how many training
    images it learns from (a random subset per seed; default all); ``dtype``: the
    reference backend's arithmetic for every circuit of the run (MPC, the random
    circuit, the supervised nets)."""
    epochs: int = option(4, ge=0)
    batch_size: int = option(100, ge=1)
    saccades: int = option(10, ge=1)
    seeds: list[int] = option([0, 1, 2], ge=0, unique=True, min_len=1)
    images: int | None = option(None, ge=1)
    dtype: str = option("float64", choices=("float64", "float32"))


@dataclasses.dataclass
class Probe:
    """``[probe]``. ``pool``: the training images whose features are extracted
    and from which every label budget is drawn ("all" = the pool; a random
    subset per seed; default all); ``decoder_images``: how many pool images the
    decoder is fitted on (default the pool)."""
    labels: list[int | Literal["all"]] = option([100, 300, "all"], ge=1, unique=True, min_len=1)
    layers: list[int | Literal["top"]] = option(["top"], ge=1, unique=True, min_len=1)
    variable: str = option("phi", choices=LATENT_VARIABLES)
    C: float = option(1.0, gt=0)
    draws: int = option(3, ge=1)
    pool: int | None = option(None, ge=1)
    decoder: list[str] = option(["random", "mpc"], choices=DECODABLE, unique=True)
    decoder_hidden: int = option(1024, ge=1)
    decoder_alpha: float = option(1.0, ge=0)
    decoder_epochs: int = option(50, ge=1)
    decoder_images: int | None = option(None, ge=1)


@dataclasses.dataclass
class BaselineEtas:
    bp: float = option(0.05, gt=0)
    pc: float = option(0.05, gt=0)


@dataclasses.dataclass
class Baselines:
    """``[baselines]``. The supervised nets: ``hidden`` widths (default: as many
    layers as MPC, each as wide as MPC's layer over all streams); ``epochs`` over
    the pool with all labels; below that, ``presentations`` samples per net
    (default ``epochs`` x pool: the same number of updates for every budget), at
    least ``epochs`` and at most ``max_epochs`` (default ``40 * epochs``) epochs
    of the budget's samples."""
    methods: list[str] = option(list(METHODS), choices=METHODS, unique=True)
    act: str = option("relu", choices=ACTIVATIONS)
    hidden: list[int] | None = option(None, ge=1, min_len=1)
    epochs: int = option(15, ge=1)    # full-label epochs
    presentations: int | None = option(None, ge=1)
    max_epochs: int | None = option(None, ge=1)
    batch_size: int = option(32, ge=1)
    eta: BaselineEtas = section(BaselineEtas)

    def epochs_for(self, n_labels: int, pool: int) -> int:
        """Epochs of a net trained on ``n_labels`` of a ``pool`` of training images."""
        if n_labels >= pool:
            return self.epochs
        total = self.presentations if self.presentations is not None else self.epochs * pool
        cap = self.max_epochs if self.max_epochs is not None else 40 * self.epochs
        return max(1, min(max(self.epochs, int(round(total / n_labels))), cap))


#: ``[paper.accuracy]`` / ``[paper.decoder]`` keys (the decoder's "mean image" is
#: the paper's decoder on random encodings: it can only learn the mean image)
PAPER_DECODER = (*DECODABLE, "mean image")


@dataclasses.dataclass
class Paper:
    """``[paper]``: published numbers printed beside ours, as quoted text (with
    ``source``: where they come from); nothing is computed from them."""
    source: str | None = None
    accuracy: dict[str, str] = option({}, keys=(*METHODS, "mpc"))
    decoder: dict[str, str] = option({}, keys=PAPER_DECODER)


@dataclasses.dataclass
class Config:
    """The ``mpc`` experiment's config (see docs/configs.md)."""
    experiment: MPCExperiment = section(MPCExperiment)
    data: MPCData = section(MPCData)
    glimpse: Glimpse = section(Glimpse)
    model: Model = section(Model)
    train: Train = section(Train)
    probe: Probe = section(Probe)
    baselines: Baselines = section(Baselines)
    paper: Paper = section(Paper)
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
    data = load_data(cfg, cfg.train.seeds[0])
    _, sensor = build(cfg)
    side = sensor.geometry.image
    if data.n_features != side * side:
        raise ConfigError("glimpse", f"the geometry is for {side}x{side} images, the data "
                          f"({cfg.data.name}) has {data.n_features} features; set "
                          "[glimpse] image/preset")


def load_data(cfg: Config, seed: int) -> Dataset:
    """The data set for ``seed`` (digits: the seed picks the split; MNIST: the
    official split); with ``[data] validation = N``, N training images (the same
    for every seed) become the evaluation set and the rest the training set."""
    data = load_dataset(cfg.data.name, seed=seed, **cfg.data.loader_options())
    n_val = cfg.data.validation
    if n_val:
        data = validation_split(data, n_val)
    n_test = cfg.data.test
    if n_test is not None and n_test < len(data.y_test):
        idx = np.sort(np.random.default_rng(1).choice(len(data.y_test), n_test, replace=False))
        data = Dataset(data.x_train, data.y_train, data.x_test[idx], data.y_test[idx],
                       n_classes=data.n_classes, name=data.name)
    return data


def subset(n: int, size: int | None, seed, what: int) -> np.ndarray:
    """Sorted indices of ``size`` of ``n`` items drawn with ``default_rng([seed, what])``
    (all of them when ``size`` is None or ``>= n``)."""
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, what]).choice(n, size, replace=False))


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
    if backend == "reference":
        options = {**options, "dtype": cfg.train.dtype}
    tcfg, pcfg, bcfg = cfg.train, cfg.probe, cfg.baselines
    labels = _labels(pcfg.labels)
    probe_kw = dict(C=pcfg.C)
    n_draws = pcfg.draws
    dec_kw = dict(hidden=pcfg.decoder_hidden, alpha=pcfg.decoder_alpha,
                  epochs=pcfg.decoder_epochs)
    dec = {}   # method -> list over seeds of the decoder's test MSE
    results = {"data": cfg.data.name, "seeds": list(tcfg.seeds),
               "labels": [lab or "all" for lab in labels], "draws": n_draws,
               "evaluated_on": "test", "methods": {}, "timing": {}}
    if cfg.data.validation:
        results["evaluated_on"] = (f"validation: {cfg.data.validation} training images held "
                                   "out (the test set is not used)")
    if cfg.paper.source or cfg.paper.accuracy or cfg.paper.decoder:
        results["paper"] = dataclasses.asdict(cfg.paper)
    acc = {}   # method -> label key -> list over seeds
    this_seed = {}   # the scores of the seed being run (checkpointed when it finishes)
    timing = results["timing"]

    def record(method, lab, seed, value):
        acc.setdefault(method, {}).setdefault(str(lab or "all"), []).append(value)
        this_seed.setdefault("scores", {}).setdefault(method, {})[str(lab or "all")] = value

    def clock(key, t):
        timing.setdefault(key, []).append(time.time() - t)

    extra = {}
    for seed in tcfg.seeds:
        this_seed = {"seed": seed}
        data = load_data(cfg, seed)
        circuit, sensor = build(cfg)
        side = sensor.geometry.image
        if data.n_features != side * side:
            raise ValueError(f"glimpse geometry is for {side}x{side} images, the data has "
                             f"{data.n_features} features; set [glimpse] image/preset")
        pool = subset(len(data.y_train), pcfg.pool, seed, 3)
        x_pool, y_pool = data.x_train[pool], data.y_train[pool]
        x_mpc = data.x_train[subset(len(data.y_train), tcfg.images, seed, 4)]
        x_test, y_test = data.x_test, data.y_test
        extra.setdefault("pool", len(pool))
        extra.setdefault("mpc_images", len(x_mpc))
        extra.setdefault("test_images", len(y_test))
        w0 = circuit.init_weights(seed)
        K = tcfg.saccades
        eval_fix = sensor.fixed_saccades(1, K, seed + 1000)
        fx_tr = np.broadcast_to(eval_fix, (len(x_pool), K, 2))
        fx_te = np.broadcast_to(eval_fix, (len(x_test), K, 2))
        enc_kw = dict(layers=pcfg.layers, variable=pcfg.variable)
        methods = bcfg.methods
        dec_idx = subset(len(pool), pcfg.decoder_images, seed, 5)

        def draws(lab):
            """Label-draw seeds: one for all labels, ``draws`` subsets below that."""
            return [seed] if lab is None else [seed + 1000 * d for d in range(n_draws)]

        def probe_all(method, f_tr, f_te):
            t = time.time()
            for lab in labels:
                record(method, lab, seed, float(np.mean([
                    linear_probe(f_tr, y_pool, f_te, y_test, lab, ls, **probe_kw)
                    for ls in draws(lab)])))
            clock("probe_s", t)
            if method in pcfg.decoder:
                t = time.time()
                dec.setdefault(method, []).append(decoder_mse(
                    f_tr[dec_idx], x_pool[dec_idx], f_te, x_test, seed=seed, **dec_kw))
                this_seed.setdefault("decoder", {})[method] = dec[method][-1]
                clock("decoder_s", t)

        if pcfg.decoder:
            dec.setdefault("mean image", []).append(float(np.mean(np.sum(
                (x_test - x_pool[dec_idx].mean(axis=0)) ** 2, axis=1))))

        if "pixels" in methods:
            probe_all("pixels", x_pool, x_test)
        if "random" in methods:
            t = time.time()
            sim = compile(circuit, backend=backend, weights=w0, seed=seed, **options)
            f_tr, f_te = (encode(sim, sensor, x_pool, fx_tr, **enc_kw),
                          encode(sim, sensor, x_test, fx_te, **enc_kw))
            clock("encode_s", t)
            probe_all("random", f_tr, f_te)
            del f_tr, f_te
        if "kmeans" in methods:
            t = time.time()
            enc = kmeans_encoder(sensor, x_mpc, circuit.metadata["hidden"][-1], K, seed)
            f_tr, f_te = enc(x_pool, fx_tr), enc(x_test, fx_te)
            clock("kmeans_s", t)
            probe_all("kmeans", f_tr, f_te)
            del f_tr, f_te
        t = time.time()
        sim = compile(circuit, backend=backend, weights=w0, seed=seed, **options)
        train_mpc(sim, sensor, x_mpc, tcfg.epochs, tcfg.batch_size, K, seed, progress)
        clock("mpc_train_s", t)
        if artifacts is not None:   # the self-supervised encoder (no class readout)
            this_seed["artifact"] = artifacts.save(
                f"mpc-seed{seed}", sim, experiment=cfg.experiment.name, rule="mpc",
                task="self-supervised", epochs=tcfg.epochs,
                data={"name": cfg.data.name, "seed": seed,
                      "options": cfg.data.loader_options()})
            results.setdefault("artifacts", []).append(this_seed["artifact"])
        t = time.time()
        f_tr, f_te = (encode(sim, sensor, x_pool, fx_tr, **enc_kw),
                      encode(sim, sensor, x_test, fx_te, **enc_kw))
        clock("encode_s", t)
        probe_all("mpc", f_tr, f_te)
        extra.setdefault("feature_dim", f_tr.shape[1])
        extra.setdefault("mpc_active_fraction", []).append(float(np.mean(f_tr != 0)))
        extra.setdefault("feedback_angle_deg", []).append(_feedback_angle(sim))
        del f_tr, f_te
        t = time.time()
        hid = bcfg.hidden
        if hid is None:
            width = sum(circuit.metadata["hidden"]) // len(circuit.metadata["hidden"])
            hid = [width * len(circuit.metadata["streams"])] * len(circuit.metadata["hidden"])
        extra.setdefault("supervised_sizes", [data.n_features, *hid, data.n_classes])
        for rule in [m for m in ("bp", "pc") if m in methods]:
            for lab in labels:
                per_draw, own = [], []
                for ls in draws(lab):     # a net per label draw, trained on those labels only
                    idx = label_subset(y_pool, lab, ls)
                    net = mlp([data.n_features, *hid, data.n_classes], rule=rule,
                              act=bcfg.act, eta=getattr(bcfg.eta, rule))
                    s2 = compile(net, backend=backend, seed=seed, **options)
                    s2.train(x_pool[idx], data.one_hot(y_pool[idx]),
                             epochs=bcfg.epochs_for(len(idx), len(y_pool)), seed=seed,
                             batch_size=bcfg.batch_size)
                    h_tr, h_te = hidden_features(s2, x_pool), hidden_features(s2, x_test)
                    per_draw.append(linear_probe(h_tr, y_pool, h_te, y_test, lab, ls,
                                                 **probe_kw))
                    own.append(s2.evaluate(x_test, y_test))
                record(rule, lab, seed, float(np.mean(per_draw)))
                extra.setdefault(f"{rule}_readout_accuracy", {}).setdefault(
                    str(lab or "all"), []).append(float(np.mean(own)))
        clock("supervised_s", t)
        if checkpoint is not None:
            checkpoint(this_seed)
    for method, per in acc.items():
        results["methods"][method] = {
            lab: {"runs": vals, "mean": float(np.mean(vals)), "std": float(np.std(vals))}
            for lab, vals in per.items()}
    results["decoder"] = {m: {"runs": v, "mean": float(np.mean(v)), "std": float(np.std(v))}
                          for m, v in dec.items()}
    if "mpc" in acc and "random" in acc:   # paired by seed: same data, weights, saccades, draws
        results["mpc_minus_random"] = {
            lab: {"runs": d, "mean": float(np.mean(d)), "std": float(np.std(d)),
                  "spread": float(max(np.std(acc["mpc"][lab]), np.std(acc["random"][lab])))}
            for lab in acc["mpc"]
            for d in [[m - r for m, r in zip(acc["mpc"][lab], acc["random"][lab])]]}
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


#: the table's names of the methods (the paper's names where it has the method)
LONG_NAMES = {"pixels": "pixels", "random": "random (untrained circuit)",
              "kmeans": "k-means per stream", "mpc": "MPC", "bp": "BP (supervised)",
              "pc": "PC (supervised)"}


def _table(results: dict, backend: str) -> str:
    c = results["circuit"]
    ex = results.get("extra", {})
    labs = [str(lab) for lab in results["labels"]]
    paper = results.get("paper") or {}
    pool = ex.get("pool")
    where = results.get("evaluated_on", "test")
    lines = [f"MPC on {results.get('data', 'digits')} glimpses  backend={backend}  "
             f"seeds={results['seeds']}  circuit={c['name']} ({c['populations']} populations, "
             f"{c['projections']} projections, T={c['window']})",
             f"MPC trained on {ex.get('mpc_images', '?')} images; labels drawn from a pool of "
             f"{pool} training images (all = {pool}); scored on {ex.get('test_images', '?')} "
             f"{'test images' if where == 'test' else where}",
             f"linear-probe {'test' if where == 'test' else 'validation'} accuracy (%), mean ± "
             "sd over seeds (probe fitted on N labels; below all, each seed's score is the mean "
             f"of {results['draws']} label draws)"]
    acc_paper = paper.get("accuracy") or {}
    head = f"{'method':28}" + "".join(f"{'N=' + lab:>15}" for lab in labs)
    lines.append(head + ("   paper (all labels)" if acc_paper else ""))
    for method, per in results["methods"].items():
        row = f"{LONG_NAMES.get(method, method):28}" + "".join(
            f"{per[lab]['mean'] * 100:>8.2f} ± {per[lab]['std'] * 100:4.2f}" for lab in labs)
        lines.append(row + (f"   {acc_paper[method]}" if method in acc_paper else ""))
    diff = results.get("mpc_minus_random")
    if diff:
        lines.append(f"{'MPC − random (paired)':28}" + "".join(
            f"{diff[lab]['mean'] * 100:>+8.2f} ± {diff[lab]['std'] * 100:4.2f}" for lab in labs))
        lines.append(f"{'  seed spread (larger sd)':28}" + "".join(
            f"{diff[lab]['spread'] * 100:>15.2f}" for lab in labs))
    if "mpc" in results["methods"] and "bp" in results["methods"]:
        gap = [(results["methods"]["bp"][lab]["mean"] - results["methods"]["mpc"][lab]["mean"])
               * 100 for lab in labs]
        lines.append(f"{'BP − MPC':28}" + "".join(f"{g:>+15.2f}" for g in gap))
    for rule in ("bp", "pc"):
        own = ex.get(f"{rule}_readout_accuracy")
        if isinstance(own, dict) and all(lab in own for lab in labs):
            lines.append(f"{rule + ' own output':28}" + "".join(
                f"{np.mean(own[lab]) * 100:>8.2f} ± {np.std(own[lab]) * 100:4.2f}"
                for lab in labs))
    dec = results.get("decoder", {})
    if dec:
        dec_paper = paper.get("decoder") or {}
        lines.append("decoder MSE (1024-ReLU decoder; test mean of the summed squared pixel "
                     "error, the paper's Dec-MSE):")
        for m, v in dec.items():
            lines.append(f"  {LONG_NAMES.get(m, m):26}{v['mean']:>9.3f} ± {v['std']:.3f}"
                         + (f"   paper: {dec_paper[m]}" if m in dec_paper else ""))
    if paper.get("source"):
        lines.append(f"paper: {paper['source']}")
    if ex:
        lines.append(f"feature dim (mpc/random) {ex.get('feature_dim')}; active fraction "
                     f"{np.mean(ex.get('mpc_active_fraction', [0])):.3f}; learned-feedback angle "
                     f"to transpose {np.mean(ex.get('feedback_angle_deg', [0])):.2f} deg"
                     + (f"; supervised nets {'-'.join(map(str, ex['supervised_sizes']))}"
                        if "supervised_sizes" in ex else ""))
    tm = results.get("timing", {})
    lines.append("seconds per seed: " + ", ".join(
        f"{k}={np.sum(v) / max(1, len(results['seeds'])):.1f}" for k, v in tm.items()))
    return "\n".join(lines)


def label_counts(results: dict) -> list[int]:
    """The label budgets as numbers ("all" = the pool's size)."""
    pool = (results.get("extra") or {}).get("pool")
    return [int(pool) if (lab == "all" and pool) else (None if lab == "all" else int(lab))
            for lab in results["labels"]]


def figures(results: dict) -> dict:
    """``sample_efficiency.png`` (probe accuracy against the number of labels, log
    axis, every method; like the paper's Fig. 7) from the results (``{}`` without
    the plot extra)."""
    from neuro_pc.experiments.plots import style

    plt = pyplot()
    if plt is None:  # the plot extra is not installed: results only
        return {}
    labs = [str(lab) for lab in results["labels"]]
    counts = label_counts(results)
    numeric = all(n is not None for n in counts)
    xs = np.array(counts, dtype=float) if numeric else np.arange(len(labs))
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    for k, (method, per) in enumerate(results["methods"].items()):
        m = np.array([per[lab]["mean"] for lab in labs]) * 100
        sd = np.array([per[lab]["std"] for lab in labs]) * 100
        line, = ax.plot(xs, m, label=LONG_NAMES.get(method, method), **style(k))
        ax.fill_between(xs, m - sd, m + sd, color=line.get_color(), alpha=0.15, linewidth=0)
    if numeric:
        ax.set_xscale("log")
        ax.set_xticks(xs, [f"{n}" + (" (all)" if lab == "all" else "")
                           for n, lab in zip(counts, labs)], fontsize=7)
        ax.minorticks_off()
    else:
        ax.set_xticks(xs, labs)
    where = results.get("evaluated_on", "test")
    ax.set_xlabel("labelled training images (probe; supervised nets)")
    ax.set_ylabel(f"{'test' if where == 'test' else 'validation'} accuracy (%)")
    ax.set_title(f"{results.get('data', 'digits')}: accuracy vs labels, "
                 f"{len(results['seeds'])} seeds (mean ± sd)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    plt.close(fig)
    return {"sample_efficiency.png": fig}


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
