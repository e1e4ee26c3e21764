"""The Lava backend against the reference (floating_pt) and the quantised
reference (fixed_pt), deployment, and clean shutdown after a failing run.

Lava start-up costs a fraction of a second per run, so each circuit is trained
and then evaluated in ONE run (per-window train flags), shared by the asserts.
"""
from __future__ import annotations

import multiprocessing
import os
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.lava

LAVA_INIT = Path(__file__).resolve().parents[2] / "neuro_pc" / "backends" / "lava" / "__init__.py"


# -- the import guard (runs without Lava too) ----------------------------------------
def test_import_error_names_extra_and_python(monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 12, 1, "final", 0))
    with pytest.raises(ImportError, match=r"neuro-pc\[lava\].*Python 3\.10"):
        runpy.run_path(str(LAVA_INIT), run_name="neuro_pc_lava_probe")


def test_import_error_without_lava(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("lava") else real(name, *a))
    monkeypatch.setattr(sys, "version_info", (3, 10, 13, "final", 0))
    with pytest.raises(ImportError, match=r"neuro-pc\[lava\].*not installed"):
        runpy.run_path(str(LAVA_INIT), run_name="neuro_pc_lava_probe")


# -- everything below needs Lava ---------------------------------------------------------
# exc_type=ImportError: the guard raises a plain ImportError (Python != 3.10), which
# pytest >= 9 no longer turns into a skip by default
lava_backend = pytest.importorskip("neuro_pc.backends.lava", exc_type=ImportError,
                                   reason="needs lava-nc 0.10 on Python 3.10 (the lava extra)")

from neuro_pc.backends import compile, sample_order  # noqa: E402
from neuro_pc.backends.lava.fixed import FixedPointError  # noqa: E402
from neuro_pc.backends.lava.simulator import LavaRunError  # noqa: E402
from neuro_pc.backends.reference.quantized import QuantizedReferenceSimulator  # noqa: E402
from neuro_pc.models import mlp, shipped_circuits  # noqa: E402

N_TRAIN, N_TEST = 24, 8
CIRCUITS = shipped_circuits()


def _data(seed=1):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (N_TRAIN + N_TEST, 8))
    y = np.eye(4)[rng.integers(0, 4, N_TRAIN + N_TEST)]
    return x, y


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-12))


@pytest.fixture(scope="module")
def float_runs():
    """Per circuit: reference and Lava after training on N_TRAIN samples then
    reading N_TEST windows out, the Lava side in one run."""
    x, y = _data()
    out = {}
    for name, circuit in CIRCUITS.items():
        ref = compile(circuit, "reference", seed=0)
        order = sample_order(N_TRAIN, 1, 5)
        ref_train = np.concatenate([ref.present(x[i:i + 1], y[i:i + 1], train=True)
                                    for i in order])
        ref_test = np.concatenate([ref.present(x[N_TRAIN + i:N_TRAIN + i + 1], None, train=False)
                                   for i in range(N_TEST)])
        lav = compile(circuit, "lava", seed=0, tag="floating_pt")
        xs = np.concatenate([x[order], x[N_TRAIN:]])
        ys = np.concatenate([y[order], np.zeros((N_TEST, 4))])
        flags = np.r_[np.ones(N_TRAIN, bool), np.zeros(N_TEST, bool)]
        ro = lav.run_windows(xs, ys, train=flags)
        out[name] = (ref, np.concatenate([ref_train, ref_test]), lav, ro)
    return out


@pytest.mark.parametrize("name", list(CIRCUITS))
def test_floating_pt_equals_reference(float_runs, name):
    ref, ref_ro, lav, lav_ro = float_runs[name]
    assert lav_ro.shape == ref_ro.shape == (N_TRAIN + N_TEST, 4)
    assert _rel(ref_ro, lav_ro) < 1e-6
    init = CIRCUITS[name].init_weights(0)
    for k in ref.weights:
        assert _rel(ref.weights[k], lav.weights[k]) < 1e-6, k
    moved = max(np.abs(ref.weights[k] - init[k]).max() for k in init)
    assert moved > 1e-3          # the rules did run
    for k in ref.state:
        np.testing.assert_allclose(lav.state[k], ref.state[k], rtol=1e-6, atol=1e-12)


