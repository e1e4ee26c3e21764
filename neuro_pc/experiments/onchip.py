"""Learning on Loihi's learning engine, end to end: training inside Lava.

Every circuit of the config is trained **inside Lava** with its plastic
projections compiled to ``LearningDense`` blocks
(``LavaSimulator(learning="engine")``; :mod:`hardware_targets.onchip`), in
``floating_pt`` and in ``fixed_pt`` (Lava's bit-approximate Loihi learning
model), for every seed, and evaluated on the test set in Lava. Beside it the
same circuit is trained by the float reference (the IR's window-end update),
the accuracy the engine is measured against. For the first seed the run is
repeated on the reference's emulation of the engine
(:class:`~neuro_pc.backends.reference.engine.EngineSimulator`), and the
summary says whether the weights Lava learned equal it (``fixed_pt`` bit for
bit, ``floating_pt`` to 1e-9).

Circuits (config ``[circuits]``): the rate FA MLP with a non-negative hidden
activity (a signed one cannot ride in the unsigned ``x1`` trace and the graded
payload), and spiking FA and DFA (:func:`~neuro_pc.models.spiking.builders.spiking_mlp`)
with a decaying, never-reset trace ``Trace(decay=exp(-1/tau), window_reset=False)``
(the engine never resets a trace). Config tables::

    [data]      name ["digits"] (+ loader options)
    [circuits]  rate [["fa"]], spiking [["fa", "dfa"]]
    [rate]      hidden [[128]], act ["relu"], eta [0.01], epochs [10]
    [spiking]   hidden [[64, 64]], window [16], tau [4], eta [0.01], epochs [3],
                init_scale [1.0], feedback_scale [1.0]
    [train]     seeds [[0, 1, 2]], tags [["floating_pt", "fixed_pt"]], emulate [true]
    [engine]    calibration [256] (samples the post-trace scales are taken from),
                headroom [2.0], pre_frac_bits [6], dither [true]

The helpers :func:`checked_report` (``neuro-pc check``'s execution of every
compiled rule) live here too: they need both the reference and Lava.
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.experiments import Outcome
from neuro_pc.experiments.config import (BACKEND_NAMES, Data, Experiment, coerce, option,
                                         section)
from neuro_pc.models import mlp
from neuro_pc.models.spiking import Trace, spiking_mlp

TAGS = ("floating_pt", "fixed_pt")


# -- the config schema ---------------------------------------------------------------------------
@dataclasses.dataclass
class Circuits:
    """``[circuits]``: the rules trained on the engine, per circuit family."""
    rate: list[str] = option(["fa"], choices=("fa", "dfa"), unique=True)
    spiking: list[str] = option(["fa", "dfa"], choices=("fa", "dfa"), unique=True)


@dataclasses.dataclass
class Rate:
    hidden: list[int] = option([128], ge=1, min_len=1)
    act: str = option("relu", choices=("relu", "sigmoid"))
    eta: float = option(0.01, gt=0)
    epochs: int = option(10, ge=0)


@dataclasses.dataclass
class Spiking:
    hidden: list[int] = option([128], ge=1, min_len=1)
    window: int = option(16, ge=4)
    tau: int = option(4, ge=1, le=255)
    eta: float = option(0.01, gt=0)
    epochs: int = option(5, ge=0)
    init_scale: float = option(1.0, gt=0)
    feedback_scale: float = option(1.0, gt=0)


@dataclasses.dataclass
class Train:
    """``[train]``: limit_train / limit_test take the first rows of the fixed split
    (a smaller, honestly stated run; unset: all). ``float_seeds``: floating_pt runs
    on the first that many seeds only (unset: all) - it is the float engine, held to
    the emulation to 1e-9; fixed_pt, the deployment format, runs on every seed."""
    seeds: list[int] = option([0, 1, 2], ge=0, unique=True, min_len=1)
    tags: list[str] = option(list(TAGS), choices=TAGS, unique=True, min_len=1)
    float_seeds: int | None = option(None, ge=1)
    emulate: bool = True
    limit_train: int | None = option(None, ge=1)
    limit_test: int | None = option(None, ge=1)


@dataclasses.dataclass
class Engine:
    """``[engine]``: :func:`hardware_targets.onchip.plan_onchip`'s options."""
    calibration: int = option(256, ge=1)
    headroom: float = option(2.0, gt=0)
    pre_frac_bits: int = option(6, ge=1, le=7)
    dither: bool = True


