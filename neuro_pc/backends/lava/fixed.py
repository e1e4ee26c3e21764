"""The ``fixed_pt`` arithmetic of the Lava backend (Loihi 2 precisions).

Number formats (precisions from :mod:`hardware_targets`, the one interface
this backend asks for chip numbers: ``get_target("loihi2")``):

* **state and messages**: every state variable, port and graded-spike payload
  is a signed integer ``q`` with ``frac_bits`` fractional bits (``x ≈ q ·
  2**-frac_bits``), saturated to ``state_bits`` (24) after every statement
  and on every port (``hardware_targets.quantize.clamp_to_bits``,
  ``overflow="saturate"``). Streamed inputs are quantised with
  ``quantize_state`` (round to nearest, ties to even).
* **weights**: one shared exponent per projection, 8-bit signed mantissas
  (``quantize_weights(W, 8, "mixed")``), written as Lava ``Dense`` parameters
  with ``to_lava_dense(state_frac_bits=0)``: the synapse computes
  ``a = (weights @ s) >> -weight_exp`` (arithmetic shift, i.e. floor), which is
  Lava's own bit-accurate ``Dense`` model.

Integer meaning of the expression language (``F = frac_bits``, ``ONE = 2**F``;
all intermediate values int64):

* numbers and parameters: ``rint(c · ONE)``; ``tw``, ``train``: ``· ONE``;
* ``a + b``, ``a - b``, ``-a``: integer; ``a * b``: ``(a · b) >> F``;
  ``a / c`` (``c`` a number only): ``(a · rint(ONE / c)) >> F``;
  ``a ** k`` (``k`` a non-negative integer): ``k - 1`` products, left to right;
* comparisons: ``ONE`` or ``0``; ``where(c, a, b)``: ``c != 0``;
* ``relu``, ``abs``, ``minimum``, ``maximum``, ``clip``: exact;
  ``step(a)``: ``ONE·(a > 0)``; ``sign(a)``: ``ONE·sign(a)``;
* ``tanh``, ``sigmoid``: a piecewise-linear look-up table with breakpoints
  every ``2**-lut_frac_bits`` (table entries ``rint(f(k·2**-L)·ONE)``), linear
  interpolation ``t[i] + ((t[i+1] - t[i]) · frac) >> (F - L)``, constant
  beyond ``±4`` (tanh) / ``±8`` (sigmoid);
* anything else (``exp``, ``log``, ``sqrt``, division by a variable,
  population-level functions) is outside the fixed-point scope: a clear
  :class:`FixedPointError` at compile time.

The quantised reference (:mod:`neuro_pc.backends.reference.quantized`) is an
independent implementation of this same specification; the tests require the
two to agree bit for bit.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

import numpy as np

from neuro_pc.backends.lava.codegen import step_inputs
from neuro_pc.ir import Circuit, CircuitError, Population, parse_expression
from neuro_pc.ir.expr import number_literal

#: defaults of the fixed-point format (documented in docs/backends/lava.md)
FRAC_BITS = 12
LUT_FRAC_BITS = 6
TANH_RANGE = 4
SIGMOID_RANGE = 8


class FixedPointError(CircuitError):
    """A circuit (or a use of it) outside the fixed_pt scope; the message says why."""


class FixedPointWarning(UserWarning):
    """The fixed-point format loses something (saturated values, weights that
    quantise to 0); the message names where and what to change."""


@dataclass(frozen=True)
class Precision:
    """The integer formats: ``frac_bits`` fractional bits, ``state_bits``-wide
    saturating state and ports, ``message_bits``-wide graded spikes,
    ``mantissa_bits`` weight mantissas (from ``hardware_targets``)."""

    frac_bits: int
    state_bits: int
    message_bits: int
    mantissa_bits: int
    lut_frac_bits: int = LUT_FRAC_BITS

    @property
    def one(self) -> int:
        return 1 << self.frac_bits

    @property
    def state_range(self) -> tuple[int, int]:
        return -(1 << (self.state_bits - 1)), (1 << (self.state_bits - 1)) - 1


def precision(target: str = "loihi2", frac_bits: int = FRAC_BITS) -> Precision:
    """The fixed-point formats for ``target`` (asks ``hardware_targets``)."""
    from hardware_targets.base import get_target

    t = get_target(target)
    if t.state_bits is None:
        raise FixedPointError(f"target {target!r} is floating point; fixed_pt needs a "
                              "fixed-point target such as 'loihi2'")
    wf = t.weight_format("mixed")
    if not 0 < LUT_FRAC_BITS <= frac_bits < t.state_bits - 2:
        raise FixedPointError(f"frac_bits={frac_bits} must be in [{LUT_FRAC_BITS}, "
                              f"{t.state_bits - 3}] for {t.state_bits}-bit state")
    return Precision(frac_bits=int(frac_bits), state_bits=int(t.state_bits),
                     message_bits=int(t.message_bits), mantissa_bits=int(wf.mantissa_bits))


@dataclass(frozen=True)
class DenseParams:
    """A projection as Lava ``Dense`` fixed-point parameters (see module doc)."""

    weights: np.ndarray      # int32 (n_target, n_source), even values in [-256, 254]
    weight_exp: int
    num_weight_bits: int
    rel_error: float         # ||W - W_q|| / ||W||


def effective_matrix(circuit: Circuit, weights: dict, proj) -> np.ndarray:
    """The real matrix a projection applies (:meth:`neuro_pc.ir.Circuit.effective_matrix`)."""
    return circuit.effective_matrix(weights, proj)


def dense_params(matrix: np.ndarray, prec: Precision, spike_source: bool = False) -> DenseParams:
    """Quantise one effective matrix through ``hardware_targets.quantize``.

    spike_source: the source is a Lava LIF, whose spikes arrive as 1 instead of
    ``2**frac_bits``; the exponent takes the ``2**frac_bits`` (``to_lava_dense(
    state_frac_bits=frac_bits)``), so the synapse's output is the same integer."""
    from hardware_targets.quantize import quantize_weights

    q = quantize_weights(matrix, prec.mantissa_bits, "mixed", rounding="nearest")
    lava = q.to_lava_dense(state_frac_bits=prec.frac_bits if spike_source else 0)
    return DenseParams(weights=np.asarray(lava.weights, dtype=np.int32),
                       weight_exp=int(lava.weight_exp), num_weight_bits=int(lava.num_weight_bits),
                       rel_error=float(q.error.rel_fro))


