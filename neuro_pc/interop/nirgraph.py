"""NIR export and import: a trained circuit's inference graph as a NIR graph
(the Neuromorphic Intermediate Representation, HDF5), and a NIR graph as a
circuit that runs on every backend. The conventions are in docs/interop.md.

**What NIR can say.** NIR's nodes are linear maps (``Affine``, ``Linear``,
``Scale``, convolutions, pooling, ``Flatten``), ``Delay``, ``Threshold`` and
neuron ODEs (``I``, ``IF``, ``LI``, ``LIF``, ``CubaLI``, ``CubaLIF``), with time
constants in seconds. It has no learning rule, no nonlinearity other than the
spike (no ``tanh``, ``relu``, ``sigmoid``), no refractory period, no reset by
subtraction (its neurons reset to ``v_reset``) and no input encoder: a graph's
``Input`` takes spike trains.

**Discretisation.** A neuron with per-step membrane decay ``d`` (``v = d v + I``)
is NIR's ``tau dv/dt = (v_leak - v) + R I`` stepped by forward Euler with step
``dt``, the discretisation snnTorch's and Norse's NIR importers use::

    tau = dt / (1 - d),   R = tau / dt,   v_leak = 0      (so v' = d v + I exactly)

``d = 1`` (no leak) is ``IF`` with ``R = 1 / dt``. A current-based neuron
(``i = a i + I``, ``v = d v + i``, the current *after* this step's update, as in
snnTorch's ``Synaptic`` and Lava's LIF) is ``CubaLIF`` with ``tau_syn = dt/(1-a)``,
``w_in = tau_syn/dt``, ``tau_mem = dt/(1-d)``, ``R = tau_mem/dt``. ``dt`` is not in
NIR: it is the importer's (snnTorch: 1e-4 s; Norse: 1e-3 s); :data:`DEFAULT_DT`
is snnTorch's, and a graph is exported for one ``dt`` (recorded in the graph's
metadata).

**Time.** Every neuro_pc projection takes one step; NIR's edges take none (a
spike crosses every layer within its step). An exported graph is the circuit
*without its delays*. Its neuro_pc equivalent, which :func:`import_nir` builds,
is the staggered circuit: a layer ``l`` projections from the input restarts at
window step ``l`` (the first step whose input comes from this window only) and
adds that step's input, so its window steps ``l, l+1, …`` are NIR's steps
``0, 1, …`` exactly, and the output counts spikes over ``steps = T - L`` steps
(``L`` the output's depth). A circuit trained with the project's :class:`LIF`
(every layer restarting at step 0) differs from its exported graph only in the
first ``l - 1`` steps of layer ``l``, which see the bias alone.

This module reads circuits and artifacts; ``nir`` is imported only inside
:func:`to_nir` / :func:`from_nir` (the optional extra ``nir``).
"""
from __future__ import annotations

import ast
import json
import keyword
import math
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from neuro_pc.ir import Artifact, Circuit, Init, Population, Projection, Schedule
from neuro_pc.ir.artifact import load_artifact, new_file_mode
from neuro_pc.models.spiking import LIF, RESETS, RateEncoder

#: the time step (seconds) a graph is exported for, and imported with, by default:
#: snnTorch's NIR importer and exporter fix dt = 1e-4 s
DEFAULT_DT = 1e-4
#: NIR steps an imported graph runs per sample when neither the call nor the graph says
DEFAULT_STEPS = 32
#: the NIR node types :func:`from_nir` reads
NIR_IMPORTS = ("Input", "Output", "Affine", "Linear", "Scale", "Flatten", "IF", "LIF",
               "CubaLIF", "LI")
#: every NIR node type (nir 1.0), for messages
NIR_NODES = ("Input", "Output", "Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d",
             "AvgPool2d", "Flatten", "Delay", "Threshold", "I", "IF", "LI", "LIF", "CubaLI",
             "CubaLIF", "NIRGraph")
_NO_NONLINEARITY = ("NIR has no node for it: its only nonlinearities are the spike of its "
                    "IF/LIF/CubaLIF neurons and Threshold")


class NIRError(ValueError):
    """A circuit NIR cannot express, or a NIR graph neuro_pc cannot import; the message
    names the population, projection or node and what to do."""


def _nir():
    try:
        import nir
    except ImportError:
        raise ImportError("NIR export and import need the nir package: pip install "
                          "'neuro-pc[nir]' (or pip install nir)") from None
    return nir


# --------------------------------------------------------------------------- statements
def _norm(text: str) -> str:
    return ast.dump(ast.parse(text.strip(), mode="exec").body[0])


def _contains(pop: Population, template: tuple[str, ...], variables: tuple[str, ...]) -> bool:
    """``template`` appears in ``pop.update`` in order, and no other statement of the
    population assigns one of ``variables`` (so they are computed by the template alone)."""
    if not set(variables) <= set(pop.variables):
        return False
    try:
        update = [_norm(s) for s in pop.update]
        want = [_norm(s) for s in template]
    except SyntaxError:
        return False
    hits, k = [], 0
    for i, s in enumerate(update):
        if k < len(want) and s == want[k]:
            hits.append(i)
            k += 1
    if k < len(want):
        return False
    others = [st for i, st in enumerate(pop.statements()) if i not in hits]
    return not any(st.target in variables for st in others)


