"""Compare learning rules on one dataset: test accuracy and alignment with BP.

For every rule and seed: build the MLP circuit, compile it for the backend,
train online (batch 1) or, on the reference, in batched mode
(``train.batch_size``, ``train.dtype``), and after every epoch record the test
accuracy and the angle between the rule's hidden-layer update ``dW1`` and BP's
on the same weights and the same batch of training data (both computed by the
reference backend's batched mode, so the angle means the same on every
backend). With ``angles.signals`` also the angle of the first hidden layer's
error signal to BP's ``δ`` and the weight alignment ``angle(W_Lᵀ, B_{L-1})``;
``[anchors]`` prints published numbers beside the table; ``data.validation``
evaluates on samples carved from the training set instead of the test set
(for choosing hyperparameters).
"""
from __future__ import annotations

import dataclasses
import functools
import time

import numpy as np

from neuro_pc.analysis import angle, weight_alignment
from neuro_pc.analysis.recorder import bp_counterpart
from neuro_pc.backends import compile
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.data import Dataset, load_dataset
from neuro_pc.experiments import Outcome, pyplot
from neuro_pc.experiments.config import (LAVA_TAGS, Backends, Data, Experiment,
                                         LavaOptions, coerce, option, require_reference_modes,
                                         require_trainable, section, validation_split)
from neuro_pc.experiments.jobs import run_jobs
from neuro_pc.experiments.training import train_with_decay
from neuro_pc.models import ACTIVATIONS, RULES, mlp
from neuro_pc.models.rate import LOSSES, logit_twin


# -- the config schema (defaults declared here, once) ------------------------------------------

@dataclasses.dataclass
class CompareData(Data):
    """``[data]``: the data set; ``split_seed`` fixes its train/test split;
    ``validation > 0`` holds that many training samples out (drawn with
    ``split_seed``) and evaluates on them instead of the test set;
    ``standardize`` maps every feature ``v`` to ``(v - m) / s`` with ``m`` and
    ``s`` the mean and standard deviation of all the training features (two
    numbers: MNIST's usual normalisation)."""
    split_seed: int = option(0, ge=0)
    validation: int = option(0, ge=0)
    standardize: bool = False


@dataclasses.dataclass
class Model:
    """``[model]``: hidden widths, activation, the output's loss (``"mse"``: a
    linear output with squared error; ``"ce"``: a softmax output with
    cross-entropy) and PC's output precision (:func:`neuro_pc.models.mlp`)."""
    hidden: list[int] = option([128], ge=1)
    act: str = option("tanh", choices=ACTIVATIONS)
    loss: str = option("mse", choices=LOSSES)
    pc_out_precision: float = option(1.0, gt=0)

    def net(self, sizes, rule: str, eta: float | None = None, lam: float = 0.0):
        """The circuit of ``rule`` on ``sizes`` with this model's options."""
        kw = {} if eta is None else {"eta": eta}
        if rule == "pc":
            kw["out_precision"] = self.pc_out_precision
        return mlp(sizes, rule=rule, act=self.act, lam=lam, loss=self.loss, **kw)


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
    batch_size: int = option(1, ge=1)
    dtype: str = option("float64", choices=("float64", "float32"))
    eta_decay: float = option(1.0, gt=0, le=1)

    def eta_of(self, rule: str) -> float:
        if isinstance(self.eta, (int, float)):
            return float(self.eta)
        eta = getattr(self.eta, rule)
        return self.default_eta if eta is None else eta


@dataclasses.dataclass
class Angles:
    samples: int = option(256, ge=1)
    signals: bool = False


#: ``[anchors]``: published results printed beside ours, one text per rule
RuleAnchors = dataclasses.make_dataclass(
    "RuleAnchors", [(r, str | None, option(None)) for r in RULES])


