"""Brian2 backend: a circuit compiled to NeuronGroups, Synapses with summed
variables and run_regularly code, trained by streaming the data through
TimedArrays in one run (targets numpy, cython, cpp_standalone).
See docs/backends/brian2.md."""
from neuro_pc.backends.brian2.codegen import Brian2BackendError, generate
from neuro_pc.backends.brian2.simulator import Brian2Simulator

__all__ = ["Brian2Simulator", "Brian2BackendError", "generate"]
