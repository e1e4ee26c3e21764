"""The reference's quantised mode: the circuit in Loihi 2 integer arithmetic.

:class:`QuantizedReferenceSimulator` is the oracle of the Lava backend's
``fixed_pt`` tag: it executes the same semantics as
:class:`~neuro_pc.backends.reference.ReferenceSimulator` (one-step delay on
every projection, streams then statements in order) with every number an
integer, and the Lava ``fixed_pt`` run must equal it **bit for bit**.

The arithmetic (the specification, also in docs/backends/lava.md; this module
is written independently of the Lava backend's code generator so that the
equality test compares two implementations of one specification):

* values are int64 ``q`` with ``F = frac_bits`` fractional bits (``x ≈ q·2**-F``);
  state, ports and messages are saturated to ``state_bits`` (Loihi 2: 24) —
  every statement's result and every port sum;
* a projection with effective matrix ``M`` (its weights times ``scale``; a tied
  projection's ``fn(W_to)ᵀ·scale``) is quantised by
  ``hardware_targets.quantize.quantize_weights(M, mantissa_bits, "mixed")``
  and written as Lava ``Dense`` parameters ``to_lava_dense(0)``:
  ``port_part = (weights @ s) >> -weight_exp`` (arithmetic shift: floor), the
  accumulator a 32-bit integer (overflow is an error here; Lava would wrap);
* a convolution that runs on Lava's ``Conv`` (a forward one, or a transposed one
  with stride 1; :mod:`neuro_pc.backends.lava.conv`) is quantised the same way
  (its expansion holds the kernel's values, so the same mantissas and exponent),
  but its sum is a 24-bit integer before the exponent is applied (Lava's
  ``PyConvModelFixed`` wraps it and has no exponent; the receiving process
  shifts): a sum outside 24 bits is an error here;
* streams: ``quantize_state(x, state_bits, frac_bits=F)`` (nearest, ties to even);
* expressions: numbers ``rint(c·2**F)``; ``+``/``-`` exact; ``a*b = (a·b) >> F``;
  ``a / c = (a·rint(2**F/c)) >> F`` for a number ``c``; ``a**k`` for an integer
  ``k >= 0`` is ``k-1`` products left to right; comparisons give ``2**F`` or 0;
  ``tw``/``train`` are scaled by ``2**F``;
* ``tanh``/``sigmoid``: piecewise-linear interpolation of a table
  ``t[k] = rint(f(k·2**-6)·2**F)``, ``k = -N..N`` (``N = 4·64`` for tanh,
  ``8·64`` for sigmoid): ``i = a >> (F-6)``, ``frac = a - (i << (F-6))``,
  ``f(a) = t[i] + ((t[i+1]-t[i])·frac) >> (F-6)``, and ``t[±N]`` beyond the table;
* ``relu``, ``abs``, ``minimum``, ``maximum``, ``clip``, ``where`` exact;
  ``step``/``sign`` return multiples of ``2**F``; nothing else is in scope.

Scope: inference (``learn=False``) of circuits whose updates use only the
above (every shipped rate circuit: BP/FA/DFA/SS/KP/PC MLPs with tanh, relu,
sigmoid or linear units). Learning in integer arithmetic is not implemented.

**Populations that are Lava's LIF** (``hardware_targets.neurons.lava_lif``: the
update is exactly Lava's LIF and nothing else) do not run their statements in
the arithmetic above: they run Lava's bit-accurate LIF datapath
(:func:`lif_step`, written from the documented arithmetic, not from Lava's
code), as the Lava backend runs them on Lava's own ``PyLifModelBitAcc`` /
``PyLifResetModelBitAcc``. Their port is the plain sum of the synapses (not
saturated: Lava's LIF takes its input unsaturated), ``i`` (Lava's ``u``) and
``v`` are stored with ``frac_bits + 6`` fractional bits, ``s`` as ``2**F`` per
spike like every other spike variable. ``lava_lif=False`` runs every
population's statements instead.
"""
from __future__ import annotations

import ast

import numpy as np

from hardware_targets.neurons import lif_populations
from neuro_pc.backends.base import Simulator, streams_for
from neuro_pc.ir import Circuit, CircuitError
from neuro_pc.ir.expr import number_literal