def neuron_statements(drive: str, restart: int | None, current: bool = False,
                      reset: str = "zero", v_reset: bool = False,
                      spiking: bool = True) -> tuple[str, ...]:
    """The update of an imported NIR neuron (forward Euler, per step)::

        i = where(tw == k, 0, i * (1 - du)) + I          (CubaLIF)
        v = where(tw == k, 0, v * (1 - dv)) + i + bias   (LIF, IF: ... + I + bias)
        s = step(v - thr)
        v = where(s > 0, v_reset, v)                     (or 0; or v - thr * s)

    restarting at window step ``k`` (``restart``; None: never). With a reset to 0
    this is :class:`~neuro_pc.models.spiking.neurons.LavaLIF`, Lava's own LIF. ``spiking=False``
    is a leaky integrator (NIR ``LI``): the ``v`` line alone, without ``bias``."""
    def again(expr: str) -> str:
        return expr if restart is None else f"where(tw == {int(restart)}, 0, {expr})"

    if not spiking:
        return (f"v = {again('v * (1 - dv)')} + {drive}",)
    out = []
    if current:
        out.append(f"i = {again('i * (1 - du)')} + {drive}")
        drive = "i"
    out += [f"v = {again('v * (1 - dv)')} + {drive} + bias", "s = step(v - thr)"]
    if reset == "subtract":
        out.append("v = v - thr * s")
    else:
        out.append("v = where(s > 0, v_reset, v)" if v_reset else "v = where(s > 0, 0, v)")
    return tuple(out)


@dataclass(frozen=True)
class Neuron:
    """What a spiking population computes, read off its statements.

    leak: ``1 - d`` of the membrane (0: integrate-and-fire); current_leak: ``1 - a``
    of a synaptic current, None for a voltage-based unit; bias: a constant added to
    ``v`` every step; restart: the window step the unit restarts at (None: never);
    at_restart: whether the input of that step is added (the imported form) or
    ignored (the project's :class:`LIF`)."""

    population: str
    drive: str
    leak: float
    thr: float
    reset: str = "zero"
    v_reset: float = 0.0
    refractory: int = 0
    current_leak: float | None = None
    bias: float = 0.0
    restart: int | None = 0
    at_restart: bool = False
    form: str = "LIF"


def _restart_step(pop: Population) -> int | None:
    for text in pop.update:
        m = re.search(r"tw\s*==\s*(\d+)", text)
        if m:
            return int(m.group(1))
    return None


def read_neuron(pop: Population) -> Neuron | None:
    """The :class:`Neuron` a population's statements are, or None: the project's
    :class:`~neuro_pc.models.spiking.neurons.LIF` (any reset, refractoriness, current) or the
    imported form of :func:`neuron_statements` (which includes Lava's LIF)."""
    p = pop.params
    if "v_decay" in p and "thr" in p:
        for reset in RESETS:
            for drive in pop.ports:
                try:
                    lif = LIF(v_decay=p["v_decay"], thr=p["thr"], reset=reset,
                              v_reset=p.get("v_reset", 0.0), refractory=int(p.get("t_ref", 0)),
                              i_decay=p.get("i_decay"))
                except (ValueError, TypeError):
                    continue
                if _contains(pop, lif.statements(drive), lif.variables):
                    return Neuron(pop.name, drive, 1.0 - lif.v_decay, lif.thr, reset,
                                  lif.v_reset if reset == "zero" or lif.refractory else 0.0,
                                  lif.refractory, None if lif.i_decay is None
                                  else 1.0 - lif.i_decay, 0.0, 0, False, "LIF")
    if "dv" in p and "thr" in p and "bias" in p:
        k = _restart_step(pop)
        current = "du" in p
        for reset, v_reset in (("zero", False), ("zero", True), ("subtract", False)):
            if v_reset and "v_reset" not in p:
                continue
            for drive in pop.ports:
                st = neuron_statements(drive, k, current, reset, v_reset)
                variables = ("i", "v", "s") if current else ("v", "s")
                if _contains(pop, st, variables):
                    return Neuron(pop.name, drive, float(p["dv"]), float(p["thr"]), reset,
                                  float(p.get("v_reset", 0.0)) if v_reset else 0.0, 0,
                                  float(p["du"]) if current else None, float(p["bias"]), k,
                                  True, "LavaLIF" if reset == "zero" and not v_reset
                                  else "imported")
    return None


def _slice(pop: Population, var: str) -> list:
    """The statements of ``pop`` that the final value of ``var`` depends on, in order."""
    st = list(pop.statements())
    need, out = {var}, []
    for s in reversed(st):
        if s.target in need:
            out.append(s)
            need |= set(s.names)
    return list(reversed(out))


def _identity_port(pop: Population, var: str) -> str | None:
    """The port ``var`` equals when the population only copies it (``a = ff; r = a``)."""
    sl = _slice(pop, var)
    if not sl:
        return None
    values: dict[str, str] = {}
    for s in sl:
        if not isinstance(s.expr.body, ast.Name):
            return None
        src = s.expr.body.id
        values[s.target] = values.get(src, src)
    port = values.get(var)
    return port if port in pop.ports else None


def _rate_problem(pop: Population, var: str) -> str:
    sl = _slice(pop, var)
    for s in sl:
        fns = sorted(s.functions)
        if fns:
            return (f"population {pop.name!r} computes {s.text!r}: {_NO_NONLINEARITY}, so "
                    f"{fns[0]} cannot be exported")
    text = "; ".join(s.text for s in sl) or f"{var} (never assigned)"
    return (f"population {pop.name!r} computes {text!r}, which is neither a LIF/IF neuron "
            "nor a linear layer; NIR cannot express it")


