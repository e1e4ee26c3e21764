"""NIR export and import (issue 19): the mapping of every neuron kind, the timing
convention, the one-line errors for what NIR cannot say, atomic files, the CLI.

The meaning of a graph is checked against tests/interop/conftest.py's NumPy
interpreter of NIR's equations; tests/interop/test_nir_snntorch.py checks the same
files with snnTorch."""
import os
import stat

import numpy as np
import pytest

nir = pytest.importorskip("nir", reason="the nir extra is not installed")

from neuro_pc.backends import compile  # noqa: E402
from neuro_pc.cli import main  # noqa: E402
from neuro_pc.interop import (DEFAULT_DT, NIRError, encode_spikes, export_nir,  # noqa: E402
                              from_nir, import_nir, to_nir)
from neuro_pc.ir import load_artifact  # noqa: E402
from neuro_pc.models import mlp  # noqa: E402
from neuro_pc.models.spiking import (LIF, LavaLIF, RateEncoder, encoder_count,  # noqa: E402
                                     spiking_inference, spiking_mlp)


def _counts(art, x, record=()):
    sim = compile(art.circuit, "reference", weights=art.weights, record=record)
    return sim.present(x, train=False), sim


def _hidden_counts(sim, pop, depth, steps):
    return sim.monitor[f"{pop}.s"][depth:depth + steps].sum(axis=0)


# ----------------------------------------------------------------------------- mapping
@pytest.mark.parametrize("lif, node", [
    (LIF(v_decay=0.9, reset="zero"), "LIF"),
    (LIF(v_decay=1.0, reset="zero", thr=0.8), "IF"),
    (LIF(v_decay=0.95, i_decay=0.5, reset="zero"), "CubaLIF"),
    (LIF(v_decay=0.8, reset="zero", v_reset=-0.2), "LIF"),
])
def test_export_means_the_circuit_without_delays(lif, node, digits, nir_sim):
    """Each neuron kind: the exported graph, run by NIR's equations (forward Euler, no
    edge delay), spikes exactly as neuro_pc's import of it, layer by layer."""
    c = spiking_mlp([64, 20, 10], rule="fa", window=20, lif=lif, init_scale=3.0)
    sim = compile(c, "reference", seed=1)
    graph, report = to_nir(sim)
    assert report.nodes == {"x": "Input", "W1": "Affine", "h1": node, "W2": "Affine",
                            "out": node, "output": "Output"}
    h1 = graph.nodes["h1"]
    if node == "LIF":   # tau = dt / (1 - d), R = tau / dt: v' = d v + I
        np.testing.assert_allclose(h1.tau, DEFAULT_DT / (1 - lif.v_decay))
        np.testing.assert_allclose(h1.r * DEFAULT_DT / h1.tau, 1.0)
        np.testing.assert_allclose(h1.v_reset, lif.v_reset)
    elif node == "IF":
        np.testing.assert_allclose(h1.r, 1 / DEFAULT_DT)
    else:
        np.testing.assert_allclose(h1.tau_syn, DEFAULT_DT / (1 - lif.i_decay))
        np.testing.assert_allclose(h1.w_in * DEFAULT_DT / h1.tau_syn, 1.0)
    art = from_nir(graph)
    steps = art.circuit.metadata["steps"]
    assert steps == 18 and art.circuit.schedule.window == 20
    x = digits.x_test[:60]
    ours, s = _counts(art, x, record=[("h1", "s")])
    theirs = nir_sim(graph, encode_spikes(x, steps), DEFAULT_DT)
    np.testing.assert_array_equal(ours, theirs["out"])
    np.testing.assert_array_equal(_hidden_counts(s, "h1", 1, steps), theirs["h1"])
    assert ours.sum() > 50 and theirs["h1"].sum() > 200   # the layers do spike


