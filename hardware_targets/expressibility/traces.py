"""Spike traces: is a pre factor an exponential trace of the carried spikes
(:func:`spike_trace`), and which Lava ``x1``/``x2`` parameters and value-range
conditions does such a trace compile to (:func:`_x_trace_params`)?"""
from __future__ import annotations

import ast
import copy
import math
from dataclasses import dataclass

import sympy

from hardware_targets.expressibility.factors import _names
from neuro_pc.ir import ExpressionError
from neuro_pc.rules.parse import expression_sympy

#: fractional bits of a value written into a 7-bit trace (x1 in [0, 127/64],
#: post traces with offset 64 in [-1, 63/64])
DEFAULT_TRACE_FRAC_BITS = 6


@dataclass(frozen=True)
class SpikeTrace:
    """``var = where(tw < 1, 0, var * decay) + impulse * spike`` (``window_reset``)
    or ``var = var * decay + impulse * spike``: an exponential trace of the 0/1
    spike variable ``spike``, in the form of Loihi's learning-engine traces."""

    var: str
    spike: str
    decay: float
    impulse: float
    window_reset: bool


# --------------------------------------------------------------------------
# matching the trace form on a population's update
# --------------------------------------------------------------------------
def _is_window_start(node) -> bool:
    """``tw < 1`` (or ``tw <= 0``, ``tw == 0``): true at the first step of a window."""
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1
            and isinstance(node.left, ast.Name) and node.left.id == "tw"
            and isinstance(node.comparators[0], ast.Constant)):
        return False
    op, k = node.ops[0], node.comparators[0].value
    return ((isinstance(op, ast.Lt) and k == 1) or (isinstance(op, ast.LtE) and k == 0)
            or (isinstance(op, ast.Eq) and k == 0))


def _strip_window_reset(node):
    """Replace ``where(tw < 1, 0, X)`` by ``X``; ``(node, found)``."""
    found = False

    class _T(ast.NodeTransformer):
        def visit_Call(self, call):
            nonlocal found
            self.generic_visit(call)
            if (isinstance(call.func, ast.Name) and call.func.id == "where"
                    and len(call.args) == 3 and _is_window_start(call.args[0])
                    and isinstance(call.args[1], ast.Constant) and call.args[1].value == 0):
                found = True
                return call.args[2]
            return call

    return _T().visit(copy.deepcopy(node)), found


def _is_spike(circuit, pop_name: str, var: str) -> bool:
    """Is ``var`` a 0/1 spike variable: set by ``step(...)``, or the constant 0 or 1?"""
    pop = circuit.population(pop_name)
    if var in pop.streams or var in pop.ports:
        return False
    stmts = [st for st in pop.statements() if st.target == var]
    if not stmts:
        return float(pop.init.get(var, 0.0)) in (0.0, 1.0)
    body = stmts[-1].expr.body
    return (isinstance(body, ast.Call) and isinstance(body.func, ast.Name)
            and body.func.id == "step")


def _linear_form(pop, st, body, var: str) -> tuple[tuple[str, float, float] | None, str]:
    """``((spike, decay, impulse), "")`` when ``body`` (the update of ``var``, its
    window reset stripped) is ``var * decay + impulse * spike`` with constant
    coefficients (the population's params substituted); else ``(None, why not)``."""
    text = ast.unparse(body)
    names = _names(text)
    syms = {n: sympy.Symbol(n) for n in names}
    form = f"{st.text!r} is not of the form {var} = {var} * decay + impulse * s"
    try:
        expr = sympy.expand(expression_sympy(text, syms))
    except (ExpressionError, TypeError):
        return None, form
    expr = expr.subs({syms[k]: float(v) for k, v in pop.params.items() if k in syms})
    v_sym = syms.get(var)
    others = [x for x in expr.free_symbols if x != v_sym]
    if v_sym is None or len(others) != 1:
        return None, form
    s_sym = others[0]
    poly = sympy.Poly(expr, v_sym, s_sym) if expr.is_polynomial(v_sym, s_sym) else None
    if poly is None or poly.total_degree() != 1 or float(poly.coeff_monomial(1)) != 0.0:
        return None, form
    return (str(s_sym), float(poly.coeff_monomial(v_sym)),
            float(poly.coeff_monomial(s_sym))), ""


