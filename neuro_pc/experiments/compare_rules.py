"""Compare learning rules on one dataset: test accuracy and alignment with BP.

For every rule and seed: build the MLP circuit, compile it for the backend,
train online (batch 1), and after every epoch record the test accuracy and
the angle between the rule's hidden-layer update ``dW1`` and BP's on the same
weights and the same batch of training data (both computed by the reference
backend's batched mode, so the angle means the same on every backend).
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from neuro_pc.analysis import angle
from neuro_pc.backends import compile
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.data import load_dataset
from neuro_pc.experiments import Outcome, pyplot
from neuro_pc.experiments.config import (LAVA_TAGS, Backends, Data, Experiment,
                                         LavaOptions, coerce, option, require_trainable, section)
from neuro_pc.models import ACTIVATIONS, RULES, mlp


# -- the config schema (defaults declared here, once) ------------------------------------------

@dataclasses.dataclass
class CompareData(Data):
    """``[data]``: the data set; ``split_seed`` fixes its train/test split."""
    split_seed: int = option(0, ge=0)


@dataclasses.dataclass
class Model:
    hidden: list[int] = option([128], ge=1)
    act: str = option("tanh", choices=ACTIVATIONS)


#: ``[train.eta]``: one learning rate per rule (unset: ``train.default_eta``)
RuleEtas = dataclasses.make_dataclass(
    "RuleEtas", [(r, float | None, option(None, gt=0)) for r in RULES])
#: ``[train.lam]``: one weight decay per rule
RuleLams = dataclasses.make_dataclass("RuleLams", [(r, float, option(0.0, ge=0)) for r in RULES])
RuleEtas.__module__ = RuleLams.__module__ = __name__   # picklable configs (Python < 3.12)


@dataclasses.dataclass
class Train:
    rules: list[str] = option(["bp", "fa", "dfa", "pc"], choices=RULES, unique=True, min_len=1)
    epochs: int = option(5, ge=0)
    seeds: list[int] = option([0], ge=0, unique=True, min_len=1)
    #: one number for every rule (``--set train.eta=0.02``, ``--grid train.eta=...``) or
    #: a table of one per rule (``[train.eta]``)
    eta: RuleEtas | float = dataclasses.field(default_factory=RuleEtas,
                                              metadata={"gt": 0})
    default_eta: float = option(0.01, gt=0)
    lam: RuleLams = section(RuleLams)

    def eta_of(self, rule: str) -> float:
        if isinstance(self.eta, (int, float)):
            return float(self.eta)
        eta = getattr(self.eta, rule)
        return self.default_eta if eta is None else eta


@dataclasses.dataclass
class Angles:
    samples: int = option(256, ge=1)


@dataclasses.dataclass
class DeployLavaOptions(LavaOptions):
    """``[backend.lava]``: ``mode = "deploy"`` trains on the reference and runs
    inference on Lava with every tag in ``tags``; ``"train"`` trains on Lava
    itself (with ``tag``; slow)."""
    mode: str = option("deploy", choices=("deploy", "train"))
    tags: list[str] = option(list(LAVA_TAGS), choices=LAVA_TAGS, unique=True, min_len=1)


@dataclasses.dataclass
class CompareBackends(Backends):
    lava: DeployLavaOptions = section(DeployLavaOptions)

    def options(self, backend: str) -> dict:
        opts = super().options(backend)
        if backend == "lava":
            opts.pop("mode"), opts.pop("tags")
        return opts


@dataclasses.dataclass
class Config:
    """The ``compare_rules`` experiment's config (see docs/configs.md)."""
    experiment: Experiment = section(Experiment)
    data: CompareData = section(CompareData)
    model: Model = section(Model)
    train: Train = section(Train)
    angles: Angles = section(Angles)
    backend: CompareBackends = section(CompareBackends)

    def check(self, key: str = "") -> None:
        if self.experiment.backend == "lava" and self.backend.lava.mode == "train":
            require_trainable(self.backend, "lava")


def _data(data_cfg: CompareData):
    """The dataset with its fixed split (``split_seed``, default 0): the seeds of
    a run vary the weights and the sample order, not the test set."""
    return load_dataset(data_cfg.name, seed=data_cfg.split_seed, **data_cfg.loader_options())


def bp_angle(circuit, weights, x, y) -> float:
    """Angle (degrees) between ``circuit``'s update of ``W1`` and BP's, both from
    ``weights`` on the batch ``(x, y)``."""
    meta = circuit.metadata
    rule_sim = ReferenceSimulator(circuit, weights)
    bp = mlp(meta["sizes"], rule="bp", act=meta["act"], eta=1.0)
    bp_sim = ReferenceSimulator(bp, {k: v for k, v in weights.items() if k[0] in "Wb"})
    return angle(rule_sim.compute_updates(x, y)["W1"], bp_sim.compute_updates(x, y)["W1"])


def data_meta(data_cfg: CompareData) -> dict:
    """How to load the data set again (artifact metadata; ``neuro-pc evaluate``)."""
    return {"name": data_cfg.name, "seed": data_cfg.split_seed,
            "options": data_cfg.loader_options()}