def quantize_input(x: np.ndarray, prec: Precision, frac_bits: int | None = None) -> np.ndarray:
    from hardware_targets.quantize import quantize_state

    return quantize_state(np.asarray(x, dtype=np.float64), prec.state_bits,
                          frac_bits=prec.frac_bits if frac_bits is None else frac_bits,
                          rounding="nearest", overflow="saturate")


def synapse(weights: np.ndarray, weight_exp: int, s: np.ndarray) -> np.ndarray:
    """Lava's bit-accurate Dense: ``(weights @ s)`` shifted by ``weight_exp``."""
    acc = weights.astype(np.int64) @ np.asarray(s, dtype=np.int64)
    return acc << weight_exp if weight_exp > 0 else acc >> (-weight_exp)


# -- the integer functions --------------------------------------------------------
class IntegerFunctions:
    """The integer meaning of the neuron-local functions for one :class:`Precision`."""

    def __init__(self, prec: Precision):
        self.prec = prec
        #: values clipped to the state range so far (statements and ports)
        self.saturated = 0
        self.F = prec.frac_bits
        self.ONE = prec.one
        self.shift = prec.frac_bits - prec.lut_frac_bits
        L = prec.lut_frac_bits
        self._tables = {}
        for name, rng, f in (("tanh", TANH_RANGE, np.tanh),
                             ("sigmoid", SIGMOID_RANGE, lambda u: 1.0 / (1.0 + np.exp(-u)))):
            n = rng << L
            k = np.arange(-n, n + 1, dtype=np.float64)
            self._tables[name] = (n, np.rint(f(np.ldexp(k, -L)) * self.ONE).astype(np.int64))

    def _pwl(self, a, name):
        n, t = self._tables[name]
        a = np.asarray(a, dtype=np.int64)
        i = a >> self.shift
        frac = a - (i << self.shift)
        idx = np.clip(i + n, 0, 2 * n - 1)
        y = t[idx] + (((t[idx + 1] - t[idx]) * frac) >> self.shift)
        y = np.where(i < -n, t[0], y)
        return np.where(i >= n, t[2 * n], y)

    def tanh(self, a):
        return self._pwl(a, "tanh")

    def sigmoid(self, a):
        return self._pwl(a, "sigmoid")

    def relu(self, a):
        return np.maximum(a, 0)

    def step(self, a):
        return (np.asarray(a) > 0).astype(np.int64) * self.ONE

    def abs(self, a):
        return np.abs(a)

    def sign(self, a):
        return np.sign(a).astype(np.int64) * self.ONE

    def clip(self, a, lo, hi):
        return np.clip(a, lo, hi)

    def where(self, c, a, b):
        return np.where(np.asarray(c) != 0, a, b)

    def minimum(self, a, b):
        return np.minimum(a, b)

    def maximum(self, a, b):
        return np.maximum(a, b)

    def boolean(self, c):
        return np.asarray(c).astype(np.int64) * self.ONE

    def mul(self, a, b):
        return (a * b) >> self.F

    def saturate(self, a, shape):
        lo, hi = self.prec.state_range
        a = np.broadcast_to(np.asarray(a, dtype=np.int64), shape)
        self.saturated += int(np.count_nonzero((a < lo) | (a > hi)))
        return np.clip(a, lo, hi)

    def const(self, c: float) -> int:
        return int(np.rint(float(c) * self.ONE))


