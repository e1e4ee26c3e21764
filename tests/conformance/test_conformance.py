"""The conformance suite: every semantic feature run on every backend target and
compared with the reference; what a target does not run is declared, with its
reason, in :data:`neuro_pc.backends.support.UNSUPPORTED` and must be refused with
a clear error (an undeclared failure fails; an exception is never a skip).

Targets: ``brian2-numpy``, ``lava-floating_pt`` (training, weights and state to
1e-6 relative and readouts), ``lava-fixed_pt`` (inference with the reference's
trained weights, equal bit for bit to the quantised reference); slow:
``brian2-cython`` and ``brian2-cpp_standalone`` on the compiled subset
(:data:`COMPILED`: the shipped rules, Muon and the language circuit - each a C++
build). Learning on Lava's learning engine has its own semantics and its own
bit-for-bit suite (tests/backends/test_engine.py, tests/hardware_targets/test_engine.py).
"""
from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest

from neuro_pc.backends import compile
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.backends.support import UNSUPPORTED, unsupported
from neuro_pc.ir import Circuit, load_artifact
from neuro_pc.models import mlp
from neuro_pc.models.conformance import FEATURES
from neuro_pc.models.rate import RULES

HAS_LAVA = importlib.util.find_spec("lava") is not None


#: what the slow cython target runs (each model one Cython build, cached by Brian2)
COMPILED = [f"rule_{r}" for r in RULES] + ["muon", "language"]
#: each cpp_standalone run is a whole C++ build (~15 s): the error-driven rules' code
#: paths (tied transpose, fixed feedback, learned feedback), PC, Muon's refusal and the
#: language circuit
COMPILED_STANDALONE = ["rule_bp", "rule_fa", "rule_kp", "rule_pc", "muon", "language"]

N_TRAIN, N_TEST = 16, 5


def problem(circuit: Circuit, seed: int = 1):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (N_TRAIN + N_TEST, circuit.streams["x"]))
    ny = circuit.streams.get("y")
    y = np.eye(ny)[rng.integers(0, ny, N_TRAIN + N_TEST)] if ny else None
    return x, y


def rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)) if b.size else 0.0


def options(target: str) -> tuple[str, dict]:
    backend, _, t = target.partition("-")
    if backend == "brian2":
        pytest.importorskip("brian2")
        return backend, {"target": t}
    if not HAS_LAVA:
        pytest.skip("needs lava-nc 0.10 on Python 3.10 (the lava extra)")
    return backend, {"tag": t}


def refused(target: str, features, run) -> bool:
    """If ``target`` declares one of ``features`` unsupported, ``run()`` must raise a
    clear error (ValueError/NotImplementedError); returns whether it was declared."""
    declared = unsupported(target, features)
    if not declared:
        return False
    with pytest.raises((ValueError, NotImplementedError)) as info:
        run()
    assert str(info.value).strip(), "the refusal says nothing"
    return True


def train_and_compare(target: str, feature: str, rtol: float):
    make, uses = FEATURES[feature]
    circuit = make()
    x, y = problem(circuit)
    backend, opts = options(target)
    ref = ReferenceSimulator(circuit, seed=0)

    def run():
        other = compile(circuit, backend, seed=0, **opts)
        other.train(x[:N_TRAIN], None if y is None else y[:N_TRAIN], epochs=1, seed=3)
        return other

    if refused(target, uses, run):
        return
    other = run()
    ref.train(x[:N_TRAIN], None if y is None else y[:N_TRAIN], epochs=1, seed=3)
    init = circuit.init_weights(0)
    assert any(not np.allclose(ref.weights[k], init[k]) for k in init), "nothing learned"
    for k, w in ref.weights.items():
        assert rel(other.weights[k], w) <= rtol, (feature, k, rel(other.weights[k], w))
    for k, s in ref.state.items():
        np.testing.assert_allclose(np.asarray(other.state[k]).reshape(s.shape), s, rtol=rtol,
                                   atol=1e-12, err_msg=f"{feature}: state {k}")
    want = np.concatenate([ref.present(r[None], None, train=False) for r in x[N_TRAIN:]])
    got = np.concatenate([other.present(r[None], None, train=False) for r in x[N_TRAIN:]])
    assert rel(got, want) <= rtol, (feature, "readouts")


