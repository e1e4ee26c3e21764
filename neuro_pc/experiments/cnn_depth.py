"""The CNN depth study: does FA's error signal lose rank in deeper CNNs, and do
hidden-activity normalisation and Muon bring it back?

The question is the rank-collapse paper's (Boeshertz, Pascanu, Clopath,
"Overcoming Rank Collapse in Feedback Alignment", arXiv 2606.11123), asked where
it says the effect lives: convolutional nets. For every depth (number of conv
layers), variant and seed: build the CNN (:func:`neuro_pc.models.cnn`), train it
in the reference backend's batched mode (float32 by default), and record with
:class:`neuro_pc.analysis.AlignmentRecorder` on a fixed probe batch of training
samples, before training and after every epoch: per layer, the angle of the
error signal and of the update to BP's on the same weights, the kernel
alignment ``angle(K_{l+1}, B_l)``, and the effective ranks (entropy effective
rank, participation ratio, stable rank) of the error signals, over samples
(``batch × C·H·W``) and over channels (``batch·H·W × C``).

Variants are :func:`neuro_pc.experiments.rank_collapse.parse_variant` names:
``bp``, ``fa``, ``dfa``, ``kp``, ``ss``, ``fa_layernorm``, ``fa_muon``,
``fa_layernorm_muon``… Accuracy is on the test set, or with ``data.validation =
N`` on N held-out training samples (how the hyperparameters were chosen).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time

import numpy as np

from neuro_pc.analysis import AlignmentRecorder
from neuro_pc.backends import compile
from neuro_pc.experiments import Outcome, pyplot
from neuro_pc.experiments.config import (Backends, ConfigError, Experiment, coerce,
                                         dataset_problem, option, section, unknown_key)
from neuro_pc.experiments.jobs import run_jobs
from neuro_pc.experiments.rank_collapse import Run, parse_variant
from neuro_pc.models import ACTIVATIONS
from neuro_pc.models.conv import CNN_RULES, cnn
from neuro_pc.numerics import NonFiniteError

#: the data sets this kind can use (images: ``C=1``, square)
IMAGE_SETS = ("mnist", "digits")


def _variant_problem(name: str) -> str | None:
    try:
        rule, _ = parse_variant(name)
    except ValueError as exc:
        return str(exc)
    if rule not in CNN_RULES:
        return (f"variant {name!r}: rule {rule!r} has no CNN builder; choose one of "
                f"{', '.join(CNN_RULES)}")
    return None


# -- the config schema ---------------------------------------------------------------------------

@dataclasses.dataclass
class Data:
    """``[data]``: the images, optionally subsampled (``limit_train``/``limit_test``:
    the first N of the official split); ``validation = N`` holds N training samples
    out (drawn with ``split_seed``) and reports accuracy on them instead of the test set."""
    name: str = option("mnist", choices=IMAGE_SETS)
    limit_train: int | None = option(None, ge=1)
    limit_test: int | None = option(None, ge=1)
    validation: int = option(0, ge=0)
    split_seed: int = option(0, ge=0)

    def check(self, key: str) -> None:
        problem = dataset_problem(self.name)
        if problem:
            raise ConfigError(f"{key}.name" if key else "name", problem)
        if self.name == "digits" and (self.limit_train or self.limit_test):
            raise ConfigError(f"{key}.limit_train", "the 'digits' loader takes no limits "
                              "(it has 1797 images); leave limit_train and limit_test out")

    # what compare_rules' splitter reads
    standardize = False

    def loader_options(self) -> dict:
        if self.name == "digits":
            return {}
        return {k: getattr(self, k) for k in ("limit_train", "limit_test")
                if getattr(self, k) is not None}


@dataclasses.dataclass
class Model:
    """``[model]``: ``depths`` (conv layers per net); conv layer ``l`` has
    ``channels[l-1]`` channels and stride ``strides[l-1]`` (layers past the lists:
    the last channel count, stride 1); every kernel ``kernel x kernel`` with
    padding ``kernel // 2``; then the dense linear readout."""
    depths: list[int] = option([2, 4, 6, 8], ge=1, unique=True, min_len=1)
    channels: list[int] = option([16, 32], ge=1, min_len=1)
    strides: list[int] = option([2, 2], ge=1)
    kernel: int = option(3, ge=1)
    act: str = option("relu", choices=tuple(ACTIVATIONS))
    init: str = option("xavier", choices=("xavier", "he"))

    def layers(self, depth: int) -> tuple[list[int], list[int]]:
        """``(channels, strides)`` of a net of ``depth`` conv layers."""
        ch = [self.channels[min(l, len(self.channels) - 1)] for l in range(depth)]
        st = [self.strides[l] if l < len(self.strides) else 1 for l in range(depth)]
        return ch, st


