"""Closed forms of what the spiking units do: the discrete-time LIF f–I curve
(:func:`lif_rate`), its continuous-time textbook limit (:func:`lif_rate_continuous`)
and the spike count of the rate encoder (:func:`encoder_count`). NumPy only; the
tests hold the simulated circuits to these numbers.
"""
from __future__ import annotations

import math

import numpy as np

from neuro_pc.models.spiking.neurons import LIF, RateEncoder


def lif_rate(current: float | np.ndarray, lif: LIF) -> np.ndarray:
    """Discrete-time f–I curve: spikes per step of a voltage-based LIF with
    ``reset="zero"`` (``v_reset = 0``) under a constant drive ``current`` per step.

    The period is ``refractory + k*``, ``k*`` the smallest ``k >= 1`` with
    ``current * (1 + d + ... + d**(k-1)) > thr`` (``d = v_decay``); 0 if never.
    """
    if lif.i_decay is not None or lif.reset != "zero" or lif.v_reset != 0.0:
        raise ValueError("lif_rate is the f–I curve of a voltage-based LIF reset to 0")
    cur = np.atleast_1d(np.asarray(current, dtype=np.float64))
    d, thr = lif.v_decay, lif.thr
    rate = np.zeros_like(cur)
    for n, c in enumerate(cur):
        if c <= 0:
            continue
        if d == 1.0:
            k = math.floor(thr / c) + 1
        else:
            ceiling = c / (1.0 - d)          # the value v approaches
            if ceiling <= thr:
                continue
            k = math.floor(math.log(1.0 - thr * (1.0 - d) / c) / math.log(d)) + 1
            # guard the floating-point edge of the closed form
            while k > 1 and c * (1 - d ** (k - 1)) / (1 - d) > thr:
                k -= 1
            while c * (1 - d ** k) / (1 - d) <= thr:
                k += 1
        rate[n] = 1.0 / (lif.refractory + k)
    return rate


def lif_rate_continuous(current, tau_m: float, thr: float = 1.0, t_ref: float = 0.0):
    """The textbook continuous-time LIF f–I curve, rate per unit time:
    ``1 / (t_ref + tau_m ln(R / (R - thr)))`` with ``R = current * tau_m`` (the
    steady potential), 0 where ``R <= thr``."""
    cur = np.atleast_1d(np.asarray(current, dtype=np.float64))
    R = cur * tau_m
    out = np.zeros_like(R)
    ok = R > thr
    out[ok] = 1.0 / (t_ref + tau_m * np.log(R[ok] / (R[ok] - thr)))
    return out



def encoder_count(rate, window: int, encoder: RateEncoder = RateEncoder()) -> np.ndarray:
    """Spikes a :class:`~neuro_pc.models.spiking.neurons.RateEncoder` emits in ``window`` steps:
    ``max(ceil(phase + T q) - 1, 0)``, ``q = clip(gain * rate, 0, 1)`` (``0 <= phase < 1``)."""
    q = np.clip(encoder.gain * np.asarray(rate, dtype=np.float64), 0.0, 1.0)
    return np.maximum(np.ceil(encoder.phase + window * q) - 1, 0.0)
