"""Convolution in the IR: the geometry, its NumPy meaning, the shared-kernel rule,
validation, serialisation, locality, and the CNN circuits' window update.

Everything is compared with plain per-position loops written here, independent of
``neuro_pc.ir.conv``: if the fast convolution, the kernel update (the sum of the
per-position terms) or a builder's feedback changed, these tests fail.
"""
import json

import numpy as np
import pytest

from neuro_pc.backends.reference import ReferenceSimulator
from neuro_pc.ir import (Circuit, CircuitError, Conv, ConvOp, Init, Population, Projection,
                         Rule, Schedule, Tied)
from neuro_pc.ir.conv import expand, kernel_update_from_dense
from neuro_pc.models import cnn
from neuro_pc.rules import circuit_level, locality_report


# -- the plain loops ----------------------------------------------------------------------------

def loop_conv(x, K, stride, pad):
    """``out[b, o, i, j] = Σ_{c,u,v} K[o, c, u, v] x[b, c, i*s+u-p, j*s+v-p]`` (inside only)."""
    B, C, H, W = x.shape
    O, _, kh, kw = K.shape
    Ho, Wo = (H + 2 * pad[0] - kh) // stride[0] + 1, (W + 2 * pad[1] - kw) // stride[1] + 1
    out = np.zeros((B, O, Ho, Wo))
    for b in range(B):
        for o in range(O):
            for i in range(Ho):
                for j in range(Wo):
                    for c in range(C):
                        for u in range(kh):
                            for v in range(kw):
                                y, z = i * stride[0] + u - pad[0], j * stride[1] + v - pad[1]
                                if 0 <= y < H and 0 <= z < W:
                                    out[b, o, i, j] += K[o, c, u, v] * x[b, c, y, z]
    return out


def loop_conv_t(g, K, stride, pad, in_shape):
    """The transposed convolution: every output unit sends ``g * K`` back to its inputs."""
    B, O, Ho, Wo = g.shape
    C, H, W = in_shape
    _, _, kh, kw = K.shape
    out = np.zeros((B, C, H, W))
    for b in range(B):
        for o in range(O):
            for i in range(Ho):
                for j in range(Wo):
                    for c in range(C):
                        for u in range(kh):
                            for v in range(kw):
                                y, z = i * stride[0] + u - pad[0], j * stride[1] + v - pad[1]
                                if 0 <= y < H and 0 <= z < W:
                                    out[b, c, y, z] += K[o, c, u, v] * g[b, o, i, j]
    return out


def loop_kernel_sum(g, x, kernel, stride, pad):
    """``Σ_b Σ_positions g[b, o, i, j] * x[b, c, i*s+u-p, j*s+v-p]``: the kernel's summed
    per-position products, ``(O, C, kh, kw)``."""
    B, O, Ho, Wo = g.shape
    _, C, H, W = x.shape
    kh, kw = kernel
    out = np.zeros((O, C, kh, kw))
    for b in range(B):
        for o in range(O):
            for i in range(Ho):
                for j in range(Wo):
                    for c in range(C):
                        for u in range(kh):
                            for v in range(kw):
                                y, z = i * stride[0] + u - pad[0], j * stride[1] + v - pad[1]
                                if 0 <= y < H and 0 <= z < W:
                                    out[o, c, u, v] += g[b, o, i, j] * x[b, c, y, z]
    return out


GEOMETRIES = [((2, 5, 6), 3, (3, 3), (1, 1), (1, 1)),
              ((1, 7, 7), 2, (3, 2), (2, 1), (0, 1)),
              ((3, 6, 5), 4, (2, 2), (2, 2), (0, 0)),
              ((2, 4, 4), 3, (1, 1), (1, 1), (0, 0)),
              ((1, 9, 8), 2, (5, 5), (3, 2), (2, 2))]