@dataclasses.dataclass
class Train:
    """``[train]``: eta is one number or a table per variant / rule (a variant's
    own entry first, then its rule's, then ``default_eta``); ``feedback_scale``
    (multiplies FA's and DFA's random feedback initialisation) likewise, the
    fallback 1.0."""
    variants: list[str] = option(["bp", "fa", "dfa", "kp", "fa_layernorm", "fa_muon",
                                  "fa_layernorm_muon"], unique=True, min_len=1,
                                 check=lambda vs: next(
                                     (p for p in map(_variant_problem, vs) if p), None))
    seeds: list[int] = option([0, 1, 2], ge=0, unique=True, min_len=1)
    epochs: int = option(5, ge=0)
    batch_size: int = option(32, ge=1)
    dtype: str = option("float32", choices=("float32", "float64"))
    eta: float | dict[str, float] = option(0.02, gt=0)
    default_eta: float = option(0.02, gt=0)
    feedback_scale: float | dict[str, float] = option(1.0, gt=0)
    lam: float = option(1e-4, ge=0)
    muon_beta: float = option(0.95, ge=0, lt=1)
    muon_lr: float = option(0.02, gt=0)

    def check(self, key: str) -> None:
        known = [*self.variants, *CNN_RULES]
        for name in ("eta", "feedback_scale"):
            table = getattr(self, name)
            if isinstance(table, dict):
                for k in table:
                    if k not in known:
                        raise unknown_key(f"{key}.{name}", k, list(dict.fromkeys(known)))

    def eta_of(self, variant: str) -> float:
        rule, _ = parse_variant(variant)
        if isinstance(self.eta, dict):
            return self.eta.get(variant, self.eta.get(rule, self.default_eta))
        return self.eta

    def feedback_scale_of(self, variant: str) -> float:
        """The scale of ``variant``'s random feedback (its entry, its rule's, else 1.0)."""
        rule, _ = parse_variant(variant)
        if isinstance(self.feedback_scale, dict):
            return self.feedback_scale.get(variant, self.feedback_scale.get(rule, 1.0))
        return self.feedback_scale


@dataclasses.dataclass
class Record:
    """``[record]``: the probe batch (the first ``samples`` training samples) and how
    often to record (every ``every`` epochs; always before training)."""
    samples: int = option(256, ge=1)
    every: int = option(1, ge=1)


@dataclasses.dataclass
class Config:
    """The ``cnn_depth`` experiment's config (see docs/configs.md)."""
    experiment: Experiment = section(Experiment)
    data: Data = section(Data)
    model: Model = section(Model)
    train: Train = section(Train)
    record: Record = section(Record)
    run: Run = section(Run)
    backend: Backends = section(Backends)

    def check(self, key: str = "") -> None:
        if self.experiment.backend != "reference":
            raise ConfigError("experiment.backend", f"{self.experiment.backend!r} cannot train "
                              "these CNNs: learning a shared kernel is the reference "
                              "backend's only (Brian2 and Loihi's learning engine update each "
                              "synapse on its own; docs/semantics.md, 'Convolutional projections'); use "
                              "'reference' and deploy trained artifacts")


# -- data and circuits --------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _load(data_cfg_items: tuple):
    from neuro_pc.experiments.compare_rules import _data

    return _data(Data(**dict(data_cfg_items)))


def _data_of(cfg: Config):
    return _load(tuple(sorted(dataclasses.asdict(cfg.data).items())))


def image_shape(n_features: int) -> tuple[int, int, int]:
    """``(1, s, s)`` for square images of ``s*s`` pixels."""
    s = math.isqrt(n_features)
    if s * s != n_features:
        raise ConfigError("data.name", f"{n_features} features are not a square image")
    return (1, s, s)


