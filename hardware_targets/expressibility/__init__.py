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
   ``where(tw < 1, 0, ...)``, recognised on the statement that runs) nor a
   constant, it needs more distinct post
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

The package, by concept: :mod:`.verdict` (:class:`RuleExpressibility`,
:class:`ScalingConstant`, :func:`nearest_scaling_constant`), :mod:`.factors`
(what a factor and a population's variable are), :mod:`.traces`
(:func:`spike_trace` and the Lava trace parameters of one), :mod:`.pre_factors`
(the carried variable, spike traces and constants as ``x1``/``x2``),
:mod:`.terms` (each term against the engine), :mod:`.rule`
(:func:`rule_expressibility`, :func:`static_report`) and :mod:`.report` (the
report with the rules compiled by :mod:`hardware_targets.onchip`, which imports
the modules above, never this one, and its table).
"""
from __future__ import annotations

from hardware_targets.expressibility.report import expressibility_report, format_expressibility
from hardware_targets.expressibility.rule import rule_expressibility, static_report
from hardware_targets.expressibility.terms import POST_TRACE_ORDER  # noqa: F401
from hardware_targets.expressibility.traces import DEFAULT_TRACE_FRAC_BITS, SpikeTrace, spike_trace
from hardware_targets.expressibility.verdict import (RuleExpressibility, ScalingConstant,
                                                     nearest_scaling_constant)

__all__ = ["ScalingConstant", "RuleExpressibility", "SpikeTrace", "spike_trace",
           "rule_expressibility", "static_report",
           "expressibility_report", "format_expressibility", "nearest_scaling_constant",
           "DEFAULT_TRACE_FRAC_BITS"]

