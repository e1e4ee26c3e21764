"""Which populations are Lava's own LIF neuron, and its fixed-point parameters.

Loihi 2 neurons are microcode. Lava ships one standard neuron with a
bit-accurate model, the LIF (``lava/proc/lif``: ``LIF``, and ``LIFReset``
which restarts ``u`` and ``v`` at a fixed step of every interval). A
population whose update *is* that neuron runs on Lava's own process models
(``PyLifModelFloat`` / ``PyLifResetModelFloat`` in ``floating_pt``,
``PyLifModelBitAcc`` / ``PyLifResetModelBitAcc`` in ``fixed_pt``); any other
population is a custom neuron model, i.e. a microcode neuron on Loihi 2.

**Recognition** matches what runs, the population's update statements,
against the IR form of Lava's float model (:func:`lava_lif_statements`)::

    i = where(tw == k, 0, i * (1 - du)) + I        # current-based only (Lava's u)
    v = where(tw == k, 0, v * (1 - dv)) + i + bias # voltage-based: ... + I + bias
    s = step(v - thr)
    v = where(s > 0, 0, v)

(``where(tw == k, 0, ·)`` is ``LIFReset``'s restart at step ``k`` of every
window, which zeroes ``u`` and ``v`` *and then* adds that step's input; without
it, plain ``LIF``.) ``du``, ``dv``, ``thr``, ``bias`` are parameters or
numbers; ``I`` the population's one port. The population must compute
nothing else (variables exactly ``v, s`` or ``i, v, s``, no stream), and
nothing may read from it but its spikes (projections carry ``s``, rules read
at most ``s``): a Lava LIF sends only its spikes. The statements are the only
description of a neuron: nothing else declares what a population is.

**Fixed point** (:meth:`LavaLif.fixed`, ``F`` the backend's ``frac_bits``): the
input arrives in the project's message format (``2**-F``); Lava shifts it
left by 6 into ``u``, so ``u`` and ``v`` carry ``F + 6`` fractional bits, and
the threshold (shifted by 6 too) is ``vth = rint(thr · 2**F)``. Decays are
12-bit: ``du = rint(du · 4096) − 1`` (Lava adds 1), ``dv = rint(dv · 4096)``;
the bias is ``bias_mant · 2**bias_exp = rint(bias · 2**(F+6))``. Out-of-range
numbers make the population custom in ``fixed_pt`` (the reason says which).

This module reads the circuit IR only; it imports nothing from Lava.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

import numpy as np

CUSTOM = "custom neuron model: needs a microcode neuron on Loihi 2"
#: the names of the IR form's coefficients (parameters or numbers in a circuit)
SLOTS = ("du", "dv", "thr", "bias")


class LavaLifRangeError(ValueError):
    """A LIF parameter outside what Lava's bit-accurate model can hold."""


# --------------------------------------------------------------------------- the IR form
def lava_lif_statements(drive: str, current: bool, reset_step: int | None) -> tuple[str, ...]:
    """The IR statements that mean Lava's float LIF (``AbstractPyLifModelFloat``):
    ``u = u*(1-du) + a_in; v = v*(1-dv) + u + bias; s = v > vth; v[s] = 0``,
    with ``LIFReset``'s ``u = v = 0`` before the step at window step ``reset_step``."""
    def restart(expr: str) -> str:
        return expr if reset_step is None else f"where(tw == {int(reset_step)}, 0, {expr})"

    out = []
    if current:
        out.append(f"i = {restart('i * (1 - du)')} + {drive}")
    into_v = "i" if current else drive
    out += [f"v = {restart('v * (1 - dv)')} + {into_v} + bias",
            "s = step(v - thr)",
            "v = where(s > 0, 0, v)"]
    return tuple(out)


def _tree(text: str) -> ast.AST:
    return ast.parse(text, mode="exec").body[0]


def _number(node) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
            and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _number(node.operand)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    return None


