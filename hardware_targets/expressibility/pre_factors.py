"""Pre factors: the carried variable (``x1`` = graded payload / 2), an
exponential trace of the carried spikes (``x1``, ``x2`` with their own tau /
impulse), or a constant (folded into the scaling constant); anything else is a
reason. Classified once per rule, then given their traces and conditions."""
from __future__ import annotations

from hardware_targets.expressibility.factors import (constant_value, factor_powers,
                                                     value_sign)
from hardware_targets.expressibility.traces import _x_trace_params, spike_trace


def _classify_pre(circuit, proj, carried: str, var: str) -> tuple:
    """What ``pre.var`` is: ``("carried",)``, ``("trace", SpikeTrace)``,
    ``("const", value)`` or ``("bad", why not)``."""
    if var == carried:
        return ("carried",)
    tr, why = spike_trace(circuit, proj.source, var)
    if tr is not None and tr.spike == carried:
        return ("trace", tr)
    if tr is not None:
        return ("bad", f"pre.{var} is a trace of pre.{tr.spike}, not of "
                       f"the carried pre.{carried}")
    if (c := constant_value(circuit, proj.source, var)) is not None:
        return ("const", c)
    return ("bad", why)


def _pre_factor_classes(circuit, proj, terms, carried: str) -> dict[str, tuple]:
    """:func:`_classify_pre` of every pre variable the rule's ``terms`` read, in
    the order of their first appearance."""
    classes: dict[str, tuple] = {}
    for term in terms:
        for var, _ in factor_powers(term.pre)[0]:
            if var not in classes:
                classes[var] = _classify_pre(circuit, proj, carried, var)
    return classes


def _assign_pre_traces(classes: dict[str, tuple], carried: str,
                       le) -> tuple[dict[str, str], list[str]]:
    """Pre variable -> ``x1`` / ``x2``: the carried variable takes ``x1`` (and no
    spike trace can share it), else the spike traces take the engine's pre
    traces in order; ``(assignment, reasons)``."""
    pre_trace: dict[str, str] = {}
    reasons = []
    spike_traces = [v for v, k in classes.items() if k[0] == "trace"]
    if "carried" in {k[0] for k in classes.values()}:
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
    return pre_trace, reasons


def _carried_condition(circuit, proj, carried: str, le) -> str | None:
    """The condition that the carried value, coded unsigned in ``x1``, is >= 0
    (``None`` when it is never negative)."""
    kind, desc = value_sign(circuit, proj.source, carried)
    where = f"pre.{carried} of population {proj.source!r}"
    unsigned = (f"x1 is unsigned ({le.trace_bits} bits, 0..{le.trace_max}; Lava's "
                "GradedSpikeCfg.OVERWRITE sets x1 = payload/2 as an unsigned integer)")
    if kind == "stream":
        return f"{where} is {desc}: its values must be >= 0 on chip, because {unsigned}"
    if kind == "signed":
        return (f"{where} = {desc} takes negative values, but {unsigned}: on chip "
                "its negative half is lost unless the activity is made non-negative "
                "(relu/sigmoid, or ON/OFF populations)")
    if kind == "unknown":
        return f"{where} = {desc} must be >= 0 on chip, because {unsigned}"
    return None


def _pre_trace_table(circuit, proj, carried: str, classes: dict[str, tuple],
                     pre_trace: dict[str, str], le, trace_frac_bits: int
                     ) -> tuple[dict[str, str], dict[str, float], list[str], list[str]]:
    """The pre side of the verdict: ``(traces, trace_params, reasons, conditions)``
    (``"pre.v"`` -> its trace or constant; Lava's ``x1_tau``, ``x1_impulse``, ...)."""
    traces: dict[str, str] = {}
    trace_params: dict[str, float] = {}
    reasons, conditions = [], []
    for v, k in classes.items():
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
    if carried in classes:
        traces[f"pre.{carried}"] = "x1"
        cond = _carried_condition(circuit, proj, carried, le)
        if cond is not None:
            conditions.append(cond)
    return traces, trace_params, reasons, conditions
