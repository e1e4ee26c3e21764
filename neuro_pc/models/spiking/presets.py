"""Shipped spiking circuits: small ones for cross-backend spike-train equality tests."""
from __future__ import annotations

from neuro_pc.ir import Circuit
from neuro_pc.models.spiking.builders import spiking_mlp, spiking_pc
from neuro_pc.models.spiking.neurons import LIF, Trace


def shipped_spiking_circuits(sizes=(8, 6, 4), window: int = 12) -> dict[str, Circuit]:
    """Small spiking circuits for cross-backend spike-train equality tests."""
    return {
        "spiking_fa": spiking_mlp(list(sizes), rule="fa", window=window, init_scale=3.0),
        "spiking_dfa": spiking_mlp([*sizes[:-1], sizes[-2], sizes[-1]], rule="dfa",
                                   window=window, init_scale=3.0),
        "spiking_fa_lif": spiking_mlp(list(sizes), rule="fa", window=window, init_scale=3.0,
                                      lif=LIF(v_decay=0.9, reset="zero", refractory=1),
                                      trace=Trace(decay=0.8, impulse=0.25)),
        "spiking_fa_cuba": spiking_mlp(list(sizes), rule="fa", window=window, init_scale=3.0,
                                       lif=LIF(v_decay=0.95, i_decay=0.5)),
        "spiking_pc": spiking_pc([*sizes[:-1], sizes[-2], sizes[-1]], window=window,
                                 init_scale=3.0, eta=0.05),
    }