FRAC_BITS = 12
LUT_FRAC_BITS = 6


class QuantizedScopeError(CircuitError):
    """A circuit or a use outside the quantised mode's scope."""


# -- Lava's bit-accurate LIF --------------------------------------------------------------
#: 24-bit u, v; 12-bit decays; the input and the threshold are shifted left by 6
LIF_STATE_BITS, LIF_DECAY_BITS, LIF_SHIFT = 24, 12, 6


def _decay_toward_zero(x: np.ndarray, factor: int) -> np.ndarray:
    """``x · factor / 4096`` rounded toward zero (sign and magnitude: the magnitude
    of the product is shifted right by 12, then the sign put back)."""
    p = np.asarray(x, dtype=np.int64) * int(factor)
    mag = np.abs(p) >> LIF_DECAY_BITS
    return np.where(p < 0, -mag, mag)


def lif_step(u, v, a, fx, restart: bool):
    """One step of Lava's bit-accurate LIF on int64 arrays; returns ``(u, v, spikes)``.

    ``fx``: a :class:`hardware_targets.neurons.LavaLifFixed` (``du``, ``dv``, ``vth``,
    ``bias``). ``a``: the summed synaptic input. The arithmetic (the
    documented Loihi LIF of docs/targets/loihi2.md, "Neuron state"):

    1. ``restart`` (``LIFReset``'s step): ``u = v = 0`` first;
    2. ``u ← u·(4096 − du − 1) / 4096`` toward zero, plus ``a << 6``; then ``u``
       wraps once: above ``+2**23`` it loses ``2**24``, at or below ``−2**23`` it
       gains ``2**24`` (so ``+2**23`` stays, ``−2**23`` becomes ``+2**23``);
    3. ``v ← v·(4096 − dv) / 4096`` toward zero, ``+ u + bias``, saturated to
       ``±(2**23 − 1)`` (symmetric);
    4. spike where ``v > vth << 6``; there ``v = 0``.

    Inputs so large that one wrap leaves ``u`` outside 24 bits are outside the
    model (Lava would go on with an out-of-range ``u`` in 32-bit registers):
    :class:`QuantizedScopeError`.
    """
    half = 1 << (LIF_STATE_BITS - 1)
    unity = 1 << LIF_DECAY_BITS
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    if restart:
        u = np.zeros_like(u)
        v = np.zeros_like(v)
    x = _decay_toward_zero(u, unity - fx.du - 1) + (np.asarray(a, dtype=np.int64) << LIF_SHIFT)
    u = np.where(x > half, x - 2 * half, np.where(x <= -half, x + 2 * half, x))
    if np.any(np.abs(u) > half):
        raise QuantizedScopeError("a LIF input is too large for Lava's LIF: one wrap of u "
                                  "leaves it outside 24 bits")
    v = _decay_toward_zero(v, unity - fx.dv) + u + fx.bias
    v = np.clip(v, -(half - 1), half - 1)
    spikes = v > (fx.vth << LIF_SHIFT)
    return u, np.where(spikes, 0, v), spikes