def run(config, backend: str | None = None, progress: bool = True,
        checkpoint=None, artifacts=None) -> Outcome:
    """Train every rule and seed; ``checkpoint(entry)`` gets each (rule, seed)'s
    results as soon as they are finished; ``artifacts``
    (:class:`~neuro_pc.experiments.runs.ArtifactStore`) saves each trained circuit."""
    cfg = coerce(Config, config)
    model, train = cfg.model, cfg.train
    backend = backend or cfg.experiment.backend
    lava = cfg.backend.lava
    # Lava: "deploy" (default) trains on the reference and runs inference on
    # Lava with every tag in `tags`; "train" trains on Lava itself (slow).
    mode = lava.mode if backend == "lava" else "train"
    tags = tuple(lava.tags) if backend == "lava" else ()
    train_backend = "reference" if mode == "deploy" else backend
    options = {} if mode == "deploy" else cfg.backend.options(backend)
    if mode == "train":
        tags = ()
    rules, seeds, epochs = list(train.rules), list(train.seeds), train.epochs
    results = {"rules": {}, "epochs": epochs, "seeds": seeds}
    data = _data(cfg.data)
    sizes = [data.n_features, *model.hidden, data.n_classes]
    Y = data.one_hot(data.y_train)
    xa, ya = data.x_train[:cfg.angles.samples], Y[:cfg.angles.samples]
    for rule in rules:
        per_seed = []
        for seed in seeds:
            circuit = mlp(sizes, rule=rule, act=model.act, eta=train.eta_of(rule),
                          lam=getattr(train.lam, rule))
            sim = compile(circuit, backend=train_backend, seed=seed, **options)
            curve, angles = [], []

            def record(epoch, s, curve=curve, angles=angles, circuit=circuit):
                curve.append(s.evaluate(data.x_test, data.y_test))
                angles.append(bp_angle(circuit, s.weights, xa, ya))

            started = time.time()
            sim.train(data.x_train, Y, epochs=epochs, seed=seed, progress=progress,
                      callback=record)
            seconds = time.time() - started
            if not curve:   # epochs = 0: the untrained circuit
                record(-1, sim)
            per_seed.append({"seed": seed, "test_accuracy": curve[-1], "curve": curve[:epochs],
                             "angle_to_bp_deg": angles[-1], "angle_curve": angles[:epochs],
                             "train_seconds": round(seconds, 2)})
            if artifacts is not None:
                per_seed[-1]["artifact"] = artifacts.save(
                    f"{rule}-seed{seed}", sim, experiment=cfg.experiment.name, rule=rule,
                    task="classification", data=data_meta(cfg.data), epochs=epochs,
                    test_accuracy=curve[-1], backend_options=options)
            if mode == "deploy":
                from neuro_pc.backends.lava.deploy import deploy

                report = deploy(sim.artifact(trained_on="reference"), data.x_test,
                                data.y_test, tags=tags)
                per_seed[-1]["lava"] = {t: {"accuracy": r.accuracy, "per_class": r.per_class,
                                            "steps_per_s": r.steps_per_s}
                                        for t, r in report.items()}
            if checkpoint is not None:
                checkpoint({"rule": rule, **per_seed[-1]})
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
    return Outcome(results=results, summary=_table(results, backend, cfg.data.name, tags),
                   figures=figures(results))


def _table(results: dict, backend: str, data_name: str, tags=()) -> str:
    how = " (trained on reference, deployed to Lava)" if tags else ""
    lines = [f"data={data_name}  backend={backend}{how}  "
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


def figures(results: dict) -> dict:
    """``learning_curves.png`` (test accuracy per epoch) and ``angles.png`` (angle of
    each rule's ``dW1`` to BP's over training): mean over seeds with a ± sd band, one
    line style per rule (FA and DFA coincide with one hidden layer). ``{}`` without
    the plot extra."""
    plt = pyplot()
    if plt is None:  # the plot extra is not installed: results only
        return {}
    from neuro_pc.experiments.plots import integer_epochs, seed_band

    n_seeds = len(results.get("seeds", [])) or 1
    fig, ax = plt.subplots(figsize=(6, 4))
    fig2, ax2 = plt.subplots(figsize=(6, 4))
    for k, (rule, r) in enumerate(results["rules"].items()):
        seed_band(ax, [x["curve"] for x in r["runs"]], rule, k, scale=100)
        seed_band(ax2, [x["angle_curve"] for x in r["runs"]], rule, k)
    band = f"mean ± sd over {n_seeds} seeds" if n_seeds > 1 else "one seed"
    ax.set(ylabel="test accuracy (%)", title=f"learning curves ({band})")
    ax2.set(ylabel="angle of dW1 to BP's (degrees)",
            title=f"alignment with backprop over training ({band})")
    for a in (ax, ax2):
        integer_epochs(a)
        a.grid(alpha=0.3)
        if a.get_legend_handles_labels()[0]:
            a.legend()
    for f in (fig, fig2):
        f.tight_layout()
        plt.close(f)
    return {"learning_curves.png": fig, "angles.png": fig2}


def circuits(config) -> dict:
    """The circuits this experiment trains (first seed's data shape), by rule."""
    cfg = coerce(Config, config)
    data = _data(cfg.data)
    sizes = [data.n_features, *cfg.model.hidden, data.n_classes]
    return {rule: mlp(sizes, rule=rule, act=cfg.model.act, lam=getattr(cfg.train.lam, rule))
            for rule in cfg.train.rules}
