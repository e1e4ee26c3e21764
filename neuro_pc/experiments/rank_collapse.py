"""Rank collapse in feedback alignment: BP vs FA vs FA+normalisation vs FA+Muon over depth.

The question (seed paper: Boeshertz, Pascanu, Clopath, "Overcoming Rank Collapse
in Feedback Alignment", arXiv 2606.11123): is the error signal FA delivers
through fixed random feedback of lower effective rank than BP's, does that get
worse with depth, and do hidden-activity normalisation and Muon raise it and
recover accuracy?

For every data set, depth (number of hidden layers), variant and seed: build
the MLP circuit (:func:`neuro_pc.models.mlp`), train it in the reference
backend's batched mode (``batch_size`` > 1), and record with
:class:`neuro_pc.analysis.AlignmentRecorder` on a fixed probe batch of training
samples, before training and after every epoch: the angle of each layer's
error signal and update to BP's on the same weights, the ``Wᵀ``–``B`` angle and
norm ratio, and the effective ranks of error signals and updates.

Variants are named ``<rule>[_layernorm|_batchnorm][_muon]``: ``bp``, ``fa``,
``fa_layernorm``, ``fa_muon``, ``bp_layernorm``… (see :func:`parse_variant`).

Muon's step size: the rules of ``muon=True`` circuits carry ``muon_lr``; the
reference simulator scales each layer's orthogonalised update to
``muon_lr · max(1, rows/cols)^½`` (Keller Jordan's shape factor times a rate).
"""
from __future__ import annotations

import dataclasses
import functools
import time

import numpy as np

from neuro_pc.analysis import AlignmentRecorder
from neuro_pc.backends import compile
from neuro_pc.data import load_dataset
from neuro_pc.experiments import Outcome, pyplot
from neuro_pc.experiments.config import (Backends, ConfigError, Experiment, coerce,
                                         dataset_problem, option, require_reference_modes,
                                         section, unknown_key)
from neuro_pc.experiments.jobs import run_jobs
from neuro_pc.models import ACTIVATIONS, RULES, mlp

NORM_TAGS = ("layernorm", "batchnorm")


def parse_variant(name: str) -> tuple[str, dict]:
    """``"fa_layernorm_muon"`` -> ``("fa", {"norm": "layernorm", "muon": True})``."""
    parts = name.split("_")
    rule, opts = parts[0], {}
    for p in parts[1:]:
        if p in NORM_TAGS:
            opts["norm"] = p
        elif p == "muon":
            opts["muon"] = True
        else:
            raise ValueError(f"variant {name!r}: unknown part {p!r}; write "
                             "<rule>[_layernorm|_batchnorm][_muon], e.g. fa_layernorm")
    return rule, opts


def _variant_problem(name: str) -> str | None:
    try:
        rule, _ = parse_variant(name)
    except ValueError as exc:
        return str(exc)
    if rule not in RULES:
        return f"variant {name!r}: unknown rule {rule!r}; choose one of {', '.join(RULES)}"
    return None


# -- the config schema (defaults declared here, once) ------------------------------------------

DATASETS = ("digits", "mnist1d")


@dataclasses.dataclass
class Data:
    """``[data]``: named data sets, and MNIST when a local copy is given."""
    names: list[str] = option(["digits", "mnist1d"], choices=DATASETS, unique=True)
    mnist1d_n: int = option(4000, ge=10, check=lambda v: None if v % 10 == 0 else
                            f"must be a multiple of 10, got {v}")
    mnist_path: str = ""
    mnist_limit_train: int | None = option(None, ge=0)   # 0 or unset: every sample
    mnist_limit_test: int | None = option(None, ge=0)

    def check(self, key: str) -> None:
        for i, name in enumerate(self.names):
            problem = dataset_problem(name)
            if problem:
                raise ConfigError(f"{key}.names[{i}]", problem)
        if self.mnist_path.strip():
            problem = dataset_problem(f"mnist:{self.mnist_path.strip()}")
            if problem:
                raise ConfigError(f"{key}.mnist_path", problem)
        elif not self.names:
            raise ConfigError(f"{key}.names", "is empty and no mnist_path is given: "
                                              "nothing to train on")


