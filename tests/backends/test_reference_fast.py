"""The reference's fast execution: the unrolled window (bit-identical to the loop
of the semantics) and the float32 mode (every array float32, training close to
float64's)."""
from __future__ import annotations

import numpy as np
import pytest

from neuro_pc.backends import compile
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.backends.reference.codegen import generate_window, generate_window_unrolled
from neuro_pc.ir import Circuit, Init, Population, Projection, Rule, Schedule
from neuro_pc.models import mlp, shipped_circuits
from neuro_pc.models.conformance import language_circuit
from neuro_pc.models.mpc import mpc
from neuro_pc.models.spiking import shipped_spiking_circuits


def _reads_twice() -> Circuit:
    """A variable assigned by two statements, a port with no projection, a
    statement reading ``tw``, ``where`` on ``tw`` and ``train`` (with a number
    for a branch), a static variable: the corners of the analysis."""
    pops = (Population("x", 3, ("r",), streams={"r": "x"}),
            Population("k", 2, ("r",), init={"r": 0.5}),
            Population("h", 4, ("v", "r"), ports=("ff", "none"),
                       update=("v = ff + none", "v = 0.5 * v + where(tw < 2, 0, r)",
                               "r = tanh(v)")),
            Population("o", 2, ("r", "y", "e", "c"), ports=("ff",), streams={"y": "y"},
                       update=("r = ff", "e = r - y", "c = where(train * (tw > 2), y, r)",
                               "e = where(train, e, 0.0 * c)")))
    projs = (Projection("xh", "x", "h", "ff", rule=Rule("dw = -eta * post.r * pre.r",
                                                        {"eta": 0.01})),
             Projection("kh", "k", "h", "ff"),
             Projection("ho", "h", "o", "ff", rule=Rule("dw = -eta * post.e * pre.r",
                                                        {"eta": 0.05})))
    return Circuit("corners", pops, projs, Schedule(6), streams={"x": 3, "y": 2})


def _every_step(c: Circuit) -> Circuit:
    return c.replace(projections=tuple(
        p if p.rule is None else type(p)(**{**p.__dict__, "rule": type(p.rule)(
            **{**p.rule.__dict__, "every_step": True})}) for p in c.projections))


def _circuits() -> dict:
    out = {f"rate_{k}": c for k, c in shipped_circuits((6, 5, 4, 3)).items()}
    out.update({
        "fa_relu_deep": mlp([6, 5, 5, 4, 3], rule="fa", act="relu"),
        "bp_sigmoid": mlp([6, 5, 3], rule="bp", act="sigmoid"),
        "fa_layernorm": mlp([6, 5, 4, 3], rule="fa", norm="layernorm"),
        "bp_batchnorm_muon": mlp([6, 5, 4, 3], rule="bp", norm="batchnorm", muon=True),
        "dfa_leaky": mlp([6, 5, 4, 3], rule="dfa", leak=0.5, window=9),
        "pc_tied": mlp([6, 5, 4, 3], rule="pc", feedback="tied", relax_steps=6),
        "pc_precision": mlp([6, 5, 3], rule="pc", out_precision=0.2, relax_steps=5),
        "corners": _reads_twice(),
        "corners_every_step": _every_step(_reads_twice()),
    })
    out.update(shipped_spiking_circuits((6, 5, 3), window=8))
    return out


CIRCUITS = _circuits()


def _run(circuit: Circuit, unrolled: bool, batch: int, seed: int = 3):
    sim = ReferenceSimulator(circuit, seed=seed, unrolled=unrolled)
    rng = np.random.default_rng(seed)
    nx, ny = circuit.streams["x"], circuit.streams.get("y", 0)
    x = rng.random((4 * batch, nx))
    y = np.eye(ny)[rng.integers(ny, size=4 * batch)] if ny else None
    snaps = []
    for start in range(0, 4 * batch, batch):
        sl = slice(start, start + batch)
        sim.present(x[sl], None if y is None else y[sl], train=start % (2 * batch) == 0)
        snaps.append({**{k: v.copy() for k, v in sim.state.items()},
                      **{"W:" + k: v.copy() for k, v in sim.weights.items()}})
    return sim, snaps


@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("name", sorted(CIRCUITS))
def test_unrolled_window_is_bit_identical_to_the_loop(name, batch):
    circuit = CIRCUITS[name]
    fast, a = _run(circuit, True, batch)
    slow, b = _run(circuit, False, batch)
    assert fast.unrolled == (name != "corners_every_step") and not slow.unrolled
    for snap_a, snap_b in zip(a, b):
        assert snap_a.keys() == snap_b.keys()
        for k in snap_a:
            assert snap_a[k].dtype == snap_b[k].dtype
            np.testing.assert_array_equal(snap_a[k], snap_b[k], err_msg=f"{name}: {k}")
    x = np.random.default_rng(9).random((7, circuit.streams["x"]))
    np.testing.assert_array_equal(fast.predict(x), slow.predict(x))


