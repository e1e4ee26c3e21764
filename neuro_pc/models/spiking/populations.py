"""The populations the spiking circuits are made of: the rate-encoded spike input
(:func:`spike_input`), the always-on bias unit (:func:`always_on`), a LIF
population with a spike trace (:func:`lif_population`) and the learning
circuits' default trace (:func:`rate_trace`).
"""
from __future__ import annotations

from neuro_pc.ir import Population
from neuro_pc.models.spiking.neurons import LIF, RateEncoder, Trace


def spike_input(name: str, size: int, window: int, encoder: RateEncoder = RateEncoder(),
                trace: Trace | None = None, stream: str = "x") -> Population:
    """A population that turns the streamed rates ``r`` into spikes ``s``."""
    trace = trace or rate_trace(window)
    return Population(name, size, ("r", "acc", "s", trace.var),
                      update=(*encoder.statements("r"), trace.statement("s")),
                      output="s", streams={"r": stream},
                      params={**encoder.params, **trace.params}, model="spike_input")


def always_on(name: str, window: int, trace: Trace | None = None) -> Population:
    """One unit that spikes at every step (the bias), its trace held at the
    value a unit spiking at every step reaches at the window's end."""
    trace = trace or rate_trace(window)
    return Population(name, 1, ("s", trace.var), output="s",
                      init={"s": 1.0, trace.var: trace.always_on(window)}, model="spike_input")


def lif_population(name: str, size: int, lif: LIF = LIF(), trace: Trace | None = None,
                   ports: tuple[str, ...] = ("ff",), drive: str = "ff",
                   extra_variables: tuple[str, ...] = (), extra_update: tuple[str, ...] = (),
                   extra_params: dict | None = None, streams: dict | None = None,
                   window: int | None = None, model: str = "lif") -> Population:
    """A LIF population with a spike trace; ``extra_*`` append learning variables.

    Variables: ``v``, ``s`` (0/1 spikes, the output), the trace (``tr``),
    ``ref`` / ``i`` if refractory / current-based, then ``extra_variables``.
    """
    if trace is None:
        if window is None:
            raise ValueError("give a Trace or the window (for the default rate trace)")
        trace = rate_trace(window)
    return Population(name, size, (*lif.variables, trace.var, *extra_variables),
                      update=(*lif.statements(drive), trace.statement("s"), *extra_update),
                      ports=ports, output="s", streams=dict(streams or {}),
                      params={**lif.params, **trace.params, **(extra_params or {})}, model=model)


def rate_trace(window: int) -> Trace:
    """The default trace of the learning circuits: no decay, impulse ``1/T``,
    so that at the window's end it is the spike rate (spikes per step)."""
    return Trace(decay=1.0, impulse=1.0 / window)
