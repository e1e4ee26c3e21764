"""The IR: serialisation, printing, and validation errors that name the fix."""
import dataclasses

import numpy as np
import pytest

from neuro_pc.ir import (Circuit, CircuitError, Init, Population, Projection, Rule, Schedule,
                         Tied, load_artifact, save_artifact)
from neuro_pc.models import mlp, shipped_circuits


def tiny(**changes) -> Circuit:
    """x (3) -> h (2): a one-projection circuit to break in each test."""
    pops = (Population("x", 3, ("r",), streams={"r": "x"}),
            Population("h", 2, ("a", "r"), update=("a = ff", "r = tanh(a)"), ports=("ff",)))
    projs = (Projection("W", "x", "h", "ff", rule=Rule("dw = eta * post.r * pre.r",
                                                       {"eta": 0.1})),)
    c = Circuit("tiny", pops, projs, Schedule(window=3), streams={"x": 3}, readout=("h", "r"))
    return dataclasses.replace(c, **changes)


@pytest.mark.parametrize("rule", sorted(shipped_circuits()))
def test_json_round_trip_is_equal(rule):
    c = shipped_circuits()[rule]
    back = Circuit.from_json(c.to_json())
    assert back == c
    assert back.validate() is back


def test_printing_names_every_object():
    text = str(mlp([4, 3, 2], rule="bp"))
    for needle in ("population h1 [3]", "projection B1: out.delta -> h1.fb", "tied to W2",
                   "r = tanh(a)", "plastic: dw = -eta * post.delta * pre.r"):
        assert needle in text


def test_init_weights_are_seeded_per_projection():
    c = mlp([4, 3, 2], rule="fa")
    a, b = c.init_weights(0), c.init_weights(0)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["W1"], c.init_weights(1)["W1"])
    assert a["W1"].shape == (3, 4) and a["B1"].shape == (3, 2)
    assert "B1" not in mlp([4, 3, 2], rule="bp").init_weights(0)   # tied: no matrix


@pytest.mark.parametrize("change, words", [
    (dict(streams={"x": 4}), ["stream 'x' is 4 wide", "3 units"]),
    (dict(streams={}), ["stream 'x' is not a stream"]),
    (dict(readout=("h", "q")), ["readout variable 'q'"]),
    (dict(schedule=Schedule(window=0)), ["at least 1 step"]),
])
def test_circuit_level_errors(change, words):
    with pytest.raises(CircuitError) as err:
        tiny(**change).validate()
    for w in words:
        assert w in str(err.value)


def _with_pop_h(**kw):
    c = tiny()
    h = dataclasses.replace(c.populations[1], **kw)
    return dataclasses.replace(c, populations=(c.populations[0], h))


def _with_proj(**kw):
    c = tiny()
    return dataclasses.replace(c, projections=(dataclasses.replace(c.projections[0], **kw),))


@pytest.mark.parametrize("make, words", [
    (lambda: _with_pop_h(update=("a = ff + bogus",)), ["unknown name(s) ['bogus']"]),
    (lambda: _with_pop_h(update=("q = ff",)), ["assigns 'q'", "not one of its variables"]),
    (lambda: _with_pop_h(update=("ff = 1",)), ["ports are computed"]),
    (lambda: _with_pop_h(update=("a = foo(ff)",)), ["unknown function 'foo'"]),
    (lambda: _with_pop_h(update=("a = ff[0]",)), ["Subscript is not allowed"]),
    (lambda: _with_pop_h(update=("a ==",)), ["cannot parse"]),
    (lambda: _with_pop_h(output="z"), ["output 'z'"]),
    (lambda: _with_pop_h(size=0), ["positive integer"]),
    (lambda: _with_pop_h(model="PC"), ["population 'h'", "model 'PC' unknown", "'pc'"]),
    (lambda: _with_proj(port="fb"), ["target port 'fb'", "add it to the population's ports"]),
    (lambda: _with_proj(variable="v"), ["source variable 'v'"]),
    (lambda: _with_proj(target="nowhere"), ["no population 'nowhere'"]),
    (lambda: _with_proj(rule=Rule("dw = eta * post.nope * pre.r", {"eta": 1})),
     ["post.nope", "has no variable 'nope'"]),
    (lambda: _with_proj(rule=Rule("dw = eta * post.r * W9", {"eta": 1})),
     ["'W9'", "non-local"]),
    (lambda: _with_proj(init=Init("identity")), ["square matrix"]),
    (lambda: _with_proj(connectivity=0.0), ["connectivity"]),
])
def test_object_level_errors_name_the_object(make, words):
    with pytest.raises(CircuitError) as err:
        make().validate()
    for w in words:
        assert w in str(err.value), str(err.value)


def test_tied_shape_mismatch_and_unmarked_weight_transport():
    c = mlp([4, 3, 2], rule="bp")
    b1 = c.projection("B1")
    bad = dataclasses.replace(c, projections=tuple(
        dataclasses.replace(p, tied=Tied("W2", transpose=False)) if p is b1 else p
        for p in c.projections))
    with pytest.raises(CircuitError, match=r"tied to 'W2'.*\(2, 3\).*\(3, 2\)"):
        bad.validate()
    unmarked = dataclasses.replace(c, projections=tuple(
        dataclasses.replace(p, rule=dataclasses.replace(p.rule, baseline=False))
        if p.rule else p for p in c.projections))
    with pytest.raises(CircuitError, match="network-global.*weight transport.*baseline"):
        unmarked.validate()


def test_artifact_round_trip_and_atomicity(tmp_path, monkeypatch):
    c = mlp([4, 3, 2], rule="fa")
    from neuro_pc.ir import Artifact

    w = c.init_weights(7)
    path = save_artifact(tmp_path / "a.npz", Artifact(c, w, metadata={"note": "x"}))
    art = load_artifact(path)
    assert art.circuit == c and art.metadata["note"] == "x"
    assert all(np.array_equal(art.weights[k], w[k]) for k in w)
    # a failing write leaves neither the file nor a temporary behind
    import neuro_pc.ir.artifact as mod

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(mod.os, "replace", boom)
    with pytest.raises(OSError):
        save_artifact(tmp_path / "b.npz", Artifact(c, w))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]


def test_artifact_with_wrong_shapes_is_rejected(tmp_path):
    from neuro_pc.ir import Artifact

    c = mlp([4, 3, 2], rule="fa")
    w = c.init_weights(0)
    w["W1"] = np.zeros((2, 2))
    with pytest.raises(CircuitError, match=r"'W1' have shape \(2, 2\).*\(3, 4\)"):
        save_artifact(tmp_path / "x.npz", Artifact(c, w))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CircuitError, match="not a neuro_pc artifact"):
        load_artifact(tmp_path / "junk.npz")


def test_select_initialiser_copies_a_slice():
    pops = (Population("x", 5, ("r",), streams={"r": "x"}),
            Population("g", 2, ("r",), ports=("inp",), update=("r = inp",)))
    proj = Projection("S", "x", "g", "inp", init=Init("select", offset=3))
    c = Circuit("sel", pops, (proj,), Schedule(1), streams={"x": 5})
    # rows pick source units 3 and 4
    np.testing.assert_array_equal(c.init_weights(0)["S"], [[0, 0, 0, 1, 0], [0, 0, 0, 0, 1]])
    bad = dataclasses.replace(c, projections=(dataclasses.replace(
        proj, init=Init("select", offset=4)),))
    with pytest.raises(CircuitError, match="offset 4 does not fit a source of 5 units"):
        bad.validate()
