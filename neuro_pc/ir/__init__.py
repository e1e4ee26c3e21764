"""The circuit IR: typed, printable, comparable, JSON-serialisable data.

``ir`` and ``rules`` are the core: they import nothing else of the project
(``rules`` reads the expression language from ``ir``; ``ir`` validation calls
the rule parser and the locality analysis lazily).
"""
from neuro_pc.ir.artifact import (Artifact, atomic_write_bytes, load_artifact, read_circuit,
                                  save_artifact)
from neuro_pc.ir.circuit import (RULE_TRANSFORMS, Circuit, CircuitError, Init, Population,
                                 Projection, Rule, Schedule, Tied)
from neuro_pc.ir.conv import Conv, ConvOp
from neuro_pc.ir.expr import (BUILTIN_SCALARS, NEURON_FUNCTIONS, POPULATION_FUNCTIONS,
                              ExpressionError, Statement, parse_expression, parse_statement,
                              translate)

__all__ = ["Artifact", "atomic_write_bytes", "load_artifact", "read_circuit", "save_artifact",
           "Circuit",
           "CircuitError", "Conv", "ConvOp", "Init", "Population", "Projection", "Rule", "Schedule", "Tied",
           "RULE_TRANSFORMS", "BUILTIN_SCALARS", "NEURON_FUNCTIONS", "POPULATION_FUNCTIONS",
           "ExpressionError", "Statement", "parse_expression", "parse_statement", "translate"]
