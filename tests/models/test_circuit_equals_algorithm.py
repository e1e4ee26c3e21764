"""The circuit equals the algorithm (docs/semantics.md, 'Windows').

A layered rate circuit with the input held for T >= 2*depth + 1 steps settles
to the algorithm's forward and feedback values, and its window-end update is
the textbook update. The textbook versions are plain matrix code written here,
independent of the IR, so a change to the semantics or the builders that
alters the learning rule fails these tests.
"""
import numpy as np
import pytest

from neuro_pc.analysis import angle
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.models import mlp


def softmax(a):
    e = np.exp(a - a.max())
    return e / e.sum()


def textbook_step(Ws, bs, Bs, x, y, eta, rule, lam=0.0, loss="mse"):
    """One online update of an MLP with tanh hidden layers and either a linear
    output with loss ½‖out − y‖² or (``loss="ce"``) a softmax output with the
    cross-entropy −Σ y log out; both give the output error out − y. ``Ws[l]``
    maps layer l to l+1; ``Bs[l]`` the feedback into hidden layer l+1. Modifies
    the lists in place."""
    hs, L = [x], len(Ws)
    for l in range(L):
        a = Ws[l] @ hs[-1] + bs[l][:, 0]
        hs.append(np.tanh(a) if l < L - 1 else (softmax(a) if loss == "ce" else a))
    deltas = [None] * L
    deltas[L - 1] = hs[-1] - y
    for l in range(L - 2, -1, -1):
        if rule == "bp":
            fb = Ws[l + 1].T @ deltas[l + 1]
        elif rule == "fa":
            fb = Bs[l] @ deltas[l + 1]
        elif rule == "dfa":
            fb = Bs[l] @ deltas[L - 1]
        elif rule == "ss":
            s = np.sqrt(2.0 / (Ws[l].shape[0] + Ws[l + 1].shape[0]))
            fb = s * np.sign(Ws[l + 1]).T @ deltas[l + 1]
        elif rule == "kp":
            fb = Bs[l] @ deltas[l + 1]
        deltas[l] = fb * (1 - hs[l + 1] ** 2)
    if rule == "kp":  # B learns the transposed update of W, with the same decay
        for l in range(L - 1):
            Bs[l] += -eta * np.outer(hs[l + 1], deltas[l + 1]) - lam * Bs[l]
    for l in range(L):
        Ws[l] += -eta * np.outer(deltas[l], hs[l]) - lam * Ws[l]
        bs[l] += -eta * deltas[l][:, None] - lam * bs[l]


@pytest.mark.parametrize("loss", ["mse", "ce"])
@pytest.mark.parametrize("rule", ["bp", "fa", "dfa", "ss", "kp"])
@pytest.mark.parametrize("sizes", [[5, 7, 3], [6, 5, 4, 3], [4, 6, 5, 4, 3]])
def test_window_update_equals_textbook(rule, sizes, loss):
    L = len(sizes) - 1
    lam = 1e-3 if rule == "kp" else 0.0
    circuit = mlp(sizes, rule=rule, eta=0.05, lam=lam, loss=loss)
    assert circuit.schedule.window == 2 * L + 1
    sim = ReferenceSimulator(circuit, seed=3)
    Ws = [sim.weights[f"W{l}"].copy() for l in range(1, L + 1)]
    bs = [sim.weights[f"b{l}"].copy() + 0.1 for l in range(1, L + 1)]  # non-zero biases
    for l in range(1, L + 1):
        sim.weights[f"b{l}"][...] = bs[l - 1]
    Bs = [sim.weights[f"B{l}"].copy() if f"B{l}" in sim.weights else None for l in range(1, L)]
    rng = np.random.default_rng(0)
    for _ in range(25):
        x, y = rng.random(sizes[0]), np.eye(sizes[-1])[rng.integers(sizes[-1])]
        textbook_step(Ws, bs, Bs, x, y, 0.05, rule, lam, loss)
        sim.present(x[None], y[None], train=True)
        for l in range(1, L + 1):
            np.testing.assert_allclose(sim.weights[f"W{l}"], Ws[l - 1], rtol=0, atol=1e-10)
            np.testing.assert_allclose(sim.weights[f"b{l}"], bs[l - 1], rtol=0, atol=1e-10)
        if rule == "kp":
            for l in range(1, L):
                np.testing.assert_allclose(sim.weights[f"B{l}"], Bs[l - 1], rtol=0, atol=1e-10)


def test_shorter_window_breaks_equality():
    """T = 2L - 1 is too short for the deepest feedback to arrive: the first
    layer's update then differs (this is why the window has to be 2L+1)."""
    sizes = [5, 6, 5, 3]
    good = ReferenceSimulator(mlp(sizes, rule="fa"), seed=1)
    short = ReferenceSimulator(mlp(sizes, rule="fa", window=2 * 3 - 2), seed=1)
    x, y = np.full((1, 5), 0.5), np.eye(3)[[1]]
    for sim in (good, short):
        sim.present(x, y)
    assert not np.allclose(good.weights["W1"], short.weights["W1"], atol=1e-10)