def build(variant: str, depth: int, in_shape, n_out: int, model: Model, train: Train):
    """The circuit of one (variant, depth)."""
    rule, opts = parse_variant(variant)
    ch, st = model.layers(depth)
    return cnn(in_shape, ch, n_out, kernels=model.kernel, strides=st, rule=rule,
               act=model.act, eta=train.eta_of(variant), lam=train.lam if rule == "kp" else 0.0,
               muon_beta=train.muon_beta, muon_lr=train.muon_lr, init=model.init,
               feedback_scale=train.feedback_scale_of(variant), **opts)


def _one(job: tuple, cfg: Config, options: dict, artifacts=None) -> dict:
    """Train one (depth, variant, seed) and record it; returns the run's results."""
    depth, variant, seed = job
    train, rec_cfg = cfg.train, cfg.record
    data = _data_of(cfg)
    in_shape = image_shape(data.n_features)
    circuit = build(variant, depth, in_shape, data.n_classes, cfg.model, train)
    sim = compile(circuit, backend="reference", seed=seed, dtype=train.dtype, **options)
    Y = data.one_hot(data.y_train)
    n_probe = min(rec_cfg.samples, len(Y))
    rec = AlignmentRecorder(circuit, data.x_train[:n_probe], Y[:n_probe], every=rec_cfg.every)
    t_rec = time.perf_counter()
    rec.record(sim.weights, -1, sim=sim)
    rec_seconds = time.perf_counter() - t_rec
    curve = []

    def callback(epoch, s):
        nonlocal rec_seconds
        curve.append(s.evaluate(data.x_test, data.y_test))
        t = time.perf_counter()
        rec(epoch, s)
        rec_seconds += time.perf_counter() - t

    t0 = time.perf_counter()
    diverged = None
    try:
        # a diverging run overflows on its way to NaN: the end-of-epoch check says so, once
        with np.errstate(over="ignore", invalid="ignore"):
            sim.train(data.x_train, Y, epochs=train.epochs, seed=seed,
                      batch_size=train.batch_size, progress=False, callback=callback)
    except NonFiniteError as exc:   # reported as such (a sweep goes on); never averaged in
        diverged = str(exc).split(";")[0]
    seconds = time.perf_counter() - t0
    out = {"depth": depth, "variant": variant, "seed": seed, "diverged": diverged,
           "accuracy": None if diverged else (curve[-1] if curve else None), "curve": curve,
           "epochs": train.epochs,
           "seconds": round(seconds, 2), "record_seconds": round(rec_seconds, 2),
           "sizes": circuit.metadata["sizes"], "channels": circuit.metadata["channels"],
           "strides": circuit.metadata["strides"], "record": rec.results()}
    if artifacts is not None and not diverged:
        out["artifact"] = artifacts.save(
            f"depth{depth}-{variant}-seed{seed}", sim, experiment=cfg.experiment.name,
            rule=variant, task="classification",
            data={"name": cfg.data.name, "seed": cfg.data.split_seed,
                  "options": cfg.data.loader_options()},
            epochs=train.epochs, test_accuracy=out["accuracy"],
            backend_options={"dtype": train.dtype})
    return out


def preflight(config) -> None:
    """Load the data and build every circuit (errors before anything trains)."""
    circuits(config)


def circuits(config) -> dict:
    """The circuits this experiment trains, by name."""
    cfg = coerce(Config, config)
    data = _data_of(cfg)
    shape = image_shape(data.n_features)
    out = {}
    for depth in cfg.model.depths:
        for v in cfg.train.variants:
            c = build(v, depth, shape, data.n_classes, cfg.model, cfg.train)
            out[c.name] = c
    return out


# -- running and aggregating --------------------------------------------------------------------

