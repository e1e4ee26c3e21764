"""Convolutions on Brian2 and Lava: equal to the reference on small conv circuits, and
what they cannot do (learn a shared kernel) is one clear error, never an approximation.

The circuits: a CNN (two conv layers, a dense readout, FA's fixed random feedback:
a transposed convolution into the first layer) whose convolutions are fixed
(``fixed_convs``: kernels trained elsewhere) while the dense readout learns online.
With strides (2, 1) the feedback is a stride-1 transposed convolution (Lava: its
``Conv`` with the flipped kernel); with (1, 2) a stride-2 one (Lava: a ``Dense`` of its
expansion).
"""
from __future__ import annotations

import numpy as np
import pytest

from neuro_pc.backends import compile
from neuro_pc.models.conv import cnn, fixed_convs

STRIDES = [(2, 1), (1, 2)]


def _data(n=16, seed=1):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, 36)), np.eye(3)[rng.integers(0, 3, n)]


def _circuit(strides, rule="fa"):
    return fixed_convs(cnn((1, 6, 6), (2, 3), n_out=3, strides=strides, rule=rule, eta=0.05))


def _trained_reference(c, x, y):
    ref = compile(c, "reference", seed=0)
    ref.train(x, y, epochs=1, seed=3)
    return ref


def _assert_equal(ref, other, rtol=1e-9):
    init = ref.circuit.init_weights(0)
    assert np.abs(ref.weights["W3"] - init["W3"]).max() > 1e-3     # the readout learned
    for k in ref.weights:
        np.testing.assert_allclose(other.weights[k], ref.weights[k], rtol=rtol, atol=1e-12,
                                   err_msg=k)
    for k in ref.state:
        np.testing.assert_allclose(other.state[k], ref.state[k], rtol=rtol, atol=1e-12,
                                   err_msg=k)


# -- Brian2 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("strides", STRIDES)
def test_brian2_fixed_convolutions_equal_the_reference(strides):
    c = _circuit(strides)
    x, y = _data()
    ref = _trained_reference(c, x, y)
    b2 = compile(c, "brian2", seed=0, target="numpy")
    b2.train(x, y, epochs=1, seed=3)
    _assert_equal(ref, b2)
    np.testing.assert_array_equal(b2.predict(x), ref.predict(x, batch_size=1))


def test_brian2_runs_a_trained_cnn_and_refuses_to_learn_its_kernels():
    """BP: the tied transposed kernel is read from the conv's synapses; inference equals
    the reference; training is one error naming the projection, the reason and the fix."""
    from neuro_pc.backends.brian2 import Brian2BackendError

    c = cnn((1, 6, 6), (2, 3), n_out=3, strides=(2, 1), rule="bp")
    x, y = _data(6)
    ref = compile(c, "reference", seed=0)
    b2 = compile(c, "brian2", seed=0, target="numpy")
    want = np.concatenate([ref.present(x[i:i + 1], None, train=False) for i in range(len(x))])
    np.testing.assert_allclose(b2.readouts(x), want, rtol=1e-9, atol=1e-12)
    from neuro_pc.backends.support import unsupported

    assert unsupported("brian2-numpy", ["learning a shared kernel"])   # declared, refused:
    with pytest.raises(Brian2BackendError, match=r"projection 'W1' is a convolution with a "
                       r"plastic shared kernel .*weight sharing.*fixed_convs") as err:
        b2.train(x, y)
    assert "\n" not in str(err.value)


# -- Lava ---------------------------------------------------------------------------------------

@pytest.mark.lava
@pytest.mark.parametrize("strides", STRIDES)
def test_lava_conv_process_equals_the_reference_in_both_tags(strides):
    pytest.importorskip("neuro_pc.backends.lava", exc_type=ImportError,
                        reason="needs lava-nc 0.10 on Python 3.10 (the lava extra)")
    from neuro_pc.backends.reference.quantized import QuantizedReferenceSimulator

    c = _circuit(strides)
    x, y = _data()
    ref = _trained_reference(c, x, y)
    lav = compile(c, "lava", seed=0, tag="floating_pt")
    lav.train(x, y, epochs=1, seed=3)
    _assert_equal(ref, lav, rtol=1e-6)
    # the convolutions ran on Lava's own Conv process (the strided transposed one: Dense)
    from neuro_pc.backends.lava.conv import lava_conv_projections

    assert set(lava_conv_projections(c)) == ({"W1", "b1", "W2", "b2", "B1"} if strides == (2, 1)
                                             else {"W1", "b1", "W2", "b2"})
    # fixed_pt: bit for bit the quantised reference (with the trained readout)
    q = QuantizedReferenceSimulator(c, ref.weights, seed=0)
    lq = compile(c, "lava", ref.weights, seed=0, tag="fixed_pt")
    want = np.concatenate([q.present(x[i:i + 1], None, train=False) for i in range(len(x))])
    np.testing.assert_array_equal(lq.readouts(x), want)
    for k in q.qstate:
        np.testing.assert_array_equal(lq.qstate[k], q.qstate[k], err_msg=k)
    # and close to float
    fl = np.concatenate([ref.present(x[i:i + 1], None, train=False) for i in range(len(x))])
    assert np.abs(fl - want).max() < 0.05


@pytest.mark.lava
def test_lava_deploys_a_trained_cnn_and_refuses_to_learn_its_kernels():
    pytest.importorskip("neuro_pc.backends.lava", exc_type=ImportError,
                        reason="needs lava-nc 0.10 on Python 3.10 (the lava extra)")
    from neuro_pc.ir import CircuitError

    c = cnn((1, 6, 6), (2, 3), n_out=3, strides=(2, 1), rule="fa")
    x, y = _data(6)
    ref = compile(c, "reference", seed=0).train(*_data(), epochs=1, batch_size=4)
    lav = compile(c, "lava", ref.weights, seed=0, tag="floating_pt")
    np.testing.assert_array_equal(lav.predict(x), ref.predict(x, batch_size=1))
    from neuro_pc.backends.support import unsupported

    assert unsupported("lava-floating_pt", ["learning a shared kernel"])   # declared, refused:
    with pytest.raises(CircuitError, match=r"projection 'W1' is a convolution with a plastic "
                       r"shared kernel .*Lava runs it on its Conv process") as err:
        lav.train(x, y)
    assert "\n" not in str(err.value)
    # Loihi's learning engine: the plan rejects every plastic kernel, naming weight sharing
    from hardware_targets.onchip import OnChipError

    with pytest.raises(OnChipError, match=r"W1: weight sharing"):
        compile(c, "lava", seed=0, tag="fixed_pt", learning="engine")