def _match(tmpl, node, params: dict, bound: dict) -> bool:
    """Structural equality of two ASTs; a template name in :data:`SLOTS` matches a
    parameter or a number (the same value at every occurrence)."""
    if isinstance(tmpl, ast.Name) and tmpl.id in SLOTS:
        if isinstance(node, ast.Name) and node.id in params:
            value = float(params[node.id])
        else:
            value = _number(node)
            if value is None:
                return False
        if tmpl.id in bound and bound[tmpl.id] != value:
            return False
        bound[tmpl.id] = value
        return True
    if type(tmpl) is not type(node):
        return False
    if isinstance(tmpl, ast.AST):
        for name, a in ast.iter_fields(tmpl):
            if name == "ctx":
                continue
            if not _match(a, getattr(node, name, None), params, bound):
                return False
        return True
    if isinstance(tmpl, list):
        return len(tmpl) == len(node) and all(_match(a, b, params, bound)
                                              for a, b in zip(tmpl, node))
    return tmpl == node


def _reset_step(texts: list[str]) -> int | None:
    """The ``k`` of the first ``where(tw == k, ...)`` in the statements (None if none)."""
    for text in texts:
        for node in ast.walk(_tree(text)):
            if (isinstance(node, ast.Compare) and isinstance(node.left, ast.Name)
                    and node.left.id == "tw" and isinstance(node.ops[0], ast.Eq)):
                k = _number(node.comparators[0])
                if k is not None and k == int(k) and k >= 0:
                    return int(k)
    return None


def _matches_form(texts: list[str], drive: str, current: bool, params: dict):
    """The bound coefficients if ``texts`` are exactly Lava's LIF form, else None."""
    k = _reset_step(texts)
    tmpl = lava_lif_statements(drive, current, k)
    if len(tmpl) != len(texts):
        return None, k
    bound: dict = {}
    for t, s in zip(tmpl, texts):
        if not _match(_tree(t), _tree(s), params, bound):
            return None, k
    return bound, k


# --------------------------------------------------------------------------- the match
@dataclass(frozen=True)
class LavaLifFixed:
    """Lava's bit-accurate LIF parameters of one population (``fixed_pt``).

    ``du``, ``dv`` (12-bit), ``vth`` (17-bit unsigned), ``bias_mant`` (13-bit
    signed) · ``2**bias_exp`` (3-bit): Lava's Vars. ``input_frac_bits`` (``F``)
    is the format of the input (the project's messages); ``u`` and ``v`` carry
    ``state_frac_bits = F + 6``. The ``effective`` numbers are what the chip
    computes (decay factors per step, threshold and bias in IR units);
    ``notes`` say where they differ from the IR's."""

    du: int
    dv: int
    vth: int
    bias_mant: int
    bias_exp: int
    input_frac_bits: int
    state_frac_bits: int
    effective: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def bias(self) -> int:
        """The bias added to ``v`` every step, in ``2**-state_frac_bits`` units."""
        return self.bias_mant << self.bias_exp

    def as_dict(self) -> dict:
        return {"du": self.du, "dv": self.dv, "vth": self.vth, "bias_mant": self.bias_mant,
                "bias_exp": self.bias_exp, "input_frac_bits": self.input_frac_bits,
                "state_frac_bits": self.state_frac_bits, "effective": dict(self.effective),
                "notes": list(self.notes)}