@dataclasses.dataclass
class DeployLavaOptions(LavaOptions):
    """``[backend.lava]``: ``mode = "deploy"`` trains on the reference and runs
    inference on Lava with every tag in ``tags``; ``"train"`` trains on Lava
    itself (with ``tag``; slow)."""
    mode: str = option("deploy", choices=("deploy", "train"))
    tags: list[str] = option(list(LAVA_TAGS), choices=LAVA_TAGS, unique=True, min_len=1)
    #: deploy: the first ``samples`` test images (0: the whole test split); the
    #: reference's accuracy on the same images is printed beside Lava's
    samples: int = option(0, ge=0)
    #: deploy: the nets of the first ``seeds`` seeds of every rule (0: every seed)
    seeds: int = option(0, ge=0)


@dataclasses.dataclass
class CompareBackends(Backends):
    lava: DeployLavaOptions = section(DeployLavaOptions)

    def options(self, backend: str) -> dict:
        opts = super().options(backend)
        if backend == "lava":
            for k in ("mode", "tags", "samples", "seeds"):
                opts.pop(k)
        return opts


@dataclasses.dataclass
class Run:
    """``[run]``: how many (rule, seed) trainings run at once, each in a worker
    process with one BLAS thread (:func:`~neuro_pc.experiments.jobs.run_jobs`);
    1 trains them one after the other in this process."""
    workers: int = option(1, ge=1)


@dataclasses.dataclass
class Config:
    """The ``compare_rules`` experiment's config (see docs/configs.md)."""
    experiment: Experiment = section(Experiment)
    data: CompareData = section(CompareData)
    model: Model = section(Model)
    train: Train = section(Train)
    angles: Angles = section(Angles)
    anchors: RuleAnchors = section(RuleAnchors)
    backend: CompareBackends = section(CompareBackends)
    run: Run = section(Run)

    def check(self, key: str = "") -> None:
        if self.experiment.backend == "lava" and self.backend.lava.mode == "train":
            require_trainable(self.backend, "lava")
        trains_on = self.experiment.backend
        if trains_on == "lava" and self.backend.lava.mode == "deploy":
            trains_on = "reference"
        require_reference_modes(self.train, trains_on)


def _data(data_cfg: CompareData):
    """The dataset with its fixed split (``split_seed``, default 0): the seeds of
    a run vary the weights and the sample order, not the test set. With
    ``validation = N``: N training samples (a permutation drawn from
    ``split_seed``) become the evaluation set, the rest the training set; the
    test set is not used."""
    data = load_dataset(data_cfg.name, seed=data_cfg.split_seed, **data_cfg.loader_options())
    n_val = data_cfg.validation
    if not n_val:
        return _standardized(data) if data_cfg.standardize else data
    data = validation_split(data, n_val, data_cfg.split_seed)
    return _standardized(data) if data_cfg.standardize else data


def _standardized(data: Dataset) -> Dataset:
    """``data`` with every feature mapped to ``(v - m) / s``, ``m`` and ``s`` the mean
    and standard deviation over all training features (the evaluation part is not
    looked at)."""
    m, s = float(data.x_train.mean()), float(data.x_train.std())
    s = s if s > 0 else 1.0
    return Dataset((data.x_train - m) / s, data.y_train, (data.x_test - m) / s, data.y_test,
                   n_classes=data.n_classes, name=data.name)


def bp_angle(circuit, weights, x, y) -> float:
    """Angle (degrees) between ``circuit``'s update of ``W1`` and BP's, both from
    ``weights`` on the batch ``(x, y)``."""
    return alignment(circuit, weights, x, y)["angle_to_bp_deg"]


