"""The reference's emulation of a circuit learning on Loihi's learning engine.

:class:`EngineSimulator` runs a circuit step by step exactly as the Lava
backend's on-chip mode (``LavaSimulator(..., learning="engine")``) runs it:
every plastic projection is a learning block of an
:class:`~hardware_targets.onchip.OnChipPlan`, executed by
:class:`hardware_targets.loihi2.engine.EngineSynapses` (the engine's one
statement of semantics); every fixed projection is a synapse whose output
arrives one step later; populations run their update statements in float64
(``floating_pt``) or in the integer arithmetic of the quantised reference
(``fixed_pt``, :mod:`neuro_pc.backends.reference.quantized`).

Per step ``t`` (Lava's order):

1. every port is the sum of what its synapses send: what they computed at
   ``t - 1`` (a learning block: with its weights before that step's update);
2. every population sets its streams and runs its statements; a population
   feeding a learning block sends its payload (:class:`PreCode`), a
   population behind one sends its post traces and, at the last step of a
   learning window, its back-propagating action potential (:class:`PostCode`);
3. every synapse computes what it will send at ``t + 1``; learning blocks
   take the payloads and traces and learn (one-step epochs, gated by the
   back-propagating action potential).

One call of :meth:`run_windows` is one *run*: what one Lava ``run()`` is, so
the blocks' trace and random-number state restart with every call, and
``fixed`` weights are truncated to ``num_weight_bits`` at its first step, as
in Lava. Online only (batch 1). The Lava backend must equal this simulator:
``floating_pt`` to rounding, ``fixed_pt`` bit for bit
(``tests/backends/test_engine.py``).
"""
from __future__ import annotations

import ast
import operator

import numpy as np

from neuro_pc.backends.base import Simulator, sample_order, streams_for, training_arrays
from neuro_pc.backends.reference.quantized import (FRAC_BITS, QuantizedReferenceSimulator,
                                                   QuantizedScopeError, _check)
from neuro_pc.ir import Circuit, CircuitError
from neuro_pc.ir.functions import NUMPY_FUNCTIONS

TAGS = ("floating_pt", "fixed_pt")

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
            ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne}


def float_eval(node, env: dict):
    """A checked expression evaluated with Python's and NumPy's own operations,
    node by node: the same numbers as the generated float64 code of the
    reference and Lava backends."""
    if isinstance(node, ast.Expression):
        return float_eval(node.body, env)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.UnaryOp):
        v = float_eval(node.operand, env)
        return -v if isinstance(node.op, ast.USub) else +v
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](float_eval(node.left, env), float_eval(node.right, env))
    if isinstance(node, ast.Compare):
        return _COMPARE[type(node.ops[0])](float_eval(node.left, env),
                                           float_eval(node.comparators[0], env))
    if isinstance(node, ast.Call):
        return NUMPY_FUNCTIONS[node.func.id](*[float_eval(a, env) for a in node.args])
    raise CircuitError(f"{ast.unparse(node)!r} is outside the expression language")