@pytest.mark.parametrize("feature", sorted(FEATURES))
@pytest.mark.parametrize("target", ["brian2-numpy", pytest.param("lava-floating_pt",
                                                                 marks=pytest.mark.lava)])
def test_trains_as_the_reference(target, feature):
    train_and_compare(target, feature, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("target, feature",
                         [("brian2-cython", f) for f in COMPILED]
                         + [("brian2-cpp_standalone", f) for f in COMPILED_STANDALONE])
def test_compiled_targets_train_as_the_reference(target, feature):
    train_and_compare(target, feature, rtol=1e-6)


@pytest.mark.lava
@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_fixed_pt_infers_as_the_quantised_reference(feature):
    """The reference's trained weights, deployed: Lava fixed_pt's readouts are the
    quantised reference's, bit for bit."""
    from neuro_pc.backends.reference.quantized import QuantizedReferenceSimulator

    make, uses = FEATURES[feature]
    circuit = make()
    x, y = problem(circuit)
    backend, opts = options("lava-fixed_pt")
    w = ReferenceSimulator(circuit, seed=0).train(x[:N_TRAIN], None if y is None else
                                                  y[:N_TRAIN], seed=3).weights
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # FixedPointWarning: weights quantised to 0
        if refused("lava-fixed_pt", uses,
                   lambda: compile(circuit, backend, weights=w, seed=0, **opts)):
            return
        q = QuantizedReferenceSimulator(circuit, w, seed=0)
        want = np.concatenate([q.present(r[None], None, train=False) for r in x[N_TRAIN:]])
        got = compile(circuit, backend, weights=w, seed=0, **opts).present(
            x[N_TRAIN:], None, train=False)
    np.testing.assert_array_equal(got, want, err_msg=feature)


@pytest.mark.parametrize("target", ["brian2-numpy", pytest.param("lava-floating_pt",
                                                                 marks=pytest.mark.lava),
                                    pytest.param("lava-fixed_pt", marks=pytest.mark.lava)])
def test_declared_refusals_are_refused(target):
    """Every declared entry of the target is refused when asked for: batched
    training, and (fixed_pt) learning by rule."""
    circuit = mlp([8, 6, 4], rule="fa")
    x, y = problem(circuit)
    backend, opts = options(target)
    table = unsupported(target, ["batched training", "learning by rule"])
    assert "batched training" in table
    with pytest.raises(ValueError, match="batch"):
        compile(circuit, backend, seed=0, **opts).train(x, y, batch_size=4)
    if "learning by rule" in table:
        with pytest.raises(ValueError, match="engine"):
            compile(circuit, backend, seed=0, **opts).train(x, y)


def test_the_table_names_known_targets_with_reasons():
    known = {"brian2-*", "lava-*", "lava-floating_pt", "lava-fixed_pt", "brian2-numpy",
             "brian2-cython", "brian2-cpp_standalone"}
    assert set(UNSUPPORTED) <= known
    for target, entries in UNSUPPORTED.items():
        assert all(len(reason) > 30 for reason in entries.values()), target
    used = {f for _, uses in FEATURES.values() for f in uses}
    declared = {f for entries in UNSUPPORTED.values() for f in entries}
    assert used <= declared          # every feature a circuit names has a declaration


@pytest.mark.parametrize("target", ["brian2-numpy", pytest.param("lava-floating_pt",
                                                                 marks=pytest.mark.lava)])
def test_artifact_round_trip(target, tmp_path):
    """Trained on the target, saved, loaded, run again on it: the same readouts."""
    circuit = FEATURES["rule_fa"][0]()
    x, y = problem(circuit)
    backend, opts = options(target)
    sim = compile(circuit, backend, seed=0, **opts).train(x[:N_TRAIN], y[:N_TRAIN], seed=3)
    sim.save(tmp_path / "a.npz")
    art = load_artifact(tmp_path / "a.npz")
    again = compile(art.circuit, backend, weights=art.weights, seed=0, **opts)
    for k, w in sim.weights.items():
        np.testing.assert_array_equal(np.asarray(again.weights[k]), np.asarray(w))
    np.testing.assert_array_equal(again.predict(x[N_TRAIN:]), sim.predict(x[N_TRAIN:]))
