"""Can the target's learning engine run a circuit's rules on chip?

Two stages, both in :func:`expressibility_report`:

1. **Structure** (:func:`rule_expressibility`, :func:`static_report`): can a
   rule's terms be products of traces, the synapse's own weight and constants
   at all? A rule is **not expressible** when (each gives its own reason): its
   locality is network-global (weight or sign transport), it updates a
   convolution's shared kernel (weight sharing: the update sums over positions),
   it is population-level (a normalisation, k-WTA, softmax on its path; a Muon,
   ``unit_columns`` or ``unit_rows`` transform), a factor is a nonlinear
   function or a division instead of a trace, a pre factor is neither the
   carried variable, an exponential trace of its spikes (:func:`spike_trace`:
   ``V = V * decay + impulse * s``, optionally inside the window reset
   ``where(tw < 1, 0, ...)``, checked against ``circuit.metadata["spike_traces"]``
   when the builder declares it) nor a constant, it needs more distinct post
   factors than post traces (3), a coefficient reads a run-time scalar
   (``train``, ``tw``), or it exceeds a per-rule limit of the spec
   (``max_products_per_rule``, ``max_factors_per_product``, when set). Value
   ranges the chip needs are ``conditions`` (a data stream must be >= 0, a
   trace reset the chip cannot make, a ``tau`` Lava rounds).
2. **Compilation** (:func:`hardware_targets.onchip.plan_onchip`, ``fixed_pt``):
   what ``LearningDense`` actually runs — the rule string, which trace carries
   which factor and with which code (a signed post factor on two rails, a
   graded pre value as the payload the network really sends, a spike trace as
   the engine's own ``x1``), the trace parameters and ``t_epoch``, and each
   term's scaling constant (:class:`ScalingConstant`: the wanted and the
   represented weight change per unit of the product's factors). What the
   compiler cannot code (a signed pre activity, a constant outside the
   engine's range, a trace that never decays) is a reason too.

The verdict of an entry is ``"yes"``, ``"yes, if"`` (conditions) or ``"no"``.
``neuro-pc check`` then *executes* every compiled rule through Lava's
``LearningDense`` on the circuit's own activity and reports how its weight
change compares with the IR's (:func:`neuro_pc.backends.lava.engine.execute_plan`);
the scheme and its sources are in docs/targets/onchip.md.

On the ``cpu`` target every rule is expressible.
"""
from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field

import sympy

from hardware_targets.base import get_target
from neuro_pc.ir import ExpressionError
from neuro_pc.rules import locality_report, parse_rule
from neuro_pc.rules.parse import expression_sympy

__all__ = ["ScalingConstant", "RuleExpressibility", "SpikeTrace", "spike_trace",
           "rule_expressibility", "static_report",
           "expressibility_report", "format_expressibility", "nearest_scaling_constant",
           "DEFAULT_TRACE_FRAC_BITS"]

#: fractional bits of a value written into a 7-bit trace (x1 in [0, 127/64],
#: post traces with offset 64 in [-1, 63/64])
DEFAULT_TRACE_FRAC_BITS = 6
#: post traces in the order they are handed out
POST_TRACE_ORDER = ("y2", "y3", "y1")
#: Lava's engine: the product is shifted right to this width (W_ACCUMULATOR_U)
_ACCUMULATOR_U = 15
#: element-wise functions whose value is never negative
_NONNEG_FUNCTIONS = {"relu", "sigmoid", "step", "exp", "sqrt", "abs"}


@dataclass(frozen=True)
class ScalingConstant:
    """One term's constant: wanted ``value`` = ``S``; ``mantissa * 2**exp`` the
    nearest the engine holds (``None`` when out of range); ``rel_error``."""

    term: str
    coefficient: float
    value: float
    mantissa: int | None
    exp: int | None
    rel_error: float | None

    @property
    def represented(self) -> float | None:
        return None if self.mantissa is None else self.mantissa * 2.0 ** self.exp

    def as_dict(self) -> dict:
        return {"term": self.term, "coefficient": self.coefficient, "wanted": self.value,
                "mantissa": self.mantissa, "exp": self.exp, "represented": self.represented,
                "rel_error": self.rel_error}