def test_the_unrolled_fa_window_does_the_work_of_a_hand_written_step():
    """784-256-10 FA: one input matmul, one output matmul, one feedback matmul per
    window (the loop does 2, 5 and 5), and nothing at step 0."""
    src = generate_window_unrolled(mlp([784, 256, 10], rule="fa"))
    body = src.split("dt = 1.0\n", 1)[1].split("if learn:")[0]
    assert body.count("x__r @ W_W1.T") == 1
    assert body.count("h1__r @ W_W2.T") == 1
    assert body.count("out__delta @ W_B1.T") == 1
    assert body.count("F_tanh(") == 1
    assert "tw = 0\n" not in body
    # the rate and 1/B scale the (B, 256) error, not the (256, 784) product, and
    # the product is added into W1 by one gemm (no (256, 784) temporary)
    learn = src.split("if learn:", 1)[1]
    assert "dA_W1 = ((h1__delta) * ((-0.01) / (h1__delta).shape[0]))" in learn
    assert "F__accumulate(W_W1, dA_W1, dB_W1)" in learn and "dW_W1" not in learn


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-6), (np.float64, 1e-14)])
def test_accumulate_adds_the_product_in_place(dtype, rtol):
    from neuro_pc.backends.reference.codegen import accumulate

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((32, n)).astype(dtype) for n in (7, 13))
    w0 = rng.standard_normal((7, 13)).astype(dtype)
    for w in (w0.copy(), np.asfortranarray(w0), w0.astype(np.float16).astype(dtype)):
        want = w + a.T @ b
        before = w.__array_interface__["data"][0]
        accumulate(w, a, b)
        assert w.__array_interface__["data"][0] == before   # the same buffer
        np.testing.assert_allclose(w, want, rtol=rtol)
    w = w0.copy()   # operands of another dtype: NumPy's path
    accumulate(w, a.astype(np.float16), b)
    np.testing.assert_allclose(w, w0 + a.astype(np.float16).T @ b, rtol=rtol)


def test_only_single_outer_product_rules_are_fused():
    """FA's updates are fused; Kolen-Pollack's (a decay term reading w) and a
    two-rail spiking rule (two terms) keep the formed update."""
    from neuro_pc.models.spiking import spiking_mlp

    kp = generate_window_unrolled(mlp([6, 5, 3], rule="kp", lam=1e-4)).split("if learn:", 1)[1]
    assert "W_W1 += dW_W1" in kp and "F__accumulate(W_W1" not in kp
    spk = generate_window_unrolled(spiking_mlp([6, 5, 3], window=8)).split("if learn:", 1)[1]
    assert "W_W1 += dW_W1" in spk
    sparse = language_circuit()   # W1 is masked: its update is formed, then masked
    src = generate_window(sparse, frozenset({"W1"}))
    assert "F__accumulate(W_W1" not in src and "W_W1 += dW_W1" in src


def test_recording_and_every_step_rules_use_the_loop():
    c = mlp([4, 3, 2], rule="fa")
    assert not ReferenceSimulator(c, record=[("h1", "r")]).unrolled
    assert ReferenceSimulator(c).unrolled
    every = _every_step(_reads_twice())
    assert not ReferenceSimulator(every).unrolled
    with pytest.raises(ValueError, match="no every-step rule"):
        generate_window_unrolled(every)


def test_mpc_circuit_unrolled_matches_loop():
    circuit = mpc(hidden=(8,), relax_steps=4)
    n = circuit.streams["x"]
    x = np.random.default_rng(0).random((3, n))
    sims = [ReferenceSimulator(circuit, seed=0, unrolled=u) for u in (True, False)]
    for s in sims:
        s.present(x, None, train=True)
        s.present(x[::-1], None, train=True)
    for k in sims[0].state:
        np.testing.assert_array_equal(sims[0].state[k], sims[1].state[k])
    for k in sims[0].weights:
        np.testing.assert_array_equal(sims[0].weights[k], sims[1].weights[k])


# -- fixed wiring: identity and selection projections as copies and slices ----------------------