@dataclass(frozen=True)
class LavaLif:
    """A population recognised as Lava's LIF.

    ``du``, ``dv``, ``thr``, ``bias``: the float model's parameters (``du = 1``
    for a voltage-based unit, whose ``u`` is then just the step's input);
    ``reset_step``: the window step ``k`` at which ``u`` and ``v`` restart
    (``LIFReset``), or None (``LIF``). ``current``: the IR has the current
    variable ``i`` (Lava's ``u``)."""

    population: str
    size: int
    drive: str
    current: bool
    reset_step: int | None
    window: int
    du: float
    dv: float
    thr: float
    bias: float

    @property
    def process(self) -> str:
        return "LIF" if self.reset_step is None else "LIFReset"

    @property
    def reset_interval(self) -> int | None:
        return None if self.reset_step is None else self.window

    @property
    def reset_offset(self) -> int | None:
        """Lava's ``reset_offset``: it resets when ``time_step % interval == offset``
        (``time_step`` counts from 1, so window step ``k`` is ``(k + 1) % T``)."""
        return None if self.reset_step is None else (self.reset_step + 1) % self.window

    @property
    def label(self) -> str:
        if self.reset_step is None:
            return "Lava LIF (bit-accurate)"
        return (f"Lava LIFReset(reset_interval={self.reset_interval}, "
                f"reset_offset={self.reset_offset}) (bit-accurate)")

    @property
    def variables(self) -> dict[str, str]:
        """IR variable -> Lava Var (``s``: the spikes, not a Var of Lava's LIF)."""
        return {**({"i": "u"} if self.current else {}), "v": "v", "s": "s"}

    def float_params(self) -> dict:
        """Keyword arguments of Lava's LIF/LIFReset for the float model."""
        p = {"du": float(self.du), "dv": float(self.dv), "vth": float(self.thr),
             "bias_mant": float(self.bias), "bias_exp": 0.0}
        if self.reset_step is not None:
            p.update(reset_interval=self.reset_interval, reset_offset=self.reset_offset)
        return p

    def fixed(self, frac_bits: int = 12, spec=None) -> LavaLifFixed:
        """The bit-accurate parameters (module docstring); raises
        :class:`LavaLifRangeError` if a number does not fit Lava's widths."""
        if spec is None:
            from hardware_targets.loihi2.spec import LavaLifFixedPoint

            spec = LavaLifFixedPoint()
        F = int(frac_bits)
        S = F + spec.activation_shift
        if spec.threshold_shift != spec.activation_shift:
            raise LavaLifRangeError("the threshold and input shifts differ: no common scaling")
        unity = 1 << spec.decay_bits
        where = f"population {self.population!r}"
        notes = []
        # u: u * (4096 - (du + 1)) >> 12, so du + 1 = rint(du_float * 4096)
        du_q = int(np.rint(self.du * unity)) - 1
        if not 0 <= du_q <= unity - 1:
            raise LavaLifRangeError(
                f"{where}: the current decay 1 - du = {1 - self.du:g} needs du = {du_q} "
                f"(Lava: u * (4096 - du - 1) >> 12, du in [0, {unity - 1}]); a current that "
                "never decays has no bit-accurate form")
        dv_q = int(np.rint(self.dv * unity))
        if not 0 <= dv_q <= unity - 1:
            raise LavaLifRangeError(
                f"{where}: the voltage decay 1 - dv = {1 - self.dv:g} needs dv = {dv_q} "
                f"(Lava: v * (4096 - dv) >> 12, dv in [0, {unity - 1}])")
        vth = int(np.rint(self.thr * (1 << F)))
        top = (1 << spec.threshold_bits) - 1
        if not 0 <= vth <= top:
            raise LavaLifRangeError(
                f"{where}: thr = {self.thr:g} is vth = {vth} at {F} fractional bits; Lava's vth "
                f"is unsigned {spec.threshold_bits}-bit (thr in [0, {top / (1 << F):g}])")
        mant, exp = _bias(self.bias * (1 << S), spec.bias_mantissa_bits,
                          spec.bias_exponent_bits, where)
        eff = {"u_decay": (unity - du_q - 1) / unity, "v_decay": (unity - dv_q) / unity,
               "thr": vth / (1 << F), "bias": (mant << exp) / (1 << S),
               # v saturates symmetrically at 24 bits: +-(2**23 - 1) units of 2**-S
               "v_max": ((1 << (spec.state_bits - 1)) - 1) / (1 << S)}
        ir = {"u_decay": 1.0 - self.du, "v_decay": 1.0 - self.dv, "thr": self.thr,
              "bias": self.bias}
        for k in ("v_decay", "thr", "bias") + (("u_decay",) if self.current else ()):
            if eff[k] != ir[k]:
                notes.append(f"{k} {eff[k]:.8g} on chip ({ir[k]:.8g} in the IR)")
        return LavaLifFixed(du=du_q, dv=dv_q, vth=vth, bias_mant=mant, bias_exp=exp,
                            input_frac_bits=F, state_frac_bits=S, effective=eff,
                            notes=tuple(notes))

    def as_dict(self, frac_bits: int | None = None, spec=None) -> dict:
        d = {"process": self.process, "reset_interval": self.reset_interval,
             "reset_offset": self.reset_offset, "current_based": self.current,
             "drive": self.drive,
             "float": {"du": self.du, "dv": self.dv, "vth": self.thr, "bias": self.bias}}
        if frac_bits is not None:
            d["fixed"] = self.fixed(frac_bits, spec).as_dict()
        return d


