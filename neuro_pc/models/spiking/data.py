"""Spike trains pre-generated from data (no IR circuit).

:func:`poisson_spikes`: Poisson (Bernoulli per step) spike trains from rates
with an explicit seed. The IR has no per-step random source and its streams
are constant over a window, so this encoder is a **data-level
pre-generation** (arrays ``(n, T, n_in)``) for analysis and for backends'
spike-train inputs; it cannot yet drive an IR circuit (see docs/models/spiking.md
for the IR change it needs).
"""
from __future__ import annotations

import numpy as np


def poisson_spikes(rates: np.ndarray, window: int, seed: int, gain: float = 1.0) -> np.ndarray:
    """Bernoulli spike trains ``(n, window, n_in)`` (float 0/1): at every step
    unit ``j`` of sample ``i`` spikes with probability ``clip(gain * rates[i, j], 0, 1)``.

    Data-level pre-generation from ``numpy.random.default_rng(seed)``; the IR
    cannot consume per-step random input yet (module docstring).
    """
    rates = np.atleast_2d(np.asarray(rates, dtype=np.float64))
    p = np.clip(gain * rates, 0.0, 1.0)[:, None, :]
    rng = np.random.default_rng(seed)
    return (rng.random((rates.shape[0], window, rates.shape[1])) < p).astype(np.float64)