def test_the_trained_circuit_differs_only_by_the_stated_delays(trained_spiking, digits):
    """The exported graph's neuro_pc form restarts layer l at step l; the training
    circuit restarts every layer at step 0, so its hidden layer (depth 1) spikes the
    same and its output differs only through the first step's bias-only drive."""
    art = from_nir(to_nir(trained_spiking)[0])
    x = digits.x_test
    ours, s = _counts(art, x, record=[("h1", "s")])
    orig = compile(trained_spiking.circuit, "reference", weights=trained_spiking.weights,
                   record=[("h1", "s"), ("out", "s")])
    orig.present(x, train=False)
    h_orig = orig.monitor["h1.s"][1:].sum(axis=0)
    np.testing.assert_array_equal(_hidden_counts(s, "h1", 1, 23), h_orig)
    agree = np.mean(ours.argmax(1) == orig.monitor["out.s"].sum(0).argmax(1))
    assert agree > 0.95
    assert trained_spiking.evaluate(x, digits.y_test) > 0.8
    assert compile(art.circuit, "reference", weights=art.weights).evaluate(
        x, digits.y_test) > 0.8


def test_lava_lif_and_imported_circuits_export_again(digits):
    """A staggered Lava-LIF inference circuit exports, and import(export(import(g)))
    has the same statements and weights as import(g)."""
    c = spiking_inference([64, 16, 10], window=20, lif=LavaLIF(v_decay=0.9, thr=1.0))
    sim = compile(c, "reference", seed=2)
    art1 = from_nir(to_nir(sim)[0])
    art2 = from_nir(to_nir(art1)[0])
    assert [p.update for p in art1.circuit.populations] == \
        [p.update for p in art2.circuit.populations]
    for k, w in art1.weights.items():
        np.testing.assert_allclose(art2.weights[k], w, rtol=1e-12)
    # and the Lava LIF circuit itself spikes like its import (it is staggered too)
    x = digits.x_test[:40]
    np.testing.assert_array_equal(
        np.rint(sim.present(x, train=False) * 20), _counts(art1, x)[0])


def test_a_linear_rate_circuit_exports_as_an_affine_chain(digits):
    c = mlp([64, 16, 10], rule="fa", act="linear")
    sim = compile(c, "reference", seed=0)
    graph, report = to_nir(sim)
    assert list(report.nodes.values()) == ["Input", "Affine", "Affine", "Output"]
    art = from_nir(graph)
    x = digits.x_test[:20]
    np.testing.assert_allclose(_counts(art, x)[0], sim.present(x, train=False), rtol=1e-12)


def test_encode_spikes_is_the_circuits_encoder(digits):
    x = digits.x_test[:30]
    enc = RateEncoder(gain=0.7, phase=0.3)
    spikes = encode_spikes(x, 25, enc)
    np.testing.assert_array_equal(spikes.sum(axis=1), encoder_count(x, 25, enc))


# ----------------------------------------------------------------------------- errors
def test_tanh_is_named_as_what_nir_lacks():
    sim = compile(mlp([4, 3, 2], rule="fa", act="tanh"), "reference", seed=0)
    with pytest.raises(NIRError, match=r"population 'h1' computes 'r = tanh\(a\)': NIR has "
                                       r"no node for it.*tanh cannot be exported"):
        to_nir(sim)


def test_reset_by_subtraction_is_an_error_unless_asked_for(digits, nir_sim):
    c = spiking_mlp([64, 12, 10], rule="fa", window=16, init_scale=3.0)   # subtract, IF
    sim = compile(c, "reference", seed=0)
    with pytest.raises(NIRError, match="population 'out' resets by subtraction.*reset = "
                                       "'zero'.*--allow-subtract-reset"):
        to_nir(sim)
    graph, report = to_nir(sim, subtract_reset=True)
    assert graph.nodes["h1"].metadata == {"reset": "subtract"}
    assert any("subtract" in n for n in report.notes)
    art = from_nir(graph)
    assert "v = v - thr * s" in art.circuit.population("h1").update
    # neuro_pc's import subtracts; NIR's equations (and other tools) reset to 0
    x = digits.x_test[:40]
    ours, _ = _counts(art, x)
    reset_to_zero = nir_sim(graph, encode_spikes(x, 14), DEFAULT_DT)["out"]
    assert not np.array_equal(ours, reset_to_zero)


def test_refractoriness_is_an_error():
    c = spiking_mlp([4, 3, 2], rule="fa", window=12, lif=LIF(v_decay=0.9, reset="zero",
                                                             refractory=2))
    with pytest.raises(NIRError, match="refractory period of 2 step.*NIR's neurons have none"):
        to_nir(compile(c, "reference", seed=0))


def _graph(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _lif(n, tau=1e-3):
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / DEFAULT_DT), v_leak=np.zeros(n),
                   v_threshold=np.ones(n), v_reset=np.zeros(n))


