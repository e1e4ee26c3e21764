"""Training loops the experiments share: a learning rate that decays per epoch.

A circuit's rate is a parameter of its rules, fixed when it is compiled. A rate
``eta * eta_decay**epoch`` is therefore one circuit per epoch, the weights carried
over from the last: :func:`train_with_decay` does that for any backend.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["epoch_seed", "train_with_decay"]


def epoch_seed(seed: int, epoch: int) -> int:
    """The sample-order seed of one epoch when epochs are trained one by one.

    Parameters
    ----------
    seed : int
        The run's seed.
    epoch : int
        The epoch (0-based).

    Returns
    -------
    int
        A seed drawn from ``SeedSequence([seed, epoch])``.
    """
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def train_with_decay(sim, rebuild: Callable, stored, x, y, epochs: int, seed: int,
                     eta_decay: float = 1.0, callback: Callable | None = None, **train_kw):
    """Train ``epochs`` epochs with every rate multiplied by ``eta_decay`` after each.

    Parameters
    ----------
    sim : Simulator
        The compiled circuit at its initial rate (epoch 0).
    rebuild : callable
        ``rebuild(factor, weights)``: a new simulator of the same circuit with
        every rate multiplied by ``factor`` and the given weights.
    stored : iterable of str
        The names of the projections whose weights are carried over.
    x, y : numpy.ndarray
        The training samples and targets (``y`` may be None).
    epochs : int
        Epochs to train.
    seed : int
        The run's seed: the sample order of all epochs (``eta_decay == 1``, one
        ``train`` call) or of epoch ``e`` (:func:`epoch_seed`).
    eta_decay : float, default 1.0
        The factor per epoch; 1 trains all epochs in one call.
    callback : callable, optional
        ``callback(epoch, sim)`` after every epoch.
    **train_kw
        Passed to ``sim.train`` (``batch_size``, ``progress``).

    Returns
    -------
    Simulator
        The simulator holding the trained weights (a new one with a decay).
    """
    if eta_decay == 1.0:
        sim.train(x, y, epochs=epochs, seed=seed, callback=callback, **train_kw)
        return sim
    names = list(stored)
    for epoch in range(epochs):
        if epoch:
            sim = rebuild(eta_decay ** epoch, {k: sim.weights[k] for k in names})
        sim.train(x, y, epochs=1, seed=epoch_seed(seed, epoch), **train_kw,
                  callback=None if callback is None else
                  (lambda _, s, epoch=epoch: callback(epoch, s)))
    return sim
