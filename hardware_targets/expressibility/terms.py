"""A rule's terms against the learning engine: each term's constant
coefficient and the trace (or ``w``, ``sgn(w)``) that carries each factor,
the post traces handed out, and the engine's per-rule limits."""
from __future__ import annotations

from typing import NamedTuple

from hardware_targets.expressibility.factors import factor_powers
from neuro_pc.rules.parse import expression_sympy

#: post traces in the order they are handed out
POST_TRACE_ORDER = ("y2", "y3", "y1")


class _Term(NamedTuple):
    """One matched term: ``coef`` (``None`` when it is not a constant of the
    rule), the trace of each factor (``None`` where none carries it), ``label``."""

    coef: float | None
    factors: list[str | None]
    label: str


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


def _coefficient(term, label: str, consts: dict) -> tuple[float | None, list[str]]:
    """The term's coefficient with the rule's constants substituted;
    ``(value or None, reasons)``."""
    coef_expr = expression_sympy(term.coef).subs(consts)
    if coef_expr.free_symbols:
        names = ", ".join(sorted(map(str, coef_expr.free_symbols)))
        return None, [f"term {label!r}: its coefficient reads {names}, which changes during "
                      "a run or is not a constant of the rule; the engine's scaling constants "
                      "are fixed when the rule is compiled"]
    return float(coef_expr), []


def _not_a_trace(label: str, side: str, text: str, why: str, proj) -> str:
    """The reason for a factor that is not a product of plain variables."""
    name = f"{side}.({text})" if side != "syn" else text
    return (f"term {label!r}: the {side} factor {name} {why}, not a trace; "
            "the engine multiplies traces, w/d/t and constants only"
            + ("" if side == "syn" else
               f" (compute it as a state variable of population "
               f"{proj.target if side == 'post' else proj.source!r}'s update "
               "so that it can be carried in a trace)"))


def _post_trace(var: str, post_order: list[str]) -> str | None:
    """The post trace of ``post.var`` (``None`` past the last); appends a new
    factor to ``post_order``."""
    if var not in post_order:
        post_order.append(var)
    idx = post_order.index(var)
    return POST_TRACE_ORDER[idx] if idx < len(POST_TRACE_ORDER) else None


def _match_term(term, proj, consts: dict, classes: dict[str, tuple],
                pre_trace: dict[str, str], post_order: list[str]) -> tuple[_Term, list[str]]:
    """One term: its coefficient (constant pre factors folded in) and the trace
    of each factor (a power ``p`` counts ``p`` factors); ``(term, reasons)``."""
    label = _term_label(term)
    coef, reasons = _coefficient(term, label, consts)
    factors: list[str | None] = []
    for side in ("post", "pre", "syn"):
        powers, why = factor_powers(getattr(term, side))
        if why:
            reasons.append(_not_a_trace(label, side, getattr(term, side), why, proj))
            continue
        for var, p in powers:
            if side == "post":
                factors += [_post_trace(var, post_order)] * p
            elif side == "pre" and classes[var][0] == "const":
                if coef is not None:
                    coef *= classes[var][1] ** p
            elif side == "pre":
                factors += [pre_trace.get(var)] * p
            elif var in ("w", "sign(w)"):
                factors += ["w" if var == "w" else "sgn(w)"] * p
            else:
                reasons.append(f"term {label!r}: the synaptic factor {var} is not w")
    return _Term(coef, factors, label), reasons


def _match_terms(terms, proj, consts: dict, classes: dict[str, tuple],
                 pre_trace: dict[str, str]) -> tuple[list[_Term], list[str], list[str]]:
    """:func:`_match_term` of every term; ``(terms, post factors in the order
    their traces are handed out, reasons)``."""
    post_order: list[str] = []
    matched, reasons = [], []
    for term in terms:
        t, why = _match_term(term, proj, consts, classes, pre_trace, post_order)
        matched.append(t)
        reasons += why
    return matched, post_order, reasons


def _post_traces(post_order: list[str]) -> dict[str, str]:
    """``"post.v"`` -> its post trace, for the factors that got one."""
    return {f"post.{v}": t for v, t in zip(post_order, POST_TRACE_ORDER)}


def _post_trace_reasons(post_order: list[str], le) -> list[str]:
    """More distinct post factors than the engine has post traces."""
    if len(post_order) <= len(le.post_traces):
        return []
    return [f"too many distinct post factors: {len(post_order)} "
            f"({', '.join('post.' + v for v in post_order)}) for the "
            f"{len(le.post_traces)} post traces {', '.join(le.post_traces)}"]


def _limit_reasons(terms: list[_Term], le) -> list[str]:
    """The spec's per-rule limits (``max_products_per_rule``,
    ``max_factors_per_product``), when set."""
    reasons = []
    if le.max_products_per_rule is not None and len(terms) > le.max_products_per_rule:
        reasons.append(f"{len(terms)} products exceed the engine's {le.max_products_per_rule}")
    if le.max_factors_per_product is not None:
        for t in terms:
            if len(t.factors) > le.max_factors_per_product:
                reasons.append(f"term {t.label!r} has {len(t.factors)} factors, more than the "
                               f"engine's {le.max_factors_per_product}")
    return reasons