def test_unsupported_nodes_are_named_in_one_error():
    nodes = {"in": nir.Input(input_type={"input": np.array([4])}),
             "d": nir.Delay(delay=np.ones(4)),
             "a": nir.Affine(weight=np.ones((3, 4)), bias=np.zeros(3)),
             "t": nir.Threshold(threshold=np.ones(3)),
             "out": nir.Output(output_type={"output": np.array([3])})}
    g = _graph(nodes, [("in", "d"), ("d", "a"), ("a", "t"), ("t", "out")])
    with pytest.raises(NIRError) as err:
        from_nir(g)
    text = str(err.value)
    assert "unsupported NIR node(s) 'd' (Delay), 't' (Threshold)" in text
    assert "\n" not in text and "LIF" in text


def test_graph_problems_are_one_error_each():
    inp = nir.Input(input_type={"input": np.array([3])})
    out = nir.Output(output_type={"output": np.array([3])})
    loop = _graph({"in": inp, "a": nir.Linear(weight=np.eye(3)), "h": _lif(3),
                   "w": nir.Linear(weight=np.eye(3)), "out": out},
                  [("in", "a"), ("a", "h"), ("h", "w"), ("w", "h"), ("h", "out")])
    with pytest.raises(NIRError, match=r"recurrent loop \(h -> w -> h\)"):
        from_nir(loop)
    uneven = _lif(3)
    uneven.tau = np.array([1e-3, 2e-3, 1e-3])
    g = _graph({"in": inp, "a": nir.Linear(weight=np.eye(3)), "h": uneven, "out": out},
               [("in", "a"), ("a", "h"), ("h", "out")])
    with pytest.raises(NIRError, match="node 'h' \\(LIF\\): tau differs across its 3 neurons"):
        from_nir(g)
    fast = _graph({"in": inp, "a": nir.Linear(weight=np.eye(3)), "h": _lif(3, tau=1e-5),
                   "out": out}, [("in", "a"), ("a", "h"), ("h", "out")])
    with pytest.raises(NIRError, match="shorter than the step dt"):
        from_nir(fast)
    img = _graph({"in": nir.Input(input_type={"input": np.array([2, 3])}), "out": out},
                 [("in", "out")])
    with pytest.raises(NIRError, match=r"shape \(2, 3\).*1-D"):
        from_nir(img)


def test_imports_fold_r_w_in_and_v_leak(nir_sim, digits):
    """Per-neuron R and v_leak (which a neuro_pc population cannot hold as parameters)
    are folded into the weights and the bias, exactly."""
    rng = np.random.default_rng(3)
    n_in, n = 64, 12
    lif = nir.LIF(tau=np.full(n, 5e-4), r=rng.uniform(3, 8, n), v_leak=rng.uniform(0, 2, n),
                  v_threshold=np.full(n, 1.2), v_reset=np.full(n, 0.1))
    cuba = nir.CubaLIF(tau_syn=np.full(4, 3e-4), tau_mem=np.full(4, 1e-3),
                       r=rng.uniform(5, 15, 4), v_leak=np.full(4, 0.5),
                       v_threshold=np.full(4, 1.0), w_in=rng.uniform(1, 4, 4))
    g = _graph({"in": nir.Input(input_type={"input": np.array([n_in])}),
                "a": nir.Affine(weight=rng.normal(0, 0.3, (n, n_in)),
                                bias=rng.normal(0, 0.1, n)),
                "h": lif, "s": nir.Scale(scale=np.full(n, 0.5)),
                "b": nir.Linear(weight=rng.normal(0.3, 0.5, (4, n))), "c": cuba,
                "out": nir.Output(output_type={"output": np.array([4])})},
               [("in", "a"), ("a", "h"), ("h", "s"), ("s", "b"), ("b", "c"), ("c", "out")])
    art = from_nir(g, steps=30)
    x = digits.x_test[:50]
    ours, s = _counts(art, x, record=[("h", "s")])
    g_plain = _graph(dict(g.nodes), list(g.edges))
    g_plain.nodes["s"] = nir.Linear(weight=np.diag(np.full(n, 0.5)))
    theirs = nir_sim(g_plain, encode_spikes(x, 30), DEFAULT_DT)
    np.testing.assert_array_equal(_hidden_counts(s, "h", 1, 30), theirs["h"])
    np.testing.assert_array_equal(ours, theirs["c"])
    assert theirs["h"].sum() > 100 and ours.sum() > 20