@dataclass(frozen=True)
class RuleExpressibility:
    """The verdict for one plastic projection's rule on one target."""

    projection: str
    rule: str
    target: str
    expressible: bool
    loihi_rule: str | None = None
    rule_class: str | None = None
    t_epoch: int | None = None
    kind: str | None = None
    traces: dict[str, str] = field(default_factory=dict)
    trace_params: dict[str, float] = field(default_factory=dict)
    constants: tuple[ScalingConstant, ...] = ()
    reasons: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        """``"yes"``, ``"yes, if"`` (conditions on value ranges) or ``"no"``."""
        if not self.expressible:
            return "no"
        return "yes, if" if self.conditions else "yes"

    @property
    def lava_rule(self) -> str | None:
        """The Lava constructor call, e.g. ``Loihi3FLearningRule(dw='...', x1_impulse=2,
        x1_tau=0, t_epoch=32)`` (``None`` when there is no rule string)."""
        return _lava_call(self.rule_class, self.loihi_rule, self.trace_params, self.t_epoch)

    def as_dict(self) -> dict:
        return {"projection": self.projection, "rule": self.rule, "target": self.target,
                "expressible": self.expressible, "verdict": self.verdict,
                "loihi_rule": self.loihi_rule, "rule_class": self.rule_class,
                "t_epoch": self.t_epoch, "kind": self.kind, "traces": dict(self.traces),
                "trace_params": dict(self.trace_params),
                "constants": [c.as_dict() for c in self.constants],
                "lava_rule": self.lava_rule,
                "reasons": list(self.reasons), "conditions": list(self.conditions)}


def _lava_call(rule_class, loihi_rule, trace_params, t_epoch) -> str | None:
    if not rule_class or not loihi_rule:
        return None
    kw = "".join(f", {k}={v:g}" for k, v in sorted(trace_params.items()))
    return f"{rule_class}(dw='{loihi_rule}'{kw}, t_epoch={t_epoch})"


# --------------------------------------------------------------------------
# scaling constants
# --------------------------------------------------------------------------
def nearest_scaling_constant(value: float, mantissa_range=(-8, 7),
                             exp_range=(-7, 8)) -> tuple[int, int] | None:
    """The ``(s_mant, s_exp)`` whose ``s_mant * 2**s_exp`` is nearest ``value``.

    Ties go to the smaller exponent. ``None`` (out of range) when the nearest
    representable value is 0 (``|value| <= 2**(min exp - 1)``: 2**-8 on
    Loihi 2) or ``value`` lies outside ``[lo_m * 2**max_e, hi_m * 2**max_e]``
    (``[-2048, 1792]`` on Loihi 2).
    """
    lo_m, hi_m = mantissa_range
    lo_e, hi_e = exp_range
    if value == 0 or not lo_m * 2.0 ** hi_e <= value <= hi_m * 2.0 ** hi_e:
        return None
    best, best_err = None, abs(value)  # 0 is the candidate to beat
    for e in range(lo_e, hi_e + 1):
        m = int(round(value / 2.0 ** e))
        m = max(lo_m, min(hi_m, m))
        if m == 0:
            continue
        err = abs(value - m * 2.0 ** e)
        if err < best_err:
            best, best_err = (m, e), err
    return best


# --------------------------------------------------------------------------
# factor analysis
# --------------------------------------------------------------------------
def _factor_powers(text: str | None) -> tuple[list[tuple[str, int]], str | None]:
    """``"delta*r**2"`` -> ``[("delta", 1), ("r", 2)]``; second item a reason
    when the factor is not a product of plain variables (a function, a division)."""
    if text is None:
        return [], None
    expr = expression_sympy(text)
    out = []
    for f in sympy.Mul.make_args(expr):
        if isinstance(f, sympy.Symbol):
            out.append((str(f), 1))
        elif (isinstance(f, sympy.Pow) and isinstance(f.base, sympy.Symbol)
              and f.exp.is_Integer and int(f.exp) > 0):
            out.append((str(f.base), int(f.exp)))
        elif isinstance(f, sympy.Pow) and f.exp.is_negative:
            return [], f"divides by {sympy.sstr(f.base)}"
        elif isinstance(f, sympy.sign) and isinstance(f.args[0], sympy.Symbol):
            out.append((f"sign({f.args[0]})", 1))
        else:
            return [], f"is the nonlinear function {sympy.sstr(f)}"
    return out, None


def _names(text: str) -> set[str]:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return set()
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