@dataclasses.dataclass
class Model:
    depths: list[int] = option([2, 4, 6, 8], ge=1, unique=True, min_len=1)
    width: int = option(64, ge=1)
    act: str = option("tanh", choices=ACTIVATIONS)


@dataclasses.dataclass
class Train:
    """``[train]``: eta is one number or a table per variant / rule (default 0.05);
    epochs one integer or a table per data set (``default``: 10)."""
    variants: list[str] = option(["bp", "fa", "fa_layernorm", "fa_muon"], unique=True,
                                 min_len=1, check=lambda vs: next(
                                     (p for p in map(_variant_problem, vs) if p), None))
    seeds: list[int] = option([0], ge=0, unique=True, min_len=1)
    batch_size: int = option(32, ge=1)
    eta: float | dict[str, float] = option(0.05, gt=0)
    muon_beta: float = option(0.95, ge=0, lt=1)
    muon_lr: float = option(0.02, gt=0)
    epochs: int | dict[str, int] = option(10, ge=0, keys=(*DATASETS, "mnist", "default"))

    def check(self, key: str) -> None:
        if isinstance(self.eta, dict):
            known = [*self.variants, *RULES]
            for k in self.eta:
                if k not in known:
                    raise unknown_key(f"{key}.eta", k, list(dict.fromkeys(known)))

    def eta_of(self, variant: str) -> float:
        rule, _ = parse_variant(variant)
        if isinstance(self.eta, dict):
            return self.eta.get(variant, self.eta.get(rule, 0.05))
        return self.eta

    def epochs_of(self, dataset: str) -> int:
        if isinstance(self.epochs, dict):
            return self.epochs.get(dataset, self.epochs.get("default", 10))
        return self.epochs


@dataclasses.dataclass
class Record:
    samples: int = option(512, ge=1)
    every: int = option(1, ge=1)


@dataclasses.dataclass
class Run:
    workers: int = option(2, ge=1)


@dataclasses.dataclass
class Config:
    """The ``rank_collapse`` experiment's config (see docs/configs.md)."""
    experiment: Experiment = section(Experiment)
    data: Data = section(Data)
    model: Model = section(Model)
    train: Train = section(Train)
    record: Record = section(Record)
    run: Run = section(Run)
    backend: Backends = section(Backends)

    def check(self, key: str = "") -> None:
        require_reference_modes(self.train, self.experiment.backend)


def _datasets(data_cfg: Data) -> list[tuple[str, dict]]:
    out = []
    for name in data_cfg.names:
        kw = {}
        if name == "mnist1d":
            kw["n"] = data_cfg.mnist1d_n
        out.append((name, kw))
    path = data_cfg.mnist_path.strip()
    if path:
        kw = {"limit_train": data_cfg.mnist_limit_train,
              "limit_test": data_cfg.mnist_limit_test}
        out.append((f"mnist:{path}", {k: int(v) for k, v in kw.items() if v}))
    return out


def _build(variant: str, sizes, model: Model, train: Train):
    rule, opts = parse_variant(variant)
    return mlp(sizes, rule=rule, act=model.act, eta=train.eta_of(variant),
               muon_beta=train.muon_beta, muon_lr=train.muon_lr, **opts)


@functools.lru_cache(maxsize=8)
def _load(name: str, seed: int, kw: tuple):
    return load_dataset(name, seed=seed, **dict(kw))