def run(config, backend: str | None = None, progress: bool = True,
        checkpoint=None, artifacts=None) -> Outcome:
    """Train every (depth, variant, seed), ``[run] workers`` at a time (processes),
    and aggregate. ``checkpoint(entry)`` gets each finished job's results."""
    cfg = coerce(Config, config)
    if backend not in (None, "reference"):
        raise ConfigError("experiment.backend", f"{backend!r}: cnn_depth trains on the "
                          "reference backend only (shared-kernel learning)")
    options = cfg.backend.options("reference")
    depths, variants, seeds = list(cfg.model.depths), list(cfg.train.variants), \
        list(cfg.train.seeds)
    jobs = [(d, v, s) for d in depths for v in variants for s in seeds]
    # seed by seed (an interrupted run leaves whole seeds in partial.json), within a seed
    # longest first (deep, normalised) so that the workers finish together
    order = sorted(jobs, key=lambda j: (seeds.index(j[2]),
                                        -(j[0] * (2 if "norm" in j[1] else 1))))
    data = _data_of(cfg)
    started = time.time()
    done = []

    def finished(r):
        done.append(r)
        if progress:
            acc = f"DIVERGED ({r['diverged']})" if r["diverged"] else \
                f"accuracy {r['accuracy']:.4f}"
            print(f"[{len(done)}/{len(jobs)} {time.time() - started:6.0f} s] depth "
                  f"{r['depth']} {r['variant']:18} seed {r['seed']}: {acc} ({r['seconds']:.0f} "
                  f"s + {r['record_seconds']:.0f} s recording)", flush=True)
        if checkpoint is not None:
            checkpoint(r)

    failures = []
    run_jobs(functools.partial(_one, cfg=cfg, options=options, artifacts=artifacts), order,
             workers=cfg.run.workers, on_done=lambda job, r: finished(r),
             on_error=lambda job, failure: failures.append(failure))
    if failures:   # every other job ran and was recorded; fail with the first error
        failures[0].reraise()
    results = {"depths": depths, "variants": variants, "seeds": seeds,
               "data": {"name": cfg.data.name, "train": int(len(data.y_train)),
                        "evaluation": int(len(data.y_test)),
                        "evaluated_on": "validation" if cfg.data.validation else "test"},
               "channels": list(cfg.model.channels), "strides": list(cfg.model.strides),
               "kernel": cfg.model.kernel, "act": cfg.model.act, "init": cfg.model.init,
               "eta": {v: cfg.train.eta_of(v) for v in variants},
               "feedback_scale": {v: cfg.train.feedback_scale_of(v) for v in variants},
               "muon_lr": cfg.train.muon_lr, "epochs": cfg.train.epochs,
               "batch_size": cfg.train.batch_size, "dtype": cfg.train.dtype,
               "probe_samples": min(cfg.record.samples, len(data.y_train)),
               "workers": cfg.run.workers, "results": {}}
    for d in depths:
        results["results"][str(d)] = {}
        for v in variants:
            runs = sorted((r for r in done if r["depth"] == d and r["variant"] == v),
                          key=lambda r: r["seed"])
            results["results"][str(d)][v] = aggregate(runs)
    results["seconds_total"] = round(time.time() - started, 1)
    return Outcome(results=results, summary=summary(results), figures=figures(results))


def conv_layers(rec: dict) -> list[str]:
    """The recorded conv layers (hidden populations with a channel view)."""
    return [l for l in rec["layers"] if l in rec["rank"].get("signal_channels", {})]


def _ms(values) -> dict:
    a = np.asarray(values, dtype=float)
    return {"mean": float(np.mean(a)), "sd": float(np.std(a))} if a.size else \
        {"mean": float("nan"), "sd": float("nan")}