def _is_constant(pop: Population) -> bool:
    return not pop.update and not pop.streams


def _encoder(pop: Population) -> RateEncoder | None:
    p = pop.params
    if "gain" not in p or "phase" not in p or set(pop.streams) != {"r"}:
        return None
    enc = RateEncoder(gain=float(p["gain"]), phase=float(p["phase"]))
    return enc if _contains(pop, enc.statements("r"), ("acc", "s")) else None


# --------------------------------------------------------------------------- export
@dataclass
class ExportReport:
    """What :func:`export_nir` wrote and left out: ``nodes`` (name -> NIR type),
    ``notes`` (one line each: learning rules not exported, dropped projections, the
    timing and input conventions)."""

    path: str | None
    nodes: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    dt: float = DEFAULT_DT

    def summary(self) -> str:
        nodes = ", ".join(f"{k} ({v})" for k, v in self.nodes.items())
        lines = [f"NIR graph{' ' + self.path if self.path else ''} (dt = {self.dt:g} s): "
                 f"{nodes}"]
        return "\n".join(lines + [f"  - {n}" for n in self.notes])


def _artifact(obj) -> Artifact:
    if isinstance(obj, Artifact):
        return obj.check()
    if isinstance(obj, (str, os.PathLike)):
        return load_artifact(obj)
    if hasattr(obj, "artifact"):   # a Simulator
        return obj.artifact()
    raise TypeError(f"expected an Artifact, a Simulator or an artifact path, got "
                    f"{type(obj).__name__}")