def test_fixed_wiring_is_found_and_runs_as_copies_and_slices():
    """MPC's selections ``S_<s>`` (slices of the glimpse) and its identity ``T``
    projections are run without a product; the states and weights equal those of
    a simulator that multiplies (the same weights given to a circuit whose wiring
    is not recognised: one entry made 1.0 + 0.0 via a masked float)."""
    from neuro_pc.backends.reference.codegen import fixed_wiring

    circuit = mpc(hidden=(8, 6), k=3, relax_steps=4)
    sim = ReferenceSimulator(circuit, seed=0)
    wired = fixed_wiring(circuit, sim.weights)
    names = {p.name for p in circuit.projections if p.rule is None}
    assert set(wired) == names                      # every S_* and T* is wiring
    assert all(v == (None, None) for k, v in wired.items() if k.startswith("T"))
    assert wired["S_f1"] == (16, 32) and wired["S_a"] == (96, 98)
    assert "F__wired(" in sim.source and "x__r @ W_S_f0.T" not in sim.source
    x = np.random.default_rng(0).random((5, circuit.streams["x"]))
    plain = ReferenceSimulator(circuit, seed=0)
    plain.wiring.clear(), plain._wired.clear(), plain._generate()
    assert "F__wired(" not in plain.source
    for s in (sim, plain):
        s.present(x, train=True)
        s.present(x[::-1], train=False)
    for k in sim.state:
        np.testing.assert_array_equal(sim.state[k], plain.state[k], err_msg=k)
    for k in sim.weights:
        np.testing.assert_array_equal(sim.weights[k], plain.weights[k], err_msg=k)


def test_changed_wiring_weights_are_multiplied_again():
    """Weights that were wiring and are edited in place (or replaced) are noticed
    before the next window: the window is generated again with their product."""
    circuit = mpc(hidden=(8,), k=3, relax_steps=3)
    sim = ReferenceSimulator(circuit, seed=0)
    x = np.random.default_rng(1).random((2, circuit.streams["x"]))
    sim.weights["T1_f0_f1"][0, 0] = 2.0
    sim.present(x, train=False)
    assert "T1_f0_f1" not in sim.wiring and "S_f0" in sim.wiring
    assert "z1_f1__z @ W_T1_f0_f1.T" in sim.source
    ref = ReferenceSimulator(circuit, weights=dict(sim.weights), seed=0)
    assert "T1_f0_f1" not in ref.wiring
    ref.present(x, train=False)
    for k in sim.state:
        np.testing.assert_array_equal(sim.state[k], ref.state[k], err_msg=k)


def test_wiring_keeps_the_products_dtype():
    """A boolean source through an identity projection gives numbers of the
    weights' dtype, as the product does."""
    from neuro_pc.backends.reference.codegen import wired

    src = np.array([[True, False, True]])
    for dt in (np.float32, np.float64):
        w = np.eye(3, dtype=dt)
        out = wired(src, w)
        assert out.dtype == (src @ w.T).dtype and np.array_equal(out, src @ w.T)
        sel = np.eye(3, dtype=dt)[1:]
        assert np.array_equal(wired(src, sel, 1, 3), src @ sel.T)


def test_kwta_equals_its_definition_bit_for_bit():
    """The sort-based kwta and the stable arg-sort definition give the same array
    (ties at the k-th value to the lower index, signed zeros, infinities, NaN rows)."""
    from neuro_pc.ir.functions import _kwta_argsort, kwta

    rng = np.random.default_rng(1)
    for trial in range(300):
        n = int(rng.integers(2, 80))
        k, b = int(rng.integers(1, n + 1)), int(rng.integers(1, 20))
        dt = (np.float32, np.float64)[trial % 2]
        x = rng.normal(size=(b, n)).astype(dt)
        if trial % 3 == 0:
            x = np.round(x).astype(dt)                   # many ties
        if trial % 5 == 0:
            x[:, ::2], x[:, 1::3] = 0.0, -0.0
        if trial % 7 == 0:
            x[:] = 1.0
        if trial % 11 == 0:
            x[0, 0], x[-1, -1] = np.inf, -np.inf
        if trial % 13 == 0:
            x[0, -1] = np.nan
        want = _kwta_argsort(x, k) if k < n else x.copy()
        got = kwta(x, k)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


# -- float32 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["bp", "fa", "dfa", "ss", "kp", "pc"])
def test_float32_allocates_float32_everywhere(rule):
    c = mlp([6, 5, 4, 3], rule=rule, act="relu", lam=1e-3 if rule == "kp" else 0.0)
    sim = compile(c, backend="reference", dtype="float32", seed=0)
    assert all(w.dtype == np.float32 for w in sim.weights.values())
    assert all(s.dtype == np.float32 for s in sim.state.values())
    rng = np.random.default_rng(0)
    x, y = rng.random((10, 6)), np.eye(3)[rng.integers(3, size=10)]
    sim.train(x, y, epochs=2, batch_size=4, seed=0)
    assert all(w.dtype == np.float32 for w in sim.weights.values())
    assert all(s.dtype == np.float32 for s in sim.state.values())
    assert all(d.dtype == np.float32 for d in sim.compute_updates(x, y).values())
    assert sim.present(x, None, train=False).dtype == np.float32
    assert sim.artifact().weights["W1"].dtype == np.float32