@pytest.mark.parametrize("geom", GEOMETRIES)
def test_fast_convolution_equals_the_loop(geom):
    in_shape, O, k, s, p = geom
    conv = Conv(in_shape, O, kernel=k, stride=s, padding=p)
    rng = np.random.default_rng(1)
    K = rng.normal(size=conv.weight_shape)
    K4 = K.reshape(O, in_shape[0], *k)
    x = rng.normal(size=(3, conv.in_size))
    g = rng.normal(size=(3, conv.out_size))
    op = ConvOp(conv)
    want = loop_conv(x.reshape(3, *in_shape), K4, s, p)
    assert want.shape[1:] == conv.out_shape
    np.testing.assert_allclose(op.conv(x, K), want.reshape(3, -1), atol=1e-12)
    np.testing.assert_allclose(op.conv_t(g, K),
                               loop_conv_t(g.reshape(3, *conv.out_shape), K4, s, p,
                                           in_shape).reshape(3, -1), atol=1e-12)
    np.testing.assert_allclose(op.grad(g, x),
                               loop_kernel_sum(g.reshape(3, *conv.out_shape),
                                               x.reshape(3, *in_shape), k, s, p)
                               .reshape(conv.weight_shape), atol=1e-12)
    # the dense expansion is the same map, and its transposed-conv direction too
    E = expand(conv, K)
    np.testing.assert_allclose(x @ E.T, op.conv(x, K), atol=1e-12)
    np.testing.assert_allclose(expand(conv.transposed(), K), E.T)
    # the kernel update of a per-synapse outer product is the per-position sum
    np.testing.assert_allclose(kernel_update_from_dense(conv, g.T @ x), op.grad(g, x),
                               atol=1e-12)
    # a missing factor is ones: the count of positions where each kernel entry meets the image
    ones_in, ones_out = np.ones((1, conv.in_size)), np.ones((1, conv.out_size))
    np.testing.assert_allclose(op.grad(None, None), op.grad(ones_out, ones_in))
    np.testing.assert_allclose(op.grad(g, None), op.grad(g, np.ones_like(x)))
    np.testing.assert_allclose(op.grad(None, x), op.grad(np.ones_like(g), x))