def aggregate(runs: list[dict]) -> dict:
    """Mean ± sd over seeds of a (depth, variant)'s runs: accuracy, each rank measure of
    the error signal (mean over conv layers, per layer, and over training), angles.
    Diverged runs are counted (``diverged``) and left out of every mean."""
    ok = [r for r in runs if not r.get("diverged")]
    recs = [r["record"] for r in ok]
    out = {"accuracy": _ms([r["accuracy"] for r in ok]),
           "diverged": len(runs) - len(ok), "n": len(runs)}
    if not recs:
        return {**out, "runs": runs}
    layers = conv_layers(recs[0])
    out["layers"] = layers
    for kind in ("signal", "signal_bp", "signal_channels", "signal_channels_bp"):
        for m in ("erank", "participation_ratio", "stable_rank"):
            per_run = np.array([[rec["rank"][kind][l][m] for l in layers] for rec in recs])
            # per_run: (seeds, layers, records)
            out[f"{kind}/{m}"] = _ms(per_run[:, :, -1].mean(axis=1))
            out[f"{kind}/{m}/per_layer"] = [_ms(per_run[:, k, -1]) for k in range(len(layers))]
            out[f"{kind}/{m}/over_training"] = [_ms(per_run[:, :, t].mean(axis=1))
                                                for t in range(per_run.shape[2])]
    for series, items in (("angle_signal_deg", layers), ("angle_update_deg", None)):
        if items is None:      # the hidden layers' kernels (not the dense readout)
            items = recs[0]["projections"][:-1]
        per_run = np.array([[rec[series][i] for i in items] for rec in recs])
        out[series] = _ms(per_run[:, :, -1].mean(axis=1))
        out[f"{series}/per_layer"] = [_ms(per_run[:, k, -1]) for k in range(len(items))]
        out[f"{series}/over_training"] = [_ms(per_run[:, :, t].mean(axis=1))
                                          for t in range(per_run.shape[2])]
    wa = [np.mean([v["angle_deg"][-1] for v in rec["weight_alignment"].values()])
          for rec in recs if rec.get("weight_alignment")]
    out["weight_angle_deg"] = _ms(wa) if wa else None
    out["seconds"] = _ms([r["seconds"] for r in ok])
    return {**out, "runs": runs}


def _pm(d: dict, scale: float = 1.0, digits: int = 1) -> str:
    if d is None or not np.isfinite(d["mean"]):
        return "-"
    return f"{scale * d['mean']:.{digits}f} ± {scale * d['sd']:.{digits}f}"


def _acc(r: dict) -> str:
    """Accuracy (%) mean ± sd, with the diverged runs counted."""
    text = _pm(r["accuracy"], 100, 2)
    return text + (f" ({r['diverged']}/{r['n']} div.)" if r.get("diverged") else "")


def summary(results: dict) -> str:
    """The tables the run prints (and writes to summary.txt)."""
    depths, variants = results["depths"], results["variants"]
    R = results["results"]
    d = results["data"]
    lines = [f"cnn depth: {d['name']} ({d['train']} training samples, accuracy on "
             f"{d['evaluation']} {d['evaluated_on']} samples)  channels={results['channels']} "
             f"strides={results['strides']} kernel={results['kernel']} act={results['act']} "
             f"init={results.get('init', 'xavier')}  "
             f"epochs={results['epochs']} batch={results['batch_size']} {results['dtype']}  "
             f"seeds={results['seeds']}  probe={results['probe_samples']}  "
             f"({results['seconds_total']:.0f} s)"]
    if "eta" in results:
        lines.append("eta: " + ", ".join(f"{v} {e:g}" for v, e in results["eta"].items())
                     + f"; muon_lr {results['muon_lr']:g}")
    scaled = {v: x for v, x in results.get("feedback_scale", {}).items() if x != 1.0}
    if scaled:
        lines.append("feedback_scale: " + ", ".join(f"{v} {x:g}" for v, x in scaled.items()))
    blocks = [
        ("accuracy (%), mean ± sd over seeds (div.: runs that diverged, left out)", _acc),
        ("erank of the error signal (batch x C·H·W), mean over conv layers",
         lambda r: _pm(r.get("signal/erank"))),
        ("erank of BP's error signal on the same weights",
         lambda r: _pm(r.get("signal_bp/erank"))),
        ("channel erank of the error signal (batch·H·W x C), mean over conv layers",
         lambda r: _pm(r.get("signal_channels/erank"), digits=2)),
        ("participation ratio / stable rank of the error signal",
         lambda r: "-" if "signal/stable_rank" not in r else
         f"{r['signal/participation_ratio']['mean']:.1f} / "
         f"{r['signal/stable_rank']['mean']:.2f}"),
        ("angle of the error signal to BP's (deg), mean over conv layers",
         lambda r: _pm(r.get("angle_signal_deg"))),
        ("angle of the update to BP's (deg), mean over hidden weights",
         lambda r: _pm(r.get("angle_update_deg"))),
        ("angle K_{l+1} vs B_l (deg), mean over feedback",
         lambda r: _pm(r.get("weight_angle_deg"))),
    ]
    for title, fmt in blocks:
        cells = {v: [fmt(R[str(x)][v]) for x in depths] for v in variants}
        # every column as wide as its widest cell (a "(1/3 div.)" note widens it), one
        # space at least between columns
        w = max([16] + [len(c) + 2 for row in cells.values() for c in row])
        lines += [f"-- {title}", f"{'variant':20}" + "".join(f"{f'{x} conv':>{w}}"
                                                             for x in depths)]
        for v in variants:
            lines.append(f"{v:20}" + "".join(f"{c:>{w}}" for c in cells[v]))
    return "\n".join(lines)