def _bias(value: float, mant_bits: int, exp_bits: int, where: str) -> tuple[int, int]:
    """``(mant, exp)`` with ``mant · 2**exp`` nearest to ``value``, the smallest exponent."""
    lo, hi = -(1 << (mant_bits - 1)), (1 << (mant_bits - 1)) - 1
    target = int(np.rint(value))
    for exp in range(1 << exp_bits):
        mant = int(np.rint(target / (1 << exp)))
        if lo <= mant <= hi:
            return mant, exp
    raise LavaLifRangeError(f"{where}: the bias is {target} units of v; Lava's bias_mant · "
                            f"2**bias_exp reaches {hi << ((1 << exp_bits) - 1)}")


def lava_lif(circuit, pop_name: str, frac_bits: int | None = None,
             spec=None) -> tuple[LavaLif | None, str]:
    """Is population ``pop_name`` Lava's LIF? ``(LavaLif, "")`` or ``(None, why not)``.

    With ``frac_bits``, the bit-accurate parameters must fit too (``fixed_pt``;
    ``spec``: Lava's LIF widths, default ``LavaLifFixedPoint()``)."""
    pop = circuit.population(pop_name)
    texts = list(pop.update)
    reasons = _not_lif(circuit, pop, texts)
    if reasons:
        return None, "; ".join(reasons)
    drive = pop.ports[0]
    current = "i" in pop.variables
    bound, k = _matches_form(texts, drive, current, pop.params)
    T = circuit.schedule.window
    match = LavaLif(population=pop.name, size=pop.size, drive=drive, current=current,
                    reset_step=k, window=T, du=bound.get("du", 1.0), dv=bound["dv"],
                    thr=bound["thr"], bias=bound["bias"])
    if k is not None and k >= T:
        return None, (f"it restarts at window step {k}, which a window of {T} steps never "
                      "reaches")
    if frac_bits is not None:
        try:
            match.fixed(frac_bits, spec)
        except LavaLifRangeError as exc:
            return None, f"Lava's LIF form, but outside its bit-accurate model: {exc}"
    return match, ""


def lif_populations(circuit, frac_bits: int | None = None, target=None) -> dict:
    """``{population: (LavaLif, LavaLifFixed or None)}`` for the populations that
    are Lava's LIF. With ``frac_bits`` (``fixed_pt``) only those whose parameters
    Lava's bit-accurate model holds, with those parameters (widths from
    ``target.spec.neuron``; a target without Lava's LIF widths: none)."""
    spec = None
    if frac_bits is not None:
        if target is None:
            from hardware_targets.base import get_target

            target = get_target("loihi2")
        spec = getattr(getattr(target, "spec", None), "neuron", None)
        if spec is None:
            return {}
    out = {}
    for pop in circuit.populations:
        m, _ = lava_lif(circuit, pop.name, frac_bits, spec)
        if m is not None:
            out[pop.name] = (m, None if frac_bits is None else m.fixed(frac_bits, spec))
    return out


def _not_lif(circuit, pop, texts: list[str]) -> list[str]:
    """Why ``pop`` is not Lava's LIF (empty if its form and connections are)."""
    if not texts:
        return ["no update (a constant source)"]
    if pop.streams and not pop.ports:
        return [f"driven by the stream(s) {', '.join(sorted(set(pop.streams.values())))}, "
                "not by synapses (an input encoder)"]
    reasons = []
    if pop.streams:
        reasons.append(f"reads the stream(s) {', '.join(sorted(set(pop.streams.values())))} "
                       "(a Lava LIF has one synaptic input)")
    if len(pop.ports) != 1:
        reasons.append(f"{len(pop.ports)} ports {list(pop.ports)} (Lava's LIF has one input, "
                       "a_in)")
    if {"v", "s"} - set(pop.variables) or pop.output != "s":
        reasons.append("no membrane v with spikes s as its output")
    lif_vars = ("i", "v", "s")
    extra = [v for v in pop.variables if v not in lif_vars]
    if "ref" in extra:
        reasons.append("refractory (ref): Lava 0.10's LIFRefractory has a floating_pt model "
                       "only, no bit-accurate one")
        extra.remove("ref")
    if reasons:
        return (reasons + ([f"also computes {', '.join(extra)}"] if extra else [])
                + _hints(texts, pop.ports[0] if pop.ports else ""))
    drive = pop.ports[0]
    core = [t for t in texts if _tree(t).targets[0].id in lif_vars]
    bound, _ = _matches_form(core, drive, "i" in pop.variables, pop.params)
    if bound is None:
        reasons = _hints(texts, drive) or [
            "its update is not Lava's LIF form (v = where(tw == k, 0, v * (1 - dv)) + input + "
            "bias; s = step(v - thr); v = where(s > 0, 0, v))"]
        return reasons + ([f"also computes {', '.join(extra)}"] if extra else [])
    if extra:
        return [f"Lava's LIF plus statements for {', '.join(extra)} (a learning or readout "
                "neuron)"]
    for proj in circuit.projections:
        if proj.source == pop.name and circuit.source_variable(proj) != "s":
            reasons.append(f"projection {proj.name} reads {circuit.source_variable(proj)} "
                           "(a Lava LIF sends only its spikes)")
        if proj.rule is not None and pop.name in (proj.source, proj.target):
            from neuro_pc.rules import parse_rule

            parsed = parse_rule(proj.rule.text, proj.rule.params, where=proj.name,
                                allow_nonlocal=proj.rule.baseline)
            side = parsed.post_vars if proj.target == pop.name else parsed.pre_vars
            others = sorted(set(side) - {"s"})
            if others:
                reasons.append(f"the rule of {proj.name} reads {', '.join(others)} (a Lava LIF "
                               "sends only its spikes)")
    return reasons