def test_train_predict_match_reference():
    """The Simulator interface (train in sample_order, predict) on both backends."""
    x, y = _data(2)
    c = CIRCUITS["fa"]
    ref = compile(c, "reference", seed=3).train(x, y, epochs=2, seed=7)
    lav = compile(c, "lava", seed=3).train(x, y, epochs=2, seed=7)
    for k in ref.weights:
        assert _rel(ref.weights[k], lav.weights[k]) < 1e-6
    np.testing.assert_array_equal(ref.predict(x), lav.predict(x))
    with pytest.raises(ValueError, match="online"):
        lav.train(x, y, batch_size=4)


def test_muon_step_size_is_the_rules_on_lava():
    """mlp(muon=True) carries muon_lr; Lava's PlasticDense once built Muon without it
    (an update ~50x the reference's). Both now build Muon.from_rule."""
    x, y = _data(3)
    c = mlp([8, 6, 4], rule="fa", muon=True, muon_lr=0.02)
    ref = compile(c, "reference", seed=3).train(x, y, epochs=1, seed=7)
    lav = compile(c, "lava", seed=3).train(x, y, epochs=1, seed=7)
    init = c.init_weights(3)
    for k in ref.weights:
        assert _rel(ref.weights[k], lav.weights[k]) < 1e-6, k
    assert np.abs(ref.weights["W1"] - init["W1"]).max() > 1e-3


@pytest.mark.parametrize("name", list(CIRCUITS))
def test_fixed_pt_equals_quantised_reference_bit_for_bit(float_runs, name):
    ref = float_runs[name][0]           # trained weights
    x, _ = _data(3)
    q = QuantizedReferenceSimulator(CIRCUITS[name], ref.weights, seed=0)
    lav = compile(CIRCUITS[name], "lava", ref.weights, seed=0, tag="fixed_pt")
    ro_q = np.concatenate([q.present(x[i:i + 1], None, train=False) for i in range(len(x))])
    ro_l = lav.readouts(x)
    np.testing.assert_array_equal(ro_l, ro_q)
    for k in q.qstate:
        np.testing.assert_array_equal(lav.qstate[k], q.qstate[k], err_msg=k)
    # quantisation is close to float (8-bit weights, 12 fractional bits)
    ro_f = np.concatenate([ref.present(x[i:i + 1], None, train=False) for i in range(len(x))])
    assert np.abs(ro_f - ro_q).max() < 0.1
    # batched quantised reference = the same integers
    np.testing.assert_array_equal(q.predict(x), lav.predict(x))


def test_fixed_pt_scope_errors():
    c = CIRCUITS["fa"]
    lav = compile(c, "lava", seed=0, tag="fixed_pt")
    x, y = _data()
    with pytest.raises(FixedPointError, match="fixed_pt learns only on Lava.s learning engine"):
        lav.train(x[:2], y[:2])
    from neuro_pc.ir import Population

    pops = tuple(p if p.name != "h1" else Population(
        "h1", p.size, p.variables, ("a = ff", "r = exp(a)", "delta = fb * r"), p.ports)
        for p in c.populations)
    with pytest.raises(FixedPointError, match="exp"):
        compile(c.replace(populations=pops), "lava", seed=0, tag="fixed_pt")


def _children():
    kids = list(multiprocessing.active_children())
    try:
        import psutil
    except ImportError:
        return kids
    return kids + psutil.Process(os.getpid()).children(recursive=True)


def test_failure_inside_a_run_stops_every_process(monkeypatch):
    from neuro_pc.backends.lava import processes

    def boom(name, t):
        if name == "h1" and t == 7:
            raise RuntimeError("injected failure")

    monkeypatch.setitem(processes.HOOKS, "step", boom)
    lav = compile(CIRCUITS["fa"], "lava", seed=0)
    x, y = _data()
    w0 = {k: v.copy() for k, v in lav.weights.items()}
    with pytest.raises(LavaRunError, match="injected failure"):
        lav.train(x[:4], y[:4])
    assert _children() == []
    for k in w0:                         # a failed run changes nothing
        np.testing.assert_array_equal(lav.weights[k], w0[k])
    monkeypatch.delitem(processes.HOOKS, "step")
    lav.train(x[:4], y[:4])              # and the simulator still works
    assert _children() == []


def test_deploy_artifact_per_class_report(tmp_path):
    from neuro_pc.backends.lava.deploy import deploy, format_report

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (4, 8))
    labels = rng.integers(0, 4, 200)
    x = np.tanh(centres[labels] + 0.3 * rng.normal(0, 1, (200, 8)))
    c = mlp([8, 12, 4], rule="fa", eta=0.05)
    ref = compile(c, "reference", seed=0).train(x[:150], np.eye(4)[labels[:150]], epochs=3)
    path = ref.save(tmp_path / "fa.npz")
    report = deploy(path, x[150:], labels[150:])
    assert set(report) == {"floating_pt", "fixed_pt"}
    acc_ref = ref.evaluate(x[150:], labels[150:])
    assert report["floating_pt"].accuracy == pytest.approx(acc_ref)
    assert abs(report["fixed_pt"].accuracy - acc_ref) <= 0.04
    assert set(report["fixed_pt"].per_class) == set(np.unique(labels[150:]).tolist())
    text = format_report(report)
    assert "fixed_pt loses" in text and "floating_pt" in text


