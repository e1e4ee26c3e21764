"""The circuits of the conformance suite (``tests/conformance``): one per semantic
feature, small enough to run on every backend target in seconds. A new backend
runs these against the reference; what it cannot run goes into
:data:`neuro_pc.backends.support.UNSUPPORTED` with the reason.
"""
from __future__ import annotations

from neuro_pc.ir import Circuit, Init, Population, Projection, Rule, Schedule
from neuro_pc.models import shipped_circuits
from neuro_pc.models.glimpse import GlimpseGeometry
from neuro_pc.models.mpc import mpc
from neuro_pc.models.rate import RULES, mlp
from neuro_pc.models.spiking import shipped_spiking_circuits, spiking_mlp


def language_circuit() -> Circuit:
    """Variables named like Brian2's reserved names, every neuron function,
    comparisons, tw/train/dt, a sparse projection and an every-step rule."""
    pops = (
        Population("inp", 4, ("r",), streams={"r": "x"}, model="input"),
        Population("N", 5, ("e", "t", "i", "pi", "xi", "r", "_u", "in_ff"), ports=("dt_in",),
                   output="r", params={"inf": 0.5, "j": 2.0},
                   init={"e": 0.1},
                   update=("t = dt_in + inf * e",
                           "e = clip(t, -1, 1) + 0.01 * tw * dt",
                           "i = where(tw >= 2, sigmoid(t), relu(t)) + step(t - 0.1)",
                           "pi = minimum(i, 0.7) + maximum(e, -0.2) + abs(t) ** 1.5",
                           "xi = exp(-abs(t)) + log(1 + t ** 2) + sqrt(abs(e)) + sign(t)",
                           "_u = (t > 0) * 1.0 + (t <= 0.2) - (e == e) + (e != 0) / j",
                           "in_ff = train * (tw < 3) + tanh(xi)",
                           "r = tanh(t) + 0.1 * pi + 0.01 * _u + 0.01 * in_ff")),
        Population("out", 3, ("a", "y", "d"), ports=("ff",), streams={"y": "y"}, output="a",
                   update=("a = ff", "d = a - y")),
    )
    projs = (
        Projection("W1", "inp", "N", "dt_in", init=Init("xavier"), connectivity=0.6,
                   rule=Rule("dw = -eta * post.t * pre.r + 0.001 * sign(w)", {"eta": 0.01})),
        Projection("W2", "N", "out", "ff", init=Init("xavier"), scale=0.9,
                   rule=Rule("dw = -eta * post.d * pre.r * (1 + 0 * tw)", {"eta": 0.02},
                             every_step=True)),
    )
    return Circuit("language", pops, projs, Schedule(window=5, dt=0.5), streams={"x": 4, "y": 3},
                   readout=("out", "a"))


def test_reserved_names_functions_sparse_every_step():
    circuit = _language_circuit()
    ref, b2, x, y = train_both(circuit, n=30)
    assert_same(ref, b2, "language")


TINY_GLIMPSES = GlimpseGeometry(image=8, fovea=4, n_fovea=1, para=6, n_para=0, periph=8,
                                pool=2, margin=2)

#: feature -> (circuit builder, the features of backends.support.UNSUPPORTED it uses)
FEATURES = {
    **{f"rule_{r}": (lambda r=r: shipped_circuits()[r], ()) for r in RULES},
    **{f"act_{a}": (lambda a=a: mlp([8, 6, 4], rule="fa", act=a), ())
       for a in ("relu", "sigmoid", "linear")},
    "no_bias": (lambda: mlp([8, 6, 4], rule="fa", bias=False), ()),
    "muon": (lambda: mlp([8, 6, 5, 4], rule="fa", muon=True, muon_lr=0.02),
             ("rule transforms",)),
    "layernorm": (lambda: mlp([8, 6, 4], rule="fa", norm="layernorm"),
                  ("population functions",)),
    "leaky_units": (lambda: mlp([8, 6, 4], rule="fa", leak=0.5, window=9), ()),
    "softmax_output": (lambda: mlp([8, 6, 4], rule="fa", loss="ce"),
                       ("population functions", "transcendental functions")),
    "pc_softmax_output": (lambda: mlp([8, 6, 4], rule="pc", loss="ce"),
                          ("population functions", "transcendental functions")),
    "pc_tied_feedback": (lambda: mlp([8, 6, 4], rule="pc", feedback="tied"), ()),
    "language": (language_circuit, ("transcendental functions",)),
    "mpc": (lambda: mpc(TINY_GLIMPSES, hidden=(4, 3), k=2, relax_steps=4, eta=0.05),
            ("population functions", "rule transforms")),
    "spiking_hinge_output": (lambda: spiking_mlp([8, 6, 4], rule="fa", window=12,
                                                 init_scale=3.0, output_error="hinge"), ()),
    **{name: (lambda name=name: shipped_spiking_circuits()[name],
              ("division by a variable",) if name == "spiking_pc" else ())
       for name in shipped_spiking_circuits()},
}
