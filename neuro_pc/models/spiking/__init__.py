"""Spiking circuits: LIF neurons, Loihi-style spike traces, spike encoders, and
spiking FA / DFA learning circuits, all written in the IR's per-step statement
language (no IR extension), so every backend that compiles update statements
generically runs them unchanged.

Time is discrete (step ``dt``, one IR step). Every spiking population starts
each presentation window from rest: at ``tw == 0`` its state is reset and the
port value of that step (which carries the *previous* sample's last spikes,
because every projection has a one-step delay) is ignored. Windows are
therefore independent, whatever a backend does between them.

The package has one module per concern and re-exports every name, so
``from neuro_pc.models.spiking import ...`` is the import to use:

* :mod:`~neuro_pc.models.spiking.neurons`: the units as IR statements (LIF
  neurons, Lava's own LIF, spike traces, the rate encoder);
* :mod:`~neuro_pc.models.spiking.closed_forms`: what the units do, computed
  directly (f–I curves, encoder spike counts);
* :mod:`~neuro_pc.models.spiking.data`: Poisson spike trains pre-generated
  from rates (data level, not a circuit);
* :mod:`~neuro_pc.models.spiking.populations`: the populations the circuits are
  made of;
* :mod:`~neuro_pc.models.spiking.builders`: the circuits (spiking FA / DFA,
  spiking PC, inference only);
* :mod:`~neuro_pc.models.spiking.presets`: small shipped circuits for
  cross-backend tests.
"""
from neuro_pc.models.spiking.builders import (OUTPUT_ERRORS, SPIKING_RULES, hinge_target,
                                              inference_weights, spike_variables,
                                              spiking_inference, spiking_mlp, spiking_pc)
from neuro_pc.models.spiking.closed_forms import encoder_count, lif_rate, lif_rate_continuous
from neuro_pc.models.spiking.data import poisson_spikes
# AT_START, RESETS, _asdict, _decay: not in __all__, but importable from here as before
from neuro_pc.models.spiking.neurons import (AT_START, LIF, RESETS, LavaLIF, RateEncoder, Trace,
                                             _asdict, _decay)
from neuro_pc.models.spiking.populations import always_on, lif_population, rate_trace, spike_input
from neuro_pc.models.spiking.presets import shipped_spiking_circuits

__all__ = ["LIF", "LavaLIF", "Trace", "RateEncoder", "SPIKING_RULES", "OUTPUT_ERRORS",
           "hinge_target", "lif_rate",
           "lif_rate_continuous",
           "encoder_count", "poisson_spikes", "spike_input", "always_on", "lif_population",
           "rate_trace", "spiking_mlp", "spiking_pc", "spiking_inference", "inference_weights",
           "spike_variables", "shipped_spiking_circuits"]