@dataclasses.dataclass
class OnchipExperiment(Experiment):
    """``[experiment]``: as every kind's, but the backend is Lava (the only one)."""
    backend: str = option("lava", choices=BACKEND_NAMES)


@dataclasses.dataclass
class Config:
    """The ``onchip`` experiment's config (see the module docstring)."""
    experiment: OnchipExperiment = section(OnchipExperiment)
    data: Data = section(Data)
    circuits: Circuits = section(Circuits)
    rate: Rate = section(Rate)
    spiking: Spiking = section(Spiking)
    train: Train = section(Train)
    engine: Engine = section(Engine)

    def check(self, key: str = "") -> None:
        from neuro_pc.experiments.config import ConfigError

        if self.experiment.backend != "lava":
            raise ConfigError("experiment.backend", "the onchip experiment trains inside Lava "
                              "beside the float reference (it always runs both): use 'lava', "
                              f"got {self.experiment.backend!r}")
        if not (self.circuits.rate or self.circuits.spiking):
            raise ConfigError("circuits", "name at least one rule in circuits.rate or "
                              "circuits.spiking")


def _data(cfg: Config):
    from neuro_pc.data import load_dataset

    d = load_dataset(cfg.data.name, seed=0, **cfg.data.loader_options())
    t = cfg.train
    if t.limit_train is not None or t.limit_test is not None:
        d = dataclasses.replace(d, x_train=d.x_train[:t.limit_train],
                                y_train=d.y_train[:t.limit_train],
                                x_test=d.x_test[:t.limit_test], y_test=d.y_test[:t.limit_test])
    return d


def build(cfg: Config, family: str, rule: str, sizes: list[int]):
    """The circuit of ``family`` (``"rate"`` or ``"spiking"``) and ``rule``."""
    if family == "rate":
        r = cfg.rate
        return mlp([sizes[0], *r.hidden, sizes[-1]], rule=rule, act=r.act, eta=r.eta,
                   name=f"{rule}_rate_{'-'.join(map(str, [sizes[0], *r.hidden, sizes[-1]]))}")
    s = cfg.spiking
    trace = Trace(decay=math.exp(-1.0 / s.tau), impulse=1.0 / s.tau, window_reset=False)
    return spiking_mlp([sizes[0], *s.hidden, sizes[-1]], rule=rule, window=s.window,
                       eta=s.eta, trace=trace, init_scale=s.init_scale,
                       feedback_scale=s.feedback_scale)


def _families(cfg: Config):
    return [("rate", r) for r in cfg.circuits.rate] + \
        [("spiking", r) for r in cfg.circuits.spiking]


def circuits(config) -> dict:
    """The circuits this experiment trains on the engine, by name."""
    cfg = coerce(Config, config)
    data = _data(cfg)
    sizes = [data.n_features, data.n_classes]
    return {f"{fam}_{rule}": build(cfg, fam, rule, sizes) for fam, rule in _families(cfg)}


def preflight(cfg: Config) -> None:
    """Everything that can fail before training: Lava importable, the circuits compile."""
    from neuro_pc.backends.lava import LavaSimulator  # noqa: F401 - the clear import error
    from hardware_targets.onchip import plan_onchip

    for name, c in circuits(cfg).items():
        for tag in cfg.train.tags:
            plan_onchip(c, c.init_weights(0), tag).check_complete(c)


def _plan_options(cfg: Config) -> dict:
    e = cfg.engine
    return {"headroom": e.headroom, "pre_frac_bits": e.pre_frac_bits, "dither": e.dither}