def test_float32_masks_and_muon_stay_float32():
    c = mlp([6, 5, 4, 3], rule="fa", muon=True)
    c = c.replace(projections=tuple(
        p if p.name != "W2" else type(p)(**{**p.__dict__, "connectivity": 0.5})
        for p in c.projections))
    sim = ReferenceSimulator(c, dtype="float32", seed=1)
    assert all(m.dtype == np.float32 for m in sim.masks.values()) and sim.masks
    x, y = np.random.default_rng(1).random((4, 6)), np.eye(3)[[0, 1, 2, 0]]
    sim.present(x, y)
    assert all(w.dtype == np.float32 for w in sim.weights.values())
    assert all(m.buffer.dtype == np.float32 for m in sim.muon.values())


@pytest.mark.parametrize("rule", ["fa", "pc"])
def test_float32_training_tracks_float64(rule):
    """64-32-10 on digits, 5 epochs of batch 8 (~850 updates): float32's rounding
    (~6e-8 relative per operation) leaves the weights within 1e-5 of float64's,
    relative to their size (measured: 1.6e-6 FA, 1.4e-6 PC), and the same
    predictions on all but a few test samples (measured: none)."""
    from neuro_pc.data import load_digits

    d = load_digits()
    Y = d.one_hot(d.y_train)
    c = mlp([64, 32, 10], rule=rule, eta=0.05)
    out = {}
    for dtype in ("float64", "float32"):
        sim = compile(c, backend="reference", dtype=dtype, seed=0)
        sim.train(d.x_train, Y, epochs=5, seed=0, batch_size=8)
        out[dtype] = sim
    for k, w64 in out["float64"].weights.items():
        w32 = out["float32"].weights[k]
        assert np.abs(w32 - w64).max() <= 1e-5 * np.abs(w64).max() + 1e-7, k
    acc64 = out["float64"].evaluate(d.x_test, d.y_test)
    assert acc64 > 0.88
    assert abs(out["float32"].evaluate(d.x_test, d.y_test) - acc64) <= 0.005
    assert (out["float64"].predict(d.x_test) != out["float32"].predict(d.x_test)).mean() <= 0.005


def test_dtype_is_checked():
    with pytest.raises(ValueError, match="dtype must be one of 'float64', 'float32'"):
        ReferenceSimulator(mlp([2, 2]), dtype="float16")
    with pytest.raises(ValueError, match="dtype must be one of"):
        ReferenceSimulator(mlp([2, 2]), dtype="nonsense")


# -- BLAS threads ----------------------------------------------------------------------------

def _blas_threads_now() -> int:
    from threadpoolctl import threadpool_info

    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


def test_small_products_train_single_threaded_and_large_ones_keep_blas_setting():
    seen = []
    x, y = np.random.default_rng(0).random((64, 6)), np.eye(3)[np.arange(64) % 3]
    sim = ReferenceSimulator(mlp([6, 5, 3], rule="fa"), seed=0)
    sim.train(x, y, epochs=1, batch_size=16, callback=lambda e, s: seen.append(_blas_threads_now()))
    assert seen == [1]
    outside = _blas_threads_now()
    big = ReferenceSimulator(mlp([6, 5, 3], rule="fa"), seed=0)
    big.SMALL_PRODUCT = 1   # every product counts as large: BLAS keeps its own setting
    big.train(x, y, epochs=1, batch_size=16, callback=lambda e, s: seen.append(_blas_threads_now()))
    assert seen == [1, outside]
    fixed = ReferenceSimulator(mlp([6, 5, 3], rule="fa"), seed=0, blas_threads=None)
    fixed.train(x, y, epochs=1, batch_size=16)
    np.testing.assert_allclose(fixed.weights["W1"], sim.weights["W1"], rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="blas_threads must be 'auto', None or an integer"):
        ReferenceSimulator(mlp([2, 2]), blas_threads=0)


def test_long_windows_run_as_the_loop_and_a_200_step_window_unrolls_exactly():
    long = mlp([4, 3, 2], rule="pc", relax_steps=ReferenceSimulator.MAX_UNROLLED)
    assert not ReferenceSimulator(long).unrolled
    c = mlp([5, 4, 3], rule="pc", relax_steps=200)
    x, y = np.random.default_rng(2).random((3, 5)), np.eye(3)
    sims = [ReferenceSimulator(c, seed=0, unrolled=u) for u in (True, False)]
    assert sims[0].unrolled
    for s in sims:
        s.present(x, y)
    for k in sims[0].weights:
        np.testing.assert_array_equal(sims[0].weights[k], sims[1].weights[k])