def alignment(circuit, weights, x, y, signals: bool = False) -> dict:
    """How ``circuit``'s learning relates to BP's on the same ``weights`` and batch
    ``(x, y)`` (float64, reference batched mode): ``angle_to_bp_deg``, the angle
    between the updates of ``W1``; with ``signals`` also ``delta_angle_deg``,
    the angle between the first hidden layer's error signals (``h1.delta``;
    PC: ``-h1.eps``, its descent-sign counterpart) as ``(batch, units)``
    matrices, and ``weight_angle_deg`` / ``weight_norm_ratio``: ``angle(W_Lᵀ, B)``
    and ``‖B‖/‖W_L‖`` for the feedback projection ``B_{L-1}`` into the last hidden
    layer (its effective matrix: sign-symmetry's ``s·sign(W_L)ᵀ``, BP's ``W_Lᵀ``)."""
    meta = circuit.metadata
    weights = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    rule_sim = ReferenceSimulator(circuit, weights)
    bp = bp_counterpart(circuit)
    bp_sim = ReferenceSimulator(bp, {k: v for k, v in weights.items() if k[0] in "Wb"})
    out = {"angle_to_bp_deg": angle(rule_sim.compute_updates(x, y)["W1"],
                                    bp_sim.compute_updates(x, y)["W1"])}
    if not signals:
        return out
    h1 = circuit.population("h1")
    delta = rule_sim.state["h1.delta"] if "delta" in h1.variables else -rule_sim.state["h1.eps"]
    out["delta_angle_deg"] = angle(delta, bp_sim.state["h1.delta"])
    L = len(meta["sizes"]) - 1
    B = circuit.effective_matrix(weights, f"B{L - 1}")
    wa = weight_alignment(weights[f"W{L}"], B)
    out["weight_angle_deg"], out["weight_norm_ratio"] = wa["angle_deg"], wa["norm_ratio"]
    return out


def data_meta(data_cfg: CompareData) -> dict:
    """How to load the data set again (artifact metadata; ``neuro-pc evaluate``)."""
    return {"name": data_cfg.name, "seed": data_cfg.split_seed,
            "options": data_cfg.loader_options()}


def _train_one(job: tuple, cfg: "Config", train_backend: str, options: dict,
               progress: bool = False, artifacts=None, data: Dataset | None = None) -> dict:
    """Train one ``(rule, seed)`` and record its curve and angles every epoch;
    returns the run's entry, with the trained weights under ``"weights"``.
    ``data``: the loaded data set (None: load it here, as a worker process does)."""
    rule, seed = job
    model, train, epochs = cfg.model, cfg.train, cfg.train.epochs
    data = _data(cfg.data) if data is None else data
    sizes = [data.n_features, *model.hidden, data.n_classes]
    Y = data.one_hot(data.y_train)
    xa, ya = data.x_train[:cfg.angles.samples], Y[:cfg.angles.samples]
    signals = cfg.angles.signals

    def build(eta):
        return model.net(sizes, rule, eta, getattr(train.lam, rule))

    circuit = build(train.eta_of(rule))
    sim = compile(circuit, backend=train_backend, seed=seed, **options)
    curve, angles, extra = [], [], {}
    started = time.perf_counter()

    def record(epoch, s):
        curve.append(s.evaluate(data.x_test, data.y_test))
        if not signals:
            angles.append(bp_angle(circuit, s.weights, xa, ya))
            return
        a = alignment(circuit, s.weights, xa, ya, signals)
        angles.append(a.pop("angle_to_bp_deg"))
        for k, v in a.items():
            extra.setdefault(k, []).append(v)

    sim = train_with_decay(
        sim, lambda factor, weights: compile(build(train.eta_of(rule) * factor),
                                             backend=train_backend, seed=seed,
                                             weights=weights, **options),
        [p.name for p in circuit.stored], data.x_train, Y, epochs, seed, train.eta_decay,
        callback=record, progress=progress, batch_size=train.batch_size)
    if not curve:   # epochs = 0: the untrained circuit
        record(-1, sim)
    entry = {"rule": rule, "seed": seed, "test_accuracy": curve[-1], "curve": curve[:epochs],
             "angle_to_bp_deg": angles[-1], "angle_curve": angles[:epochs],
             "train_seconds": round(time.perf_counter() - started, 2)}
    for k, v in extra.items():
        entry[k] = v[-1]
        entry[k.replace("_deg", "").replace("_ratio", "") + "_curve"] = v[:epochs]
    if artifacts is not None:
        entry["artifact"] = artifacts.save(
            f"{rule}-seed{seed}", sim, experiment=cfg.experiment.name, rule=rule,
            task="classification", data=data_meta(cfg.data), epochs=epochs,
            test_accuracy=curve[-1], backend_options=options)
    entry["weights"] = {p.name: np.array(sim.weights[p.name]) for p in circuit.stored}
    return entry