# -- running -------------------------------------------------------------------------------------
def run(config, backend: str | None = None, progress: bool = True,
        checkpoint=None, artifacts=None) -> Outcome:
    """Train every circuit, seed and tag inside Lava; the float reference beside it.
    ``artifacts`` (an :class:`~neuro_pc.experiments.runs.ArtifactStore`) keeps every
    circuit trained inside Lava, with the weights Lava learned."""
    from neuro_pc.backends.lava import LavaSimulator
    from neuro_pc.backends.reference.engine import EngineSimulator, window_end_activity

    cfg = coerce(Config, config)
    if backend not in (None, "lava"):
        raise ValueError("the onchip experiment trains inside Lava (--backend lava or none)")
    data = _data(cfg)
    Y = data.one_hot(data.y_train)
    sizes = [data.n_features, data.n_classes]
    results = {"circuits": {}, "seeds": list(cfg.train.seeds), "tags": list(cfg.train.tags),
               "n_train": len(data.x_train), "n_test": len(data.x_test)}
    n_cal = min(cfg.engine.calibration, len(data.x_train))
    for fam, rule in _families(cfg):
        circuit = build(cfg, fam, rule, sizes)
        epochs = cfg.rate.epochs if fam == "rate" else cfg.spiking.epochs
        entry = {"circuit": circuit.name, "family": fam, "rule": rule, "epochs": epochs,
                 "window": circuit.schedule.window, "reference": [], "engine": {}}
        for seed in cfg.train.seeds:
            ref = ReferenceSimulator(circuit, seed=seed)
            ref.train(data.x_train, Y, epochs=epochs, seed=seed)
            entry["reference"].append(ref.evaluate(data.x_test, data.y_test))
            w0 = circuit.init_weights(seed)
            activity = window_end_activity(circuit, w0, data.x_train[:n_cal], Y[:n_cal],
                                           seed=seed)
            for tag in cfg.train.tags:
                if (tag == "floating_pt" and cfg.train.float_seeds is not None
                        and seed not in cfg.train.seeds[:cfg.train.float_seeds]):
                    continue
                t0 = time.time()
                sim = LavaSimulator(circuit, seed=seed, tag=tag, learning="engine",
                                    activity=activity, plan_options=_plan_options(cfg))
                sim.train(data.x_train, Y, epochs=epochs, seed=seed)
                t_train = time.time() - t0
                steps = epochs * len(data.x_train) * circuit.schedule.window
                acc = sim.evaluate(data.x_test, data.y_test)
                run_ = {"seed": seed, "accuracy": acc, "train_s": round(t_train, 1),
                        "steps_per_s": round(steps / t_train, 1) if t_train else None,
                        "plan": sim.plan.as_dict()}
                if cfg.train.emulate and seed == cfg.train.seeds[0]:
                    # the same calls on the emulation (an inference run too: Lava truncates
                    # the weights to num_weight_bits at every run's first step)
                    emu = EngineSimulator(circuit, seed=seed, tag=tag, plan=sim.plan)
                    emu.train(data.x_train, Y, epochs=epochs, seed=seed)
                    emu_acc = emu.evaluate(data.x_test, data.y_test)
                    run_["emulation"] = dict(_equality(sim, emu, tag), accuracy=emu_acc)
                if artifacts is not None:
                    run_["artifact"] = artifacts.save(
                        f"{fam}_{rule}-{tag}-seed{seed}", sim, experiment=cfg.experiment.name,
                        rule=rule, task="classification", data={"name": cfg.data.name, "seed": 0,
                              "options": cfg.data.loader_options()},
                        epochs=epochs, test_accuracy=acc, trained_on=f"lava {tag}")
                entry["engine"].setdefault(tag, []).append(run_)
                if checkpoint is not None:
                    checkpoint({"circuit": circuit.name, "tag": tag, **{k: v for k, v in
                                                                    run_.items() if k != "plan"}})
        results["circuits"][f"{fam}_{rule}"] = entry
    return Outcome(results=results, summary=summary(results), figures={})


def _equality(sim, emu, tag: str) -> dict:
    """How Lava's learned weights compare with the emulation's (after the same runs)."""
    diff = max(float(np.abs(np.asarray(sim.units[k], float) - np.asarray(emu.units[k], float))
                     .max()) for k in emu.units)
    exact = tag == "fixed_pt"
    return {"max_abs_difference": diff, "equal": diff == 0.0 if exact else diff <= 1e-9,
            "criterion": "bit for bit" if exact else "1e-9"}


