"""The whole circuit: every plastic projection's verdict, structural
(:func:`~hardware_targets.expressibility.rule.static_report`) or compiled by the on-chip plan
(:func:`expressibility_report`), and its plain-text table
(:func:`format_expressibility`)."""
from __future__ import annotations

from dataclasses import replace

from hardware_targets.base import get_target
from hardware_targets.expressibility.rule import static_report
from hardware_targets.expressibility.traces import DEFAULT_TRACE_FRAC_BITS
from hardware_targets.expressibility.verdict import (RuleExpressibility, ScalingConstant,
                                                     _lava_call)


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
    rejects is ``"no"`` with its reasons. On a floating-point target (``cpu``)
    the entries are the structural verdicts
    (:func:`~hardware_targets.expressibility.rule.static_report`).

    Parameters
    ----------
    circuit : Circuit
        The circuit.
    target : str or HardwareTarget, default "loihi2"
        The target, or its registry name (:func:`~hardware_targets.base.get_target`).
    weights : dict of str to numpy.ndarray, optional
        The weights the plan is made for (default ``circuit.init_weights(seed)``).
    seed : int, default 0
        Seeds the initial weights and the plan.
    trace_frac_bits : int, default DEFAULT_TRACE_FRAC_BITS
        Fractional bits of a value written into a 7-bit trace (6).
    activity : dict, optional
        ``{"pop.var": values}`` recorded on representative input, which the post
        codes are scaled by (:func:`~hardware_targets.onchip.plan_onchip`).
    plan : OnChipPlan, optional
        A plan already made (``weights``, ``seed`` and ``activity`` then go
        unused).

    Returns
    -------
    list of RuleExpressibility
        One entry per plastic projection, in circuit order.

    Raises
    ------
    UnknownTargetError
        For an unregistered target name.
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


# --------------------------------------------------------------------------
# what the plan compiled
# --------------------------------------------------------------------------
def _compiled_traces(r: RuleExpressibility, plan, ep) -> dict[str, str]:
    """``r``'s trace table with the codes the plan chose (post rails, graded
    payload or the engine's spike trace)."""
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
    return traces


def _compiled_kind(ep) -> str:
    """three-factor, two-factor or synapse-local: which traces the compiled rule reads."""
    reads = {f.var for p in ep.rule.products for f in p.factors}
    return ("three-factor" if reads & {"x1", "x2"} and reads & {"y1", "y2", "y3"} else
            "two-factor" if reads & {"x1", "x2", "y1", "y2", "y3"} else "synapse-local")


def _compiled(r: RuleExpressibility, plan) -> RuleExpressibility:
    """``r`` with what the plan compiled for it (or the plan's reasons)."""
    if r.projection in plan.rejected:
        return replace(r, expressible=False, reasons=tuple(dict.fromkeys(
            r.reasons + plan.rejected[r.projection])))
    ep = plan.projections.get(r.projection)
    if ep is None:
        return r
    traces = _compiled_traces(r, plan, ep)
    constants = tuple(
        ScalingConstant(t.term, float("nan"), t.wanted, ep.rule.products[t.products[0]].mantissa,
                        ep.rule.products[t.products[0]].exp, t.rel_error) for t in ep.terms)
    params = {k: v for k, v in ep.rule.trace_kwargs().items()
              if k.startswith("x") and v}
    return replace(r, expressible=True, reasons=(), loihi_rule=ep.rule.lava_dw,
                   kind=_compiled_kind(ep),
                   rule_class="Loihi3FLearningRule" if ep.rule.three_factor
                   else "Loihi2FLearningRule",
                   t_epoch=ep.rule.t_epoch, traces=traces, trace_params=params,
                   constants=constants)


# --------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------
def _row(d: dict) -> tuple[str, str, str, str, str]:
    """One entry's row: projection, verdict, kind, scaling constants, rule or why not."""
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
    return (d["projection"], d["verdict"], d["kind"] or "-", lr, what)


def _notes(d: dict) -> list[str]:
    """The lines under an entry's row: traces, reasons, conditions, execution."""
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
    return n


def format_expressibility(report) -> str:
    """A plain-text table (one row per rule) with its reasons/conditions under it.

    Parameters
    ----------
    report : iterable of RuleExpressibility or dict
        :class:`RuleExpressibility` objects or their ``as_dict()``.

    Returns
    -------
    str
        The table: a header, then per rule its row (projection, verdict, kind,
        scaling constants, the Lava rule or why not) and its traces, reasons,
        conditions and execution result (when executed) under it.
    """
    rows = [("projection", "on chip", "kind", "learning rate S (rel err)", "compiles to / why not")]
    notes: list[list[str]] = []
    for r in report:
        d = r.as_dict() if isinstance(r, RuleExpressibility) else r
        rows.append(_row(d))
        notes.append(_notes(d))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for k, row in enumerate(rows):
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
        else:
            out += notes[k - 1]
    return "\n".join(out)
