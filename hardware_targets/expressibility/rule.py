"""One rule's structural verdict (:func:`rule_expressibility`): its locality,
its pre factors, its terms against the learning engine, and the rule class
and kind they make."""
from __future__ import annotations

import sympy

from hardware_targets.base import get_target
from hardware_targets.expressibility.pre_factors import (_assign_pre_traces,
                                                         _pre_factor_classes, _pre_trace_table)
from hardware_targets.expressibility.terms import (_limit_reasons, _match_terms,
                                                   _post_trace_reasons, _post_traces, _Term)
from hardware_targets.expressibility.traces import DEFAULT_TRACE_FRAC_BITS
from hardware_targets.expressibility.verdict import RuleExpressibility
from neuro_pc.rules import locality_report, parse_rule, rule_locality


def _locality_reasons(loc) -> list[str]:
    """Why a rule that is not synapse-local (weight sharing, weight or sign transport,
    population-level factors or transforms) cannot run on the learning engine."""
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
    out += [_transform_reason(t) for t in loc.transforms]
    return out


def _transform_reason(t: str) -> str:
    """Why a population-level weight transform of the rule cannot run on chip."""
    if t == "muon":
        return ("population-level transform 'muon': momentum and Newton-Schulz "
                "orthogonalisation act on the whole update matrix dW of the layer, not "
                "as a sum of per-synapse products")
    if t == "unit_columns":
        return ("population-level transform 'unit_columns': rescaling each column of W "
                "to unit norm reads every synapse of the column")
    if t == "unit_rows":
        return ("population-level transform 'unit_rows': rescaling each row of W "
                "to unit norm needs the norm over all synapses into one postsynaptic "
                "neuron, which no synapse's learning rule can read")
    return f"population-level transform {t!r} acts on the whole weight matrix"


def _rule_constants(circuit, rule) -> dict:
    """The rule's parameters and ``dt``, as sympy substitutions."""
    consts = {sympy.Symbol(k): float(v) for k, v in rule.params.items()}
    consts[sympy.Symbol("dt")] = float(circuit.schedule.dt)
    return consts


def _rule_class_and_kind(terms: list[_Term], reasons: list[str], post_order: list[str],
                         classes: dict[str, tuple]) -> tuple[str | None, str | None]:
    """``(rule_class, kind)`` of a rule whose every factor has a trace and every
    coefficient is a constant (``(None, None)`` otherwise)."""
    structural = all(f is not None for t in terms for f in t.factors) and \
        all(t.coef is not None for t in terms) and not any(
            r.startswith(("term ", "too many", "the pre factor")) for r in reasons)
    if not structural:
        return None, None
    rule_class = "Loihi3FLearningRule" if post_order else "Loihi2FLearningRule"
    pre_traced = [v for v, k in classes.items() if k[0] != "const"]
    if post_order and pre_traced:
        return rule_class, "three-factor"
    if post_order or pre_traced:
        return rule_class, "two-factor"
    return rule_class, "synapse-local"


def rule_expressibility(circuit, proj, target="loihi2", *,
                        trace_frac_bits: int = DEFAULT_TRACE_FRAC_BITS,
                        locality=None) -> RuleExpressibility:
    """The *structural* verdict for one plastic projection.

    Can its terms be products of traces, weights and constants at all (see the
    package docstring, :mod:`hardware_targets.expressibility`)? The rule string,
    trace codes and scaling constants come from compiling it
    (:func:`~hardware_targets.expressibility.report.expressibility_report` with
    the on-chip plan). On a floating-point target (no learning-engine limits)
    every rule is expressible, of kind ``"float"``.

    Parameters
    ----------
    circuit : Circuit
        The circuit ``proj`` belongs to.
    proj : Projection
        A plastic projection of ``circuit``.
    target : str or HardwareTarget, default "loihi2"
        The target, or its registry name (:func:`~hardware_targets.base.get_target`).
    trace_frac_bits : int, default DEFAULT_TRACE_FRAC_BITS
        Fractional bits of a value written into a 7-bit trace (6).
    locality : RuleLocality, optional
        Its :class:`~neuro_pc.rules.RuleLocality` (computed if not given).

    Returns
    -------
    RuleExpressibility
        The verdict, without a compiled rule string or scaling constants.

    Raises
    ------
    ValueError
        For a projection without a rule.
    UnknownTargetError
        For an unregistered target name.
    RuleError
        For a rule text the rule language rejects.
    """
    tgt = get_target(target) if isinstance(target, str) else target
    rule = proj.rule
    if rule is None:
        raise ValueError(f"projection {proj.name!r} has no rule")
    t_epoch = 1 if rule.every_step else int(circuit.schedule.window)
    if tgt.state_bits is None:  # a floating-point target: no learning-engine limits
        return RuleExpressibility(proj.name, rule.text, tgt.name, True, kind="float",
                                  t_epoch=t_epoch)
    le = tgt.spec.learning
    if locality is None:
        locality = rule_locality(circuit, proj)
    reasons = _locality_reasons(locality)
    parsed = parse_rule(rule.text, rule.params, where=f"rule of projection {proj.name!r}",
                        allow_nonlocal=rule.baseline)
    carried = circuit.source_variable(proj)
    consts = _rule_constants(circuit, rule)

    classes = _pre_factor_classes(circuit, proj, parsed.terms, carried)
    pre_trace, why = _assign_pre_traces(classes, carried, le)
    reasons += why
    terms, post_order, why = _match_terms(parsed.terms, proj, consts, classes, pre_trace)
    reasons += why + _post_trace_reasons(post_order, le)
    traces, trace_params, why, conditions = _pre_trace_table(
        circuit, proj, carried, classes, pre_trace, le, trace_frac_bits)
    reasons += why
    traces.update(_post_traces(post_order))
    reasons += _limit_reasons(terms, le)

    rule_class, kind = _rule_class_and_kind(terms, reasons, post_order, classes)
    return RuleExpressibility(
        projection=proj.name, rule=rule.text, target=tgt.name, expressible=not reasons,
        loihi_rule=None, rule_class=rule_class, t_epoch=t_epoch, kind=kind, traces=traces,
        trace_params=trace_params, constants=(), reasons=tuple(reasons),
        conditions=tuple(conditions))


def static_report(circuit, target="loihi2", *,
                  trace_frac_bits: int = DEFAULT_TRACE_FRAC_BITS) -> list[RuleExpressibility]:
    """:func:`rule_expressibility` of every plastic projection, in circuit order."""
    tgt = get_target(target) if isinstance(target, str) else target
    locs = {r.projection: r for r in locality_report(circuit)}
    return [rule_expressibility(circuit, p, tgt, trace_frac_bits=trace_frac_bits,
                                locality=locs[p.name])
            for p in circuit.projections if p.rule is not None]