def _one(job: tuple, *, cfg: Config, backend: str, options: dict, artifacts=None) -> dict:
    """Train one (data set, depth, variant, seed) and record it; returns the run's results."""
    data_name, data_kw, depth, variant, seed = job
    model, train, rec_cfg = cfg.model, cfg.train, cfg.record
    data = _load(data_name, seed, tuple(sorted(data_kw.items())))
    epochs = train.epochs_of(data.name)
    n_probe = rec_cfg.samples
    sizes = [data.n_features, *([model.width] * depth), data.n_classes]
    circuit = _build(variant, sizes, model, train)
    sim = compile(circuit, backend=backend, seed=seed, **options)
    Y = data.one_hot(data.y_train)
    rec = AlignmentRecorder(circuit, data.x_train[:n_probe], Y[:n_probe], every=rec_cfg.every)
    rec.record(sim.weights, -1, sim=sim)
    curve = []

    def callback(epoch, s):
        curve.append(s.evaluate(data.x_test, data.y_test))
        rec(epoch, s)

    t0 = time.time()
    sim.train(data.x_train, Y, epochs=epochs, seed=seed, batch_size=train.batch_size,
              progress=False, callback=callback)
    out = {"dataset": data.name, "depth": depth, "variant": variant, "seed": seed,
           "test_accuracy": curve[-1] if curve else None, "curve": curve, "epochs": epochs,
           "seconds": round(time.time() - t0, 2), "sizes": sizes, "record": rec.results()}
    if artifacts is not None:   # written by the worker: the store holds only the folder
        out["artifact"] = artifacts.save(
            f"{data.name}-depth{depth}-{variant}-seed{seed}", sim,
            experiment=cfg.experiment.name, rule=variant, task="classification",
            data={"name": data_name, "seed": seed, "options": dict(data_kw)}, epochs=epochs,
            test_accuracy=out["test_accuracy"], backend_options=options)
    return out


def run(config, backend: str | None = None, progress: bool = True,
        checkpoint=None, artifacts=None) -> Outcome:
    """Train every (data set, depth, variant, seed), ``[run] workers`` at a time (joblib
    worker processes, :func:`~neuro_pc.experiments.jobs.run_jobs`; default 2, this
    machine's cores; on the Lava backend each job in a process of its own), and
    aggregate. ``checkpoint(entry)`` gets each job's results as it finishes; a failing
    job does not stop the others, and the run fails with the first error once every
    job has run."""
    cfg = coerce(Config, config)
    model, train = cfg.model, cfg.train
    backend = backend or cfg.experiment.backend
    options = cfg.backend.options(backend)
    depths, variants, seeds = list(model.depths), list(train.variants), list(train.seeds)
    workers = cfg.run.workers
    jobs = [(name, kw, d, v, s) for name, kw in _datasets(cfg.data)
            for d in depths for v in variants for s in seeds]
    # longest first (deep, normalised) so that the workers finish together
    order = sorted(jobs, key=lambda j: -((2 * j[2] + 3) * (j[2] + 1)
                                          * (3 if "norm" in j[3] else 1)))
    started = time.time()
    done = []

    def finished(r):
        done.append(r)
        _tell(progress, r, len(done), len(jobs), started)
        if checkpoint is not None:
            checkpoint(r)

    failures = []
    run_jobs(functools.partial(_one, cfg=cfg, backend=backend, options=options,
                               artifacts=artifacts), order,
             workers=workers, isolate=backend == "lava",
             on_done=lambda job, r: finished(r),
             on_error=lambda job, failure: failures.append(failure))
    if failures:   # every other job ran and was recorded; fail with the first error
        failures[0].reraise()
    results = {"datasets": {}, "depths": depths, "width": model.width,
               "variants": variants, "seeds": seeds, "batch_size": train.batch_size,
               "probe_samples": cfg.record.samples,
               "act": model.act, "workers": workers}
    datasets = [("mnist" if name.startswith("mnist:") else name)
                for name, _ in _datasets(cfg.data)]
    for ds in datasets:
        per_depth = {}
        for d in depths:
            per_depth[str(d)] = {}
            for v in variants:
                runs = sorted((r for r in done if r["dataset"] == ds and r["depth"] == d
                               and r["variant"] == v), key=lambda r: r["seed"])
                per_depth[str(d)][v] = _aggregate(runs)
        results["datasets"][ds] = per_depth
    results["epochs"] = {ds: results["datasets"][ds][str(depths[0])][variants[0]]["runs"][0]["epochs"]
                         for ds in datasets}
    results["seconds_total"] = round(time.time() - started, 1)
    return Outcome(results=results, summary=_summary(results, backend),
                   figures=figures(results))


