"""Brian2 backend == reference backend (batch size 1), on the numpy target.

The cython and cpp_standalone targets are in the slow suite
(tests/backends/test_brian2_targets.py).
"""
from __future__ import annotations

import numpy as np
import pytest

from neuro_pc.backends import compile
from neuro_pc.backends.brian2 import Brian2BackendError, Brian2Simulator
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.ir import Circuit, Init, Population, Projection, Rule, Schedule, Tied, load_artifact
from neuro_pc.models import mlp, shipped_circuits
from neuro_pc.models.conformance import language_circuit

RTOL = 1e-6
N_TRAIN = 60


def data(n=N_TRAIN, n_in=8, n_out=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_in))
    y = np.eye(n_out)[rng.integers(0, n_out, n)]
    return x, y


def assert_same(ref, b2, what=""):
    for k, w in ref.weights.items():
        np.testing.assert_allclose(b2.weights[k], w, rtol=RTOL, atol=1e-12,
                                   err_msg=f"{what} weights {k}")
    for k, s in ref.state.items():
        np.testing.assert_allclose(b2.state[k], s, rtol=RTOL, atol=1e-12,
                                   err_msg=f"{what} state {k}")


def train_both(circuit, seed=1, epochs=1, n=N_TRAIN, **kw):
    x, y = data(n, circuit.streams["x"], circuit.streams["y"])
    ref = ReferenceSimulator(circuit, seed=seed)
    b2 = compile(circuit, backend="brian2", seed=seed, target="numpy", **kw)
    ref.train(x, y, epochs=epochs, seed=7)
    b2.train(x, y, epochs=epochs, seed=7)
    return ref, b2, x, y


@pytest.mark.parametrize("rule", sorted(shipped_circuits()))
def test_shipped_circuit_equals_reference(rule):
    circuit = shipped_circuits()[rule]
    ref, b2, x, y = train_both(circuit)
    assert isinstance(b2, Brian2Simulator)
    init = circuit.init_weights(1)
    assert any(np.abs(ref.weights[k] - init[k]).max() > 1e-3 for k in init)  # it learned
    assert_same(ref, b2, rule)
    # readouts, streamed in one run, equal the reference's window by window
    r_ref = np.concatenate([ref.present(xx[None], None, train=False) for xx in x[:12]])
    r_b2 = b2.readouts(x[:12])
    np.testing.assert_allclose(r_b2, r_ref, rtol=RTOL, atol=1e-12)
    assert_same(ref, b2, rule + " after inference")
    np.testing.assert_array_equal(b2.predict(x), ref.predict(x, batch_size=1))


def test_two_epochs_and_callback():
    circuit = shipped_circuits()["fa"]
    x, y = data(20)
    ref = ReferenceSimulator(circuit, seed=2)
    b2 = Brian2Simulator(circuit, seed=2)
    seen = []
    ref.train(x, y, epochs=2, seed=5)
    b2.train(x, y, epochs=2, seed=5, callback=lambda e, s: seen.append((e, s is b2)))
    assert seen == [(0, True), (1, True)]
    assert_same(ref, b2)
    b3 = Brian2Simulator(circuit, seed=2).train(x, y, epochs=2, seed=5, progress=True)
    assert_same(ref, b3)


def test_present_single_window_matches():
    circuit = shipped_circuits()["pc"]
    x, y = data(3)
    ref, b2 = ReferenceSimulator(circuit, seed=0), Brian2Simulator(circuit, seed=0)
    for i in range(3):
        np.testing.assert_allclose(b2.present(x[i], y[i], train=True),
                                   ref.present(x[i:i + 1], y[i:i + 1], train=True),
                                   rtol=RTOL, atol=1e-12)
    assert_same(ref, b2)


def test_record_monitor():
    circuit = shipped_circuits()["fa"]
    x, y = data(3)
    ref = ReferenceSimulator(circuit, seed=0, record=[("h1", "r")])
    b2 = Brian2Simulator(circuit, seed=0, record=[("h1", "r")])
    b2.train(x[:1], y[:1])
    ref.present(x[:1], y[:1], train=True)
    assert b2.monitor["h1.r"].shape == (circuit.schedule.window, 1, 6)
    np.testing.assert_allclose(b2.monitor["h1.r"], ref.monitor["h1.r"], rtol=RTOL, atol=1e-12)


# -- bad input -------------------------------------------------------------------
def test_errors():
    circuit = shipped_circuits()["fa"]
    x, y = data(4)
    b2 = Brian2Simulator(circuit)
    with pytest.raises(Brian2BackendError, match="reference backend's batched mode"):
        b2.train(x, y, batch_size=2)
    with pytest.raises(Brian2BackendError, match="batch_size=1"):
        b2.present(x[:2], y[:2])
    with pytest.raises(ValueError, match="8 wide"):
        b2.train(x[:, :5], y)
    with pytest.raises(ValueError, match="samples"):
        b2.train(x, y[:3])
    with pytest.raises(ValueError, match="unknown Brian2 target"):
        Brian2Simulator(circuit, target="gpu")
    with pytest.raises(TypeError, match="unknown option"):
        Brian2Simulator(circuit, bogus=1)
    with pytest.raises(ValueError, match="cannot record"):
        Brian2Simulator(circuit, record=[("h1", "nope")])
    assert b2.predict(np.zeros((0, 8))).shape == (0,)