def figures(results: dict) -> dict:
    """``accuracy_vs_depth.png``, ``erank_vs_depth.png``, ``erank_over_training.png``
    and ``erank_per_layer.png`` (``{}`` without the plot extra)."""
    plt = pyplot()
    if plt is None:
        return {}
    depths, variants = results["depths"], results["variants"]
    R = results["results"]
    figs = {}
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, v in enumerate(variants):
        m = [100 * R[str(d)][v]["accuracy"]["mean"] for d in depths]
        s = [100 * R[str(d)][v]["accuracy"]["sd"] for d in depths]
        ax.errorbar(depths, m, yerr=s, marker="o", capsize=3, color=f"C{k}", label=v)
    ax.set(xlabel="conv layers", ylabel=f"{results['data']['evaluated_on']} accuracy (%)",
           title=f"{results['data']['name']}: accuracy vs depth", xticks=depths)
    ax.legend(fontsize=7)
    fig.tight_layout()
    figs["accuracy_vs_depth.png"] = fig
    def get(d, v, key, what="mean"):
        x = R[str(d)][v].get(key)
        return float("nan") if x is None else x[what]

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, kind, title in ((axes[0], "signal", "over samples (batch x C·H·W)"),
                            (axes[1], "signal_channels", "over channels (batch·H·W x C)")):
        for k, v in enumerate(variants):
            m = [get(d, v, f"{kind}/erank") for d in depths]
            s = [get(d, v, f"{kind}/erank", "sd") for d in depths]
            ax.errorbar(depths, m, yerr=s, marker="o", capsize=3, color=f"C{k}", label=v)
            if v == "fa":
                bp = [get(d, v, f"{kind}_bp/erank") for d in depths]
                ax.plot(depths, bp, ls=":", color=f"C{k}", label="BP δ on fa's weights")
        ax.set(xlabel="conv layers", ylabel="erank, mean over conv layers",
               title=f"error-signal erank {title}", xticks=depths)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    figs["erank_vs_depth.png"] = fig
    fig, axes = plt.subplots(1, len(depths), figsize=(3.8 * len(depths), 3.4), squeeze=False)
    for ax, d in zip(axes[0], depths):
        for k, v in enumerate(variants):
            series = R[str(d)][v].get("signal/erank/over_training", [])
            x = np.arange(len(series))
            m = np.array([p["mean"] for p in series])
            s = np.array([p["sd"] for p in series])
            ax.plot(x, m, color=f"C{k}", label=v)
            ax.fill_between(x, m - s, m + s, color=f"C{k}", alpha=0.15)
        ax.set(title=f"{d} conv layers", xlabel="epochs trained")
    axes[0, 0].set_ylabel("erank of the error signal")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    figs["erank_over_training.png"] = fig
    fig, axes = plt.subplots(1, len(depths), figsize=(3.8 * len(depths), 3.4), squeeze=False)
    for ax, d in zip(axes[0], depths):
        for k, v in enumerate(variants):
            per = R[str(d)][v].get("signal/erank/per_layer", [])
            ax.plot(range(1, len(per) + 1), [p["mean"] for p in per], marker="o",
                    color=f"C{k}", label=v)
        ax.set(title=f"{d} conv layers", xlabel="conv layer", xticks=range(1, d + 1))
    axes[0, 0].set_ylabel("erank at the end of training")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    figs["erank_per_layer.png"] = fig
    for f in figs.values():
        plt.close(f)
    return figs