def to_nir(artifact, dt: float = DEFAULT_DT, subtract_reset: bool = False):
    """The inference graph of a trained circuit as a ``nir.NIRGraph``, and the
    :class:`ExportReport` (nodes, what was left out). ``artifact``: an
    :class:`~neuro_pc.ir.Artifact`, a simulator or an artifact's path.

    Spiking circuits: every population on the path to the readout that is a LIF/IF
    neuron (the project's :class:`LIF`, Lava's LIF, an imported NIR neuron) becomes a
    ``LIF``, ``IF`` or ``CubaLIF`` node; the projections into its drive an ``Affine``
    (with the biases of constant units folded in) or ``Linear``; the input
    population an ``Input``. Rate circuits export when every layer is linear (an
    ``Affine`` chain). Anything NIR cannot express is a :class:`NIRError` naming the
    population and the function or feature (``tanh``, reset by subtraction, a
    refractory period). ``subtract_reset=True`` exports a reset by subtraction as
    ``v_reset = 0`` with ``{"reset": "subtract"}`` in the node's metadata, which
    :func:`import_nir` honours and other tools ignore. Learning rules are not NIR:
    they are left out (the report says so) and stay in the artifact."""
    nir = _nir()
    art = _artifact(artifact)
    c, weights = art.circuit, art.weights
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise NIRError(f"dt must be a positive number of seconds, got {dt!r}")
    if c.readout is None:
        raise NIRError(f"circuit {c.name!r} has no readout: nothing to export as the graph's "
                       "Output")
    out_pop, out_var = c.readout
    report = ExportReport(path=None, dt=float(dt))
    nodes: dict = {}
    edges: list = []
    kinds: dict[str, str] = {}      # population -> "input" | "neuron" | "rate"
    depth: dict[str, int] = {}
    encoders: dict[str, RateEncoder | None] = {}
    used: set[str] = set()          # projections on the inference path
    neurons: dict[str, Neuron] = {}
    tail: dict[str, str] = {}       # linear population -> the node that computes it
    pop_names = {p.name for p in c.populations}

    def sources(target: str, port: str, extra_bias=None):
        """``{source population: [(projection, matrix, variable)]}`` into ``target.port``
        and the summed drive of the constant units (biases)."""
        tpop = c.population(target)
        per_source: dict[str, list] = {}
        bias = np.zeros(tpop.size) if extra_bias is None else np.array(extra_bias, float)
        has_bias = extra_bias is not None
        for proj in c.projections_into(target, port):
            used.add(proj.name)
            m = c.effective_matrix(weights, proj)
            spop = c.population(proj.source)
            var = c.source_variable(proj)
            if _is_constant(spop):
                bias = bias + m @ np.full(spop.size, float(spop.init.get(var, 0.0)))
                has_bias = True
            else:
                per_source.setdefault(proj.source, []).append((proj, m, var))
        return per_source, bias, has_bias

    def visit(name: str, var: str, stack: tuple[str, ...]) -> int:
        if name in depth:
            return depth[name]
        if name in stack:
            raise NIRError(f"population {name!r} is on a recurrent loop "
                           f"({' -> '.join(stack[stack.index(name):] + (name,))}); recurrent "
                           "graphs are not exported yet")
        pop = c.population(name)
        stack = stack + (name,)
        if pop.streams and not pop.ports:
            enc = _encoder(pop)
            if pop.update and enc is None:
                raise NIRError(f"input population {name!r} computes {pop.update[0]!r}: NIR "
                               "inputs are spike trains or values; of encoders, only "
                               "neuro_pc's RateEncoder is understood (and left to the caller)")
            if (enc is not None and var != "s") or (enc is None and var not in pop.streams):
                raise NIRError(f"a projection reads {name}.{var}; NIR's Input carries "
                               f"{'its spikes (s)' if enc else 'the streamed values'}")
            kinds[name], encoders[name], depth[name] = "input", enc, 0
            nodes[name] = nir.Input(input_type={"input": np.array([pop.size])})
            report.nodes[name] = "Input"
            return 0
        neuron = read_neuron(pop)
        if neuron is not None:
            if var != "s" and name != out_pop:
                raise NIRError(f"a projection reads {name}.{var}, not its spikes: NIR edges "
                               "carry a neuron's spikes")
            _check_neuron(neuron, subtract_reset)
            neurons[name], kinds[name] = neuron, "neuron"
            per_source, bias, has_bias = sources(
                name, neuron.drive, np.full(pop.size, neuron.bias) if neuron.bias else None)
        else:
            port = _identity_port(pop, var)
            if port is None:
                raise NIRError(_rate_problem(pop, var))
            kinds[name] = "rate"
            per_source, bias, has_bias = sources(name, port)
        if not per_source:
            raise NIRError(f"population {name!r} has no input but constant units: no NIR "
                           "graph leads to it")
        depths = {src: visit(src, projs[0][2], stack) for src, projs in per_source.items()}
        for src, projs in per_source.items():
            if len({v for _, _, v in projs}) > 1:
                raise NIRError(f"projections from {src!r} into {name!r} read different "
                               "variables; NIR edges carry one output per node")
        if len(set(depths.values())) > 1:
            raise NIRError(f"population {name!r} receives from populations at different "
                           f"depths ({', '.join(f'{k} at {v}' for k, v in depths.items())}): "
                           "each neuro_pc projection takes a step and NIR's edges none, and "
                           "snnTorch and Norse import no Delay node to make up the difference")
        depth[name] = max(depths.values()) + 1
        keys = []
        for k, (src, projs) in enumerate(per_source.items()):
            w = sum(m for _, m, _ in projs)
            key = projs[0][0].name
            while key in pop_names or key in nodes:   # a projection named like a population
                key += "_w"
            keys.append(key)
            if has_bias and k == 0:
                nodes[key] = nir.Affine(weight=np.asarray(w, float), bias=np.asarray(bias, float))
                report.nodes[key] = "Affine"
            else:
                nodes[key] = nir.Linear(weight=np.asarray(w, float))
                report.nodes[key] = "Linear"
            edges.append((tail.get(src, src), key))
        if kinds[name] == "neuron":
            nodes[name], report.nodes[name] = _neuron_node(nir, neuron, pop.size, dt)
            edges.extend((key, name) for key in keys)
        elif len(keys) > 1:
            raise NIRError(f"linear population {name!r} sums several sources; only chains "
                           "of linear layers export")
        else:
            tail[name] = keys[0]
        return depth[name]

    visit(out_pop, out_var, ())
    taken = {p.name for p in c.populations} | {p.name for p in c.projections}
    out_key = "output" if "output" not in taken else "nir_output"
    nodes[out_key] = nir.Output(output_type={"output": np.array([c.population(out_pop).size])})
    edges.append((tail.get(out_pop, out_pop), out_key))
    report.nodes[out_key] = "Output"

    # -- what the graph leaves out ------------------------------------------------------
    plastic = [p.name for p in c.plastic]
    if plastic:
        rules = sorted({p.rule.text for p in c.plastic})
        report.notes.append(f"learning rules are not NIR: the rules of {', '.join(plastic)} "
                            f"({'; '.join(rules)}) are not exported; the artifact keeps them")
    dropped = [p.name for p in c.projections if p.name not in used]
    if dropped:
        report.notes.append(f"not on the path to the readout, left out: projection(s) "
                            f"{', '.join(dropped)}")
    spiking = any(k == "neuron" for k in kinds.values())
    L = depth[out_pop]
    if spiking:
        report.notes.append(
            f"timing: NIR edges take no step, neuro_pc's projections one each; the graph is "
            f"the circuit without its delays (its neuro_pc form restarts layer l at window "
            f"step l and counts {out_pop!r}'s spikes over {c.schedule.window - L} steps)")
    for name, enc in encoders.items():
        if enc is not None:
            report.notes.append(
                f"input {name!r}: NIR has no encoder; the Input takes the spike trains of "
                f"neuro_pc's RateEncoder(gain={enc.gain:g}, phase={enc.phase:g}) "
                "(neuro_pc.interop.encode_spikes), recorded in the graph's metadata")
    if spiking and out_var != "s":
        report.notes.append(f"readout {out_pop}.{out_var}: the Output carries {out_pop!r}'s "
                            "spikes; their count is the readout")
    if any(n.reset == "subtract" for n in neurons.values()):
        report.notes.append("reset by subtraction written as v_reset = 0 with metadata "
                            "{'reset': 'subtract'}: neuro_pc's import honours it, other tools "
                            "reset to 0")
    inputs = [k for k, v in kinds.items() if v == "input"]
    enc = encoders.get(inputs[0]) if len(inputs) == 1 else None
    meta = {"generator": f"neuro_pc {_version()}", "circuit": c.name, "dt": float(dt),
            "window": int(c.schedule.window), "depth": int(L),
            "steps": int(max(c.schedule.window - L, 1)),
            "input": "spikes" if enc is not None else "values",
            "encoder": asdict(enc) if enc is not None else None,
            "readout": [out_pop, out_var],
            "convention": "forward Euler at dt; edges without delay (docs/interop.md)"}
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"neuro_pc": json.dumps(meta)})
    return graph, report