class _Arith:
    """Integer arithmetic of one fixed-point format (see the module docstring)."""

    def __init__(self, frac_bits: int, state_bits: int):
        self.F = frac_bits
        self.ONE = 1 << frac_bits
        self.lo = -(1 << (state_bits - 1))
        self.hi = (1 << (state_bits - 1)) - 1
        self.s = frac_bits - LUT_FRAC_BITS
        if self.s < 0:
            raise QuantizedScopeError(f"frac_bits={frac_bits} must be >= {LUT_FRAC_BITS}")
        self.tables = {}
        for name, reach in (("tanh", 4), ("sigmoid", 8)):
            n = reach * (1 << LUT_FRAC_BITS)
            u = np.arange(-n, n + 1, dtype=np.float64) / float(1 << LUT_FRAC_BITS)
            f = np.tanh(u) if name == "tanh" else 1.0 / (1.0 + np.exp(-u))
            self.tables[name] = (n, np.rint(f * self.ONE).astype(np.int64))

    def q(self, c: float) -> int:
        return int(np.rint(float(c) * self.ONE))

    def lut(self, name, a):
        n, t = self.tables[name]
        a = np.asarray(a, dtype=np.int64)
        i = np.right_shift(a, self.s)
        frac = a - np.left_shift(i, self.s)
        out = np.empty_like(a)
        below, above = i < -n, i >= n
        mid = ~(below | above)
        k = i[mid] + n
        out[mid] = t[k] + np.right_shift((t[k + 1] - t[k]) * frac[mid], self.s)
        out[below] = t[0]
        out[above] = t[2 * n]
        return out

    def call(self, name, args):
        if name in ("tanh", "sigmoid"):
            return self.lut(name, args[0])
        if name == "relu":
            return np.maximum(args[0], 0)
        if name == "step":
            return np.where(np.asarray(args[0]) > 0, self.ONE, 0)
        if name == "abs":
            return np.abs(args[0])
        if name == "sign":
            return np.sign(args[0]) * self.ONE
        if name == "clip":
            return np.minimum(np.maximum(args[0], args[1]), args[2])
        if name == "where":
            return np.where(np.asarray(args[0]) != 0, args[1], args[2])
        if name == "minimum":
            return np.minimum(args[0], args[1])
        if name == "maximum":
            return np.maximum(args[0], args[1])
        raise QuantizedScopeError(f"{name}() has no integer meaning in the quantised mode")

    def sat(self, a):
        return np.clip(a, self.lo, self.hi)


def _check(node, where):
    """Reject, at construction, what the quantised mode cannot evaluate."""
    for n in ast.walk(node):
        if isinstance(n, ast.Call) and n.func.id not in (
                "tanh", "sigmoid", "relu", "step", "abs", "sign", "clip", "where",
                "minimum", "maximum"):
            raise QuantizedScopeError(f"{where}: {n.func.id}() is outside the quantised mode")
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div) and not number_literal(n.right):
            raise QuantizedScopeError(f"{where}: division by a variable is outside the "
                                      "quantised mode")
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow):
            k = number_literal(n.right)
            if k is None or k < 0 or k != int(k):
                raise QuantizedScopeError(f"{where}: only integer powers >= 0 are supported")