def _tell(progress: bool, r: dict, k: int, n: int, started: float) -> None:
    if progress:
        print(f"[{k}/{n} {time.time() - started:6.0f} s] {r['dataset']:8} {r['depth']} hidden "
              f"{r['variant']:14} seed {r['seed']}: test accuracy {r['test_accuracy']:.3f} "
              f"({r['seconds']:.0f} s)", flush=True)


def _hidden(rec: dict) -> list[str]:
    return [l for l in rec["layers"] if l.startswith("h")]


def _final_mean(rec: dict, kind: str, measure: str = "erank") -> float:
    """Mean over hidden layers of a rank measure at the last record."""
    vals = [rec["rank"][kind][l][measure][-1] for l in _hidden(rec)]
    return float(np.mean(vals)) if vals else float("nan")


def _aggregate(runs: list[dict]) -> dict:
    accs = np.array([r["test_accuracy"] for r in runs], dtype=float)
    summary = {"test_accuracy_mean": float(accs.mean()), "test_accuracy_std": float(accs.std())}
    recs = [r["record"] for r in runs]
    for kind in ("signal", "signal_bp", "update", "update_bp"):
        if kind.startswith("signal"):
            v = [_final_mean(rec, kind) for rec in recs]
        else:
            v = [float(np.mean([rec["rank"][kind][p]["erank"][-1] for p in rec["projections"][:-1]]
                               or [np.nan])) for rec in recs]
        summary[f"erank_{kind}_mean"] = float(np.mean(v))
    for measure in ("participation_ratio", "stable_rank"):
        summary[f"{measure}_signal_mean"] = float(np.mean([_final_mean(r, "signal", measure)
                                                           for r in recs]))
    summary["angle_signal_deg_mean"] = float(np.mean(
        [np.mean([rec["angle_signal_deg"][l][-1] for l in _hidden(rec)] or [np.nan])
         for rec in recs]))
    wa = [np.mean([v["angle_deg"][-1] for v in rec.get("weight_alignment", {}).values()])
          for rec in recs if rec.get("weight_alignment")]
    summary["weight_angle_deg_mean"] = float(np.mean(wa)) if wa else None
    return {**summary, "runs": runs}


def _summary(results: dict, backend: str) -> str:
    lines = [f"rank collapse: backend={backend}  width={results['width']}  "
             f"epochs={results['epochs']}  act={results['act']}  batch={results['batch_size']}  "
             f"seeds={results['seeds']}  probe={results['probe_samples']} train samples  "
             f"({results['seconds_total']:.0f} s)"]
    depths = results["depths"]
    for ds, per_depth in results["datasets"].items():
        lines.append(f"\n== {ds}")
        head = f"{'variant':16}" + "".join(f"{'L=' + str(d):>16}" for d in depths)
        blocks = [("test accuracy (%)", lambda r: f"{100 * r['test_accuracy_mean']:6.1f} ± "
                   f"{100 * r['test_accuracy_std']:4.1f}"),
                  ("erank of the error signal, mean over hidden layers (rule's own)",
                   lambda r: f"{r['erank_signal_mean']:8.1f}"),
                  ("erank of BP's error signal on the same weights",
                   lambda r: f"{r['erank_signal_bp_mean']:8.1f}"),
                  ("angle of the error signal to BP's (deg), mean over hidden layers",
                   lambda r: f"{r['angle_signal_deg_mean']:8.1f}"),
                  ("angle Wᵀ vs B (deg), mean over feedback matrices",
                   lambda r: "     -" if r["weight_angle_deg_mean"] is None else
                   f"{r['weight_angle_deg_mean']:8.1f}")]
        for title, fmt in blocks:
            lines += [f"-- {title}", head]
            for v in results["variants"]:
                lines.append(f"{v:16}" + "".join(f"{fmt(per_depth[str(d)][v]):>16}"
                                                 for d in depths))
    return "\n".join(lines)