def run(config, backend: str | None = None, progress: bool = True,
        checkpoint=None, artifacts=None) -> Outcome:
    """Train every rule and seed, ``[run] workers`` at a time (processes); ``checkpoint(entry)``
    gets each (rule, seed)'s results as soon as they are finished; ``artifacts``
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
    if train_backend == "reference" and train.dtype != "float64":
        options = {**options, "dtype": train.dtype}
    signals = cfg.angles.signals
    workers = cfg.run.workers
    jobs = [(rule, seed) for rule in rules for seed in seeds]
    done, failures = {}, []

    def finished(job, entry):
        weights = entry.pop("weights")
        rule, seed = job
        if mode == "deploy" and (not lava.seeds or seeds.index(seed) < lava.seeds):
            sim = compile(model.net(sizes, rule, lam=getattr(train.lam, rule)),
                          backend="reference", weights=weights, seed=seed, **options)
            entry["lava"] = _deploy(sim, data, lava.samples, tags)
        entry.pop("rule")
        done[job] = entry
        if checkpoint is not None:
            checkpoint({"rule": rule, **entry})

    # Lava learning lives in a process of its own (it sets the start method, spawns)
    run_jobs(functools.partial(_train_one, cfg=cfg, train_backend=train_backend,
                               options=options, progress=progress and workers == 1,
                               artifacts=artifacts, data=data if workers == 1 else None),
             jobs, workers=workers, isolate=train_backend == "lava" and workers > 1,
             on_done=finished, on_error=lambda job, failure: failures.append(failure))
    if failures:   # every other job ran and was checkpointed; fail with the first error
        failures[0].reraise()
    for rule in rules:
        per_seed = [done[(rule, seed)] for seed in seeds]
        accs = np.array([r["test_accuracy"] for r in per_seed])
        angs = np.array([r["angle_to_bp_deg"] for r in per_seed])
        results["rules"][rule] = {
            "runs": per_seed, "test_accuracy_mean": float(accs.mean()),
            "test_accuracy_std": float(accs.std()), "angle_to_bp_mean": float(angs.mean()),
            "sizes": sizes}
        if signals:
            for k in ("delta_angle_deg", "weight_angle_deg", "weight_norm_ratio"):
                results["rules"][rule][k.rsplit("_", 1)[0] + "_mean" if k.endswith("_deg")
                                       else k + "_mean"] = float(
                    np.mean([r[k] for r in per_seed]))
        anchor = getattr(cfg.anchors, rule)
        if anchor is not None:
            results["rules"][rule]["published"] = anchor
        deployed = [r["lava"] for r in per_seed if "lava" in r]
        for tag in (*tags, "reference") if tags else ():
            results["rules"][rule][f"lava_{tag}_accuracy_mean"] = float(
                np.mean([d[tag]["accuracy"] for d in deployed]))
        if tags:
            results["rules"][rule]["lava_deployed"] = {"seeds": len(deployed),
                                                       "samples": deployed[0]["samples"]}
    results["mode"] = mode
    if cfg.data.validation:
        results["evaluated_on"] = (f"validation: {cfg.data.validation} samples held out of the "
                                   "training set (the test set is not used)")
    if train.batch_size != 1 or train.dtype != "float64" or train.eta_decay != 1.0:
        results.update(batch_size=train.batch_size, dtype=train.dtype,
                       eta_decay=train.eta_decay)
    return Outcome(results=results, summary=_table(results, backend, cfg.data.name, tags),
                   figures=figures(results))


def _deploy(sim, data, samples: int, tags) -> dict:
    """A trained net on Lava with every tag, on the first ``samples`` test images
    (0: all), and the reference's accuracy on the same images. A softmax output
    is deployed as its logits (:func:`~neuro_pc.models.rate.logit_twin`: the
    same predicted class; fixed_pt has no softmax)."""
    from neuro_pc.backends.lava.deploy import deploy

    n = samples or len(data.y_test)
    x, y = data.x_test[:n], data.y_test[:n]
    art = sim.artifact(trained_on="reference")
    art = dataclasses.replace(art, circuit=logit_twin(art.circuit))
    report = deploy(art, x, y, tags=tags)
    out = {t: {"accuracy": r.accuracy, "per_class": r.per_class, "steps_per_s": r.steps_per_s}
           for t, r in report.items()}
    out["reference"] = {"accuracy": sim.evaluate(x, y)}
    out["samples"] = len(y)
    return out


def _table(results: dict, backend: str, data_name: str, tags=()) -> str:
    how = " (trained on reference, deployed to Lava)" if tags else ""
    regime = "" if "batch_size" not in results else \
        (f"  batch={results['batch_size']}  dtype={results['dtype']}"
         + (f"  eta_decay={results['eta_decay']:g}/epoch" if results["eta_decay"] != 1 else ""))
    evaluated = "validation accuracy" if "evaluated_on" in results else "test accuracy"
    signals = any("delta_angle_mean" in r for r in results["rules"].values())
    published = any("published" in r for r in results["rules"].values())
    lines = [f"data={data_name}  backend={backend}{how}  "
             f"epochs={results['epochs']}  seeds={results['seeds']}{regime}"]
    if "evaluated_on" in results:
        lines.append(f"evaluated on {results['evaluated_on']}")
    head = f"{'rule':6} {evaluated:>22} {'angle dW1 vs BP (deg)':>24}"
    if signals:
        head += f" {'δ1 vs BP':>9} {'∠(Wᵀ,B)':>8} {'‖B‖/‖W‖':>8}"
    lines.append(head)
    for rule, r in results["rules"].items():
        accs = ", ".join(f"{x['test_accuracy']:.4f}" for x in r["runs"])
        row = (f"{rule:6} {100 * r['test_accuracy_mean']:8.2f} ± "
               f"{100 * r['test_accuracy_std']:4.2f} %  {r['angle_to_bp_mean']:18.1f}")
        if signals:
            row += (f"      {r['delta_angle_mean']:9.1f} {r['weight_angle_mean']:8.1f} "
                    f"{r['weight_norm_ratio_mean']:8.2f}")
        lines.append(row + f"      [{accs}]")
    if published:
        lines.append("")
        lines.append("published (not measured here):")
        for rule, r in results["rules"].items():
            if "published" in r:
                lines.append(f"  {rule:6} {r['published']}")
    if tags:
        first = next(iter(results["rules"].values()))["lava_deployed"]
        lines.append("")
        lines.append(f"deployed to Lava: the first {first['seeds']} seed(s) of every rule, on "
                     f"{first['samples']} test images; the reference on the same images")
        lines.append(f"{'rule':6} {'reference':>10} " + " ".join(f"{'Lava ' + t:>18}" for t in tags)
                     + "   largest loss")
        for rule, r in results["rules"].items():
            ref = r["lava_reference_accuracy_mean"]
            vals = [r[f"lava_{t}_accuracy_mean"] for t in tags]
            lines.append(f"{rule:6} {100 * ref:9.2f}% " + " ".join(f"{100 * v:17.2f}%" for v in vals)
                         + f"   {100 * max(ref - v for v in vals):+.2f} points")
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
    return {rule: cfg.model.net(sizes, rule, lam=getattr(cfg.train.lam, rule))
            for rule in cfg.train.rules}
