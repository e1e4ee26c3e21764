"""What :mod:`hardware_targets.expressibility` answers: one rule's verdict
(:class:`RuleExpressibility`) and each term's scaling constant
(:class:`ScalingConstant`, :func:`nearest_scaling_constant`)."""
from __future__ import annotations

from dataclasses import dataclass, field


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
    """The verdict for one plastic projection's rule on one target.

    Made by :func:`~hardware_targets.expressibility.rule.rule_expressibility`
    (structure) and completed by
    :func:`~hardware_targets.expressibility.report.expressibility_report` (what
    the on-chip plan compiled).

    Attributes
    ----------
    projection : str
        The projection's name.
    rule : str
        The rule's text in the IR.
    target : str
        The target's name.
    expressible : bool
        Whether the target can run the rule (``reasons`` says why not).
    loihi_rule : str, optional
        The compiled rule string (what ``LearningDense`` runs).
    rule_class : str, optional
        ``"Loihi2FLearningRule"`` or ``"Loihi3FLearningRule"`` (with post traces).
    t_epoch : int, optional
        Steps between weight updates: 1 for an every-step rule, else the window.
    kind : str, optional
        ``"three-factor"``, ``"two-factor"`` or ``"synapse-local"`` (which traces
        the rule reads), or ``"float"`` on a floating-point target.
    traces : dict of str to str, default {}
        ``{"pre.v" or "post.v": the trace or constant that carries it}``.
    trace_params : dict of str to float, default {}
        Lava's trace parameters (``x1_tau``, ``x1_impulse``, ...).
    constants : tuple of ScalingConstant, default ()
        One :class:`ScalingConstant` per term, once compiled.
    reasons : tuple of str, default ()
        Why the rule is not expressible (empty when it is).
    conditions : tuple of str, default ()
        Value ranges the chip needs (a data stream must be >= 0, a trace reset
        the chip cannot make, a ``tau`` Lava rounds).
    """

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
        """The verdict as JSON-able data (what
        :func:`~hardware_targets.expressibility.report.format_expressibility` also reads).

        Returns
        -------
        dict
            Every field (``constants`` as :meth:`ScalingConstant.as_dict` dicts,
            tuples as lists), with ``verdict`` and ``lava_rule``.
        """
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
