"""Fixed-point losses are reported, not silent: a weight that sets a layer's shared
exponent, inputs outside the number range and values saturating during a Lava fixed_pt
run each give a FixedPointWarning naming where; `check` says what the format does."""
import warnings

import numpy as np
import pytest

from hardware_targets.check import check_report, format_check
from hardware_targets.circuit_quant import quantize_circuit, state_losses
from hardware_targets.quantize import error_report
from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.data import load_digits
from neuro_pc.models import mlp

D = load_digits()
Y = D.one_hot(D.y_train)


def _trained():
    c = mlp([64, 16, 10], rule="fa", act="tanh", eta=0.01)
    return c, ReferenceSimulator(c, seed=0).train(D.x_train[:300], Y[:300], epochs=1).weights


def test_error_report_counts_weights_quantised_to_zero():
    x = np.array([0.001, -0.002, 0.5, 0.0])
    e = error_report(x, np.array([0.0, 0.0, 0.5, 0.0]), lsb=0.25)
    assert (e.n_zeroed, e.n_nonzero) == (2, 3) and e.zeroed_fraction == pytest.approx(2 / 3)


def test_one_large_weight_is_named_with_what_it_costs():
    c, w = _trained()
    w = {k: v.copy() for k, v in w.items()}
    w["W1"][0, 0] = 60.0
    losses = quantize_circuit(c, w, "loihi2").losses()
    assert len(losses) == 1 and losses[0].startswith("projection 'W1': ")
    assert "% of its nonzero weights become 0: the largest, 60, sets the shared exponent" \
        in losses[0]
    text = format_check(check_report(c, "loihi2", weights=w, inputs=D.x_train))
    assert "warning: projection 'W1'" in text
    # the trained weights as they are: no loss reported
    assert quantize_circuit(c, _trained()[1], "loihi2").losses() == []


def test_inputs_outside_the_state_range_are_named():
    (line,) = state_losses("stream 'x'", D.x_train * 4000, 24, 12)
    assert line.startswith("stream 'x': ") and "outside the 24-bit state range [-2048, 2048)" \
        in line
    assert state_losses("stream 'x'", D.x_train, 24, 12) == []
    c, w = _trained()
    text = format_check(check_report(c, "loihi2", weights=w, inputs=D.x_train * 4000))
    assert "warning: the input data:" in text


@pytest.mark.lava
def test_lava_fixed_pt_warns_and_counts_saturated_values():
    pytest.importorskip("lava", exc_type=ImportError)
    from neuro_pc.backends.lava import LavaSimulator
    from neuro_pc.backends.lava.fixed import FixedPointWarning

    c, w = _trained()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FixedPointWarning)   # nothing to report here
        sim = LavaSimulator(c, w, tag="fixed_pt")
        sim.predict(D.x_test[:5])
    assert not any(sim.last_run["saturated"].values())
    big = {k: v.copy() for k, v in w.items()}
    big["W1"][0, 0] = 60.0
    with pytest.warns(FixedPointWarning, match="projection 'W1'.*become 0"):
        sim = LavaSimulator(c, big, tag="fixed_pt")
    with pytest.warns(FixedPointWarning) as rec:
        sim.predict(D.x_test[:5] * 4000)
    texts = [str(r.message) for r in rec]
    assert any("stream 'x'" in t and "saturate" in t for t in texts)
    assert any("values saturated" in t and "'h1'" in t for t in texts)
    assert sim.last_run["saturated"]["h1"] > 0