def _check_neuron(n: Neuron, subtract_reset: bool) -> None:
    if n.refractory:
        raise NIRError(f"population {n.population!r} has a refractory period of "
                       f"{n.refractory} step(s); NIR's neurons have none: export a circuit "
                       "with refractory = 0")
    if n.reset == "subtract" and not subtract_reset:
        raise NIRError(f"population {n.population!r} resets by subtraction (v -= thr); NIR's "
                       "LIF/IF/CubaLIF reset to v_reset: train with reset = 'zero' ([lif] "
                       "reset = \"zero\"), or export with --allow-subtract-reset (writes "
                       "v_reset = 0 and records the subtraction in the node's metadata, which "
                       "only neuro_pc reads)")
    if not 0.0 <= n.leak <= 1.0:
        raise NIRError(f"population {n.population!r}: the membrane decay {1 - n.leak:g} is "
                       "outside [0, 1]; no NIR time constant gives it")
    if n.current_leak is not None and (n.current_leak <= 0.0 or n.leak <= 0.0):
        which = "synaptic current" if n.current_leak <= 0.0 else "membrane"
        raise NIRError(f"population {n.population!r} is current-based with a non-decaying "
                       f"{which} (decay 1); NIR's CubaLIF needs finite tau_syn and tau_mem")


def _neuron_node(nir, n: Neuron, size: int, dt: float):
    full = lambda v: np.full(size, float(v))   # noqa: E731
    meta = {"reset": "subtract"} if n.reset == "subtract" else {}
    v_reset = full(n.v_reset)
    if n.current_leak is not None:
        tau_syn, tau_mem = dt / n.current_leak, dt / n.leak
        node = nir.CubaLIF(tau_syn=full(tau_syn), tau_mem=full(tau_mem), r=full(tau_mem / dt),
                           v_leak=full(0.0), v_threshold=full(n.thr), v_reset=v_reset,
                           w_in=full(tau_syn / dt), metadata=meta)
        return node, "CubaLIF"
    if n.leak == 0.0:
        return nir.IF(r=full(1.0 / dt), v_threshold=full(n.thr), v_reset=v_reset,
                      metadata=meta), "IF"
    tau = dt / n.leak
    return nir.LIF(tau=full(tau), r=full(tau / dt), v_leak=full(0.0), v_threshold=full(n.thr),
                   v_reset=v_reset, metadata=meta), "LIF"


def _version() -> str:
    from neuro_pc import __version__

    return __version__


def export_nir(artifact, path: str | os.PathLike, dt: float = DEFAULT_DT,
               subtract_reset: bool = False) -> ExportReport:
    """Write :func:`to_nir`'s graph to ``path`` (HDF5, ``nir.write``) atomically: the
    file appears whole or not at all, with the mode a plain ``open()`` would give it.
    Returns the :class:`ExportReport`."""
    nir = _nir()
    graph, report = to_nir(artifact, dt=dt, subtract_reset=subtract_reset)
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "is a folder; give a file name such as net.nir", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        nir.write(tmp, graph)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    report.path = str(path)
    return report