def _hints(texts: list[str], drive: str) -> list[str]:
    """What makes a LIF-like update differ from Lava's (the project's own LIF)."""
    hints = []
    for text in texts:
        st = _tree(text)
        target, value = st.targets[0].id, st.value
        names = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}
        if (target == "v" and isinstance(value, ast.BinOp) and isinstance(value.op, ast.Sub)
                and ast.unparse(value.left) == "v" and "s" in names):
            hints.append(f"resets by subtraction ({text}); Lava's LIF resets v to 0")
        if (target in ("v", "i") and ast.unparse(value).startswith("where(tw < 1, 0,")
                and drive in names):
            hints.append(f"ignores its input at the window's first step ({text}); Lava's "
                         "LIFReset zeroes u and v and then adds that step's input")
    return list(dict.fromkeys(hints))


# --------------------------------------------------------------------------- the report
def neuron_report(circuit, target=None, frac_bits: int = 12) -> list[dict]:
    """One dict per population: ``population``, ``size``, ``model`` (a Lava LIF
    label or :data:`CUSTOM`), ``lava`` (the match: float and bit-accurate
    parameters at ``frac_bits``) or ``reason`` (why custom). Empty for a target
    without Lava's LIF widths (``target.spec.neuron``; the ``cpu`` target runs
    every population as written)."""
    spec = None
    if target is not None:
        spec = getattr(getattr(target, "spec", None), "neuron", None)
        if spec is None:
            return []
    out = []
    for pop in circuit.populations:
        m, why = lava_lif(circuit, pop.name, frac_bits, spec)
        row = {"population": pop.name, "size": pop.size}
        if m is None:
            row.update(model=CUSTOM, reason=why, lava=None)
        else:
            row.update(model=m.label, reason="", lava=m.as_dict(frac_bits, spec))
        out.append(row)
    return out


def format_neurons(rows: list[dict]) -> str:
    """A plain-text table of :func:`neuron_report` with a summary line."""
    from hardware_targets.mapping import format_table

    table = [("population", "neurons", "neuron model", "details")]
    for r in rows:
        if r["lava"] is None:
            detail = r["reason"]
        else:
            fx = r["lava"].get("fixed")
            fl = r["lava"]["float"]
            detail = (f"du={fl['du']:g} dv={fl['dv']:g} vth={fl['vth']:g} bias={fl['bias']:g}"
                      if fx is None else
                      f"du={fx['du']} dv={fx['dv']} vth={fx['vth']} bias={fx['bias_mant']}"
                      f"*2^{fx['bias_exp']}; u, v with {fx['state_frac_bits']} fractional bits "
                      f"(|v| <= {fx['effective']['v_max']:.4g})"
                      + (f"; {'; '.join(fx['notes'])}" if fx["notes"] else ""))
        table.append((r["population"], str(r["size"]), r["model"], detail))
    n = sum(r["lava"] is not None for r in rows)
    return format_table(table) + (f"\n{n}/{len(rows)} populations on Lava's own LIF models; "
                                  f"{len(rows) - n} custom")


__all__ = ["CUSTOM", "LavaLif", "LavaLifFixed", "LavaLifRangeError", "lava_lif",
           "lif_populations",
           "lava_lif_statements", "neuron_report", "format_neurons"]
