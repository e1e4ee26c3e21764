"""``neuro-pc check --target loihi2`` on a CNN: the convolutions section maps every conv
projection and says what the chip can learn of it (a shared kernel: nothing)."""
from __future__ import annotations

from hardware_targets.check import check_report, format_check
from neuro_pc.models import cnn


def test_check_maps_conv_layers_and_refuses_to_learn_shared_kernels():
    circuit = cnn((1, 8, 8), [2, 3], 4, strides=[1, 2], rule="fa", eta=0.01)
    report = check_report(circuit, "loihi2")
    convs = {row["projection"]: row for row in report["convolutions"]}
    # the two forward kernels and the fixed random transposed feedback of W2 (FA's B1)
    assert {"W1", "W2", "B1"} <= set(convs)
    w1, w2, b1 = convs["W1"], convs["W2"], convs["B1"]
    assert w1["kernel"] == [2, 9] and w1["positions"] == 64 and w1["plastic"]
    assert w1["learning"].startswith("no: weight sharing")
    assert "sums over its 64 positions" in w1["learning"]
    assert w2["runs_as"] == "Lava Conv"
    # FA's feedback is a fixed transposed convolution of stride 2: a Dense of its expansion
    assert not b1["plastic"] and b1["learning"] == "fixed kernel: runs on chip"
    assert "Dense of its expansion" in b1["runs_as"]
    # the expansion of a kernel has one synapse per (position, kernel entry) in the image
    assert w1["synapses"] > w1["shared_weights"]
    text = format_check(report)
    assert "-- convolutions on loihi2" in text
    assert "with a plastic kernel that the chip cannot" in text