def _pc_and_bp_updates(precision, relax_steps=200, gamma=0.1, loss="mse"):
    """PC's and BP's dW1 from the same weights and sample; PC's output error
    unit weighted by ``precision`` (1/Σ_L in Whittington & Bogacz 2017)."""
    sizes = [6, 8, 7, 4]
    pc = ReferenceSimulator(mlp(sizes, rule="pc", eta=1.0, gamma=gamma, relax_steps=relax_steps,
                                out_precision=precision, loss=loss), seed=5)
    fwd = {k: v for k, v in pc.weights.items() if k[0] in "Wb"}
    bp = ReferenceSimulator(mlp(sizes, rule="bp", eta=1.0, loss=loss), fwd, seed=5)
    x, y = np.random.default_rng(1).random((1, 6)), np.eye(4)[[2]]
    return pc.compute_updates(x, y)["W1"], bp.compute_updates(x, y)["W1"]


@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_pc_update_converges_to_bp_as_output_precision_shrinks(loss):
    """Whittington & Bogacz (2017): PC's inference fixed point gives errors
    ε_l = −Π_L δ_l (BP's deltas scaled by the output precision Π_L) up to terms
    of relative size O(Π_L ‖W‖²), because the output error moves the hidden
    states by O(Π_L). So as the output error's drive on inference shrinks the
    angle between PC's and BP's first-layer updates falls about tenfold per
    tenfold step in Π_L once Π_L ‖W‖² < 1 (measured: 20°, 6.3°, 0.76°, 0.17°),
    and the size of PC's update approaches Π_L times BP's. Margins: the angle
    must shrink at each step and end below 0.5° (3× the measured 0.17°: the
    bound that an O(Π_L) discrepancy must meet), the size ratio within 2%.
    With ``loss="ce"`` the output error is ``y − softmax(mu)`` and BP's the
    cross-entropy gradient; the same limit holds."""
    angles, ratios = [], []
    for precision in (1.0, 0.1, 0.01, 0.001):
        pc_dw, bp_dw = _pc_and_bp_updates(precision, loss=loss)
        angles.append(angle(pc_dw, bp_dw))
        ratios.append(np.linalg.norm(pc_dw) / (precision * np.linalg.norm(bp_dw)))
    assert angles[0] > angles[1] > angles[2] > angles[3]
    assert angles[3] < 0.5
    assert ratios[3] == pytest.approx(1.0, abs=0.02)


def test_leaky_units_approach_the_textbook_update():
    """Leaky units (a += leak (ff − a)) reach the algorithm's values geometrically:
    with leak = 0.5 the error after the window shrinks as the window grows, and a
    window of 60 steps (0.5^~50 of the error left) gives the textbook update to
    1e-10; leak = 1 builds the instantaneous circuit exactly."""
    sizes = [5, 6, 3]
    assert mlp(sizes, rule="fa", leak=1.0) == mlp(sizes, rule="fa")
    x, y = np.full(5, 0.4), np.eye(3)[1]
    base = ReferenceSimulator(mlp(sizes, rule="fa", eta=0.1), seed=2)
    Ws = [base.weights["W1"].copy(), base.weights["W2"].copy()]
    bs = [base.weights["b1"].copy(), base.weights["b2"].copy()]
    Bs = [base.weights["B1"].copy()]
    textbook_step(Ws, bs, Bs, x, y, 0.1, "fa")
    errors = []
    for window in (10, 20, 60):
        sim = ReferenceSimulator(mlp(sizes, rule="fa", eta=0.1, leak=0.5, window=window),
                                 seed=2)
        sim.present(x[None], y[None])
        errors.append(np.abs(sim.weights["W1"] - Ws[0]).max())
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-10
    with pytest.raises(ValueError, match="leak"):
        mlp(sizes, rule="fa", leak=0.0)


@pytest.mark.parametrize("rule", ["fa", "pc"])
def test_softmax_output_predicts_like_its_logit_twin(rule):
    """A ``loss="ce"`` net's readout is a probability vector (PC: its free
    output settles at softmax(mu), so no error drives its hidden states at test
    time), and :func:`logit_twin` predicts the same classes from the same
    weights with the softmax removed."""
    from neuro_pc.models.rate import logit_twin

    circuit = mlp([6, 9, 4], rule=rule, act="relu", loss="ce")
    sim = ReferenceSimulator(circuit, seed=2)
    rng = np.random.default_rng(3)
    x, y = rng.random((40, 6)), np.eye(4)[rng.integers(4, size=40)]
    sim.train(x, y, epochs=2, seed=0)
    pred = sim.predict(x)
    out = sim.state["out.x" if rule == "pc" else "out.r"]
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)
    if rule == "pc":   # the free output's error is exactly zero: nothing relaxes at test
        assert np.abs(sim.state["out.eps"]).max() < 1e-12
    twin = logit_twin(circuit)
    assert "softmax" not in " ".join(twin.population("out").update)
    logits = ReferenceSimulator(twin, dict(sim.weights))
    np.testing.assert_array_equal(logits.predict(x), pred)
    assert len(set(pred)) > 1
    assert logit_twin(mlp([6, 9, 4], rule=rule)) == mlp([6, 9, 4], rule=rule)