def spike_trace(circuit, pop_name: str, var: str) -> tuple[SpikeTrace | None, str]:
    """Is ``pop_name.var`` an exponential trace of one of the population's spike
    variables? ``(SpikeTrace, "")`` if so, else ``(None, why not)``.

    The trace form is matched on the population's update (the IR is what runs):
    ``var`` is assigned by exactly one statement, linear in ``var`` and one spike
    variable with constant coefficients, optionally inside the window reset
    ``where(tw < 1, 0, var * decay)``. Nothing else says what a trace is: the
    statement that runs is the only description.
    """
    pop = circuit.population(pop_name)
    stmts = [st for st in pop.statements() if st.target == var]
    if len(stmts) != 1:
        return None, (f"{var} has {len(stmts)} update statements" if stmts
                      else f"{var} has no update statement")
    st = stmts[0]
    body, reset = _strip_window_reset(st.expr.body)
    form, why = _linear_form(pop, st, body, var)
    if form is None:
        return None, why
    spike, decay, impulse = form
    if not _is_spike(circuit, pop_name, spike):
        return None, (f"{var} follows the trace form but of {spike}, which is not a 0/1 spike "
                      "(set by step(...))")
    if not 0.0 <= decay <= 1.0 or impulse < 0:
        return None, (f"{var}'s decay {decay:g} is not in [0, 1] or its impulse {impulse:g} "
                      "is negative")
    return SpikeTrace(var, spike, decay, impulse, reset), ""


# --------------------------------------------------------------------------
# a spike trace as Lava's x1 / x2
# --------------------------------------------------------------------------
def _lava_tau(tr: SpikeTrace, x: str, where: str) -> tuple[int | None, list[str], list[str]]:
    """Lava's ``{x}_tau`` (decay by exp(-1/tau) per step; 0 means no decay);
    ``(tau or None, reasons, conditions)``."""
    if tr.decay >= 1.0:
        return 0, [], []
    if tr.decay <= 0.0:
        return None, [f"{where} has decay 0 (it is the spike itself, not a trace); Lava's "
                      f"{x}_tau = 0 means *no* decay"], []
    conditions = []
    exact = -1.0 / math.log(tr.decay)
    tau = max(1, int(round(exact)))
    if not math.isclose(exact, tau, rel_tol=1e-9):
        conditions.append(
            f"{where} decays by {tr.decay:g} per step (tau = {exact:.4g} steps); Lava's "
            f"{x}_tau is an integer number of steps (LearningDense Var, precision 8): "
            f"{x}_tau = {tau} decays by exp(-1/{tau}) = {math.exp(-1.0 / tau):.4g}, so the "
            "chip's trace is that of a slightly different time constant")
    if tau > 255:
        conditions.append(f"{where}: tau = {tau} steps exceeds the 8 bits of {x}_tau "
                          "(<= 255); use x1_tau = 0 (no decay) if the window is much "
                          "shorter than tau")
    return tau, [], conditions


def _lava_impulse(tr: SpikeTrace, x: str, trace_frac_bits: int, le,
                  where: str) -> tuple[float, list[str], list[str]]:
    """Lava's ``{x}_impulse``: the impulse in trace units, with
    ``le.trace_impulse_frac_bits`` fractional bits (Lava W_TRACE_FRACTIONAL_PART);
    ``(impulse, reasons, conditions)``."""
    top = le.trace_max
    units = tr.impulse * 2.0 ** trace_frac_bits
    frac = 2 ** le.trace_impulse_frac_bits
    imp = round(units * frac) / frac
    if imp > top:
        return imp, [f"{where}: one spike adds impulse {tr.impulse:g} = {units:g} trace units "
                     f"(LSB 2^-{trace_frac_bits}), beyond the 7-bit trace's {top}"], []
    if imp != units:
        return imp, [], [f"{where}: the impulse {tr.impulse:g} = {units:g} trace units is held "
                         f"with {le.trace_impulse_frac_bits} fractional bits as {imp:g} "
                         "(added with stochastic rounding)"]
    return imp, [], []


