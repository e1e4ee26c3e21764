"""The IR's vocabulary: the values an IR field may take, and the error a wrong one raises.

Its own module so that the circuit (:mod:`neuro_pc.ir.circuit`) and its
validation (:mod:`neuro_pc.ir.validate`) both read it without importing each
other: the circuit calls the validation, never the reverse.
"""
from __future__ import annotations

__all__ = ["CircuitError", "RULE_TRANSFORMS", "TIED_FUNCTIONS", "INIT_KINDS", "POPULATION_MODELS"]


class CircuitError(ValueError):
    """An IR object that is inconsistent; the message names it and the fix."""


#: population-level operations a rule may apply, in its order (docs/semantics.md)
RULE_TRANSFORMS = ("muon", "unit_columns", "unit_rows")
#: ``Tied.fn``: what a tied projection applies to the matrix it views
TIED_FUNCTIONS = ("identity", "sign")
#: ``Init.kind``: how a projection's weights are drawn
INIT_KINDS = ("xavier", "uniform", "normal", "zeros", "constant", "identity", "select",
              "transpose_of")
#: ``Population.model``: what kind of population it is. Reports print it; the
#: analysis reads ``"pc"`` (its ``eps`` is a prediction error: the error signal
#: and the energy ``½‖eps‖²`` of :mod:`neuro_pc.analysis.recorder`). Nothing runs
#: differently for it: what runs is the population's update statements.
POPULATION_MODELS = {
    "input": "set from a data stream or a constant (a bias unit); no dynamics of its own",
    "rate": "a rate unit",
    "pc": "a predictive-coding layer: eps is its prediction error",
    "error": "an explicit error population (MPC's target errors)",
    "lif": "a spiking leaky integrate-and-fire population",
    "li": "a leaky integrator without spikes (NIR's LI)",
    "spike_input": "a spike encoder of a data stream",
}
