"""Compile a circuit's learning to Loihi's learning engine: the on-chip plan.

:func:`plan_onchip` turns every plastic projection whose rule the engine can
express into an :class:`EngineProjection`: the compiled rule
(:class:`~hardware_targets.loihi2.engine.EngineRule`), the weights' format,
and how the neurons on either side feed the traces. A projection it cannot
compile is listed in :attr:`OnChipPlan.rejected` with the reasons. The plan
is data: the Lava backend builds ``LearningDense`` from it and the reference
backend emulates it, and the two must agree (``tests/backends/test_engine.py``).

How a rule ``dw = sum_k c_k * post_k * pre_k * syn_k`` is compiled (the whole
scheme, with the reasons, is in docs/targets/onchip.md):

* **timing.** ``t_epoch = 1`` and every product is gated by the post neuron's
  back-propagating action potential ``y0``, which the post neuron sends at the
  last step of every learning window (every step for ``every_step`` rules):
  the update fires where the IR applies it, and the engine's traces follow
  their recursion step by step (a longer epoch rebuilds a trace lazily from
  the last spike only).
* **pre factor -> x1.** The variable the projection carries, as a graded
  payload (``"graded"``; Lava ``OVERWRITE``: ``x1 = payload / 2``): the pre
  neuron sends ``2 * code``, ``code = round(v * sx)`` in ``[0, 127]``, and a
  zero value as the payload 1 (which writes ``x1 = round(1/2) = 0``: a zero
  payload is no spike and would leave ``x1`` stale). The payload is also the
  synapse's forward input. ``x1_tau = 255`` (the value decays once, by
  ``exp(-1/255)``, before the update reads it). A trace of the carried 0/1
  spikes (``"spikes"``; ``USE_REGULAR_IMPULSE``) is the engine's own ``x1``,
  with the trace's ``tau`` and ``impulse * sx``. A constant pre value (a bias
  unit) is carried like any other: graded, or for a unit that spikes at every
  step a trace whose steady state is the constant. A pre variable that can be
  negative is not compiled: ``x1`` is unsigned and the payload is the forward
  input.
* **post factors -> y2, y3, y1.** The post neuron writes them every step
  (``Loihi3FLearningRule``): a non-negative variable one trace, ``round(v *
  sy)``; a signed one two rails, ``round(relu(v) * sy)`` and ``round(relu(-v)
  * sy)``, and the term becomes two products of opposite sign.
* **constants.** A product's ``s_mant * 2**s_exp`` is the nearest
  representable value of ``K = c / (lsb_w * sx * d_x * sy * d_y)`` (in
  ``fixed`` times ``2**shift``: the engine shifts a product of two traces
  right by 3), ``d`` the decay a trace undergoes before the update reads it.
  ``floating_pt``: ``sx`` is chosen per block so that ``K`` is exact.
  ``fixed_pt``: ``sx`` and ``lsb_w`` are powers of two (the forward pass must
  stay exact), so the post scale ``sy`` absorbs the first block's mantissa
  rounding; the other blocks into that population then differ by powers of
  two and are exact too.
* **weights.** ``fixed``: a register of ``[-256, 255]`` steps of ``lsb_w =
  2**k`` (``headroom`` times the initial largest weight must fit) and
  ``weight_exp`` such that ``(weights @ payload) >> -weight_exp`` is the post
  state in units of ``2**-frac_bits``. ``float``: Lava's float synapse has no
  exponent; its weights are ``W / (2 sx)`` (graded) or ``W`` (spikes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hardware_targets.expressibility.verdict import nearest_scaling_constant
from hardware_targets.loihi2.engine import (THREE_FACTOR_Y_TAU, TRACE_MAX, EngineRule, Factor,
                                            Product, product_shift)

__all__ = ["PreCode", "PostTrace", "PostCode", "TermMap", "EngineProjection", "OnChipPlan",
           "OnChipError", "plan_onchip", "GRADED_X1_TAU", "ZERO_PAYLOAD", "TAGS"]

#: x1's time constant for graded payloads: the largest 8-bit value (one decay step)
GRADED_X1_TAU = 255
#: the payload a zero value is sent as (fixed: x1 = round(1/2) = 0; float: ~0)
ZERO_PAYLOAD = {"fixed": 1, "float": 2.0 ** -60}
#: where the 99th percentile of a post factor's magnitude lands in the 7-bit trace
POST_TARGET = 64.0
#: the smallest scaling constant the engine holds (s_mant = 1, s_exp = -7)
LOWEST_SCALE = 2.0 ** -7
#: the range the register of an all-zero (bias) matrix is given
ZERO_MATRIX_RANGE = 0.99
#: the time constant of the trace a constant spiking pre unit (bias) is given
CONSTANT_TRACE_TAU = 8
TAGS = ("floating_pt", "fixed_pt")
#: float: the scaling constant every product is given (then sx makes it exact)
_FLOAT_K = 4 * 2.0 ** -4


class OnChipError(ValueError):
    """A circuit (or part) that cannot be compiled to the learning engine."""


# --------------------------------------------------------------------------- codes
@dataclass(frozen=True)
class PreCode:
    """How population ``population`` feeds one learning block's pre side.

    kind: ``"graded"`` (the value as a payload, ``x1 = payload/2``) or
    ``"spikes"`` (0/1 spikes; the engine keeps the trace). scale ``sx``: trace
    units per unit of the value (graded) or of the IR trace (spikes).
    trace: the IR variable the engine's ``x1`` stands for (spikes: the trace,
    whose value a run starts ``x1`` from; graded: the carried variable).
    """

    population: str
    variable: str
    kind: str
    scale: float
    trace: str | None = None

    def initial_x1(self, values: np.ndarray, mode: str, frac_bits: int = 12) -> np.ndarray:
        """``x1`` at a run's start from the IR trace's current ``values`` (spikes: the
        engine's trace continues the circuit's; graded: 0, overwritten at once)."""
        v = np.asarray(values)
        if self.kind != "spikes":
            return np.zeros(v.shape, dtype=np.int64 if mode == "fixed" else np.float64)
        if mode == "fixed":
            q = np.ldexp(np.asarray(v, dtype=np.float64), -frac_bits) * self.scale
            return np.clip(np.rint(q), 0, TRACE_MAX).astype(np.int64)
        return np.asarray(v, dtype=np.float64) * self.scale

    def payload(self, values: np.ndarray, mode: str, frac_bits: int = 12) -> np.ndarray:
        """What the pre neuron sends for ``values`` (float, or ``fixed``: the
        integer state with ``frac_bits`` fractional bits)."""
        if self.kind == "spikes":
            spikes = np.asarray(values) > 0
            return spikes.astype(np.int64 if mode == "fixed" else np.float64)
        if mode == "fixed":
            shift = frac_bits - int(round(math.log2(self.scale)))
            q = np.maximum(np.asarray(values, dtype=np.int64), 0)
            code = np.minimum((q + (1 << (shift - 1))) >> shift, TRACE_MAX)
            return np.where(code > 0, 2 * code, ZERO_PAYLOAD["fixed"]).astype(np.int64)
        v = np.maximum(np.asarray(values, dtype=np.float64), 0.0) * (2.0 * self.scale)
        return np.where(v > 0, v, ZERO_PAYLOAD["float"])


@dataclass(frozen=True)
class PostTrace:
    """Post trace ``trace`` = ``round(relu(sign * variable) * scale)``
    (``sign`` +1/-1: the two rails of a signed variable; 0: a non-negative
    variable as it is), clipped to [0, 127] in ``fixed``."""

    trace: str
    variable: str
    sign: int
    scale: float

    def encode(self, values: np.ndarray, mode: str, frac_bits: int = 12,
               noise: np.ndarray | None = None) -> np.ndarray:
        """The trace values for ``values`` (``fixed``: the integer state). ``noise``:
        integers uniform in ``[0, 2**r)`` (:func:`fixed_multiplier`) that make the
        rounding stochastic (unbiased); None rounds to nearest."""
        if mode == "fixed":
            q = np.asarray(values, dtype=np.int64)
            q = np.maximum(-q if self.sign < 0 else q, 0)
            m, r = fixed_multiplier(self.scale, frac_bits)
            add = (1 << (r - 1)) if noise is None else np.asarray(noise, dtype=np.int64)
            return np.minimum((q * m + add) >> r, TRACE_MAX)
        v = np.asarray(values, dtype=np.float64)
        return np.maximum(-v if self.sign < 0 else v, 0.0) * self.scale


def fixed_multiplier(scale: float, frac_bits: int, bits: int = 16) -> tuple[int, int]:
    """``(m, r)``: ``q * m >> r`` codes a state ``q`` (``frac_bits`` fractional
    bits) into trace units of ``scale`` per unit, to ``bits`` bits: the
    integer multiply-and-shift a neuron uses (then rounded: ``+ 2**(r-1)``)."""
    return int(round(scale * (1 << bits))), frac_bits + bits


@dataclass(frozen=True)
class PostCode:
    """The traces population ``population`` sends (``y1..y3``) and when it sends
    its back-propagating action potential: ``"window_end"`` (the last step of
    a learning window) or ``"every_step"`` (every step of one)."""

    population: str
    traces: tuple[PostTrace, ...]
    when: str = "window_end"
    dither_seed: int | None = None   # fixed: stochastic rounding of the codes, seeded
    third_factor: str | None = None  # the port the error arrives on (Lava a_third_factor_in)

    def variables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.variable for t in self.traces))

    @property
    def used(self) -> tuple[str, ...]:
        """The traces sent (the others are never read and stay unconnected)."""
        return tuple(t.trace for t in self.traces)

    def active(self, tw: int, window: int, learn: bool) -> bool:
        """Whether the codes are sent at step ``tw`` of a window (else zeros)."""
        return bool(learn) and (self.when == "every_step" or tw == window - 1)

    def generator(self) -> np.random.Generator | None:
        """A fresh generator for one run (None: round to nearest)."""
        return None if self.dither_seed is None else np.random.default_rng(self.dither_seed)

    def encode(self, state: dict, size: int, mode: str, frac_bits: int = 12,
               rng: np.random.Generator | None = None, active: bool = True) -> np.ndarray:
        """``(3, size)``: y1, y2, y3 from ``state`` ``{variable: values}``, or zeros
        when not ``active``; ``rng`` (``fixed``, from :meth:`generator`) draws one
        dither per trace and unit of an active step."""
        out = np.zeros((3, size), dtype=np.int64 if mode == "fixed" else np.float64)
        if not active:
            return out
        for t in self.traces:
            noise = None
            if rng is not None and mode == "fixed":
                noise = rng.integers(0, 1 << fixed_multiplier(t.scale, frac_bits)[1], size)
            out[("y1", "y2", "y3").index(t.trace)] = t.encode(
                np.asarray(state[t.variable]).reshape(-1), mode, frac_bits, noise)
        return out


# --------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class TermMap:
    """One IR term, the product(s) it became, and its scaling constant ``K``
    (weight units per unit of the product's factors): wanted and represented."""

    term: str
    products: tuple[int, ...]
    wanted: float
    represented: float

    @property
    def rel_error(self) -> float:
        return abs(self.represented - self.wanted) / abs(self.wanted)

    def as_dict(self) -> dict:
        return {"term": self.term, "products": list(self.products), "wanted": self.wanted,
                "represented": self.represented, "rel_error": self.rel_error}


@dataclass(frozen=True)
class EngineProjection:
    """A plastic projection compiled to one learning block."""

    projection: str
    rule: EngineRule
    pre: PreCode
    post: str                    # the post population (its PostCode is in the plan)
    lsb: float                   # real weight per weight unit (register step / Lava unit)
    weight_exp: int              # fixed: a = (weights @ payload) >> -weight_exp
    num_weight_bits: int
    terms: tuple[TermMap, ...]

    @property
    def graded_payload(self) -> bool:
        return self.pre.kind == "graded"

    def to_units(self, w: np.ndarray, mode: str) -> np.ndarray:
        """Real weights -> the block's weights (``fixed``: register integers)."""
        u = np.asarray(w, dtype=np.float64) / self.lsb
        if mode == "fixed":
            return np.clip(np.rint(u), -256, 255).astype(np.int64)
        return u

    def from_units(self, u: np.ndarray) -> np.ndarray:
        return np.asarray(u, dtype=np.float64) * self.lsb

    def initial_send(self, units: np.ndarray, payload: np.ndarray, mode: str) -> np.ndarray:
        """What the block sends at a run's first step (Lava's ``a_buff.init``):
        its weights times the pre neurons' initial payload."""
        u = np.asarray(units)
        s = payload if self.graded_payload else (np.asarray(payload) != 0)
        acc = u @ np.asarray(s, dtype=u.dtype)
        if mode == "fixed":
            e = self.weight_exp
            return acc << e if e > 0 else acc >> -e
        return acc

    @property
    def lava_rule(self) -> str:
        cls = "Loihi3FLearningRule" if self.rule.three_factor else "Loihi2FLearningRule"
        kw = {k: v for k, v in self.rule.trace_kwargs().items() if v and k != "rng_seed"}
        return f"{cls}(dw='{self.rule.lava_dw}'" + \
            "".join(f", {k}={v:g}" for k, v in kw.items()) + ")"

    def as_dict(self) -> dict:
        return {"projection": self.projection, "dw": self.rule.lava_dw,
                "lava_rule": self.lava_rule, "graded": self.rule.graded,
                "pre": {"population": self.pre.population, "variable": self.pre.variable,
                        "kind": self.pre.kind, "scale": self.pre.scale, "trace": self.pre.trace},
                "post": self.post, "lsb": self.lsb, "weight_exp": self.weight_exp,
                "num_weight_bits": self.num_weight_bits,
                "terms": [t.as_dict() for t in self.terms]}


@dataclass
class OnChipPlan:
    """Every learning block of a circuit, for one tag."""

    circuit: str
    tag: str
    frac_bits: int
    projections: dict[str, EngineProjection] = field(default_factory=dict)
    post_codes: dict[str, PostCode] = field(default_factory=dict)
    rejected: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return "fixed" if self.tag == "fixed_pt" else "float"

    def formats(self) -> dict:
        """The number formats a trained network keeps: pass them back to
        :func:`plan_onchip` (``lsb``, ``pre_scale``, ``post_scale``) to compile the
        same blocks for its trained weights (an artifact stores them)."""
        return {"lsb": {n: ep.lsb for n, ep in self.projections.items()},
                "pre_scale": {n: ep.pre.scale for n, ep in self.projections.items()},
                "post_scale": {f"{pop}.{t.variable}": t.scale
                               for pop, code in self.post_codes.items() for t in code.traces}}

    def check_complete(self, circuit) -> "OnChipPlan":
        """Raise :class:`OnChipError` naming every plastic projection not compiled."""
        if self.rejected:
            lines = [f"  {k}: {'; '.join(v)}" for k, v in self.rejected.items()]
            raise OnChipError(
                f"circuit {circuit.name!r}: {len(self.rejected)} plastic projection(s) cannot "
                "learn on the learning engine:\n" + "\n".join(lines))
        return self

    def as_dict(self) -> dict:
        return {"circuit": self.circuit, "tag": self.tag, "frac_bits": self.frac_bits,
                "projections": {k: v.as_dict() for k, v in self.projections.items()},
                "post_codes": {k: {"when": v.when, "traces": [
                    {"trace": t.trace, "variable": t.variable, "sign": t.sign,
                     "scale": t.scale} for t in v.traces]} for k, v in self.post_codes.items()},
                "rejected": {k: list(v) for k, v in self.rejected.items()}}


def plan_metadata(plan: OnChipPlan) -> dict:
    """What an artifact of a network trained on the engine records (``"onchip"``)."""
    return {"tag": plan.tag, "frac_bits": plan.frac_bits, "formats": plan.formats()}


def plan_options_from(metadata: dict, tag: str) -> dict | None:
    """:func:`plan_onchip` keyword arguments that rebuild an artifact's blocks for
    ``tag`` (None when the artifact was not trained on the engine in that tag)."""
    onchip = (metadata or {}).get("onchip")
    if not onchip or onchip.get("tag") != tag:
        return None
    return {**onchip["formats"]}


# --------------------------------------------------------------------------- compiling
def plan_onchip(circuit, weights: dict, tag: str = "fixed_pt", *, activity: dict | None = None,
                frac_bits: int = 12, pre_frac_bits: int = 6, spike_frac_bits: int = 4,
                headroom: float = 2.0,
                lsb: dict | None = None, post_scale: dict | None = None,
                pre_scale: dict | None = None, seed: int = 0, dither: bool = True,
                static=None) -> OnChipPlan:
    """The on-chip plan of ``circuit`` with ``weights`` for Lava ``tag``.

    activity: ``{"pop.var": values}`` recorded on representative input: each
    post factor's 99th percentile of ``|v|`` is coded as 64 (default: ``|v|``
    up to 1). pre_frac_bits: ``sx = 2**pre_frac_bits`` for a graded pre value;
    spike_frac_bits: the same for a spike trace (coarser by default: the engine's
    lowest constant bounds the product of the two traces' resolutions, and the
    post error needs them more than a trace of spikes). headroom: the
    register spans ``headroom`` times the initial largest weight. lsb
    ``{projection: weight per step}``, pre_scale ``{projection: sx}`` and
    post_scale ``{"pop.var": sy}`` keep the formats of an earlier plan
    (:meth:`OnChipPlan.formats`: re-planning a trained network). seed: the
    engine's trace generators and the post codes' dither (``fixed``). dither:
    round the post codes stochastically (``fixed``; unbiased, so errors
    smaller than one trace step still learn on average) instead of to nearest.
    static: the structural report (:func:`~hardware_targets.expressibility.static_report`),
    if already made.
    """
    from hardware_targets.expressibility.rule import static_report

    if tag not in TAGS:
        raise OnChipError(f"unknown tag {tag!r}; choose one of {TAGS}")
    mode = "fixed" if tag == "fixed_pt" else "float"
    plan = OnChipPlan(circuit=circuit.name, tag=tag, frac_bits=int(frac_bits))
    report = {r.projection: r for r in (static if static is not None
                                        else static_report(circuit, "loihi2"))}
    analyses: dict[str, dict] = {}
    for proj in circuit.plastic:
        why = tuple(x for x in report[proj.name].reasons
                    if not x.startswith("constant out of range"))
        readers = [t.name for t in circuit.projections
                   if t.tied is not None and t.tied.to == proj.name]
        if readers:
            why += (f"its weights are read by the tied projection(s) {readers} (weight "
                    "transport): a learning block's weights live in its own synapses",)
        if why:
            plan.rejected[proj.name] = why
            continue
        try:
            analyses[proj.name] = _analyse(circuit, proj, 2.0 ** pre_frac_bits,
                                           2.0 ** spike_frac_bits,
                                           (pre_scale or {}).get(proj.name))
        except OnChipError as exc:
            plan.rejected[proj.name] = (str(exc),)

    # post traces: one set per population, shared by every block into it
    codes: dict[str, list[PostTrace]] = {}
    for pop in dict.fromkeys(a["post"] for a in analyses.values()):
        table: dict[str, int] = {}
        for a in analyses.values():
            if a["post"] == pop:
                for var, signed in a["post_vars"].items():
                    table[var] = max(table.get(var, 0), signed)
        needed = sum(1 + s for s in table.values())
        if needed > 3:
            for name in [n for n, a in analyses.items() if a["post"] == pop]:
                plan.rejected[name] = (
                    f"population {pop!r} would need {needed} post traces for the blocks into "
                    "it (a signed factor takes two rails), more than y1, y2, y3",)
                del analyses[name]
            continue
        free = ["y2", "y3", "y1"]
        codes[pop] = [PostTrace(free.pop(0), var, sign, _post_scale(f"{pop}.{var}", activity,
                                                                   post_scale, mode))
                      for var, signed in table.items() for sign in ((1, -1) if signed else (0,))]

    lsbs = _choose_lsbs(analyses, weights, headroom, mode, lsb or {})
    for name, a in analyses.items():
        if mode == "fixed" and a["constant"] and a["pre"].kind == "spikes":
            # an always-spiking bias: its trace needs no resolution; a coarser code keeps
            # its block's constant from being the one that bounds the population's post
            # scale (its register is coarser than the weights' when it starts at 0)
            peers = [lsbs[m] for m, b in analyses.items() if b["post"] == a["post"]
                     and not b["constant"]]
            if peers and min(peers) < lsbs[name]:
                p = a["pre"]
                a["pre"] = PreCode(p.population, p.variable, p.kind,
                                   p.scale * min(peers) / lsbs[name], p.trace)
    if mode == "float":
        for name, a in analyses.items():   # per-block sx: the first term's K is exact
            if name not in (pre_scale or {}):
                a["pre"], lsbs[name] = _float_pre(a, codes[a["post"]], (lsb or {}).get(name))
    elif post_scale is None:
        # each post variable's scale: from the calibration (99th percentile -> 64), then
        # lowered so that the first term reading it has a constant the engine holds
        # exactly, and no term's constant is below the lowest
        for pop, var in dict.fromkeys((a["post"], t["post"]) for a in analyses.values()
                                      for t in a["terms"] if t["post"] is not None):
            ks = []
            for name, a in analyses.items():
                if a["post"] != pop:
                    continue
                for term in a["terms"]:
                    if term["post"] == var:
                        t, sgn = _rails(term, codes[pop])[0]
                        shift = product_shift(Product(1, 0, "u", _factors(term, t)))
                        ks.append(abs(_K(term, sgn, t, a, lsbs[name])) * 2.0 ** shift)
            # the first term's constant R: the smallest the engine holds that keeps every
            # other term's constant (scaled by the same factor) >= the lowest, and the
            # scale at or below the calibrated one (a larger one would clip the tail of
            # the distribution at 127, and the largest errors carry much of the update:
            # a biased weight change, where a coarser code only adds unbiased dither)
            target = _ceil_scaling(max(LOWEST_SCALE * ks[0] / min(ks), ks[0]))
            if target is None:
                continue
            ratio = ks[0] / target          # sy * ratio: the first term's K becomes target
            codes[pop] = [PostTrace(x.trace, x.variable, x.sign, x.scale * ratio)
                          if x.variable == var else x for x in codes[pop]]

    for name, a in analyses.items():
        try:
            products, maps = _compile_block(a, codes[a["post"]], lsbs[name], mode)
        except OnChipError as exc:
            plan.rejected[name] = (str(exc),)
            continue
        pre = a["pre"]
        rule = EngineRule(tuple(products), t_epoch=a["t_epoch"],
                          graded="impulse" if pre.kind == "spikes" else "overwrite",
                          x1_tau=a["x1_tau"],
                          x1_impulse=a["impulse"] * pre.scale if pre.kind == "spikes" else 0.0,
                          rng_seed=_seed(seed, circuit, name))
        plan.projections[name] = EngineProjection(
            projection=name, rule=rule, pre=pre, post=a["post"], lsb=lsbs[name],
            weight_exp=_weight_exp(lsbs[name], pre, frac_bits) if mode == "fixed" else 0,
            num_weight_bits=8, terms=tuple(maps))
    used = {ep.post for ep in plan.projections.values()}
    names = [p.name for p in circuit.populations]
    plan.post_codes = {
        pop: PostCode(pop, tuple(codes[pop]), when=_when(circuit, pop, plan),
                      third_factor=_third_factor(circuit, pop, codes[pop], plan),
                      dither_seed=(int(np.random.default_rng([int(seed), names.index(pop), 11])
                                       .integers(1, 2 ** 30)) if dither and mode == "fixed"
                                   else None))
        for pop in codes if pop in used}
    return plan


def _third_factor(circuit, pop: str, traces, plan: OnChipPlan) -> str | None:
    """The one port the post traces depend on that no learning block feeds: the
    error's way in (the feedback port of FA), or None."""
    population = circuit.population(pop)
    stmts = population.statements()
    seen, todo = set(), [t.variable for t in traces]
    while todo:
        v = todo.pop()
        if v in seen:
            continue
        seen.add(v)
        for st in stmts:
            if st.target == v:
                todo += [n for n in st.names if n in population.variables
                         or n in population.ports]
    fed = {circuit.projection(n).port for n, b in plan.projections.items() if b.post == pop}
    ports = [p for p in population.ports if p in seen and p not in fed
             and circuit.projections_into(pop, p)]
    return ports[0] if len(ports) == 1 else None


def _when(circuit, pop: str, plan: OnChipPlan) -> str:
    every = {bool(circuit.projection(n).rule.every_step) for n, b in plan.projections.items()
             if b.post == pop}
    if len(every) > 1:
        raise OnChipError(f"population {pop!r} receives window-end and every-step learning "
                          "blocks; a neuron sends one set of post traces")
    return "every_step" if every == {True} else "window_end"


def _seed(seed: int, circuit, name: str) -> int:
    k = [p.name for p in circuit.projections].index(name)
    return int(np.random.default_rng([int(seed), k, 7]).integers(1, 2 ** 30))


def _analyse(circuit, proj, sx_graded: float, sx_spikes: float,
             sx_given: float | None = None) -> dict:
    """A rule's pre code, post variables (signed or not) and terms."""
    from hardware_targets.expressibility.factors import constant_value, factor_powers, value_sign
    from hardware_targets.expressibility.traces import spike_trace
    from neuro_pc.rules import parse_rule
    from neuro_pc.rules.parse import expression_sympy

    rule = proj.rule
    parsed = parse_rule(rule.text, rule.params, allow_nonlocal=rule.baseline)
    carried = circuit.source_variable(proj)
    values = {**{k: float(v) for k, v in rule.params.items()}, "dt": float(circuit.schedule.dt)}
    kinds, terms, post_vars = set(), [], {}
    x1_tau, impulse, trace_var = 0.0, 0.0, None
    for term in parsed.terms:
        coef_expr = expression_sympy(term.coef)
        coef = float(coef_expr.subs({s: values[str(s)] for s in coef_expr.free_symbols}))
        pre_f, _ = factor_powers(term.pre)
        post_f, _ = factor_powers(term.post)
        syn_f, _ = factor_powers(term.syn)
        for side, fs in (("post", post_f), ("pre", pre_f)):
            if len(fs) > 1 or any(p != 1 for _, p in fs):
                raise OnChipError(f"a term has more than one {side} factor ({term})")
        pre_var = pre_f[0][0] if pre_f else None
        if pre_var is not None:
            if pre_var == carried:
                sign, desc = value_sign(circuit, proj.source, carried)
                if sign not in ("nonneg", "stream") and \
                        constant_value(circuit, proj.source, carried) is None:
                    raise OnChipError(
                        f"pre.{carried} of population {proj.source!r} = {desc} can be "
                        "negative: x1 is unsigned and the graded payload is also the "
                        "synapse's forward input (use a non-negative activity: relu, sigmoid)")
                kinds.add("graded")
                x1_tau = float(GRADED_X1_TAU)
            else:
                tr, why = spike_trace(circuit, proj.source, pre_var)
                cv = constant_value(circuit, proj.source, pre_var)
                if tr is not None and tr.spike == carried:
                    if tr.decay >= 1.0 or tr.decay <= 0.0:
                        raise OnChipError(
                            f"pre.{pre_var} has decay {tr.decay:g}: the engine never resets a "
                            "trace, so a trace without decay would count every spike since "
                            "the start; build the circuit with a decaying trace, "
                            "Trace(decay=exp(-1/tau), window_reset=False)")
                    tau, imp = -1.0 / math.log(tr.decay), tr.impulse
                    if abs(tau - round(tau)) < 1e-6:    # exp(-1/8) read back as 7.9999999
                        tau = float(round(tau))
                elif cv is not None and constant_value(circuit, proj.source, carried) == 1.0:
                    # a unit spiking at every step whose trace is a constant: the engine's
                    # trace of its spikes settles at impulse / (1 - decay) = the constant
                    tau = float(CONSTANT_TRACE_TAU)
                    imp = cv * (1.0 - math.exp(-1.0 / tau))
                else:
                    raise OnChipError(f"pre.{pre_var} is neither the carried pre.{carried}, "
                                      f"nor a trace of its spikes, nor a constant ({why})")
                if kinds & {"spikes"} and (tau, imp) != (x1_tau, impulse):
                    raise OnChipError("the rule reads two different pre traces")
                kinds.add("spikes")
                x1_tau, impulse, trace_var = tau, imp, pre_var
        if kinds == {"graded", "spikes"}:
            raise OnChipError("the rule mixes a graded pre factor and a spike trace")
        post_var = post_f[0][0] if post_f else None
        if post_var is not None:
            post_vars[post_var] = 0 if value_sign(circuit, proj.target,
                                                   post_var)[0] == "nonneg" else 1
        syn = [v for v, p in syn_f for _ in range(p)]
        label = " * ".join(x for x in (term.coef, term.post and f"post.{term.post}",
                                       term.pre and f"pre.{term.pre}", term.syn) if x)
        terms.append({"coef": coef, "post": post_var, "pre_used": pre_var is not None,
                      "syn": syn, "label": label})
    kind = "spikes" if "spikes" in kinds else "graded"
    sx = sx_given if sx_given is not None else (sx_spikes if kind == "spikes" else sx_graded)
    if kind == "graded":
        sign, desc = value_sign(circuit, proj.source, carried)
        if sign not in ("nonneg", "stream") and \
                constant_value(circuit, proj.source, carried) is None:
            raise OnChipError(f"pre.{carried} of population {proj.source!r} = {desc} can be "
                              "negative, and the graded payload (the synapse's input) is "
                              "unsigned")
        x1_tau = float(GRADED_X1_TAU)
    # a graded payload is rewritten at every step, so one epoch per window suffices;
    # a spike trace needs one-step epochs to follow its recursion
    t_epoch = 1 if (kind == "spikes" or rule.every_step) else int(circuit.schedule.window)
    cv = constant_value(circuit, proj.source, carried)
    if sx_given is None and kind == "graded" and cv is not None and 0 < abs(cv) <= 1:
        # a constant (the bias unit) needs no resolution: x1 = 1 codes it exactly, and its
        # block's scaling constant is then far above the engine's lowest, so it does not
        # force the post traces of its population to a coarser scale
        sx = 1.0
    return {"pre": PreCode(proj.source, carried, kind, sx,
                           trace_var if kind == "spikes" else carried), "post": proj.target,
            "post_vars": post_vars, "terms": terms, "x1_tau": x1_tau, "impulse": impulse,
            "t_epoch": t_epoch, "constant": cv is not None and sx_given is None}


def _post_scale(key: str, activity, given, mode: str) -> float:
    if given and key in given:
        return float(given[key])
    if mode == "float":    # no range to fit: one scale, so that every term is exact
        return POST_TARGET
    if activity is not None and key in activity:
        v = np.abs(np.asarray(activity[key], dtype=np.float64))
        p = float(np.percentile(v, 99)) if v.size else 0.0
        if p > 0:
            return POST_TARGET / p
    return POST_TARGET


def _ceil_scaling(value: float) -> float | None:
    """The smallest ``m * 2**e`` (m in 1..7, e in -7..8) that is >= ``value``."""
    best = None
    for e in range(-7, 9):
        m = math.ceil(value / 2.0 ** e - 1e-12)
        if 1 <= m <= 7:
            v = m * 2.0 ** e
            best = v if best is None else min(best, v)
    return best


def _register_lsb(w, headroom: float, pre: PreCode, mode: str) -> float | None:
    """The weight per register step (``fixed``: a power of two such that
    ``headroom * max|W|`` fits 255 steps; None for an all-zero matrix)."""
    if mode == "float":
        return 2.0 * pre.scale if pre.kind == "graded" else 1.0
    top = float(np.max(np.abs(w))) * headroom if np.size(w) else 0.0
    if top == 0.0:
        return None
    return 2.0 ** math.ceil(math.log2(top / 255.0))


def _choose_lsbs(analyses: dict, weights: dict, headroom: float, mode: str,
                 given: dict) -> dict:
    """Per block weight LSB; an all-zero matrix (a bias) gets room for weights up to
    ``ZERO_MATRIX_RANGE``."""
    lsbs = {n: given.get(n) or _register_lsb(weights[n], headroom, a["pre"], mode)
            for n, a in analyses.items()}
    for n, a in analyses.items():
        if lsbs[n] is None:     # room for weights up to ZERO_MATRIX_RANGE
            lsbs[n] = _register_lsb(np.array([ZERO_MATRIX_RANGE]), 1.0, a["pre"], mode)
    return lsbs


def _weight_exp(lsb_w: float, pre: PreCode, frac_bits: int) -> int:
    """``(weights @ payload) >> -weight_exp`` in units of ``2**-frac_bits``."""
    per_unit = 2.0 * pre.scale if pre.kind == "graded" else 1.0
    e = math.log2(lsb_w) + frac_bits - math.log2(per_unit)
    if e != int(e):
        raise OnChipError(f"weight LSB {lsb_w} and payload scale {per_unit} do not give an "
                          "integer weight exponent")
    return int(e)


def _decays(a: dict, term: dict, t: PostTrace | None) -> float:
    """The expected decay of the factors over the epoch before the update reads
    them (a graded x1 and the post traces are written at the epoch's last step)."""
    d = 1.0
    if term["pre_used"] and a["pre"].kind == "graded":
        d *= math.exp(-a["t_epoch"] / a["x1_tau"])
    if t is not None:
        d *= math.exp(-a["t_epoch"] / THREE_FACTOR_Y_TAU)
    return d


def _factors(term: dict, t: PostTrace | None) -> tuple[Factor, ...]:
    out = [Factor("x1")] if term["pre_used"] else []
    if t is not None:
        out.append(Factor(t.trace))
    out += [Factor("w", sgn=(s == "sign(w)")) for s in term["syn"]]
    return tuple(out)


def _K(term: dict, sgn: float, t: PostTrace | None, a: dict, lsb_w: float) -> float:
    """Weight units per unit of the product's factors that the term wants."""
    pre = a["pre"]
    K = term["coef"] * sgn / lsb_w / _decays(a, term, t)
    if term["pre_used"]:
        K /= pre.scale
    if t is not None:
        K /= t.scale
    return K * lsb_w ** term["syn"].count("w")


def _rails(term: dict, traces) -> list:
    if term["post"] is None:
        return [(None, 1.0)]
    return [(t, -1.0 if t.sign < 0 else 1.0) for t in traces if t.variable == term["post"]]


def _compile_block(a: dict, traces, lsb_w: float, mode: str):
    """(products, term maps) of one analysed rule with its post population's traces."""
    products, maps = [], []
    for term in a["terms"]:
        idxs, first = [], None
        for t, sgn in _rails(term, traces):
            factors = _factors(term, t)
            shift = product_shift(Product(1, 0, "u", factors)) if mode == "fixed" else 0
            K = _K(term, sgn, t, a, lsb_w)
            best = nearest_scaling_constant(K * 2.0 ** shift)
            if best is None:
                raise OnChipError(
                    f"term {term['label']!r}: its scaling constant {K * 2.0 ** shift:.3g} "
                    "(weight steps per unit of the product's factors) is outside the "
                    "engine's range (s_mant in [-8, 7], s_exp in [-7, 8]); change the "
                    "learning rate, the weights' range or the trace scales")
            m, e = best
            idxs.append(len(products))
            products.append(Product(m, e, "u", factors))
            if first is None:
                first = (sgn * K, sgn * m * 2.0 ** (e - shift))
        maps.append(TermMap(term["label"], tuple(idxs), *first))
    return products, maps


def _float_pre(a: dict, traces, lsb_w: float | None):
    """float: the pre scale per block that makes every term's K a representable
    value (lsb = 2 sx for a graded payload, so K scales as 1/sx**2)."""
    pre = a["pre"]
    term = next((t for t in a["terms"] if t["pre_used"]), None)
    if term is None:
        return pre, lsb_w or _register_lsb(None, 1.0, pre, "float")
    t, sgn = _rails(term, traces)[0]
    lsb0 = lsb_w or _register_lsb(None, 1.0, pre, "float")
    K = abs(_K(term, sgn, t, a, lsb0))
    target = _FLOAT_K
    if pre.kind == "graded" and lsb_w is None:
        sx = pre.scale * math.sqrt(K / target)
    else:
        sx = pre.scale * K / target
    new = PreCode(pre.population, pre.variable, pre.kind, sx, pre.trace)
    return new, lsb_w or _register_lsb(None, 1.0, new, "float")


# --------------------------------------------------------------------------- execution verdicts
#: what an executed rule must show to be called "on chip" (``neuro-pc check``)
EXECUTED_MIN_CORRELATION = 0.99
EXECUTED_MAX_RATIO_ERROR = 0.10


def execution_problems(ex: dict) -> list[str]:
    """What is off in an executed rule's weight change (empty: it earns its verdict).

    ``ex``: one entry of :func:`neuro_pc.backends.lava.engine.execute_plan`."""
    out = []
    if ex.get("dw_ratio") is None:
        return ["the IR's update was zero on the activity used: nothing to compare"]
    r, c = ex["dw_ratio"], ex["correlation"]
    if abs(r - 1.0) > EXECUTED_MAX_RATIO_ERROR:
        out.append(f"learning-rate error {100 * (r - 1):+.0f} % (median ΔW_engine/ΔW_IR = "
                   f"{r:.3f})")
    if c is None or c < EXECUTED_MIN_CORRELATION:
        why = []
        if ex.get("zeroed_fraction"):
            why.append(f"{100 * ex['zeroed_fraction']:.0f} % of the changes the IR makes "
                       "are 0 on the engine")
        if ex.get("post_saturated"):
            why.append(f"the post traces saturate (127) for {100 * ex['post_saturated']:.1f} % "
                       "of the values")
        out.append(f"correlation {c:.3f} < {EXECUTED_MIN_CORRELATION} with the IR's update"
                   + (f" ({'; '.join(why)})" if why else ""))
    elif ex.get("post_saturated", 0) > 0.01:
        out.append(f"the post traces saturate (127) for {100 * ex['post_saturated']:.1f} % of "
                   "the values")
    return out


def judge(entry: dict, ex: dict | None, why_not: str | None = None) -> dict:
    """An expressibility entry (``as_dict()``) with its execution: ``executed`` (the
    measurement, or ``None`` and ``executed_note``), and the final verdict: a rule
    that compiles but whose execution shows a problem is ``"no"``."""
    entry = dict(entry)
    entry["executed"] = ex
    if ex is None:
        entry["executed_note"] = why_not or "not executed"
        return entry
    problems = execution_problems(ex)
    entry["executed_problems"] = problems
    if problems and entry["expressible"]:
        entry["expressible"] = False
        entry["verdict"] = "no"
        entry["reasons"] = list(entry["reasons"]) + [f"executed: {p}" for p in problems]
    return entry