# --------------------------------------------------------------------------- input spikes
def encode_spikes(x, steps: int, encoder: RateEncoder = RateEncoder()) -> np.ndarray:
    """The spike trains ``(n, steps, n_in)`` (0/1 float) neuro_pc's
    :class:`~neuro_pc.models.spiking.neurons.RateEncoder` emits for rates ``x`` ``(n, n_in)`` in
    the first ``steps`` steps of a window: what to feed another tool's copy of an
    exported graph (its ``Input``) for the same input. Exactly the IR encoder:
    ``acc = phase``; every step ``acc += clip(gain x, 0, 1)``, spike where ``acc > 1``,
    then ``acc -= spike``."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    q = np.clip(encoder.gain * x, 0.0, 1.0)
    acc = np.full_like(q, encoder.phase)
    out = np.zeros((x.shape[0], int(steps), x.shape[1]))
    for t in range(int(steps)):
        acc = acc + q
        s = (acc - 1.0 > 0).astype(np.float64)
        acc = acc - s
        out[:, t] = s
    return out


# --------------------------------------------------------------------------- import
def _graph_meta(graph) -> dict:
    raw = (graph.metadata or {}).get("neuro_pc") if isinstance(graph.metadata, dict) else None
    if raw is None:
        return {}
    if isinstance(raw, (bytes, np.bytes_)):
        raw = raw.decode("utf-8")
    if isinstance(raw, np.ndarray):
        raw = raw.item()
        raw = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        meta = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _node_meta(node) -> dict:
    meta = getattr(node, "metadata", None) or {}
    out = {}
    for k, v in meta.items():
        if isinstance(v, np.ndarray) and v.shape == ():
            v = v.item()
        out[k] = v.decode("utf-8") if isinstance(v, (bytes, np.bytes_)) else v
    return out


def _ident(key: str, taken: set) -> str:
    name = re.sub(r"\W", "_", str(key)).strip("_") or "node"
    if not name[0].isalpha():
        name = "n" + name
    while name.startswith("__"):
        name = name[1:]
    base, k = name, 1
    while name in taken or name in ("tw", "train", "dt") or keyword.iskeyword(name):
        name = f"{base}_{k}"
        k += 1
    taken.add(name)
    return name


def _shape(node) -> tuple:
    t = getattr(node, "input_type", None) or {}
    v = next(iter(t.values()), None) if isinstance(t, dict) else None
    return tuple(int(s) for s in np.atleast_1d(v)) if v is not None else ()


def from_nir(graph, steps: int | None = None, dt: float | None = None,
             encoder: RateEncoder | None = None, name: str | None = None) -> Artifact:
    """A NIR graph as a neuro_pc circuit with its weights (an :class:`Artifact` for
    inference; ``Simulator.from_artifact`` runs it on any backend).

    Nodes: ``Input`` (1-D) becomes a spike input driven by neuro_pc's rate encoder
    (``encoder``; default the one the graph's neuro_pc metadata records, else
    ``RateEncoder()``), or a value input if the graph was exported from a rate
    circuit; ``Affine``/``Linear``/``Scale``/``Flatten`` chains between neurons fold
    into one projection (biases into projections from an always-on unit); ``LIF``,
    ``IF``, ``CubaLIF`` become spiking populations and ``LI`` a leaky integrator,
    with forward Euler at ``dt`` (default: the graph's metadata, else
    :data:`DEFAULT_DT`); the node feeding ``Output`` is the readout (its spike
    count, or ``LI``'s ``v``). A node at depth ``l`` restarts at window step ``l``;
    the window is ``steps + L`` (``steps``: NIR time steps per sample, default the
    graph's metadata, else :data:`DEFAULT_STEPS`).

    Per-neuron ``tau``, ``v_threshold`` and ``v_reset`` must be uniform within a node
    (a population holds one value of each); ``R``, ``w_in`` and ``v_leak`` may vary
    (folded into the weights and biases). Unsupported nodes (convolutions, pooling,
    ``Delay``, ``Threshold``, ``I``, ``CubaLI``, subgraphs) are all named in one
    :class:`NIRError`; so are recurrent loops and multi-dimensional inputs."""
    nir = _nir()
    meta = _graph_meta(graph)
    dt = float(dt if dt is not None else meta.get("dt", DEFAULT_DT))
    if not (math.isfinite(dt) and dt > 0):
        raise NIRError(f"dt must be a positive number of seconds, got {dt!r}")
    nodes, edges = dict(graph.nodes), [tuple(map(str, e)) for e in graph.edges]
    bad = [f"{k!r} ({type(n).__name__}{': a subgraph, e.g. a recurrent layer' if type(n).__name__ == 'NIRGraph' else ''})"
           for k, n in nodes.items() if type(n).__name__ not in NIR_IMPORTS]
    if bad:
        raise NIRError(f"unsupported NIR node(s) {', '.join(bad)}; neuro_pc imports "
                       f"{', '.join(NIR_IMPORTS)} (1-D, feed-forward)")
    kind = {k: type(n).__name__ for k, n in nodes.items()}
    for k, n in nodes.items():
        if kind[k] in ("Input", "Flatten") and len(_shape(n)) > 1:
            raise NIRError(f"node {k!r} ({kind[k]}) has shape {_shape(n)}: neuro_pc's "
                           "populations are 1-D; flatten the input before exporting")
    inputs = [k for k in nodes if kind[k] == "Input"]
    outputs = [k for k in nodes if kind[k] == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRError(f"the graph has {len(inputs)} Input and {len(outputs)} Output node(s); "
                       "neuro_pc imports graphs with exactly one of each")
    preds: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        if a not in nodes or b not in nodes:
            raise NIRError(f"edge ({a!r}, {b!r}) names a node the graph does not have")
        preds[b].append(a)
    _no_cycles(nodes, edges)
    state_kinds = ("Input", "IF", "LIF", "CubaLIF", "LI")

    size: dict[str, int] = {}

    def linear(k: str) -> tuple[dict, np.ndarray | None]:
        """``{state node: matrix}`` and bias of what node ``k`` outputs, as a linear
        function of the state nodes (neurons, the input) before it."""
        if kind[k] in state_kinds:
            n = state_size(k)
            return {k: np.eye(n)}, None
        acc, bias = linear_in(k)
        node = nodes[k]
        if kind[k] in ("Affine", "Linear"):
            a = np.asarray(node.weight, dtype=np.float64)
            if a.ndim != 2:
                raise NIRError(f"node {k!r} ({kind[k]}) has a weight of shape {a.shape}; "
                               "expected (out, in)")
            n_in = next(iter(acc.values())).shape[0]
            if a.shape[1] != n_in:
                raise NIRError(f"node {k!r} ({kind[k]}) takes {a.shape[1]} inputs but "
                               f"receives {n_in}")
            acc = {s: a @ mat for s, mat in acc.items()}
            bias = None if bias is None else a @ bias
            if kind[k] == "Affine" and getattr(node, "bias", None) is not None:
                b = np.broadcast_to(np.asarray(node.bias, np.float64), (a.shape[0],)).copy()
                bias = b if bias is None else bias + b
        elif kind[k] == "Scale":
            n = next(iter(acc.values())).shape[0]
            sc = np.broadcast_to(np.asarray(node.scale, np.float64), (n,))
            acc = {s: sc[:, None] * mat for s, mat in acc.items()}
            bias = None if bias is None else sc * bias
        return acc, bias

    def state_size(k: str) -> int:
        if k in size:
            return size[k]
        node = nodes[k]
        if kind[k] == "Input":
            shp = _shape(node)
            if len(shp) != 1:
                raise NIRError(f"Input {k!r} has shape {shp}; neuro_pc takes 1-D inputs")
            size[k] = shp[0]
        else:
            m, _ = linear_in(k)
            size[k] = next(iter(m.values())).shape[0]
        return size[k]

    def linear_in(k: str) -> tuple[dict, np.ndarray | None]:
        """The sum of what node ``k``'s predecessors output (:func:`linear`)."""
        acc, bias = {}, None
        for p in preds[k]:
            m, b = linear(p)
            for s, mat in m.items():
                acc[s] = acc[s] + mat if s in acc else mat
            if b is not None:
                bias = b if bias is None else bias + b
        if not acc:
            raise NIRError(f"node {k!r} ({kind[k]}) has no input")
        return acc, bias

    # depths and the readout
    depth: dict[str, int] = {inputs[0]: 0}

    def depth_of(k: str) -> int:
        if k in depth:
            return depth[k]
        m, _ = linear_in(k)
        ds = {s: depth_of(s) for s in m}
        if len(set(ds.values())) > 1:
            raise NIRError(f"node {k!r} receives from nodes at different depths "
                           f"({', '.join(f'{s} at {d}' for s, d in ds.items())}): NIR's edges "
                           "take no step and neuro_pc's one per projection, so the timing "
                           "would differ; only layered graphs are imported")
        depth[k] = max(ds.values()) + 1
        return depth[k]

    out_in, out_bias = linear_in(outputs[0])
    if len(out_in) != 1:
        raise NIRError(f"Output {outputs[0]!r} sums several nodes; neuro_pc reads out one "
                       "population")
    readout_src = next(iter(out_in))
    linear_readout = kind[readout_src] == "Input" or not (
        preds[outputs[0]] == [readout_src] and out_bias is None)
    neurons = [k for k in nodes if kind[k] in ("IF", "LIF", "CubaLIF", "LI")]
    for k in neurons:
        depth_of(k)
    L = depth_of(readout_src) + (1 if linear_readout else 0)
    steps = int(steps if steps is not None else meta.get("steps", DEFAULT_STEPS))
    if steps < 1:
        raise NIRError(f"steps must be >= 1, got {steps}")
    window = steps + L

    taken: set = set()
    pop_name = {k: _ident(k, taken) for k in [inputs[0], *neurons]}
    bias_name = _ident("bias", taken)
    if encoder is None:
        enc_meta = meta.get("encoder")
        encoder = RateEncoder(**enc_meta) if isinstance(enc_meta, dict) else RateEncoder()
    values_input = meta.get("input") == "values"
    x = pop_name[inputs[0]]
    n_in = state_size(inputs[0])
    if values_input:
        pops = [Population(x, n_in, ("r",), streams={"r": "x"}, model="input")]
    else:
        pops = [Population(x, n_in, ("r", "acc", "s"), update=encoder.statements("r"),
                           output="s", streams={"r": "x"}, params=encoder.params,
                           model="spike_input")]
    projs: list[Projection] = []
    weights: dict[str, np.ndarray] = {}
    need_bias = False
    order = sorted(neurons, key=lambda k: (depth[k], list(nodes).index(k)))
    readout = None

    def connect(target: str, m: dict, bias, gain, port: str = "ff"):
        nonlocal need_bias
        for s, mat in m.items():
            pname = _ident(f"W_{target}" if len(m) == 1 else f"W_{target}_{pop_name[s]}",
                           taken)
            projs.append(Projection(pname, pop_name[s], target, port, init=Init("zeros")))
            weights[pname] = gain[:, None] * mat
        if bias is not None and np.any(bias):
            need_bias = True
            pname = _ident(f"b_{target}", taken)
            projs.append(Projection(pname, bias_name, target, port, init=Init("zeros")))
            weights[pname] = np.asarray(bias, np.float64)[:, None]

    for k in order:
        node, name_k, l = nodes[k], pop_name[k], depth[k]
        m, b = linear_in(k)
        n = next(iter(m.values())).shape[0]
        p = _neuron_params(k, kind[k], node, n, dt)
        b = None if b is None else p["gain"] * b
        if p["v_bias"] is not None:
            b = p["v_bias"] if b is None else b + p["v_bias"]
        connect(name_k, m, b, p["gain"])
        is_out = k == readout_src and not linear_readout
        if kind[k] == "LI":
            pops.append(Population(name_k, n, ("v",), update=neuron_statements("ff", l,
                                   spiking=False), ports=("ff",), output="v",
                                   params={"dv": p["dv"]}, model="li"))
            if is_out:
                readout = (name_k, "v")
            continue
        subtract = _node_meta(node).get("reset") == "subtract"
        st = neuron_statements("ff", l, kind[k] == "CubaLIF",
                               "subtract" if subtract else "zero", p["v_reset"] != 0.0)
        params = {"dv": p["dv"], "thr": p["thr"], "bias": p["bias"]}
        if kind[k] == "CubaLIF":
            params["du"] = p["du"]
        if p["v_reset"] != 0.0 and not subtract:
            params["v_reset"] = p["v_reset"]
        variables = (("i",) if kind[k] == "CubaLIF" else ()) + ("v", "s")
        if is_out:
            st = st + (f"count = where(tw == {l}, 0, count) + s",)
            variables = variables + ("count",)
            readout = (name_k, "count")
        pops.append(Population(name_k, n, variables, update=st, ports=("ff",), output="s",
                               params=params, model="lif"))
    if linear_readout:
        out_name = _ident("out", taken)
        n = next(iter(out_in.values())).shape[0]
        pops.append(Population(out_name, n, ("r",), update=("r = ff",), ports=("ff",),
                               output="r", model="rate"))
        pop_name[outputs[0]] = out_name
        connect(out_name, out_in, out_bias, np.ones(n))
        readout = (out_name, "r")
    if need_bias:
        pops.insert(1, Population(bias_name, 1, ("s",), output="s", init={"s": 1.0},
                                  model="spike_input"))
    cname = name or _ident(f"{meta['circuit']}_nir" if meta.get("circuit") else "nir_graph",
                           set())
    circuit = Circuit(
        name=cname, populations=tuple(pops), projections=tuple(projs),
        schedule=Schedule(window=window), streams={"x": n_in}, readout=readout,
        metadata={"builder": "nir_import", "dt": dt, "steps": steps, "depth": L,
                  "encoder": None if values_input else asdict(encoder),
                  "nodes": {pop_name[k]: k for k in [inputs[0], *neurons]},
                  "depths": {pop_name[k]: depth[k] for k in [inputs[0], *neurons]}})
    circuit.validate()
    art = Artifact(circuit=circuit, weights=weights,
                   metadata={"imported_from": "nir", "nir_dt": dt, "steps": steps,
                             "task": "classification", "backend": "reference", "seed": 0})
    return art.check()


def _no_cycles(nodes: dict, edges: list) -> None:
    succ: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        succ[a].append(b)
    state: dict[str, int] = {}

    def dfs(k, path):
        state[k] = 1
        for b in succ[k]:
            if state.get(b) == 1:
                loop = path[path.index(b):] + [b]
                raise NIRError(f"the graph has a recurrent loop ({' -> '.join(loop)}); "
                               "neuro_pc imports feed-forward graphs")
            if b not in state:
                dfs(b, path + [b])
        state[k] = 2

    for k in nodes:
        if k not in state:
            dfs(k, [k])


def _neuron_params(key: str, kind: str, node, n: int, dt: float) -> dict:
    def arr(attr):
        a = np.asarray(getattr(node, attr), dtype=np.float64)
        if a.size not in (1, n):
            raise NIRError(f"node {key!r} ({kind}): {attr} has {a.size} values for {n} neurons")
        return np.broadcast_to(a.reshape(-1) if a.size == n else a.reshape(()), (n,))

    def one(attr, a=None):
        a = arr(attr) if a is None else a
        if not np.allclose(a, a[0], rtol=1e-9, atol=0.0):
            raise NIRError(f"node {key!r} ({kind}): {attr} differs across its {n} neurons "
                           f"({a.min():g} to {a.max():g}); a neuro_pc population holds one "
                           f"value of {attr}")
        return float(a[0])

    def rate(attr) -> float:
        tau = one(attr)
        if not tau >= dt:
            raise NIRError(f"node {key!r} ({kind}): {attr} = {tau:g} s is shorter than the "
                           f"step dt = {dt:g} s (forward Euler needs tau >= dt); import with "
                           "a smaller dt")
        return dt / tau

    out = {"v_bias": None, "bias": 0.0, "du": None, "thr": 0.0, "v_reset": 0.0}
    if kind != "LI":
        out["thr"] = one("v_threshold")
        out["v_reset"] = one("v_reset") if getattr(node, "v_reset", None) is not None else 0.0
    if kind == "IF":
        out["dv"] = 0.0
        out["gain"] = dt * arr("r")
    elif kind in ("LIF", "LI"):
        dv = rate("tau")
        out["dv"] = dv
        out["gain"] = dv * arr("r")
        leak = dv * arr("v_leak")
        out["v_bias"] = leak if np.any(leak) else None
    elif kind == "CubaLIF":
        du, dv = rate("tau_syn"), rate("tau_mem")
        out["du"], out["dv"] = du, dv
        out["gain"] = du * arr("w_in") * dv * arr("r")
        out["bias"] = dv * one("v_leak")
    out["gain"] = np.asarray(out["gain"], np.float64)
    return out


def import_nir(path: str | os.PathLike, steps: int | None = None, dt: float | None = None,
               encoder: RateEncoder | None = None) -> Artifact:
    """:func:`from_nir` of the graph in the NIR file at ``path`` (``nir.read``)."""
    nir = _nir()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "no such file", str(path))
    if path.is_dir():
        raise IsADirectoryError(21, "is a folder, not a NIR file", str(path))
    try:
        graph = nir.read(str(path))
    except (OSError, KeyError, ValueError, TypeError, AssertionError) as exc:
        raise NIRError(f"{path} is not a NIR graph nir.read can load (an HDF5 file written by "
                       f"nir.write): {type(exc).__name__}: {exc}") from None
    name = None if _graph_meta(graph).get("circuit") else _ident(f"{path.stem}_nir", set())
    try:
        art = from_nir(graph, steps=steps, dt=dt, encoder=encoder, name=name)
    except NIRError as exc:
        raise NIRError(f"{path}: {exc}") from None
    art.metadata["imported_from"] = str(path)
    return art


__all__ = ["DEFAULT_DT", "DEFAULT_STEPS", "NIR_IMPORTS", "NIR_NODES", "ExportReport",
           "NIRError", "Neuron", "encode_spikes", "export_nir", "from_nir", "import_nir",
           "neuron_statements", "read_neuron", "to_nir"]