class EngineSimulator(Simulator):
    """A circuit whose plastic projections learn on the emulated learning engine.

    tag: ``"floating_pt"`` or ``"fixed_pt"`` (Lava's tags). plan: an
    :class:`~hardware_targets.onchip.OnChipPlan` (default: planned from the
    weights, with ``activity`` and ``plan_options`` passed to
    :func:`~hardware_targets.onchip.plan_onchip`). Every plastic projection must
    be in the plan. ``weights`` of the blocks are held in the engine's units
    (:attr:`units`); :attr:`weights` are their real values.

    record: ``(population, variable)`` pairs; after a run :attr:`monitor` holds
    its last window ``(T, 1, n)`` (every step with ``record_all``).
    """

    backend = "reference-engine"
    default_learning = "engine"
    default_tag = "fixed_pt"

    def __init__(self, circuit: Circuit, weights=None, *, seed: int = 0, masks=None,
                 tag: str = "fixed_pt", plan=None, activity: dict | None = None,
                 frac_bits: int = FRAC_BITS, target: str = "loihi2", record=(),
                 record_all: bool = False, plan_options: dict | None = None):
        super().__init__(circuit, weights, seed=seed, masks=masks)
        from hardware_targets.onchip import plan_onchip

        if tag not in TAGS:
            raise ValueError(f"unknown tag {tag!r}; choose one of {TAGS}")
        if self.masks:
            raise CircuitError("the learning engine emulation has no sparse projections yet "
                               f"(masks on {sorted(self.masks)})")
        self.tag, self.mode = tag, ("fixed" if tag == "fixed_pt" else "float")
        self.T = circuit.schedule.window
        self.frac_bits = int(frac_bits)
        if plan is None:
            plan = plan_onchip(circuit, self.weights, tag, activity=activity, seed=seed,
                               frac_bits=frac_bits, **(plan_options or {}))
        if plan.tag != tag or plan.circuit != circuit.name:
            raise ValueError(f"the plan is for {plan.circuit!r} on {plan.tag}, not "
                             f"{circuit.name!r} on {tag}")
        self.plan = plan.check_complete(circuit)
        self.record = tuple(tuple(r) for r in record)
        self.record_all = bool(record_all)
        self.monitor: dict[str, np.ndarray] = {}
        self.units = {n: ep.to_units(self.weights[n], self.mode)
                      for n, ep in plan.projections.items()}
        for n, ep in plan.projections.items():
            self.weights[n] = ep.from_units(self.units[n])
        if self.mode == "fixed":
            # every population runs its statements here, Lava LIF or not (the Lava
            # backend's engine mode keeps every population a project process too)
            self._q = QuantizedReferenceSimulator(circuit, self.weights, seed=seed,
                                                  frac_bits=frac_bits, target=target,
                                                  lava_lif=False)
            self.A = self._q.A
        self._stmts = {p.name: p.statements() for p in circuit.populations}
        self.reset()

    # -- state ------------------------------------------------------------------------------
    def reset(self, batch: int = 1) -> None:
        if batch != 1:
            raise ValueError("the learning-engine emulation runs online (batch 1)")
        if self.mode == "fixed":
            self._q.reset(1)
            self.qstate = self._q.qstate
        else:
            self.state = {f"{p.name}.{v}": np.full((1, p.size), float(p.init.get(v, 0.0)))
                          for p in self.circuit.populations for v in p.variables}

    def _S(self) -> dict:
        return self.qstate if self.mode == "fixed" else self.state

    @property
    def float_state(self) -> dict:
        if self.mode == "fixed":
            return {k: np.ldexp(v.astype(np.float64), -self.frac_bits)
                    for k, v in self.qstate.items()}
        return self.state

    # -- the public interface -----------------------------------------------------------------
    def present(self, x, y=None, train=True, learn=None):
        """Windows for the rows of ``x``, one after the other, in one run."""
        return self.run_windows(x, y, train=train, learn=learn)

    def train(self, x, y=None, epochs: int = 1, seed: int = 0, batch_size: int = 1,
              progress: bool = False, callback=None) -> "EngineSimulator":
        """As :meth:`LavaSimulator.train`: one run for all epochs, or one per
        epoch when ``callback`` is given."""
        if batch_size != 1:
            raise ValueError("the learning engine learns online (batch_size=1)")
        x, y = training_arrays(x, y, self.circuit)
        order = sample_order(len(x), epochs, seed)
        if callback is None:
            if len(order):
                self.run_windows(x[order], y[order], train=True)
            return self
        for epoch, idx in enumerate(order.reshape(epochs, len(x))):
            self.run_windows(x[idx], y[idx], train=True)
            callback(epoch, self)
        return self

    def predict(self, x, batch_size: int | None = None) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if len(x) == 0:
            return np.zeros(0, dtype=int)
        return self.run_windows(x, None, train=False).argmax(axis=1)

    def readouts(self, x, y=None, train=False) -> np.ndarray:
        return self.run_windows(x, y, train=train)

    # -- one run ----------------------------------------------------------------------------
    def run_windows(self, x, y=None, *, train=True, learn=None) -> np.ndarray:
        """``len(x)`` windows in one run; returns the readout at each window's end."""
        from hardware_targets.loihi2.engine import EngineSynapses

        c, plan, mode, F = self.circuit, self.plan, self.mode, self.frac_bits
        streams = streams_for(c, x, y)
        n = len(next(iter(streams.values()))) if streams else len(np.atleast_2d(x))
        train_flags = np.broadcast_to(np.asarray(train, dtype=bool), (n,))
        learn_flags = train_flags if learn is None else \
            np.broadcast_to(np.asarray(learn, dtype=bool), (n,))
        if mode == "fixed":
            streams = {k: self._q._quantize(v) for k, v in streams.items()}
        S = self._S()
        # synapses: learning blocks and plain synapses, each with what it sends next
        blocks = {}
        for name, ep in plan.projections.items():
            proj = c.projection(name)
            b = EngineSynapses(ep.rule, self.units[name], mode=mode, weight_exp=ep.weight_exp,
                               num_weight_bits=ep.num_weight_bits,
                               graded_payload=ep.graded_payload)
            b.start_run()
            if ep.pre.kind == "spikes":   # the engine's trace continues the circuit's
                b.x[0] = ep.pre.initial_x1(S[f"{proj.source}.{ep.pre.trace}"].reshape(-1),
                                           mode, F)
            b.a_buff = ep.initial_send(b.weights, ep.pre.payload(
                S[f"{proj.source}.{ep.pre.variable}"].reshape(-1), mode, F), mode)
            blocks[name] = b
        plain = {}
        dense = self._q.dense_parameters() if mode == "fixed" else None
        for proj in c.projections:
            if proj.name in blocks:
                continue
            plain[proj.name] = dense[proj.name] if mode == "fixed" else \
                c.effective_matrix(self.weights, proj)
        rngs = {pop: code.generator() for pop, code in plan.post_codes.items()}
        sent = {name: self._plain_send(m, S[f"{c.projection(name).source}."
                                            f"{c.source_variable(c.projection(name))}"])
                for name, m in plain.items()}
        readout_pop, readout_var = c.readout or (c.populations[-1].name,
                                                 c.populations[-1].output)
        out = np.zeros((n, c.population(readout_pop).size))
        mon_steps = (n * self.T if self.record_all else self.T) if self.record else 0
        mon = {f"{p}.{v}": [] for p, v in self.record}
        for w in range(n):
            for tw in range(self.T):
                # (1) ports: what every synapse sends at this step
                ports = {}
                for proj in c.projections:
                    v = blocks[proj.name].a_buff if proj.name in blocks else sent[proj.name]
                    key = f"{proj.target}.{proj.port}"
                    ports[key] = ports.get(key, 0) + np.asarray(v).reshape(1, -1)
                # (2) populations
                for pop in c.populations:
                    self._step_population(pop, S, ports, streams, w, tw, train_flags[w])
                # (3) synapses
                for name, m in plain.items():
                    proj = c.projection(name)
                    sent[name] = self._plain_send(m, S[f"{proj.source}.{c.source_variable(proj)}"])
                ys = {}
                for pop, code in plan.post_codes.items():
                    ys[pop] = code.encode({v: S[f"{pop}.{v}"] for v in code.variables()},
                                          c.population(pop).size, mode, F, rngs[pop],
                                          code.active(tw, self.T, learn_flags[w]))
                for name, b in blocks.items():
                    ep = plan.projections[name]
                    proj = c.projection(name)
                    s = ep.pre.payload(S[f"{proj.source}.{ep.pre.variable}"].reshape(-1), mode, F)
                    b.step(s, None, ys[ep.post])
                for key in mon:
                    mon[key].append(S[key].reshape(-1).copy())
            out[w] = S[f"{readout_pop}.{readout_var}"].reshape(-1)
        for name, b in blocks.items():
            self.units[name] = b.weights.copy()
            self.weights[name] = plan.projections[name].from_units(b.weights)
        if mode == "fixed":
            for name in blocks:   # the quantised populations read their synapses from here
                self._q.weights[name] = self.weights[name]
        if self.record:
            self.monitor = {k: np.stack(v[-mon_steps:])[:, None, :] for k, v in mon.items()}
        return np.ldexp(out, -F) if mode == "fixed" else out

    def _plain_send(self, m, s) -> np.ndarray:
        if self.mode == "fixed":
            wq, exp = m
            acc = s.reshape(1, -1) @ wq.T
            return acc << exp if exp > 0 else acc >> -exp
        return s.reshape(1, -1) @ m.T

    def _step_population(self, pop, S, ports, streams, w, tw, train) -> None:
        fixed = self.mode == "fixed"
        env = {}
        if fixed:
            A = self.A
            env.update({k: A.q(v) for k, v in pop.params.items()})
            env.update(tw=tw * A.ONE, train=A.ONE if train else 0,
                       dt=A.q(self.circuit.schedule.dt))
        else:
            env.update({k: float(v) for k, v in pop.params.items()})
            env.update(tw=tw, train=1.0 if train else 0.0, dt=float(self.circuit.schedule.dt))
        env.update({v: S[f"{pop.name}.{v}"] for v in pop.variables})
        for p in pop.ports:
            v = ports.get(f"{pop.name}.{p}")
            if v is None:
                v = 0 if fixed else 0.0
            elif fixed:
                v = A.sat(np.asarray(v, dtype=np.int64))
            env[p] = v
        for var, stream in pop.streams.items():
            val = streams[stream][w:w + 1]
            env[var] = val
            S[f"{pop.name}.{var}"] = val
        for st in self._stmts[pop.name]:
            if fixed:
                val = A.sat(np.broadcast_to(np.asarray(self._q._eval(st.expr, env),
                                                       dtype=np.int64), (1, pop.size)))
            else:
                val = np.array(np.broadcast_to(float_eval(st.expr, env), (1, pop.size)),
                               dtype=np.float64)
            env[st.target] = val
            S[f"{pop.name}.{st.target}"] = val