SUPPORTED_FUNCTIONS = ("tanh", "sigmoid", "relu", "step", "abs", "sign", "clip", "where",
                       "minimum", "maximum")
_CMP = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}


def fixed_expression(text_or_tree, rename, I: IntegerFunctions, where: str) -> str:
    """Integer source of an expression (see the module docstring)."""
    tree = parse_expression(text_or_tree) if isinstance(text_or_tree, str) else text_or_tree

    def g(node) -> str:
        if isinstance(node, ast.Expression):
            return g(node.body)
        if isinstance(node, ast.Constant):
            return repr(I.const(node.value))
        if isinstance(node, ast.Name):
            return rename(node.id)
        if isinstance(node, ast.UnaryOp):
            return f"(-{g(node.operand)})" if isinstance(node.op, ast.USub) else g(node.operand)
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, (ast.Add, ast.Sub)):
                op = "+" if isinstance(node.op, ast.Add) else "-"
                return f"({g(node.left)} {op} {g(node.right)})"
            if isinstance(node.op, ast.Mult):
                return f"I.mul({g(node.left)}, {g(node.right)})"
            if isinstance(node.op, ast.Div):
                c = number_literal(node.right)
                if c is None or c == 0:
                    raise FixedPointError(f"{where}: fixed_pt divides only by a non-zero number "
                                          f"(no divider on the neuron); got "
                                          f"{ast.unparse(node)!r}")
                return f"I.mul({g(node.left)}, {I.const(1.0 / c)!r})"
            if isinstance(node.op, ast.Pow):
                k = number_literal(node.right)
                if k is None or k < 0 or k != int(k):
                    raise FixedPointError(f"{where}: fixed_pt supports powers by a non-negative "
                                          f"integer only; got {ast.unparse(node)!r}")
                if int(k) == 0:
                    return repr(I.ONE)
                base = g(node.left)
                out = base
                for _ in range(int(k) - 1):
                    out = f"I.mul({out}, {base})"
                return out
        if isinstance(node, ast.Compare):
            op = _CMP[type(node.ops[0])]
            return f"I.boolean({g(node.left)} {op} {g(node.comparators[0])})"
        if isinstance(node, ast.Call):
            name = node.func.id
            if name not in SUPPORTED_FUNCTIONS:
                raise FixedPointError(f"{where}: {name}() has no fixed_pt meaning (supported: "
                                      f"{', '.join(SUPPORTED_FUNCTIONS)}); run this circuit "
                                      "with tag='floating_pt'")
            return f"I.{name}({', '.join(g(a) for a in node.args)})"
        raise FixedPointError(f"{where}: {ast.unparse(node)!r} has no fixed_pt meaning")

    return g(tree)


def population_fixed_step_source(pop: Population, I: IntegerFunctions) -> str:
    """``step(V, P, X, tw, train, dt) -> dict`` in integer fixed point.

    All arrays int64 ``(1, n)`` in units of ``2**-frac_bits``; ``tw`` an int,
    ``train`` 0 or 1; every statement's result saturated to ``state_bits``.
    """
    params = {k: repr(I.const(v)) for k, v in pop.params.items()}
    where = f"population {pop.name!r}"

    def rename(n: str) -> str:
        if n in params:
            return params[n]
        if n == "tw":
            return f"(tw * {I.ONE})"
        if n == "train":
            return f"(train * {I.ONE})"
        if n == "dt":
            return "DT"
        return f"v_{n}"

    lines = ["def step(V, P, X, tw, train, dt):", f"    DT = {I.const(0.0)!r} + dt",
             f"    shape = (1, {pop.size})", *step_inputs(pop)]
    for st in pop.statements():
        rhs = fixed_expression(st.expr, rename, I, f"{where}: {st.text!r}")
        lines.append(f"    v_{st.target} = I.saturate({rhs}, shape)")
    lines.append("    return {" + ", ".join(f"{v!r}: v_{v}" for v in pop.variables) + "}")
    return "\n".join(lines) + "\n"