# ----------------------------------------------------------------------------- files, CLI
def test_export_is_atomic_and_honours_the_umask(tmp_path, trained_spiking, monkeypatch):
    path = tmp_path / "net.nir"
    real_write = nir.write

    def broken(filename, graph):
        real_write(filename, graph)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nir, "write", broken)
    with pytest.raises(OSError, match="No space"):
        export_nir(trained_spiking, path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(nir, "write", real_write)
    old = os.umask(0o027)
    try:
        export_nir(trained_spiking, path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert list(tmp_path.iterdir()) == [path]


def test_cli_export_and_import(tmp_path, trained_spiking, digits, capsys):
    art_path = tmp_path / "fa.npz"
    trained_spiking.save(art_path, data={"name": "digits", "seed": 0, "options": {}},
                         task="classification")
    net = tmp_path / "fa.nir"
    assert main(["export", str(art_path), "--format", "nir", "-o", str(net)]) == 0
    out = capsys.readouterr().out
    assert "h1 (LIF)" in out and "learning rules are not NIR" in out and "B1" in out
    back = tmp_path / "back.npz"
    assert main(["import", str(net), "-o", str(back)]) == 0
    assert "spiking_fa_64_32_10_nir" in capsys.readouterr().out
    art = load_artifact(back)
    assert art.circuit.schedule.window == 24
    assert main(["evaluate", str(back), "--data", "digits", "--json"]) == 0
    import json
    assert json.loads(capsys.readouterr().out)["accuracy"] > 0.8


def test_cli_errors_are_one_line(tmp_path, capsys):
    sim = compile(mlp([4, 3, 2], rule="fa", act="tanh"), "reference", seed=0)
    art = tmp_path / "tanh.npz"
    sim.save(art)
    assert main(["export", str(art), "--format", "nir", "-o", str(tmp_path / "x.nir")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tanh" in err[0] and err[0].startswith("neuro-pc: error:")
    assert not (tmp_path / "x.nir").exists()
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"not hdf5")
    assert main(["import", str(bad), "-o", str(tmp_path / "y.npz")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a NIR graph" in err[0]
    assert main(["export", str(art), "--format", "onnx", "-o", "x"]) == 2
    assert "invalid choice: 'onnx'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- backends
def _lava_available() -> bool:
    try:
        import neuro_pc.backends.lava  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("backend, options", [
    ("brian2", {"target": "numpy"}),
    pytest.param("lava", {"tag": "floating_pt"}, marks=[
        pytest.mark.lava, pytest.mark.skipif(not _lava_available(),
                                             reason="lava-nc (Python 3.10) is not installed")]),
])
def test_an_imported_graph_runs_on_every_backend(backend, options, digits):
    """A graph with a LIF and a CubaLIF layer, imported, spikes the same on the reference,
    Brian2 and Lava (whose Lava-LIF populations run on Lava's own LIF process models)."""
    from neuro_pc.backends import simulator_class

    rng = np.random.default_rng(5)
    g = _graph({"in": nir.Input(input_type={"input": np.array([64])}),
                "a": nir.Affine(weight=rng.normal(0, 0.5, (16, 64)), bias=np.full(16, 0.1)),
                "h": _lif(16, tau=4e-4),
                "b": nir.Affine(weight=rng.normal(0.2, 0.6, (10, 16)), bias=np.zeros(10)),
                "c": nir.CubaLIF(tau_syn=np.full(10, 2e-4), tau_mem=np.full(10, 1e-3),
                                 r=np.full(10, 10.0), v_leak=np.zeros(10),
                                 v_threshold=np.ones(10), w_in=np.full(10, 2.0)),
                "out": nir.Output(output_type={"output": np.array([10])})},
               [("in", "a"), ("a", "h"), ("h", "b"), ("b", "c"), ("c", "out")])
    art = from_nir(g, steps=20)
    x = digits.x_test[:12]
    ref = compile(art.circuit, "reference", weights=art.weights).present(x, train=False)
    assert ref.sum() > 20
    sim = simulator_class(backend).from_artifact(art, **options)
    try:
        out = sim.readouts(x)
    finally:
        getattr(sim, "stop", lambda: None)()
    np.testing.assert_array_equal(out, ref)