__all__ = ["EngineSimulator", "float_eval", "QuantizedScopeError", "_check"]


def window_end_activity(circuit: Circuit, weights: dict, x, y=None, *, seed: int = 0,
                        masks=None) -> dict[str, np.ndarray]:
    """Every variable's value at the end of a window, ``{"pop.var": (B, n)}``, for the
    rows of ``x`` presented as a batch with the targets ``y`` (training mode, no
    learning): the representative activity an on-chip plan codes its traces from."""
    from neuro_pc.backends.reference import ReferenceSimulator

    record = [(p.name, v) for p in circuit.populations for v in p.variables]
    sim = ReferenceSimulator(circuit, weights, seed=seed, masks=masks, record=record)
    sim.present(np.asarray(x, dtype=np.float64), None if y is None else
                np.asarray(y, dtype=np.float64), train=y is not None, learn=False)
    return {k: v[-1] for k, v in sim.monitor.items()}


def record_windows(circuit: Circuit, weights: dict, x, y=None, *, seed: int = 0,
                   masks=None) -> dict[str, np.ndarray]:
    """Every variable at every step of ``len(x)`` windows presented online (one
    after the other, state carried over, training mode, no learning):
    ``{"pop.var": (n_windows, T, size)}`` -- the activity a learning block is
    driven with when ``neuro-pc check`` executes its rule."""
    from neuro_pc.backends.reference import ReferenceSimulator

    record = [(p.name, v) for p in circuit.populations for v in p.variables]
    sim = ReferenceSimulator(circuit, weights, seed=seed, masks=masks, record=record)
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    y = None if y is None else np.atleast_2d(np.asarray(y, dtype=np.float64))
    out = {f"{p}.{v}": [] for p, v in record}
    for i in range(len(x)):
        sim.present(x[i:i + 1], None if y is None else y[i:i + 1], train=y is not None,
                    learn=False)
        for k in out:
            out[k].append(sim.monitor[k][:, 0, :])
    return {k: np.stack(v) for k, v in out.items()}
