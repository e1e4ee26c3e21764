"""Normalised rate MLPs: under BP the circuit's update is the exact gradient
through the layer / batch normalisation (checked by finite differences)."""
import numpy as np
import pytest

from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.models import mlp


def _loss(sim, x, y) -> float:
    """The batch-mean of ½‖r_out − y‖², the loss whose gradient BP's ``delta = r − y`` is."""
    sim.present(x, y, train=False)
    return float(np.mean(0.5 * np.sum((sim.state["out.r"] - y) ** 2, axis=1)))


@pytest.mark.parametrize("norm", ["layernorm", "batchnorm"])
def test_bp_update_is_the_gradient_through_the_normalisation(norm):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4))
    y = np.eye(3)[rng.integers(0, 3, 6)]
    eta = 0.1
    c = mlp([4, 5, 5, 3], rule="bp", norm=norm, eta=eta)
    sim = ReferenceSimulator(c, seed=1)
    upd = sim.compute_updates(x, y)
    w0 = {k: v.copy() for k, v in sim.weights.items()}
    h = 1e-6
    for name in ("W1", "W2"):                      # both hidden layers' inputs
        grad = np.zeros_like(w0[name])
        for idx in np.ndindex(*grad.shape):
            for sgn in (1, -1):
                sim.weights[name][...] = w0[name]
                sim.weights[name][idx] += sgn * h
                grad[idx] += sgn * _loss(sim, x, y) / (2 * h)
        sim.weights[name][...] = w0[name]
        np.testing.assert_allclose(upd[name], -eta * grad, rtol=1e-5, atol=1e-8, err_msg=name)