def test_standalone_rejects_numpy_only_features_before_building():
    circuit = _transform_circuit()
    b2 = Brian2Simulator(circuit, target="cpp_standalone")
    x, y = data(2, 4, 3)
    with pytest.raises(Brian2BackendError, match="unit_columns.*cpp_standalone"):
        b2.train(x, y)
    pf = Brian2Simulator(_popfn_circuit(), target="cpp_standalone")
    with pytest.raises(Brian2BackendError, match="population-level function"):
        pf.readouts(x)


def test_tied_layout_error():
    base = shipped_circuits()["bp"]
    projs = tuple(p if p.name != "B1" else Projection("B1", "out", "h1", "fb", variable="delta",
                                                      tied=Tied("W1", transpose=False))
                  for p in base.projections)
    bad = base.replace(projections=projs)
    with pytest.raises(Exception):  # either validation (shapes) or the backend says why
        Brian2Simulator(bad)


# -- artifacts -------------------------------------------------------------------
def test_artifact_round_trip(tmp_path):
    circuit = shipped_circuits()["fa"]
    x, y = data()
    ref = ReferenceSimulator(circuit, seed=3).train(x, y, seed=1)
    path = ref.save(tmp_path / "fa.npz")
    b2 = Brian2Simulator.from_artifact(load_artifact(path))
    np.testing.assert_array_equal(b2.predict(x), ref.predict(x, batch_size=1))
    # Brian2-trained weights save and load into the reference
    b2.train(x, y, seed=2)
    ref.train(x, y, seed=2)
    back = ReferenceSimulator.from_artifact(load_artifact(b2.save(tmp_path / "b2.npz")))
    for k, w in ref.weights.items():
        np.testing.assert_allclose(back.weights[k], w, rtol=RTOL, atol=1e-12)
    assert load_artifact(tmp_path / "b2.npz").metadata["backend"] == "brian2"


def test_several_simulators_interleaved():
    x, y = data(10)
    c = shipped_circuits()
    a_ref, b_ref = ReferenceSimulator(c["fa"], seed=4), ReferenceSimulator(c["kp"], seed=5)
    a, b = Brian2Simulator(c["fa"], seed=4), Brian2Simulator(c["kp"], seed=5)
    for start in (0, 5):
        for s, r in ((a, a_ref), (b, b_ref)):
            s.train(x[start:start + 5], y[start:start + 5], seed=start)
            r.train(x[start:start + 5], y[start:start + 5], seed=start)
    assert_same(a_ref, a)
    assert_same(b_ref, b)


# -- the language: names, functions, scalars, sparse, every-step, transforms -------------
def test_reserved_names_functions_sparse_every_step():
    circuit = language_circuit()
    ref, b2, x, y = train_both(circuit, n=30)
    assert_same(ref, b2, "language")
    text = b2.describe()
    for renamed in ("e_v", "t_v", "i_v", "pi_v", "uxi_v", "uu_v", "uin_ff_v", "dt_in"):
        assert renamed in text
    masked = b2.masks["W1"]
    assert (masked == 0).any() and np.all(b2.weights["W1"][masked == 0] == 0)
    np.testing.assert_allclose(b2.readouts(x[:5]),
                               np.concatenate([ref.present(xx[None], None, train=False)
                                               for xx in x[:5]]), rtol=RTOL, atol=1e-12)


def _transform_circuit(transforms=("unit_columns",)):
    c = mlp([4, 5, 3], rule="fa")
    projs = tuple(p if p.name != "W1" else Projection(
        "W1", "x", "h1", "ff", init=Init("xavier"),
        rule=Rule(p.rule.text, {**p.rule.params, "muon_steps": 3, "muon_lr": 0.03},
                  transforms=transforms))
        for p in c.projections)
    return c.replace(projections=projs, name="fa_transforms")


@pytest.mark.parametrize("transforms", [("unit_columns",), ("muon",), ("muon", "unit_columns"),
                                        ("unit_rows",), ("muon", "unit_rows"),
                                        ("unit_columns", "unit_rows")])
def test_transforms_on_runtime(transforms):
    ref, b2, *_ = train_both(_transform_circuit(transforms), n=20)
    assert_same(ref, b2, str(transforms))


def test_muon_step_size_is_the_rules_on_brian2():
    """mlp(muon=True) carries muon_lr: Brian2's update must be scaled like the
    reference's (it once built Muon without it, ~50x the reference's step)."""
    c = mlp([4, 5, 3], rule="fa", muon=True, muon_lr=0.02)
    ref, b2, *_ = train_both(c, n=10)
    assert_same(ref, b2, "mlp(muon=True)")


def _popfn_circuit():
    c = mlp([4, 6, 3], rule="fa")
    pops = tuple(p if p.name != "h1" else Population(
        "h1", 6, ("a", "r", "delta", "s"), ports=("ff", "fb"),
        update=("a = layernorm(ff) + 0.1 * popmean(ff)", "s = softmax(a) + popsum(a) * 0.01",
                "r = kwta(tanh(a), 3) + 0.1 * s", "delta = fb * (1 - r ** 2)"))
        for p in c.populations)
    return c.replace(populations=pops, name="fa_popfn")


def test_population_functions_on_runtime():
    ref, b2, *_ = train_both(_popfn_circuit(), n=20)
    assert_same(ref, b2, "population functions")