def _carry_over_condition(tr: SpikeTrace, x: str, trace_frac_bits: int, window: int,
                          top: int, where: str) -> str:
    """The condition of a trace the reference restarts at every window start, which
    the chip (it never resets ``x``) carries over from the earlier windows."""
    scale = 2.0 ** trace_frac_bits
    carry = tr.decay ** window
    return (
        f"{where} restarts at 0 at every window start in the reference "
        f"(Trace(window_reset=True): where(tw < 1, 0, ...)), but Loihi never resets {x}: "
        f"on chip, {x} at a window's end also holds the earlier windows' spikes, decayed by "
        f"decay**T = {carry:.3g}"
        + (f" (up to {carry * tr.impulse * scale / (1 - tr.decay):.3g} trace units, LSB "
           f"2^-{trace_frac_bits})" if tr.decay < 1.0 else "")
        + ((f" - with decay = 1 they are never forgotten: {x} counts every spike since "
            f"the start and saturates at {top} = {top / scale:.4g}, and no silent gap "
            "clears it (Lava's LearningDense has no trace reset). The chip equals the "
            f"reference only if {x} is cleared between samples; otherwise use a decaying "
            "trace (decay**T ~ 0) built with Trace(window_reset=False)")
           if tr.decay >= 1.0 else
           (". The chip equals the reference only if that carry-over is negligible "
            "(decay**T ~ 0, or a silent gap between samples long enough for the trace to "
            "decay), or build the circuit with Trace(window_reset=False)")))


def _trace_peak(tr: SpikeTrace, window: int) -> float:
    """The reference trace's largest value (a unit spiking at every step)."""
    if tr.window_reset:
        return tr.impulse * (window if tr.decay >= 1.0
                             else (1 - tr.decay ** window) / (1 - tr.decay))
    return math.inf if tr.decay >= 1.0 else tr.impulse / (1 - tr.decay)


def _range_conditions(tr: SpikeTrace, x: str, trace_frac_bits: int, window: int, top: int,
                      where: str) -> list[str]:
    """The reference trace's range against the chip's 7-bit ``x``: the window
    reset the chip cannot make, and the saturation at ``top``."""
    scale = 2.0 ** trace_frac_bits
    conditions = []
    if tr.window_reset:
        conditions.append(_carry_over_condition(tr, x, trace_frac_bits, window, top, where))
    peak = _trace_peak(tr, window)
    if peak * scale > top:
        conditions.append(
            f"{where} reaches up to {peak:g} (a unit spiking at every step"
            + ("" if tr.window_reset else ", never reset")
            + f"), but {x} saturates at {top} = {top / scale:.4g} (LSB 2^-{trace_frac_bits})")
    return conditions


def _x_trace_params(tr: SpikeTrace, x: str, trace_frac_bits: int, window: int, le,
                    where: str) -> tuple[dict, list[str], list[str]]:
    """Lava ``{x}_tau`` / ``{x}_impulse`` of a spike trace; (params, reasons, conditions)."""
    tau, reasons, conditions = _lava_tau(tr, x, where)
    imp, why, cond = _lava_impulse(tr, x, trace_frac_bits, le, where)
    reasons += why
    conditions += cond
    conditions += _range_conditions(tr, x, trace_frac_bits, window, le.trace_max, where)
    params = {} if tau is None else {f"{x}_tau": tau, f"{x}_impulse": imp}
    return params, reasons, conditions