def figures(results: dict) -> dict:
    """``accuracy_vs_depth.png``, ``erank_per_layer.png`` and
    ``alignment_over_training.png`` from the results (``{}`` without the plot extra)."""
    plt = pyplot()
    if plt is None:  # the plot extra is not installed: results only
        return {}
    datasets = list(results["datasets"])
    depths, variants = results["depths"], results["variants"]
    figs = {}
    # 1. test accuracy vs depth
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        for v in variants:
            m = [100 * results["datasets"][ds][str(d)][v]["test_accuracy_mean"] for d in depths]
            s = [100 * results["datasets"][ds][str(d)][v]["test_accuracy_std"] for d in depths]
            ax.errorbar(depths, m, yerr=s, marker="o", capsize=3, label=v)
        ax.set(xlabel="hidden layers", ylabel="test accuracy (%)", title=ds, xticks=depths)
        ax.legend()
    fig.tight_layout()
    figs["accuracy_vs_depth.png"] = fig
    # 2. effective rank of the error signal per layer, end of training
    fig, axes = plt.subplots(len(datasets), len(depths), figsize=(3.6 * len(depths),
                             3.2 * len(datasets)), squeeze=False)
    for i, ds in enumerate(datasets):
        for j, d in enumerate(depths):
            ax = axes[i, j]
            for k, v in enumerate(variants):
                recs = [r["record"] for r in results["datasets"][ds][str(d)][v]["runs"]]
                hidden = _hidden(recs[0])
                er = np.mean([[r["rank"]["signal"][l]["erank"][-1] for l in hidden]
                              for r in recs], axis=0)
                ax.plot(range(1, len(hidden) + 1), er, marker="o", color=f"C{k}", label=v)
                if v == "fa":
                    bp = np.mean([[r["rank"]["signal_bp"][l]["erank"][-1] for l in hidden]
                                  for r in recs], axis=0)
                    ax.plot(range(1, len(hidden) + 1), bp, ls=":", color=f"C{k}",
                            label="BP δ on fa's weights")
            ax.set(title=f"{ds}, {d} hidden", xlabel="hidden layer", xticks=range(1, d + 1))
            if j == 0:
                ax.set_ylabel("erank of error signal")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    figs["erank_per_layer.png"] = fig
    # 3. alignment over training at the deepest net: signal angle to BP and Wᵀ–B angle
    d = str(depths[-1])
    fig, axes = plt.subplots(len(datasets), 3, figsize=(14, 3.4 * len(datasets)), squeeze=False)
    for i, ds in enumerate(datasets):
        for k, v in enumerate(variants):
            recs = [r["record"] for r in results["datasets"][ds][d][v]["runs"]]
            x = np.asarray(recs[0]["steps"]) + 1          # 0: before training
            hidden = _hidden(recs[0])
            ang = np.mean([[r["angle_signal_deg"][l] for l in hidden] for r in recs], axis=(0, 1))
            er = np.mean([[r["rank"]["signal"][l]["erank"] for l in hidden] for r in recs],
                         axis=(0, 1))
            axes[i, 0].plot(x, ang, color=f"C{k}", label=v)
            axes[i, 2].plot(x, er, color=f"C{k}", label=v)
            if recs[0].get("weight_alignment"):
                wa = np.mean([[w["angle_deg"] for w in r["weight_alignment"].values()]
                              for r in recs], axis=(0, 1))
                axes[i, 1].plot(x, wa, color=f"C{k}", label=v)
        axes[i, 0].set(title=f"{ds}, {d} hidden: error signal vs BP",
                       xlabel="epochs trained",
                       ylabel="angle (deg), mean over layers")
        axes[i, 1].set(title="feedback Wᵀ vs B", xlabel="epochs trained", ylabel="angle (deg)")
        axes[i, 2].set(title="erank of error signal", xlabel="epochs trained",
                       ylabel="erank, mean over layers")
        for ax in axes[i]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    figs["alignment_over_training.png"] = fig
    for f in figs.values():
        plt.close(f)
    return figs


def circuits(config) -> dict:
    """The circuits this experiment trains on its first data set, by variant and depth."""
    cfg = coerce(Config, config)
    name, kw = _datasets(cfg.data)[0]
    data = load_dataset(name, **kw)
    out = {}
    for depth in cfg.model.depths:
        sizes = [data.n_features, *([cfg.model.width] * depth), data.n_classes]
        for v in cfg.train.variants:
            c = _build(v, sizes, cfg.model, cfg.train)
            out[c.name] = c
    return out
