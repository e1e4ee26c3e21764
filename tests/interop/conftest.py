"""Shared by the NIR tests: a trained spiking circuit, and a small NumPy interpreter of
NIR graphs written from NIR's node equations (not from neuro_pc's import), the
independent meaning the fast tests compare neuro_pc's import with."""
import numpy as np
import pytest

pytest.importorskip("nir", reason="the nir extra is not installed (pip install "
                                  "'neuro-pc[nir]')")

from neuro_pc.backends import compile  # noqa: E402
from neuro_pc.data import load_digits  # noqa: E402
from neuro_pc.models.spiking import LIF, spiking_mlp  # noqa: E402

#: the trained circuit's neurons: leaky (decay 0.9 per step), reset to zero, so that
#: NIR's LIF says exactly what they do
TRAINED_LIF = LIF(v_decay=0.9, reset="zero")


@pytest.fixture(scope="session")
def digits():
    return load_digits()


@pytest.fixture(scope="session")
def trained_spiking(digits):
    """spiking FA 64-32-10 (LIF, window 24) trained 2 epochs on digits, seed 0 (~3 s):
    test accuracy ~0.88."""
    c = spiking_mlp([64, 32, 10], rule="fa", window=24, lif=TRAINED_LIF, eta=0.02)
    sim = compile(c, "reference", seed=0)
    sim.train(digits.x_train, digits.one_hot(digits.y_train), epochs=2, seed=0)
    return sim


def run_nir(graph, spikes: np.ndarray, dt: float) -> dict:
    """Spike counts ``{node: (n, units)}`` of every neuron node of a feed-forward NIR
    ``graph`` fed ``spikes`` (n, steps, n_in), stepped by forward Euler at ``dt`` with
    no delay on the edges (every node evaluated in topological order within a step).
    LIF: ``v += dt/tau (v_leak - v + R I)``; IF: ``v += dt R I``; CubaLIF: ``I_syn +=
    dt/tau_syn (-I_syn + w_in I)``, then ``v += dt/tau_mem (v_leak - v + R I_syn)``
    with the updated current; spike where ``v > v_threshold``, then ``v = v_reset``."""
    nodes, edges = graph.nodes, [tuple(e) for e in graph.edges]
    preds = {k: [a for a, b in edges if b == k] for k in nodes}
    order, seen = [], set()

    def visit(k):
        if k in seen:
            return
        seen.add(k)
        for p in preds[k]:
            visit(p)
        order.append(k)

    for k in nodes:
        visit(k)
    n, steps, _ = spikes.shape
    state = {}
    counts = {}
    for t in range(steps):
        out = {}
        for k in order:
            node = nodes[k]
            kind = type(node).__name__
            if kind == "Input":
                out[k] = spikes[:, t]
                continue
            x = sum(out[p] for p in preds[k])
            if kind == "Affine":
                out[k] = x @ np.asarray(node.weight).T + np.asarray(node.bias)
            elif kind == "Linear":
                out[k] = x @ np.asarray(node.weight).T
            elif kind == "Output":
                out[k] = x
            elif kind in ("LIF", "IF", "CubaLIF"):
                v = state.get((k, "v"), np.zeros_like(x))
                if kind == "LIF":
                    v = v + dt / node.tau * (node.v_leak - v + node.r * x)
                elif kind == "IF":
                    v = v + dt * node.r * x
                else:
                    i = state.get((k, "i"), np.zeros_like(x))
                    i = i + dt / node.tau_syn * (-i + node.w_in * x)
                    v = v + dt / node.tau_mem * (node.v_leak - v + node.r * i)
                    state[(k, "i")] = i
                s = (v > node.v_threshold).astype(float)
                v = np.where(s > 0, node.v_reset, v)
                state[(k, "v")] = v
                counts[k] = counts.get(k, 0) + s
                out[k] = s
            else:
                raise NotImplementedError(kind)
    return counts


@pytest.fixture(scope="session")
def nir_sim():
    """:func:`run_nir`, the NumPy NIR interpreter."""
    return run_nir