def test_float32_stays_float32_and_tracks_float64():
    conv = Conv((3, 8, 8), 4, kernel=3, stride=2, padding=1)
    rng = np.random.default_rng(2)
    K, x = rng.normal(size=conv.weight_shape), rng.normal(size=(5, conv.in_size))
    op = ConvOp(conv)
    y32 = op.conv(x.astype(np.float32), K.astype(np.float32))
    assert y32.dtype == np.float32
    assert op.conv_t(y32, K.astype(np.float32)).dtype == np.float32
    assert op.grad(y32, x.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(y32, op.conv(x, K), rtol=1e-4, atol=1e-5)


def test_cache_reuses_patches_only_for_the_same_array():
    conv = Conv((1, 5, 5), 2, kernel=3, padding=1)
    op = ConvOp(conv, cache=True)
    x = np.random.default_rng(0).normal(size=(2, 25))
    K = np.ones(conv.weight_shape)
    op.conv(x, K)
    assert op.cols(x) is op._last[1]
    x2 = x.copy()
    x2[0, 0] += 1.0
    assert op.cols(x2) is not None and op._last[0] is x2
    np.testing.assert_allclose(op.conv(x2, K), x2 @ expand(conv, K).T)


# -- validation ---------------------------------------------------------------------------------

def _one_conv_circuit(conv, n_src=None, n_tgt=None, **proj):
    bad = conv.problem() is not None      # then any population sizes will do
    n_src = (4 if bad else conv.source_size) if n_src is None else n_src
    n_tgt = (4 if bad else conv.target_size) if n_tgt is None else n_tgt
    return Circuit("c", (Population("x", n_src, ("r",), streams={"r": "x"}, model="input"),
                         Population("h", n_tgt, ("a",), ports=("ff",), update=("a = ff",),
                                    output="a")),
                   (Projection("W", "x", "h", "ff", conv=conv, **proj),),
                   Schedule(2), streams={"x": n_src})


@pytest.mark.parametrize("conv, sizes, match", [
    (Conv((1, 3, 3), 2, kernel=5), None, r"5x5 kernel is larger than the 3x3 padded input"),
    (Conv((1, 4, 4), 2, kernel=3, padding=3), None, r"padding 3x3 is not smaller than"),
    (Conv((1, 4, 4), 0, kernel=3), None, r"out_channels must hold integers >= 1"),
    (Conv((1, 4), 2, kernel=3), None, r"in_shape is \(C, H, W\)"),
    (Conv((1, 6, 6), 2, kernel=3), (35, None), r"reads 1x6x6 = 36 units, but its source 'x' "
                                                r"has 35"),
    (Conv((1, 6, 6), 2, kernel=3), (None, 72), r"writes 2x4x4 = 32 units, but its target "
                                                r"'h' has 72"),
    (Conv((1, 6, 6), 2, kernel=3, transpose=True), (36, 32),
     r"reads 2x4x4 = 32 units, but its source 'x' has 36"),
])
def test_bad_geometry_is_one_clear_error(conv, sizes, match):
    n_src, n_tgt = sizes or (None, None)
    if conv.problem() is None and sizes is None:
        pytest.fail("geometry expected to be bad")
    with pytest.raises(CircuitError, match=match) as err:
        _one_conv_circuit(conv, n_src, n_tgt).validate()
    assert "\n" not in str(err.value) and "projection 'W'" in str(err.value)


def test_conv_projection_options_that_make_no_sense_are_rejected():
    conv = Conv((1, 5, 5), 2, kernel=3)
    with pytest.raises(CircuitError, match="connectivity is its kernel"):
        _one_conv_circuit(conv, connectivity=0.5).validate()
    with pytest.raises(CircuitError, match="'identity' initialiser draws a dense matrix"):
        _one_conv_circuit(conv, init=Init("identity")).validate()
    with pytest.raises(CircuitError, match="'unit_rows' rescales the columns or rows"):
        _one_conv_circuit(conv, rule=Rule("dw = -eta * post.a * pre.r", {"eta": 0.1},
                                          transforms=("unit_rows",))).validate()


def test_json_round_trip_and_init_of_a_kernel():
    c = cnn((1, 6, 6), (2, 3), n_out=4, strides=[2, 1], rule="kp", lam=1e-3)
    again = Circuit.from_json(c.to_json())
    assert again == c
    assert again.projection("W1").conv == Conv((1, 6, 6), 2, kernel=3, stride=2, padding=1)
    w = c.init_weights(0)
    assert w["W2"].shape == (3, 2 * 9) and w["B1"].shape == (3, 2 * 9)
    # Xavier from the convolution's fans (C*k*k, O*k*k), not the kernel matrix's shape;
    # B1 drawn like the kernel it stands in for
    bound = np.sqrt(6.0 / (2 * 9 + 3 * 9))
    for name in ("W2", "B1"):
        assert bound >= np.abs(w[name]).max() > 0.8 * bound
    # He: uniform ±sqrt(6 / fan_in), fan_in = C*k*k
    wh = cnn((1, 6, 6), (2, 3), n_out=4, init="he").init_weights(0)["W2"]
    bound = np.sqrt(6.0 / (2 * 9))
    assert bound >= np.abs(wh).max() > 0.8 * bound
    # KP's decay on a shared kernel is scaled by the positions (it acts once per position)
    assert c.projection("W2").rule.params["lam"] == pytest.approx(1e-3 / 9)
    assert c.projection("W3").rule.params["lam"] == pytest.approx(1e-3)


def test_transpose_of_copies_the_kernel_into_the_transposed_convolution():
    conv = Conv((1, 5, 5), 2, kernel=3, padding=1)
    c = Circuit("m", (Population("x", 25, ("r",), streams={"r": "x"}, model="input"),
                      Population("h", 50, ("a",), ports=("ff",), update=("a = ff",),
                                 output="a"),
                      Population("z", 25, ("a",), ports=("fb",), update=("a = fb",),
                                 output="a")),
                (Projection("W", "x", "h", "ff", conv=conv),
                 Projection("B", "h", "z", "fb", variable="a", conv=conv.transposed(),
                            init=Init("transpose_of", of="W"))),
                Schedule(3), streams={"x": 25}).validate()
    w = c.init_weights(1)
    np.testing.assert_array_equal(w["B"], w["W"])
    np.testing.assert_allclose(c.effective_matrix(w, "B"), c.effective_matrix(w, "W").T)


# -- locality -----------------------------------------------------------------------------------

def test_locality_calls_weight_sharing_what_it_is():
    rep = {r.projection: r for r in locality_report(cnn((1, 6, 6), (2, 3), n_out=4, rule="fa"))}
    assert rep["W1"].level == rep["W2"].level == "weight-shared"
    assert rep["W1"].weight_sharing == 36 and rep["W3"].weight_sharing == 0
    assert "weight sharing" in rep["W1"].reasons[0] and "36 positions" in rep["W1"].reasons[0]
    assert rep["W3"].level == "neuron-local"      # the dense readout's own matrix
    assert circuit_level(list(rep.values())) == "weight-shared"
    # a less local level wins, and the flag still says it shares weights
    normed = {r.projection: r for r in
              locality_report(cnn((1, 6, 6), (2,), n_out=4, rule="fa", norm="layernorm"))}
    assert normed["W1"].level == "population-level" and normed["W1"].weight_sharing == 36
    assert any("weight sharing" in r for r in normed["W1"].reasons)
    bp = {r.projection: r for r in locality_report(cnn((1, 6, 6), (2, 3), n_out=4, rule="bp"))}
    assert bp["W1"].level == "network-global" and bp["W1"].weight_sharing == 36
    assert bp["W1"].as_dict()["weight_sharing"] == 36


# -- the CNN circuits equal the algorithm (per-position loops) ------------------------------------

def _textbook(weights, meta, x, y, rule, eta, lam_conv):
    """One batched window of the CNN algorithm with loops: forward, the rule's error
    signal, and every update (batch mean; a conv kernel's update summed over
    positions). relu hidden units, linear output, loss ½‖r − y‖²."""
    B = x.shape[0]
    shapes = [tuple(meta["in_shape"])]
    convs = []
    for c, k, s, p in zip(meta["channels"], meta["kernels"], meta["strides"], meta["paddings"]):
        C, H, W = shapes[-1]
        Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
        convs.append(((k, k), (s, s), (p, p), (C, H, W)))
        shapes.append((c, Ho, Wo))
    n_conv = len(convs)
    L = n_conv + len(meta["hidden"]) + 1
    K = {l: weights[f"W{l}"] for l in range(1, L + 1)}
    a, r = {}, {0: x}
    for l in range(1, L + 1):
        if l <= n_conv:
            k, s, p, ins = convs[l - 1]
            K4 = K[l].reshape(shapes[l][0], ins[0], *k)
            z = loop_conv(r[l - 1].reshape(B, *ins), K4, s, p)
            z += weights[f"b{l}"].reshape(1, -1, 1, 1)
            a[l] = z.reshape(B, -1)
        else:
            a[l] = r[l - 1] @ K[l].T + weights[f"b{l}"][:, 0]
        r[l] = np.maximum(a[l], 0) if l < L else a[l]
    delta = {L: r[L] - y}
    for l in range(L - 1, 0, -1):
        def back(M, g, l=l):      # M's transposed map from layer l+1 to layer l
            if l + 1 <= n_conv:
                k, s, p, ins = convs[l]
                M4 = M.reshape(shapes[l + 1][0], ins[0], *k)
                return loop_conv_t(g.reshape(B, *shapes[l + 1]), M4, s, p, ins).reshape(B, -1)
            return g @ M
        if rule == "bp":
            fb = back(K[l + 1], delta[l + 1])
        elif rule == "ss":
            if l + 1 <= n_conv:
                k = convs[l][0]
                fan_in, fan_out = convs[l][3][0] * k[0] * k[1], shapes[l + 1][0] * k[0] * k[1]
            else:
                fan_in, fan_out = K[l + 1].shape[1], K[l + 1].shape[0]
            fb = np.sqrt(2.0 / (fan_in + fan_out)) * back(np.sign(K[l + 1]), delta[l + 1])
        elif rule in ("fa", "kp"):
            Bm = weights[f"B{l}"]
            fb = back(Bm, delta[l + 1]) if l + 1 <= n_conv else delta[l + 1] @ Bm.T
        elif rule == "dfa":
            fb = delta[L] @ weights[f"B{l}"].T
        delta[l] = fb * (a[l] > 0)
    upd = {}
    for l in range(1, L + 1):
        if l <= n_conv:
            k, s, p, ins = convs[l - 1]
            g = delta[l].reshape(B, *shapes[l])
            upd[f"W{l}"] = -eta / B * loop_kernel_sum(g, r[l - 1].reshape(B, *ins), k, s, p) \
                .reshape(K[l].shape)
            upd[f"b{l}"] = -eta / B * g.sum(axis=(0, 2, 3))[:, None]
        else:
            upd[f"W{l}"] = -eta / B * delta[l].T @ r[l - 1]
            upd[f"b{l}"] = -eta / B * delta[l].sum(axis=0)[:, None]
    if rule == "kp":   # the mirrored update, plus the decay (per position on a kernel)
        for l in range(1, L):
            if l + 1 <= n_conv:
                k, s, p, ins = convs[l]
                g = delta[l + 1].reshape(B, *shapes[l + 1])
                summed = loop_kernel_sum(g, r[l].reshape(B, *ins), k, s, p).reshape(K[l + 1].shape)
                counts = loop_kernel_sum(np.ones((1, *shapes[l + 1])), np.ones((1, *ins)), k, s, p)
                upd[f"B{l}"] = -eta / B * summed - lam_conv[l + 1] * counts.reshape(
                    K[l + 1].shape) * weights[f"B{l}"]
            else:
                upd[f"B{l}"] = -eta / B * r[l].T @ delta[l + 1] - lam_conv[l + 1] * \
                    weights[f"B{l}"]
        for l in range(1, L + 1):
            if l <= n_conv:
                k, s, p, ins = convs[l - 1]
                counts = loop_kernel_sum(np.ones((1, *shapes[l])), np.ones((1, *ins)), k, s, p)
                upd[f"W{l}"] -= lam_conv[l] * counts.reshape(K[l].shape) * weights[f"W{l}"]
                upd[f"b{l}"] -= lam_conv[l] * shapes[l][1] * shapes[l][2] * weights[f"b{l}"]
            else:
                upd[f"W{l}"] -= lam_conv[l] * weights[f"W{l}"]
                upd[f"b{l}"] -= lam_conv[l] * weights[f"b{l}"]
    return upd


@pytest.mark.parametrize("rule", ["bp", "fa", "dfa", "ss", "kp"])
@pytest.mark.parametrize("arch", [dict(in_shape=(1, 6, 6), channels=(2, 3), strides=(2, 1)),
                                  dict(in_shape=(2, 5, 5), channels=(3,), kernels=(2,),
                                       paddings=(0,), hidden=(4,))])
def test_cnn_window_update_equals_the_per_position_loop(rule, arch):
    lam = 1e-2 if rule == "kp" else 0.0
    c = cnn(n_out=3, rule=rule, act="relu", eta=0.1, lam=lam, **arch)
    sim = ReferenceSimulator(c, seed=4)
    rng = np.random.default_rng(5)
    for name in sim.weights:      # non-zero biases, so that they are exercised
        if name.startswith("b"):
            sim.weights[name] = rng.normal(scale=0.1, size=sim.weights[name].shape)
    x = rng.normal(size=(4, c.streams["x"]))
    y = np.eye(3)[rng.integers(0, 3, 4)]
    got = sim.compute_updates(x, y)
    lam_conv = {int(p.name[1:]): p.rule.params.get("lam", 0.0) for p in c.projections
                if p.name.startswith("W")}
    want = _textbook({k: v.copy() for k, v in sim.weights.items()}, c.metadata, x, y, rule,
                     0.1, lam_conv)
    assert set(want) <= set(got)
    for name, w in want.items():
        np.testing.assert_allclose(got[name], w, atol=1e-12, err_msg=name)


def test_online_training_equals_batch_one_and_the_loop_driven_window():
    """The unrolled window and the loop agree bit for bit on a CNN, online and batched."""
    c = cnn((1, 6, 6), (2, 3), n_out=3, strides=(2, 1), rule="fa", eta=0.05)
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(8, 36)), np.eye(3)[rng.integers(0, 3, 8)]
    for batch in (1, 4):
        a = ReferenceSimulator(c, seed=1).train(x, y, epochs=2, batch_size=batch)
        b = ReferenceSimulator(c, seed=1, unrolled=False).train(x, y, epochs=2,
                                                                 batch_size=batch)
        for k in a.weights:
            np.testing.assert_array_equal(a.weights[k], b.weights[k], err_msg=k)


@pytest.mark.parametrize("geom", GEOMETRIES)
def test_correlation_form_of_a_transposed_convolution(geom):
    """A stride-1 transposed convolution is a correlation with the flipped, channel-swapped
    kernel (how Lava's Conv runs it); a strided one has no such form."""
    from neuro_pc.ir.conv import correlation_form

    in_shape, O, k, s, p = geom
    conv = Conv(in_shape, O, kernel=k, stride=s, padding=p, transpose=True)
    K = np.random.default_rng(3).normal(size=conv.weight_shape)
    form = correlation_form(conv, K)
    if s != (1, 1):
        assert form is None
        return
    g, Kc = form
    assert not g.transpose and g.in_shape == conv.out_shape and g.out_shape == conv.in_shape
    np.testing.assert_allclose(expand(g, Kc), expand(conv, K))
    fwd = Conv(in_shape, O, kernel=k, stride=s, padding=p)
    assert correlation_form(fwd, K)[0] is fwd
