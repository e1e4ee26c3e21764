"""Spiking FA / DFA / PC on a dataset: test accuracy against the rate FA, spikes per
sample, and a raster plot of one presentation.

For every spiking rule and seed: build :func:`neuro_pc.models.spiking.builders.spiking_mlp`
(rules ``"fa"``, ``"dfa"``) or :func:`neuro_pc.models.spiking.builders.spiking_pc` (rule ``"pc"``),
compile it for the backend, train online (batch 1) and record the test
accuracy after every epoch. The same seeds train the rate circuit
``neuro_pc.models.mlp(rule=baseline.rule)`` of the same width on the reference
backend, for comparison. Spike counts and the raster are measured by the
reference backend with the trained weights (its monitors are the semantics'
own), on the test set.

The config tables ([data], [model], [lif], [trace], [encoder], [pc], [train],
[baseline], [raster], [backend.*]) and their defaults are declared once, by
:class:`Config` below (docs/configs.md lists them).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Literal

import numpy as np

from neuro_pc.backends import compile
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.data import load_dataset
from neuro_pc.experiments import Outcome, pyplot
from neuro_pc.experiments.config import (Backends, ConfigError, Data, Experiment, coerce, option,
                                         require_reference_modes, require_trainable, section,
                                         validation_split)
from neuro_pc.experiments.plots import raster_data
from neuro_pc.experiments.training import train_with_decay
from neuro_pc.models import ACTIVATIONS, RULES, mlp
from neuro_pc.models.spiking import (LIF, OUTPUT_ERRORS, RESETS, RateEncoder, Trace,
                                     spike_variables, spiking_mlp, spiking_pc)

# -- the config schema (the neuron, trace and encoder defaults are the model classes') ---------

_LIF, _TRACE, _ENC = LIF(), Trace(), RateEncoder()
SPIKING_RULES = ("fa", "dfa", "pc")


@dataclasses.dataclass
class Model:
    """``[model]``; ``output_error`` (FA and DFA: ``spiking_mlp``'s) and
    ``target_rate``: unset, 1 (``"target"``, and PC) or the highest rate every
    layer sees (``"hinge"``: :func:`~neuro_pc.models.spiking.hinge_target`)."""
    hidden: list[int] = option([128], ge=1)
    window: int = option(32, ge=1)
    rules: list[str] = option(["fa"], choices=SPIKING_RULES, unique=True, min_len=1)
    target_rate: float | None = option(None, gt=0)
    output_error: str = option("target", choices=OUTPUT_ERRORS)
    init_scale: float = option(1.0, gt=0)
    feedback_scale: float = option(1.0, gt=0)
    two_rail: bool = True


@dataclasses.dataclass
class Lif:
    """``[lif]``: hidden and output neurons (:class:`~neuro_pc.models.spiking.neurons.LIF`)."""
    v_decay: float = option(_LIF.v_decay, ge=0, le=1)
    thr: float = option(_LIF.thr, gt=0)
    reset: str = option(_LIF.reset, choices=RESETS)
    v_reset: float = _LIF.v_reset
    refractory: int = option(_LIF.refractory, ge=0)
    i_decay: float | Literal["none"] | None = option(_LIF.i_decay, ge=0, le=1)

    def build(self) -> LIF:
        kw = dataclasses.asdict(self)
        kw["i_decay"] = None if kw["i_decay"] == "none" else kw["i_decay"]
        return LIF(**kw)


@dataclasses.dataclass
class TraceTable:
    """``[trace]``: ``tr = tr * decay + impulse * s``; impulse unset: 1/window."""
    decay: float = option(_TRACE.decay, ge=0, le=1)
    impulse: float | None = option(None, gt=0)
    window_reset: bool = _TRACE.window_reset


@dataclasses.dataclass
class Encoder:
    gain: float = option(_ENC.gain, ge=0)
    phase: float = option(_ENC.phase, ge=0, lt=1)


@dataclasses.dataclass
class PC:
    """``[pc]``: rule "pc" only; eta unset: ``train.eta``; clamp_step unset: L."""
    eta: float | None = option(None, gt=0)
    gamma: float = option(0.2, gt=0)
    clamp_step: int | None = option(None, ge=0)


@dataclasses.dataclass
class Train:
    """``[train]``; ``batch_size`` > 1 and ``dtype = "float32"`` are the reference's
    batched mode (every sample of a batch in the same window, the mean update);
    ``eta_decay`` multiplies the rate (and PC's ``pc.eta``) by that factor after
    each epoch."""
    epochs: int = option(10, ge=0)
    seeds: list[int] = option([0], ge=0, unique=True, min_len=1)
    eta: float = option(0.01, gt=0)
    batch_size: int = option(1, ge=1)
    dtype: str = option("float64", choices=("float64", "float32"))
    eta_decay: float = option(1.0, gt=0, le=1)


@dataclasses.dataclass
class Baseline:
    """``[baseline]``: the rate circuit; epochs unset: ``train.epochs``."""
    rule: str = option("fa", choices=RULES)
    act: str = option("tanh", choices=ACTIVATIONS)
    eta: float = option(0.01, gt=0)
    epochs: int | None = option(None, ge=0)
    enabled: bool = True


@dataclasses.dataclass
class Raster:
    """``[raster]``: test-set index plotted; seed unset: the first seed."""
    sample: int = option(0, ge=0)
    seed: int | None = option(None, ge=0)


@dataclasses.dataclass
class SpikingData(Data):
    """``[data]``; ``validation = N`` holds N training samples out (drawn at
    random, the same for every seed: :meth:`~neuro_pc.data.Dataset.hold_out`) and
    evaluates on them instead of the test set."""
    validation: int = option(0, ge=0)


@dataclasses.dataclass
class Config:
    """The ``spiking`` experiment's config (see docs/configs.md)."""
    experiment: Experiment = section(Experiment)
    data: SpikingData = section(SpikingData)
    model: Model = section(Model)
    lif: Lif = section(Lif)
    trace: TraceTable = section(TraceTable)
    encoder: Encoder = section(Encoder)
    pc: PC = section(PC)
    train: Train = section(Train)
    baseline: Baseline = section(Baseline)
    raster: Raster = section(Raster)
    backend: Backends = section(Backends)

    def check(self, key: str = "") -> None:
        require_trainable(self.backend, self.experiment.backend)
        require_reference_modes(self.train, self.experiment.backend)
        if self.model.output_error != "target" and "pc" in self.model.rules:
            raise ConfigError("model.output_error", f"{self.model.output_error!r} is spiking FA "
                              "and DFA's; PC clamps its output to the target: use rules "
                              "without \"pc\", or output_error = \"target\"")
        if self.raster.seed is not None and self.raster.seed not in self.train.seeds:
            raise ConfigError("raster.seed", f"must be one of train.seeds "
                              f"{self.train.seeds}, got {self.raster.seed}")


def _data(cfg: Config, seed: int = 0):
    data = load_dataset(cfg.data.name, seed=seed, **cfg.data.loader_options())
    if not cfg.data.validation:
        return data
    return validation_split(data, cfg.data.validation)


def build(config, sizes: list[int], rule: str, factor: float = 1.0):
    """The spiking circuit of ``config`` for ``sizes`` and ``rule``, every rate
    multiplied by ``factor``."""
    cfg = coerce(Config, config)
    model = cfg.model
    window = model.window
    lif = cfg.lif.build()
    trace = Trace(decay=cfg.trace.decay,
                  impulse=1.0 / window if cfg.trace.impulse is None else cfg.trace.impulse,
                  window_reset=cfg.trace.window_reset)
    encoder = RateEncoder(gain=cfg.encoder.gain, phase=cfg.encoder.phase)
    if rule == "pc":
        return spiking_pc(sizes, window=window,
                          eta=factor * (cfg.train.eta if cfg.pc.eta is None else cfg.pc.eta),
                          gamma=cfg.pc.gamma, lif=lif, trace=trace, encoder=encoder,
                          target_rate=model.target_rate, clamp_step=cfg.pc.clamp_step,
                          init_scale=model.init_scale, two_rail=model.two_rail)
    return spiking_mlp(sizes, rule=rule, window=window, eta=factor * cfg.train.eta, lif=lif,
                       trace=trace, encoder=encoder, target_rate=model.target_rate,
                       init_scale=model.init_scale, feedback_scale=model.feedback_scale,
                       two_rail=model.two_rail, output_error=model.output_error)


def preflight(cfg: Config) -> None:
    """Checks that need the data, before anything trains."""
    data = _data(cfg)
    if cfg.raster.sample >= len(data.x_test):
        raise ConfigError("raster.sample", f"must be a test-set index < {len(data.x_test)}, "
                          f"got {cfg.raster.sample}")
    circuits(cfg)


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


def data_meta(cfg: Config, seed: int) -> dict:
    """How to load seed ``seed``'s data split again (artifact metadata)."""
    return {"name": cfg.data.name, "seed": seed, "options": cfg.data.loader_options()}


def run(config, backend: str | None = None, progress: bool = True,
        checkpoint=None, artifacts=None) -> Outcome:
    """Train every spiking rule and seed, then the rate baseline; ``checkpoint(entry)``
    gets each (rule, seed)'s results as soon as they are finished; ``artifacts``
    (:class:`~neuro_pc.experiments.runs.ArtifactStore`) saves each trained circuit."""
    cfg = coerce(Config, config)
    model, train = cfg.model, cfg.train
    backend = backend or cfg.experiment.backend
    options = cfg.backend.options(backend)
    if backend == "reference" and train.dtype != "float64":
        options = {**options, "dtype": train.dtype}
    seeds, epochs, rules = list(train.seeds), train.epochs, list(model.rules)
    results = {"backend": backend, "epochs": epochs, "seeds": seeds, "rules": {},
               "baseline": None}
    if cfg.data.validation:
        results["evaluated_on"] = (f"validation: {cfg.data.validation} training samples held "
                                   "out (the test set is not used)")
    trained = {}
    for rule in rules:
        runs = []
        for seed in seeds:
            data = _data(cfg, seed)
            sizes = [data.n_features, *model.hidden, data.n_classes]
            circuit = build(cfg, sizes, rule)
            sim = compile(circuit, backend=backend, seed=seed, **options)
            curve = []

            def record(epoch, s, curve=curve, data=data):
                curve.append(s.evaluate(data.x_test, data.y_test))

            started = time.time()
            sim = train_with_decay(
                sim, lambda factor, weights, sizes=sizes, rule=rule, seed=seed: compile(
                    build(cfg, sizes, rule, factor), backend=backend, seed=seed,
                    weights=weights, **options),
                [p.name for p in circuit.stored], data.x_train, data.one_hot(data.y_train),
                epochs, seed, train.eta_decay, callback=record, batch_size=train.batch_size,
                progress=progress)
            seconds = time.time() - started
            final = curve[-1] if curve else sim.evaluate(data.x_test, data.y_test)
            weights = {k: np.array(v) for k, v in sim.weights.items()}
            stats = spike_statistics(circuit, weights, data.x_test, seed=seed)
            runs.append({"seed": seed, "test_accuracy": final, "curve": curve,
                         "spikes_per_sample": stats, "train_seconds": round(seconds, 2)})
            if artifacts is not None:
                runs[-1]["artifact"] = artifacts.save(
                    f"spiking_{rule}-seed{seed}", sim, experiment=cfg.experiment.name,
                    rule=rule, task="classification", data=data_meta(cfg, seed),
                    epochs=epochs, test_accuracy=final, backend_options=options)
            trained[(rule, seed)] = (circuit, weights, data)
            if checkpoint is not None:
                checkpoint({"rule": rule, **runs[-1]})
        accs = np.array([r["test_accuracy"] for r in runs])
        results["rules"][rule] = {
            "runs": runs, "sizes": sizes, "window": circuit.schedule.window,
            "test_accuracy_mean": float(accs.mean()), "test_accuracy_std": float(accs.std()),
            "spikes_per_sample_mean": float(np.mean([r["spikes_per_sample"]["total"]
                                                     for r in runs]))}
    if cfg.baseline.enabled:
        results["baseline"] = _baseline(cfg, seeds, epochs, progress, checkpoint, artifacts)
    r_seed = seeds[0] if cfg.raster.seed is None else cfg.raster.seed
    k = cfg.raster.sample
    results["rasters"] = {}
    for rule in rules:   # one presentation per spiking rule, for its raster plot
        if (rule, r_seed) not in trained:
            continue
        circuit, weights, data = trained[(rule, r_seed)]
        ras = raster(circuit, weights, data.x_test[k], seed=r_seed)
        info = {"rule": rule, "seed": r_seed, "test_index": k, "label": int(data.y_test[k]),
                "predicted": int(ras["readout"][-1].argmax()),
                "spikes": {p: int(v.sum()) for p, v in ras.items() if p != "readout"}}
        if "raster" not in results:
            results["raster"] = info    # the first rule's (kept for older readers)
        results["rasters"][rule] = raster_data(ras, info)
    figs = figures(results)
    return Outcome(results=results, summary=_summary(results, cfg), figures=figs)


def _baseline(cfg: Config, seeds, epochs, progress, checkpoint=None, artifacts=None) -> dict:
    """The rate circuit (default: FA, tanh) of the same width on the reference backend."""
    base = cfg.baseline
    runs = []
    for seed in seeds:
        data = _data(cfg, seed)
        sizes = [data.n_features, *cfg.model.hidden, data.n_classes]
        circuit = mlp(sizes, rule=base.rule, act=base.act, eta=base.eta)
        sim = ReferenceSimulator(circuit, seed=seed)
        curve = []
        sim.train(data.x_train, data.one_hot(data.y_train),
                  epochs=epochs if base.epochs is None else base.epochs, seed=seed,
                  progress=progress, callback=lambda e, s, curve=curve, data=data:
                  curve.append(s.evaluate(data.x_test, data.y_test)))
        final = curve[-1] if curve else sim.evaluate(data.x_test, data.y_test)
        runs.append({"seed": seed, "test_accuracy": final, "curve": curve})
        if artifacts is not None:
            runs[-1]["artifact"] = artifacts.save(
                f"rate_{base.rule}-seed{seed}", sim, experiment=cfg.experiment.name,
                rule=base.rule, task="classification", data=data_meta(cfg, seed),
                epochs=epochs if base.epochs is None else base.epochs, test_accuracy=final)
        if checkpoint is not None:
            checkpoint({"baseline": base.rule, **runs[-1]})
    accs = np.array([r["test_accuracy"] for r in runs])
    return {"rule": base.rule, "act": base.act, "runs": runs,
            "test_accuracy_mean": float(accs.mean()), "test_accuracy_std": float(accs.std())}


def _summary(results: dict, cfg: Config) -> str:
    data = cfg.data.name
    evaluated = "test"
    if cfg.data.validation:
        evaluated = "validation"
        data += f" (validation: {cfg.data.validation} training samples held out)"
    lines = [f"data={data}  backend={results['backend']}  epochs={results['epochs']}  "
             f"seeds={results['seeds']}",
             f"{'circuit':18} {evaluated + ' accuracy':>18} {'spikes/sample':>14}   per seed"]
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
        lines.append(f"spikes per {evaluated} sample, spiking {rule}, "
                     f"seed {r['runs'][0]['seed']}: "
                     + ", ".join(f"{k}={v:.1f}" for k, v in per.items()))
    return "\n".join(lines)


def figures(results: dict) -> dict:
    """``raster_<rule>.png`` for every spiking rule (one test presentation: spikes
    of every population and the output traces) and ``learning_curves.png`` (test
    accuracy per epoch, mean ± sd over seeds, spiking rules and the rate baseline
    in distinct line styles). ``{}`` without the plot extra."""
    plt = pyplot()
    if plt is None:  # the plot extra is not installed: results only
        return {}
    from neuro_pc.experiments.plots import integer_epochs, raster_figure, seed_band

    figs = {f"raster_{rule}.png": raster_figure(plt, data)
            for rule, data in (results.get("rasters") or {}).items()}
    fig, ax = plt.subplots(figsize=(6, 4))
    k = 0
    for k, (rule, r) in enumerate(results["rules"].items()):
        seed_band(ax, [x["curve"] for x in r["runs"]], f"spiking {rule}", k, scale=100)
    b = results.get("baseline")
    if b:
        seed_band(ax, [x["curve"] for x in b["runs"]], f"rate {b['rule']}", k + 1, scale=100)
    n_seeds = len(results.get("seeds", [])) or 1
    band = f"mean ± sd over {n_seeds} seeds" if n_seeds > 1 else "one seed"
    ax.set(ylabel="test accuracy (%)", title=f"spiking vs rate ({band})")
    integer_epochs(ax)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    plt.close(fig)
    figs["learning_curves.png"] = fig
    return figs


def circuits(config) -> dict:
    """The spiking circuits this experiment trains (first seed's data shape), by rule."""
    cfg = coerce(Config, config)
    data = _data(cfg)
    sizes = [data.n_features, *cfg.model.hidden, data.n_classes]
    return {f"spiking_{rule}": build(cfg, sizes, rule) for rule in cfg.model.rules}