def _value_sign(circuit, pop_name: str, var: str, seen=None) -> tuple[str, str]:
    """``("nonneg" | "signed" | "stream" | "unknown", description)`` of a variable."""
    seen = set() if seen is None else seen
    if (pop_name, var) in seen:
        return "unknown", f"{pop_name}.{var}"
    seen.add((pop_name, var))
    pop = circuit.population(pop_name)
    if var in pop.streams:
        return "stream", f"the data stream {pop.streams[var]!r}"
    if var in pop.ports:
        return "signed", f"the weighted sum {pop_name}.{var}"
    stmts = [s for s in pop.statements() if s.target == var]
    if not stmts:
        v = float(pop.init.get(var, 0.0))
        return ("nonneg" if v >= 0 else "signed"), f"the constant {v:g}"
    st = stmts[-1]
    body = st.expr.body
    text = ast.unparse(body)
    if isinstance(body, ast.Call) and isinstance(body.func, ast.Name):
        if body.func.id in _NONNEG_FUNCTIONS:
            return "nonneg", text
        if body.func.id in ("tanh", "sign"):
            return "signed", text
    if isinstance(body, ast.Constant):
        return ("nonneg" if body.value >= 0 else "signed"), text
    if isinstance(body, ast.BinOp) and isinstance(body.op, ast.Sub):
        return "signed", f"{text} (a difference)"
    if isinstance(body, ast.Name) and (body.id in pop.variables or body.id in pop.ports):
        kind, desc = _value_sign(circuit, pop_name, body.id, seen)
        return kind, f"{text} = {desc}"
    return "unknown", text


# --------------------------------------------------------------------------
# pre factors: the carried variable, a spike trace of it, or a constant
# --------------------------------------------------------------------------
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
    declared: bool   # also declared in circuit.metadata["spike_traces"]


def _is_window_start(node) -> bool:
    """``tw < 1`` (or ``tw <= 0``, ``tw == 0``): true at the first step of a window."""
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1
            and isinstance(node.left, ast.Name) and node.left.id == "tw"
            and isinstance(node.comparators[0], ast.Constant)):
        return False
    op, k = node.ops[0], node.comparators[0].value
    return ((isinstance(op, ast.Lt) and k == 1) or (isinstance(op, ast.LtE) and k == 0)
            or (isinstance(op, ast.Eq) and k == 0))


def _strip_window_reset(node, var: str):
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

    import copy
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


def spike_trace(circuit, pop_name: str, var: str) -> tuple[SpikeTrace | None, str]:
    """Is ``pop_name.var`` an exponential trace of one of the population's spike
    variables? ``(SpikeTrace, "")`` if so, else ``(None, why not)``.

    The trace form is matched on the population's update (the IR is what runs):
    ``var`` is assigned by exactly one statement, linear in ``var`` and one spike
    variable with constant coefficients, optionally inside the window reset
    ``where(tw < 1, 0, var * decay)``. A declaration in
    ``circuit.metadata["spike_traces"][pop][var]`` (what :func:`spiking_mlp`
    records) must agree with it.
    """
    pop = circuit.population(pop_name)
    stmts = [st for st in pop.statements() if st.target == var]
    decl = (circuit.metadata or {}).get("spike_traces", {}).get(pop_name, {}).get(var)
    if len(stmts) != 1:
        return None, (f"{var} has {len(stmts)} update statements" if stmts
                      else f"{var} has no update statement")
    st = stmts[0]
    body, reset = _strip_window_reset(st.expr.body, var)
    text = ast.unparse(body)
    names = _names(text)
    syms = {n: sympy.Symbol(n) for n in names}
    try:
        expr = sympy.expand(expression_sympy(text, syms))
    except (ExpressionError, TypeError):
        return None, f"{st.text!r} is not of the form {var} = {var} * decay + impulse * s"
    expr = expr.subs({syms[k]: float(v) for k, v in pop.params.items() if k in syms})
    form = f"{st.text!r} is not of the form {var} = {var} * decay + impulse * s"
    v_sym = syms.get(var)
    others = [x for x in expr.free_symbols if x != v_sym]
    if v_sym is None or len(others) != 1:
        return None, form
    s_sym = others[0]
    poly = sympy.Poly(expr, v_sym, s_sym) if expr.is_polynomial(v_sym, s_sym) else None
    if poly is None or poly.total_degree() != 1 or float(poly.coeff_monomial(1)) != 0.0:
        return None, form
    decay = float(poly.coeff_monomial(v_sym))
    impulse = float(poly.coeff_monomial(s_sym))
    spike = str(s_sym)
    if not _is_spike(circuit, pop_name, spike):
        return None, (f"{var} follows the trace form but of {spike}, which is not a 0/1 spike "
                      "(set by step(...))")
    if not 0.0 <= decay <= 1.0 or impulse < 0:
        return None, (f"{var}'s decay {decay:g} is not in [0, 1] or its impulse {impulse:g} "
                      "is negative")
    if decl is not None:
        same = (decl.get("spike") == spike and math.isclose(decl.get("decay"), decay)
                and math.isclose(decl.get("impulse"), impulse)
                and bool(decl.get("window_reset")) == reset)
        if not same:
            return None, (f"circuit.metadata['spike_traces'] declares {pop_name}.{var} as "
                          f"{decl}, but its update {st.text!r} says spike={spike}, "
                          f"decay={decay:g}, impulse={impulse:g}, window_reset={reset}")
    return SpikeTrace(var, spike, decay, impulse, reset, decl is not None), ""