# -- monitors (record=) ---------------------------------------------------------------
def test_record_monitors_equal_the_reference():
    """record= fills monitor like the reference: every step of the presented window,
    (T, B, n); a rate circuit (float values) and a spiking one (0/1 spikes and traces),
    while learning (the weights change between windows)."""
    from neuro_pc.models.spiking import shipped_spiking_circuits

    x, y = _data()
    sp = shipped_spiking_circuits()["spiking_fa_lif"]
    xs = np.abs(x[:, :sp.streams["x"]])
    cases = [(CIRCUITS["fa"], [("h1", "a"), ("h1", "r"), ("out", "delta")], x, y),
             (sp, [("x", "s"), ("h1", "s"), ("h1", "tr"), ("out", "s"), ("out", "v")],
              xs, y)]
    for circuit, record, xx, yy in cases:
        ref = compile(circuit, "reference", seed=0, record=record)
        lav = compile(circuit, "lava", seed=0, tag="floating_pt", record=record)
        for i in range(2):
            ref.present(xx[i:i + 1], yy[i:i + 1], train=True)
            lav.present(xx[i:i + 1], yy[i:i + 1], train=True)
            assert set(lav.monitor) == {f"{p}.{v}" for p, v in record}
            for k, m in ref.monitor.items():
                assert lav.monitor[k].shape == m.shape == (
                    circuit.schedule.window, 1, circuit.population(k.split(".")[0]).size)
                np.testing.assert_allclose(lav.monitor[k], m, rtol=1e-9, atol=1e-12,
                                           err_msg=k)


def test_record_present_batch_run_windows_and_record_all():
    c = CIRCUITS["fa"]
    T = c.schedule.window
    x, _ = _data()
    rec = [("h1", "r")]
    ref = compile(c, "reference", seed=0, record=rec)
    refs = []
    for i in range(3):
        ref.present(x[i:i + 1], train=False)
        refs.append(ref.monitor["h1.r"])
    # present(B rows): B windows one after the other, column b = window of row b
    lav = compile(c, "lava", seed=0, record=rec)
    lav.present(x[:3], train=False)
    assert lav.monitor["h1.r"].shape == (T, 3, 6)
    for b in range(3):
        np.testing.assert_allclose(lav.monitor["h1.r"][:, b:b + 1], refs[b], rtol=1e-9,
                                   atol=1e-12)
    # run_windows / predict: the last window only, (T, 1, n)
    lav.predict(x[:3])
    assert lav.monitor["h1.r"].shape == (T, 1, 6)
    np.testing.assert_allclose(lav.monitor["h1.r"], refs[2], rtol=1e-9, atol=1e-12)
    # record_all: every step of the run, (n_windows * T, 1, n)
    every = compile(c, "lava", seed=0, record=rec, record_all=True)
    every.run_windows(x[:3], train=False)
    assert every.monitor["h1.r"].shape == (3 * T, 1, 6)
    np.testing.assert_allclose(every.monitor["h1.r"], np.concatenate(refs), rtol=1e-9,
                               atol=1e-12)
    with pytest.raises(ValueError, match="cannot record h1.zz"):
        compile(c, "lava", seed=0, record=[("h1", "zz")])


def test_record_fixed_pt_equals_quantised_reference():
    c = CIRCUITS["fa"]
    x, _ = _data()
    rec = [("h1", "r"), ("out", "r")]
    w = c.init_weights(0)
    lav = compile(c, "lava", w, seed=0, tag="fixed_pt", record=rec)
    q = QuantizedReferenceSimulator(c, w, seed=0)
    lav.present(x[:2], train=False)
    for b in range(2):
        q.present(x[b:b + 1], None, train=False)
    # the last step of each window is the end-of-window state of the quantised reference
    for p, v in rec:
        np.testing.assert_array_equal(lav.monitor[f"{p}.{v}"][-1, -1], q.state[f"{p}.{v}"][0])
        np.testing.assert_array_equal(lav.state[f"{p}.{v}"], q.state[f"{p}.{v}"])