def summary(results: dict) -> str:
    """One line per circuit and tag: ``fa  fixed_pt  <acc> ± <sd> %``."""
    lines = ["learning on Loihi's learning engine, trained inside Lava "
             f"(seeds {results['seeds']}; {results['n_train']} training / {results['n_test']} "
             "test samples), test accuracy %", ""]
    for name, e in results["circuits"].items():
        ref = np.array(e["reference"]) * 100
        lines.append(f"{name} ({e['circuit']}, T={e['window']}, {e['epochs']} epochs)")
        lines.append(f"  {'reference (float, IR update)':30s} {ref.mean():6.2f} ± {ref.std():.2f}")
        for tag, runs in e["engine"].items():
            acc = np.array([r["accuracy"] for r in runs]) * 100
            speed = np.mean([r["steps_per_s"] for r in runs if r["steps_per_s"]])
            line = (f"  {e['rule']:4s}{tag:26s} {acc.mean():6.2f} ± {acc.std():.2f}"
                    f"   ({len(acc)} seed{'s' if len(acc) > 1 else ''}; "
                    f"{acc.mean() - ref.mean():+.2f} vs reference; {speed:.0f} steps/s)")
            em = next((r["emulation"] for r in runs if "emulation" in r), None)
            if em is not None:
                line += (f"; emulation {'equal' if em['equal'] else 'DIFFERENT'} "
                         f"({em['criterion']}, max |Δw| {em['max_abs_difference']:.3g})")
            lines.append(line)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# -- neuro-pc check: every compiled rule executed ------------------------------------------------
def checked_report(circuit, target: str = "loihi2", *, weights: dict | None = None,
                   x=None, y=None, samples: int = 100, seed: int = 0,
                   execute: bool = True) -> dict:
    """``hardware_targets.check.check_report`` with every compiled rule executed.

    The post traces are scaled from the circuit's activity on ``x`` (its first
    256 rows), and each rule the learning engine can run is driven through
    Lava's ``fixed_pt`` ``LearningDense`` on ``samples`` windows of the
    circuit's own activity (:func:`neuro_pc.backends.lava.engine.execute_plan`);
    its entry gains ``executed`` and, if the engine's weight change is off, the
    verdict ``"no"`` with what is off. Without data (``x`` None) the inputs are
    uniform in [0, 1] with random one-hot targets (seeded). Without Lava, or
    with ``execute=False``, entries say they were not executed.
    """
    from hardware_targets.base import get_target
    from hardware_targets.check import check_report
    from hardware_targets.onchip import judge, plan_onchip
    from neuro_pc.backends.reference.engine import window_end_activity

    w = weights if weights is not None else circuit.init_weights(seed)
    if get_target(target).state_bits is None or not circuit.plastic:
        return check_report(circuit, target, weights=weights, seed=seed, inputs=x)
    given = x is not None
    if x is None:
        rng = np.random.default_rng(seed)
        x = rng.random((max(samples, 256), circuit.streams.get("x", 1)))
        n_out = circuit.streams.get("y")
        y = None if n_out is None else np.eye(n_out)[rng.integers(0, n_out, len(x))]
    activity = window_end_activity(circuit, w, x[:256], None if y is None else y[:256],
                                   seed=seed)
    report = check_report(circuit, target, weights=weights, seed=seed, activity=activity,
                          inputs=x if given else None)
    why_not = None if execute else "--no-execute"
    executed = {}
    if execute:
        try:
            from neuro_pc.backends.lava.engine import execute_plan
        except ImportError as exc:
            why_not = f"Lava is not available ({exc})"
        else:
            plan = plan_onchip(circuit, w, "fixed_pt", activity=activity, seed=seed)
            if plan.projections:
                executed = execute_plan(circuit, w, plan, x[:samples],
                                        None if y is None else y[:samples], seed=seed)
    report["expressibility"] = [
        judge(e, executed.get(e["projection"]), why_not) if e["expressible"] else dict(e)
        for e in report["expressibility"]]
    report["executed_on"] = {"samples": int(min(samples, len(x))), "tag": "fixed_pt",
                             "data": "the experiment's data" if given else
                             "random inputs in [0, 1] (no data given)"}
    return report