def _constant_value(circuit, pop_name: str, var: str) -> float | None:
    """The value of a variable no statement, port or stream ever changes (else None)."""
    pop = circuit.population(pop_name)
    if var in pop.streams or var in pop.ports or any(st.target == var for st in pop.statements()):
        return None
    return float(pop.init.get(var, 0.0))


def _x_trace_params(tr: SpikeTrace, x: str, trace_frac_bits: int, window: int, le,
                    where: str) -> tuple[dict, list[str], list[str]]:
    """Lava ``{x}_tau`` / ``{x}_impulse`` of a spike trace; (params, reasons, conditions)."""
    reasons, conditions = [], []
    top = le.trace_max
    scale = 2.0 ** trace_frac_bits
    # tau: Lava decays by exp(-1/tau) per step; tau = 0 means no decay
    if tr.decay >= 1.0:
        tau = 0
    elif tr.decay <= 0.0:
        reasons.append(f"{where} has decay 0 (it is the spike itself, not a trace); Lava's "
                       f"{x}_tau = 0 means *no* decay")
        tau = None
    else:
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
    # impulse: in trace units, with 8 fractional bits (Lava W_TRACE_FRACTIONAL_PART)
    units = tr.impulse * scale
    frac = 2 ** le.trace_impulse_frac_bits
    imp = round(units * frac) / frac
    if imp > top:
        reasons.append(f"{where}: one spike adds impulse {tr.impulse:g} = {units:g} trace units "
                       f"(LSB 2^-{trace_frac_bits}), beyond the 7-bit trace's {top}")
    elif imp != units:
        conditions.append(f"{where}: the impulse {tr.impulse:g} = {units:g} trace units is held "
                          f"with {le.trace_impulse_frac_bits} fractional bits as {imp:g} "
                          "(added with stochastic rounding)")
    # range of the reference trace against the chip's 7 bits
    if tr.window_reset:
        peak = tr.impulse * (window if tr.decay >= 1.0
                             else (1 - tr.decay ** window) / (1 - tr.decay))
        carry = tr.decay ** window
        conditions.append(
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
    else:
        peak = math.inf if tr.decay >= 1.0 else tr.impulse / (1 - tr.decay)
    if peak * scale > top:
        conditions.append(
            f"{where} reaches up to {peak:g} (a unit spiking at every step"
            + ("" if tr.window_reset else ", never reset")
            + f"), but {x} saturates at {top} = {top / scale:.4g} (LSB 2^-{trace_frac_bits})")
    params = {} if tau is None else {f"{x}_tau": tau, f"{x}_impulse": imp}
    return params, reasons, conditions


# --------------------------------------------------------------------------
# one rule
# --------------------------------------------------------------------------
def _locality_reasons(loc) -> list[str]:
    out = []
    if getattr(loc, "weight_sharing", 0):
        out.append(f"weight sharing: the rule updates a convolution's kernel, shared by "
                   f"{loc.weight_sharing} positions, by the sum of the pre/post products at all "
                   "of them; the learning engine updates each synapse from its own pre and post "
                   "traces only, and no synapse reads another's. On chip the convolution can "
                   "run with a kernel trained off chip (fixed); what learns on chip must be a "
                   "dense projection")
    if loc.weight_transport is not None:
        kind = "sign transport" if loc.weight_transport == "sign" else "weight transport"
        what = "; ".join(r for r in loc.reasons if "transport" in r)
        out.append(f"{kind}: {what}. The learning engine reads only this synapse's own w/d/t "
                   "and the traces of its own pre and post neuron; no synapse can read another "
                   "projection's weights")
    for r in loc.reasons:
        if r.startswith("reads ") and "through population-level" in r:
            out.append(f"population-level: the rule {r}; a Loihi "
                       "neuron computes only from its own state and its synaptic input, so the "
                       "factor is not a per-neuron trace")
    for t in loc.transforms:
        if t == "muon":
            out.append("population-level transform 'muon': momentum and Newton-Schulz "
                       "orthogonalisation act on the whole update matrix dW of the layer, not "
                       "as a sum of per-synapse products")
        elif t == "unit_columns":
            out.append("population-level transform 'unit_columns': rescaling each column of W "
                       "to unit norm reads every synapse of the column")
        elif t == "unit_rows":
            out.append("population-level transform 'unit_rows': rescaling each row of W "
                       "to unit norm needs the norm over all synapses into one postsynaptic "
                       "neuron, which no synapse's learning rule can read")
        else:
            out.append(f"population-level transform {t!r} acts on the whole weight matrix")
    return out


def rule_expressibility(circuit, proj, target="loihi2", *,
                        trace_frac_bits: int = DEFAULT_TRACE_FRAC_BITS,
                        locality=None) -> RuleExpressibility:
    """The *structural* verdict for one plastic projection: can its terms be
    products of traces, weights and constants at all (see the module
    docstring)? The rule string, trace codes and scaling constants come from
    compiling it (:func:`expressibility_report` with the on-chip plan). locality:
    its :class:`~neuro_pc.rules.RuleLocality` (computed if not given).
    """
    tgt = get_target(target) if isinstance(target, str) else target
    rule = proj.rule
    if rule is None:
        raise ValueError(f"projection {proj.name!r} has no rule")
    if tgt.state_bits is None:  # a floating-point target: no learning-engine limits
        return RuleExpressibility(proj.name, rule.text, tgt.name, True, kind="float",
                                  t_epoch=1 if rule.every_step else int(circuit.schedule.window))
    le = tgt.spec.learning
    if locality is None:
        from neuro_pc.rules import rule_locality
        locality = rule_locality(circuit, proj)
    reasons = _locality_reasons(locality)
    conditions: list[str] = []
    parsed = parse_rule(rule.text, rule.params, where=f"rule of projection {proj.name!r}",
                        allow_nonlocal=rule.baseline)
    carried = circuit.source_variable(proj)
    offset = 1 << (le.trace_bits - 1)
    lsb_trace = 2.0 ** -trace_frac_bits
    consts = {sympy.Symbol(k): float(v) for k, v in rule.params.items()}
    consts[sympy.Symbol("dt")] = float(circuit.schedule.dt)

    # pre factors: the carried variable (x1 = graded payload / 2), an exponential
    # trace of the carried spikes (x1, x2 with their own tau / impulse), or a constant
    # (folded into the scaling constant)
    pre_class: dict[str, tuple] = {}

    def classify_pre(var):
        if var not in pre_class:
            if var == carried:
                pre_class[var] = ("carried",)
            else:
                tr, why = spike_trace(circuit, proj.source, var)
                if tr is not None and tr.spike == carried:
                    pre_class[var] = ("trace", tr)
                elif tr is not None:
                    pre_class[var] = ("bad", f"pre.{var} is a trace of pre.{tr.spike}, not of "
                                             f"the carried pre.{carried}")
                elif (c := _constant_value(circuit, proj.source, var)) is not None:
                    pre_class[var] = ("const", c)
                else:
                    pre_class[var] = ("bad", why)
        return pre_class[var]

    pre_trace: dict[str, str] = {}   # pre variable -> x1 / x2
    for term in parsed.terms:
        for var, _ in _factor_powers(term.pre)[0]:
            classify_pre(var)
    spike_traces = [v for v, k in pre_class.items() if k[0] == "trace"]
    if "carried" in {k[0] for k in pre_class.values()}:
        pre_trace[carried] = "x1"
        if spike_traces:
            reasons.append(f"the pre factors pre.{carried} (the graded payload, x1 = payload/2) "
                           f"and the spike trace{'s' if len(spike_traces) > 1 else ''} "
                           f"{', '.join('pre.' + v for v in spike_traces)} cannot share x1: "
                           "a projection's spikes are either graded or add impulses")
    elif len(spike_traces) > len(le.pre_traces):
        reasons.append(f"too many distinct pre traces: {len(spike_traces)} "
                       f"({', '.join('pre.' + v for v in spike_traces)}) for the "
                       f"{len(le.pre_traces)} pre traces {', '.join(le.pre_traces)}")
    else:
        pre_trace.update(zip(spike_traces, le.pre_traces))

    post_order: list[str] = []
    pre_seen: list[str] = []
    terms = []   # (coef value or None, [(factor_str, width, lsb)], label)
    for k, term in enumerate(parsed.terms):
        label = _term_label(term)
        coef_expr = expression_sympy(term.coef)
        coef_expr = coef_expr.subs(consts)
        coef = None
        if coef_expr.free_symbols:
            names = ", ".join(sorted(map(str, coef_expr.free_symbols)))
            reasons.append(f"term {label!r}: its coefficient reads {names}, which changes during "
                           "a run or is not a constant of the rule; the engine's scaling constants "
                           "are fixed when the rule is compiled")
        else:
            coef = float(coef_expr)
        factors = []
        for side in ("post", "pre", "syn"):
            powers, why = _factor_powers(getattr(term, side))
            if why:
                name = f"{side}.({getattr(term, side)})" if side != "syn" else getattr(term, side)
                reasons.append(f"term {label!r}: the {side} factor {name} {why}, not a trace; "
                               "the engine multiplies traces, w/d/t and constants only"
                               + ("" if side == "syn" else
                                  f" (compute it as a state variable of population "
                                  f"{proj.target if side == 'post' else proj.source!r}'s update "
                                  "so that it can be carried in a trace)"))
                continue
            for var, p in powers:
                if side == "post":
                    if var not in post_order:
                        post_order.append(var)
                    idx = post_order.index(var)
                    trace = POST_TRACE_ORDER[idx] if idx < len(POST_TRACE_ORDER) else None
                    factors += [(trace, le.trace_bits, lsb_trace)] * p
                elif side == "pre":
                    if var not in pre_seen:
                        pre_seen.append(var)
                    kind_ = classify_pre(var)
                    if kind_[0] == "const":
                        if coef is not None:
                            coef *= kind_[1] ** p
                    else:
                        factors += [(pre_trace.get(var), le.trace_bits, lsb_trace)] * p
                else:
                    if var == "w":
                        factors += [("w", le.weight_factor_bits, 1.0)] * p
                    elif var == "sign(w)":
                        factors += [("sgn(w)", le.weight_factor_bits, 1.0)] * p
                    else:
                        reasons.append(f"term {label!r}: the synaptic factor {var} is not w")
        terms.append((coef, factors, label))

    # traces
    if len(post_order) > len(le.post_traces):
        reasons.append(f"too many distinct post factors: {len(post_order)} "
                       f"({', '.join('post.' + v for v in post_order)}) for the "
                       f"{len(le.post_traces)} post traces {', '.join(le.post_traces)}")
    traces = {}
    trace_params: dict[str, float] = {}
    for v in pre_seen:
        k = pre_class[v]
        if k[0] == "bad":
            reasons.append(f"the pre factor pre.{v} is not the variable this projection carries "
                           f"(pre.{carried}) nor an exponential trace of its spikes ({k[1]}); "
                           "the pre traces x1/x2 are filled only from this projection's own "
                           "spikes")
        elif k[0] == "const":
            traces[f"pre.{v}"] = f"constant {k[1]:g} (in S)"
        elif k[0] == "trace" and v in pre_trace:
            x = pre_trace[v]
            traces[f"pre.{v}"] = x
            where = (f"pre.{v} of population {proj.source!r} (a trace of pre.{carried}, "
                     f"decay {k[1].decay:g}, impulse {k[1].impulse:g})")
            params, why, cond = _x_trace_params(k[1], x, trace_frac_bits,
                                                int(circuit.schedule.window), le, where)
            trace_params.update(params)
            reasons += why
            conditions += cond
    if carried in pre_seen:
        traces[f"pre.{carried}"] = "x1"
        kind_, desc = _value_sign(circuit, proj.source, carried)
        where = f"pre.{carried} of population {proj.source!r}"
        unsigned = (f"x1 is unsigned ({le.trace_bits} bits, 0..{le.trace_max}; Lava's "
                    "GradedSpikeCfg.OVERWRITE sets x1 = payload/2 as an unsigned integer)")
        if kind_ == "stream":
            conditions.append(f"{where} is {desc}: its values must be >= 0 on chip, because "
                              f"{unsigned}")
        elif kind_ == "signed":
            conditions.append(f"{where} = {desc} takes negative values, but {unsigned}: on chip "
                              "its negative half is lost unless the activity is made non-negative "
                              "(relu/sigmoid, or ON/OFF populations)")
        elif kind_ == "unknown":
            conditions.append(f"{where} = {desc} must be >= 0 on chip, because {unsigned}")
    for i, v in enumerate(post_order[:len(POST_TRACE_ORDER)]):
        traces[f"post.{v}"] = POST_TRACE_ORDER[i]
    if le.max_products_per_rule is not None and len(terms) > le.max_products_per_rule:
        reasons.append(f"{len(terms)} products exceed the engine's {le.max_products_per_rule}")
    if le.max_factors_per_product is not None:
        for coef, factors, label in terms:
            if len(factors) > le.max_factors_per_product:
                reasons.append(f"term {label!r} has {len(factors)} factors, more than the "
                               f"engine's {le.max_factors_per_product}")

    structural = all(f is not None for _, factors, _ in terms for f, _, _ in factors) and \
        all(c is not None for c, _, _ in terms) and not any(
            r.startswith(("term ", "too many", "the pre factor")) for r in reasons)
    rule_class = None
    kind = None
    if structural:
        rule_class = "Loihi3FLearningRule" if post_order else "Loihi2FLearningRule"
        pre_traced = [v for v in pre_seen if pre_class[v][0] != "const"]
        if post_order and pre_traced:
            kind = "three-factor"
        elif post_order or pre_traced:
            kind = "two-factor"
        else:
            kind = "synapse-local"
    t_epoch = 1 if rule.every_step else int(circuit.schedule.window)
    return RuleExpressibility(
        projection=proj.name, rule=rule.text, target=tgt.name, expressible=not reasons,
        loihi_rule=None, rule_class=rule_class, t_epoch=t_epoch, kind=kind, traces=traces,
        trace_params=trace_params, constants=(), reasons=tuple(reasons),
        conditions=tuple(conditions))


def _term_label(term) -> str:
    """A term as the user would write it: ``-eta * post.delta * pre.r``."""
    def side(name, text):
        return f"{name}.{text}" if text.isidentifier() else f"{name}.({text})"

    parts = [term.coef] if term.coef != "1" else []
    if term.post:
        parts.append(side("post", term.post))
    if term.pre:
        parts.append(side("pre", term.pre))
    if term.syn:
        parts.append(term.syn)
    return " * ".join(parts) or "1"


# --------------------------------------------------------------------------
# whole circuit
# --------------------------------------------------------------------------
def static_report(circuit, target="loihi2", *,
                  trace_frac_bits: int = DEFAULT_TRACE_FRAC_BITS) -> list[RuleExpressibility]:
    """:func:`rule_expressibility` of every plastic projection, in circuit order."""
    tgt = get_target(target) if isinstance(target, str) else target
    locs = {r.projection: r for r in locality_report(circuit)}
    return [rule_expressibility(circuit, p, tgt, trace_frac_bits=trace_frac_bits,
                                locality=locs[p.name])
            for p in circuit.projections if p.rule is not None]


def expressibility_report(circuit, target="loihi2", *, weights: dict | None = None,
                          seed: int = 0, trace_frac_bits: int = DEFAULT_TRACE_FRAC_BITS,
                          activity: dict | None = None, plan=None) -> list[RuleExpressibility]:
    """One :class:`RuleExpressibility` per plastic projection, in circuit order.

    On a target with a learning engine the rules are compiled
    (:func:`hardware_targets.onchip.plan_onchip`, ``fixed_pt``, from ``weights``
    or ``circuit.init_weights(seed)`` and the ``activity`` the post codes are
    scaled by): each entry then carries the compiled rule string (what
    ``LearningDense`` runs), its traces, the ``t_epoch`` and trace parameters,
    and one :class:`ScalingConstant` per term (the wanted and the represented
    weight change per unit of the product's factors). A rule the compiler
    rejects is ``"no"`` with its reasons. ``plan``: a plan already made.
    """
    tgt = get_target(target) if isinstance(target, str) else target
    static = static_report(circuit, tgt, trace_frac_bits=trace_frac_bits)
    if tgt.state_bits is None or not static:
        return static
    from hardware_targets.onchip import plan_onchip

    if plan is None:
        w = weights if weights is not None else circuit.init_weights(seed)
        plan = plan_onchip(circuit, w, "fixed_pt", activity=activity, seed=seed, static=static)
    return [_compiled(r, plan) for r in static]


def _compiled(r: RuleExpressibility, plan) -> RuleExpressibility:
    """``r`` with what the plan compiled for it (or the plan's reasons)."""
    from dataclasses import replace

    if r.projection in plan.rejected:
        return replace(r, expressible=False, reasons=tuple(dict.fromkeys(
            r.reasons + plan.rejected[r.projection])))
    ep = plan.projections.get(r.projection)
    if ep is None:
        return r
    code = plan.post_codes[ep.post]
    traces = {k: v for k, v in r.traces.items() if not k.startswith("post.")}
    for t in code.traces:
        what = {1: f"relu({t.variable})", -1: f"relu(-{t.variable})", 0: t.variable}[t.sign]
        traces.setdefault(f"post.{t.variable}", "")
        traces[f"post.{t.variable}"] = ", ".join(
            x for x in (traces[f"post.{t.variable}"], f"{t.trace} = {what} x {t.scale:.4g}") if x)
    if ep.pre.kind == "graded":
        traces = {k: v for k, v in traces.items() if not k.startswith("pre.")}
        traces[f"pre.{ep.pre.variable}"] = (f"x1 = payload / 2, payload = 2 x {ep.pre.variable} "
                                            f"x {ep.pre.scale:g}")
    else:
        for k in [k for k in traces if k.startswith("pre.")]:
            traces[k] = (f"x1 (the engine's trace of pre.{ep.pre.variable}'s spikes: tau "
                         f"{ep.rule.x1_tau:g}, impulse {ep.rule.x1_impulse:g})")
    constants = tuple(
        ScalingConstant(t.term, float("nan"), t.wanted, ep.rule.products[t.products[0]].mantissa,
                        ep.rule.products[t.products[0]].exp, t.rel_error) for t in ep.terms)
    params = {k: v for k, v in ep.rule.trace_kwargs().items()
              if k.startswith("x") and v}
    reads = {f.var for p in ep.rule.products for f in p.factors}
    kind = ("three-factor" if reads & {"x1", "x2"} and reads & {"y1", "y2", "y3"} else
            "two-factor" if reads & {"x1", "x2", "y1", "y2", "y3"} else "synapse-local")
    return replace(r, expressible=True, reasons=(), loihi_rule=ep.rule.lava_dw, kind=kind,
                   rule_class="Loihi3FLearningRule" if ep.rule.three_factor
                   else "Loihi2FLearningRule",
                   t_epoch=ep.rule.t_epoch, traces=traces, trace_params=params,
                   constants=constants)


def format_expressibility(report) -> str:
    """A plain-text table (one row per rule) with its reasons/conditions under it.

    ``report``: :class:`RuleExpressibility` objects or their ``as_dict()``.
    """
    rows = [("projection", "on chip", "kind", "learning rate S (rel err)", "compiles to / why not")]
    notes: list[list[str]] = []
    for r in report:
        d = r.as_dict() if isinstance(r, RuleExpressibility) else r
        consts = [c for c in d["constants"] if c["mantissa"] is not None]
        lr = ", ".join(f"{c['mantissa']}*2^{c['exp']} ({100 * c['rel_error']:.0f}%)"
                       for c in consts) or "-"
        if d["loihi_rule"]:
            what = d.get("lava_rule") or _lava_call(d["rule_class"], d["loihi_rule"],
                                                    d.get("trace_params", {}), d["t_epoch"])
            if not d["expressible"]:
                what = "nearest: " + what
        elif d["expressible"]:
            what = "runs as written (floating point, no learning-engine limits)"
        else:
            what = f"{len(d['reasons'])} reason(s), below"
        rows.append((d["projection"], d["verdict"], d["kind"] or "-", lr, what))
        n = []
        if not d["expressible"]:
            n += [f"  no: {x}" for x in d["reasons"]]
        n += [f"  if: {x}" for x in d["conditions"]]
        ex = d.get("executed")
        if ex:
            n.append(f"  executed ({ex['epochs']} epochs through Lava's fixed_pt LearningDense): "
                     f"ΔW/ΔW_IR median {ex['dw_ratio']:.3f}, slope {ex['slope']:.3f}, "
                     f"correlation {ex['correlation']:.4f}, "
                     f"zeroed {100 * ex['zeroed_fraction']:.1f} %"
                     if ex.get("dw_ratio") is not None else
                     f"  executed ({ex['epochs']} epochs): the IR's update was zero")
        elif d.get("executed_note") and d["expressible"]:
            n.append(f"  not executed: {d['executed_note']}")
        if d["traces"]:
            n.insert(0, "  traces: " + ", ".join(f"{k} -> {v}" for k, v in d["traces"].items()))
        notes.append(n)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for k, row in enumerate(rows):
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
        else:
            out += notes[k - 1]
    return "\n".join(out)