class QuantizedReferenceSimulator(Simulator):
    """The reference semantics in Loihi 2 integer arithmetic (inference only).

    frac_bits: fractional bits of state and messages; target: the
    ``hardware_targets`` name giving state, message and weight precisions.
    State is int64 ``(batch, n)`` in :attr:`qstate`; :meth:`present` returns
    the dequantised readout. Rows of a batch are independent and exact, so any
    batch size gives the same numbers as batch size 1.

    lava_lif: run the populations that are Lava's LIF on its bit-accurate
    datapath (module docstring). record: ``(population, variable)`` pairs; after
    :meth:`present`, :attr:`monitor` is ``{"pop.var": (T, B, n)}`` (dequantised),
    as the reference's.
    """

    backend = "reference-quantized"

    def __init__(self, circuit: Circuit, weights=None, *, seed: int = 0, masks=None,
                 frac_bits: int = FRAC_BITS, target: str = "loihi2", lava_lif: bool = True,
                 record: tuple[tuple[str, str], ...] | list = ()):
        super().__init__(circuit, weights, seed=seed, masks=masks)
        self.record = tuple(tuple(r) for r in record)
        for pop, var in self.record:
            if var not in circuit.population(pop).variables:
                raise ValueError(f"cannot record {pop}.{var}: population {pop!r} has variables "
                                 f"{list(circuit.population(pop).variables)}")
        self.monitor: dict[str, np.ndarray] = {}
        from hardware_targets.base import get_target

        t = get_target(target)
        if t.state_bits is None:
            raise QuantizedScopeError(f"target {target!r} is floating point")
        self.frac_bits = int(frac_bits)
        self.state_bits = int(t.state_bits)
        self.mantissa_bits = int(t.weight_format("mixed").mantissa_bits)
        self.A = _Arith(self.frac_bits, self.state_bits)
        #: {population: (LavaLif, LavaLifFixed)}: the populations run as Lava's LIF
        self.lif = lif_populations(circuit, self.frac_bits, t) if lava_lif else {}
        #: fractional bits of each state variable (frac_bits unless in a Lava LIF)
        self.var_frac_bits = {f"{p.name}.{v}": self.frac_bits for p in circuit.populations
                              for v in p.variables}
        for name, (m, fx) in self.lif.items():
            for v in ("i", "v"):
                if f"{name}.{v}" in self.var_frac_bits:
                    self.var_frac_bits[f"{name}.{v}"] = fx.state_frac_bits
        self._stmts = {}
        for pop in circuit.populations:
            if pop.name in self.lif:
                continue
            sts = pop.statements()
            for st in sts:
                _check(st.expr, f"population {pop.name!r}: {st.text!r}")
            self._stmts[pop.name] = sts
        #: convolutions that run on Lava's Conv (a 24-bit sum before the exponent)
        self._lava_convs = {p.name for p in circuit.projections
                            if circuit.conv_of(p) is not None and (
                                not circuit.conv_of(p).transpose
                                or circuit.conv_of(p).stride == (1, 1))}
        self.qstate: dict[str, np.ndarray] = {}
        self.reset(1)

    # -- quantisation ----------------------------------------------------------------
    def _matrix(self, proj) -> np.ndarray:
        return self.circuit.effective_matrix(self.weights, proj)

    def dense_parameters(self) -> dict[str, tuple[np.ndarray, int]]:
        """``{projection: (weights int64, weight_exp)}`` the synapses use."""
        from hardware_targets.quantize import quantize_weights

        out = {}
        for proj in self.circuit.projections:
            qw = quantize_weights(self._matrix(proj), self.mantissa_bits, "mixed",
                                  rounding="nearest").to_lava_dense(state_frac_bits=0)
            out[proj.name] = (np.asarray(qw.weights, dtype=np.int64), int(qw.weight_exp))
        return out

    def _quantize(self, x, frac_bits: int | None = None) -> np.ndarray:
        from hardware_targets.quantize import quantize_state

        return quantize_state(np.asarray(x, dtype=np.float64), self.state_bits,
                              frac_bits=self.frac_bits if frac_bits is None else frac_bits,
                              rounding="nearest", overflow="saturate")

    # -- state -------------------------------------------------------------------------
    def reset(self, batch: int = 1) -> None:
        self.qstate = {f"{p.name}.{v}": self._quantize(np.full((batch, p.size),
                                                               float(p.init.get(v, 0.0))),
                                                       self.var_frac_bits[f"{p.name}.{v}"])
                       for p in self.circuit.populations for v in p.variables}

    @property
    def state(self) -> dict[str, np.ndarray]:
        """The state dequantised to floats (``q · 2**-f``, ``f`` from :attr:`var_frac_bits`)."""
        return {k: np.ldexp(v.astype(np.float64), -self.var_frac_bits[k])
                for k, v in self.qstate.items()}

    # -- evaluation --------------------------------------------------------------------------
    def _eval(self, node, env):
        A = self.A
        if isinstance(node, ast.Expression):
            return self._eval(node.body, env)
        if isinstance(node, ast.Constant):
            return A.q(node.value)
        if isinstance(node, ast.Name):
            return env[node.id]
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, env)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow):
                k = int(number_literal(node.right))
                if k == 0:
                    return A.ONE
                base = self._eval(node.left, env)
                acc = base
                for _ in range(k - 1):
                    acc = (acc * base) >> A.F
                return acc
            left = self._eval(node.left, env)
            if isinstance(node.op, ast.Div):
                return (left * A.q(1.0 / number_literal(node.right))) >> A.F
            right = self._eval(node.right, env)
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return (left * right) >> A.F
        if isinstance(node, ast.Compare):
            a, b = self._eval(node.left, env), self._eval(node.comparators[0], env)
            op = node.ops[0]
            res = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater,
                   ast.GtE: np.greater_equal, ast.Eq: np.equal, ast.NotEq: np.not_equal}[
                type(op)](a, b)
            return np.where(res, A.ONE, 0)
        if isinstance(node, ast.Call):
            return A.call(node.func.id, [self._eval(a, env) for a in node.args])
        raise QuantizedScopeError(f"{ast.unparse(node)!r} is outside the quantised mode")

    def present(self, x, y=None, train=False, learn=None):
        """One window for a batch; ``train`` is the circuit's ``train`` scalar
        (targets clamp). Learning is outside the quantised mode's scope."""
        if bool(train if learn is None else learn) and self.circuit.plastic:
            raise QuantizedScopeError(
                "the quantised reference runs inference only: call present(x, y, train=..., "
                "learn=False) or predict(); learning in integer arithmetic is not implemented")
        c, A = self.circuit, self.A
        streams = {k: self._quantize(v) for k, v in streams_for(c, x, y).items()}
        batch = next(iter(streams.values())).shape[0] if streams else 1
        if next(iter(self.qstate.values())).shape[0] != batch:
            self.reset(batch)
        dense = self.dense_parameters()
        S = self.qstate
        train_q = A.ONE if train else 0
        rec = []
        for tw in range(c.schedule.window):
            ports = {}
            for pop in c.populations:
                for port in pop.ports:
                    total = np.zeros((batch, pop.size), dtype=np.int64)
                    for proj in c.projections_into(pop.name, port):
                        wq, exp = dense[proj.name]
                        s = S[f"{proj.source}.{c.source_variable(proj)}"]
                        acc = s @ wq.T
                        if acc.size and np.abs(acc).max() >= 2 ** 31:
                            raise QuantizedScopeError(
                                f"projection {proj.name!r}: the 32-bit synaptic accumulator "
                                "overflows; lower frac_bits")
                        if proj.name in self._lava_convs and acc.size:
                            # Lava's Conv sums spikes as 1, graded values as they are
                            top = np.abs(acc >> A.F if proj.source in self.lif else acc).max()
                            if top >= 2 ** 23:
                                raise QuantizedScopeError(
                                    f"projection {proj.name!r} (a convolution on Lava's Conv): "
                                    f"its integer sum reaches {int(top)}, beyond the 24 bits "
                                    "Lava's fixed-point Conv keeps before the weight exponent "
                                    "(it would wrap); lower frac_bits or scale the inputs or "
                                    "the kernel down")
                        total = total + (acc << exp if exp > 0 else acc >> -exp)
                    # Lava's LIF takes the plain sum; every other port saturates
                    ports[f"{pop.name}.{port}"] = total if pop.name in self.lif else A.sat(total)
            for pop in c.populations:
                if pop.name in self.lif:
                    m, fx = self.lif[pop.name]
                    key = f"{pop.name}.i"
                    u = S[key] if m.current else np.zeros((batch, pop.size), dtype=np.int64)
                    u, v, spikes = lif_step(u, S[f"{pop.name}.v"], ports[f"{pop.name}.{m.drive}"],
                                            fx, restart=tw == m.reset_step)
                    if m.current:
                        S[key] = u
                    S[f"{pop.name}.v"] = v
                    S[f"{pop.name}.s"] = np.where(spikes, A.ONE, 0).astype(np.int64)
                    continue
                env = {k: A.q(v) for k, v in pop.params.items()}
                env.update(tw=tw * A.ONE, train=train_q, dt=A.q(c.schedule.dt))
                env.update({v: S[f"{pop.name}.{v}"] for v in pop.variables})
                env.update({p: ports[f"{pop.name}.{p}"] for p in pop.ports})
                for var, stream in pop.streams.items():
                    env[var] = streams[stream]
                    S[f"{pop.name}.{var}"] = streams[stream]
                for st in self._stmts[pop.name]:
                    val = A.sat(np.broadcast_to(np.asarray(self._eval(st.expr, env),
                                                           dtype=np.int64), (batch, pop.size)))
                    env[st.target] = val
                    S[f"{pop.name}.{st.target}"] = val
            if self.record:
                rec.append([S[f"{p}.{v}"].copy() for p, v in self.record])
        if self.record:
            self.monitor = {f"{p}.{v}": np.ldexp(np.stack([r[k] for r in rec]).astype(np.float64),
                                                 -self.var_frac_bits[f"{p}.{v}"])
                            for k, (p, v) in enumerate(self.record)}
        pop, var = c.readout or (c.populations[-1].name, c.populations[-1].output)
        return np.ldexp(S[f"{pop}.{var}"].astype(np.float64), -self.var_frac_bits[f"{pop}.{var}"])

