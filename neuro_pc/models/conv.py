"""Convolutional circuits: CNNs trained by BP, FA, DFA, sign-symmetry and
Kolen–Pollack, built as IR with convolutional projections (:class:`neuro_pc.ir.Conv`).

The naming and the equations are :func:`neuro_pc.models.mlp`'s, so that the
recorder, the rank-collapse machinery and the locality report treat both alike:
populations ``x`` (the image, ``C*H*W`` units in C order), ``h1 … h{L-1}``
(hidden: the conv layers, then any dense ones), ``out`` (linear, stream ``y``);
forward projections ``W1 … WL`` (``W_l``: layer ``l-1`` → ``l``; a convolution
for the conv layers, dense for the rest: the last conv layer's maps are read
flat, which is all a flatten is here); feedback ``B1 … B{L-1}`` into
``h_l.fb``. Every hidden unit has ``a = ff``, ``r = f(a)``, ``delta = fb * f'(a)``,
the output ``delta = r - y`` (loss ``½‖r − y‖²``), every forward rule is
``dw = -eta * post.delta * pre.r``: on a convolution that is the sum over
positions, i.e. the kernel's gradient (docs/semantics.md).

Feedback through a convolution ``W_{l+1}`` (kernel ``(O, C*kh*kw)``):

* **BP**: ``B_l`` tied to ``W_{l+1}`` transposed: the transposed convolution
  with the live kernel (weight transport, a marked baseline);
* **FA**: ``B_l`` a *fixed random* kernel of the same shape, applied as the
  transposed convolution of the same geometry;
* **DFA**: ``B_l`` a dense fixed random projection from ``out.delta`` straight
  to ``h_l`` (``n_l x n_out``);
* **sign-symmetry**: ``B_l`` tied to ``sign(W_{l+1})`` transposed, scaled by the
  kernel's Xavier standard deviation (sign transport, a baseline);
* **Kolen–Pollack**: ``B_l`` a *plastic* kernel of the same shape (the transposed
  convolution) with the mirrored rule ``dw = -eta * post.r * pre.delta - lam * w``;
  its summed per-position update equals ``W_{l+1}``'s, so with the same decay the
  two kernels converge. A decay on a shared kernel acts once per position
  (``-lam * n(u, v) * w``, :mod:`neuro_pc.ir.conv`): the conv rules get
  ``lam / H'W'`` so that one update decays a kernel about as much as a dense
  matrix.

Biases: a conv layer has one bias per channel, shared by its positions, as a
1x1 convolution from a population of ``H'*W'`` units that are always 1
(``one<H'>x<W'>``); dense layers read the one-unit ``bias``. Both start at 0 and
learn with the forward rule (``bias=False``: none).

Downsampling is by stride (no pooling layer: an all-convolutional net); the
window is ``T = 2L + 1`` as for the MLPs, which makes the window-end update
exactly the algorithm's (tests/models/test_conv_models.py).
"""
from __future__ import annotations

import math

from neuro_pc.ir import Circuit, Conv, Init, Population, Projection, Rule, Schedule, Tied
from neuro_pc.models.rate import (ACTIVATIONS, NORMS, _normed_hidden, _with_muon)

#: the rules :func:`cnn` builds (predictive coding is MLP-only here)
CNN_RULES = ("bp", "fa", "dfa", "ss", "kp")


def _per_layer(value, n: int, what: str) -> list:
    vals = list(value) if isinstance(value, (list, tuple)) else [value] * n
    if len(vals) != n:
        raise ValueError(f"{what}: give one value or one per conv layer ({n}), got {value!r}")
    return vals


def conv_shapes(in_shape, channels, kernels=3, strides=1, paddings=None) -> list:
    """The geometry of each conv layer: ``[Conv, ...]`` (``paddings`` default
    ``kernel // 2``, which keeps the size at stride 1)."""
    n = len(channels)
    ks = _per_layer(kernels, n, "kernels")
    ss = _per_layer(strides, n, "strides")
    ps = _per_layer(paddings, n, "paddings") if paddings is not None else [k // 2 for k in ks]
    shape = tuple(int(v) for v in in_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"in_shape is (C, H, W) with positive entries, got {in_shape!r}")
    out = []
    for l, (c, k, s, p) in enumerate(zip(channels, ks, ss, ps), start=1):
        conv = Conv(shape, int(c), kernel=k, stride=s, padding=p)
        problem = conv.problem()
        if problem:
            raise ValueError(f"conv layer {l} (input {shape[0]}x{shape[1]}x{shape[2]}): "
                             f"{problem}")
        out.append(conv)
        shape = conv.out_shape
    return out


def cnn(in_shape=(1, 28, 28), channels=(16, 32), n_out: int = 10, *, kernels=3, strides=1,
        paddings=None, hidden=(), rule: str = "fa", act: str = "relu", eta: float = 0.01,
        lam: float = 0.0, bias: bool = True, norm: str | None = None, muon: bool = False,
        muon_beta: float = 0.95, muon_lr: float = 0.02, feedback_scale: float = 1.0,
        init: str = "xavier", window: int | None = None, name: str | None = None) -> Circuit:
    """A CNN circuit: conv layers, then dense hidden layers, then linear outputs.

    The conv layers have ``channels`` (kernel ``kernels``, stride ``strides``,
    padding ``paddings``, each one value or one per layer), then come dense hidden
    layers ``hidden``, then ``n_out`` linear outputs; trained by ``rule``. ``norm``,
    ``muon``, ``muon_beta``, ``muon_lr``, ``feedback_scale`` and ``window`` are as in
    :func:`neuro_pc.models.mlp` (layer norm normalises each layer over all its
    ``C*H*W`` units; Muon orthogonalises each hidden layer's kernel update as the
    ``(O, C*kh*kw)`` matrix it is stored as, as Muon does for conv filters).

    On MNIST with the squared error, Xavier initialisation trained as well at 2
    conv layers, but relu nets of 8 conv layers only learn in a few epochs from
    He's (docs/analysis/cnn_depth.md). FA's and KP's ``B_l`` are drawn like the
    forward weights they stand in for (``W_{l+1}``'s distribution, times
    ``feedback_scale``); DFA's with ``"he"`` like a forward matrix reading the
    ``n_out`` errors, with ``"xavier"`` as :func:`mlp`'s.

    Parameters
    ----------
    in_shape : tuple of int, default (1, 28, 28)
        The input image's ``(C, H, W)``, positive entries.
    channels : sequence of int, default (16, 32)
        The conv layers' channel counts (at least one layer, each ``>= 1``).
    n_out : int, default 10
        The number of linear outputs.
    kernels : int or sequence of int, default 3
        The conv kernels' sizes: one value or one per conv layer.
    strides : int or sequence of int, default 1
        The conv strides: one value or one per conv layer.
    paddings : int or sequence of int, optional
        The conv paddings: one value or one per conv layer (default
        ``kernel // 2``, which keeps the size at stride 1).
    hidden : sequence of int, default ()
        The widths of the dense hidden layers after the conv layers.
    rule : str, default "fa"
        The learning rule, one of :data:`CNN_RULES`.
    act : str, default "relu"
        The hidden activation, a key of
        :data:`~neuro_pc.models.rate.ACTIVATIONS`.
    eta : float, default 0.01
        The learning rate.
    lam : float, default 0.0
        Weight decay; the conv rules get ``lam / H'W'`` (see the module's
        docstring).
    bias : bool, default True
        Give every layer its biases (per channel for a conv layer, from a
        ``one<H'>x<W'>`` population; from ``bias`` for a dense layer).
    norm : str, optional
        ``"layernorm"`` or ``"batchnorm"``, as in :func:`mlp`.
    muon : bool, default False
        Orthogonalise the hidden layers' updates, as in :func:`mlp`.
    muon_beta : float, default 0.95
        Muon's momentum, as in :func:`mlp`.
    muon_lr : float, default 0.02
        Muon's step size, as in :func:`mlp`.
    feedback_scale : float, default 1.0
        Multiplies the random feedback initialisation (FA, DFA).
    init : str, default "xavier"
        ``"xavier"`` (as :func:`mlp`: uniform ``±sqrt(6 / (fan_in +
        fan_out))``, a convolution's fans ``C*kh*kw`` and ``O*kh*kw``) or ``"he"``
        (uniform ``±sqrt(6 / fan_in)``, He et al. 2015).
    window : int, optional
        Steps per sample (default ``2L + 1``).
    name : str, optional
        The circuit's name (default from the rule, the options and the
        architecture).

    Returns
    -------
    Circuit
        The circuit (IR); its metadata records the builder and the geometry
        (:func:`cnn_from_metadata` builds it again).

    Raises
    ------
    ValueError
        For an unknown ``rule``, ``act``, ``norm`` or ``init``, for no or
        non-positive ``channels``, for per-layer values whose count is not the
        number of conv layers, for a bad ``in_shape``, and for a conv layer whose
        geometry does not fit its input.
    """
    if rule not in CNN_RULES:
        raise ValueError(f"unknown rule {rule!r} for a CNN; choose one of {CNN_RULES}")
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; choose one of {sorted(ACTIVATIONS)}")
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; choose one of {NORMS}")
    if init not in ("he", "xavier"):
        raise ValueError(f"unknown init {init!r}; choose 'he' or 'xavier'")
    channels = [int(c) for c in channels]
    if not channels or min(channels) < 1:
        raise ValueError(f"channels lists the conv layers' channel counts (>= 1), got "
                         f"{channels!r}")
    convs = conv_shapes(in_shape, channels, kernels, strides, paddings)
    hidden = [int(h) for h in hidden]
    in_size = convs[0].in_size
    sizes = [in_size] + [c.out_size for c in convs] + hidden + [int(n_out)]
    L = len(sizes) - 1
    n_conv = len(convs)
    f, df = (t.format(v="a") for t in ACTIVATIONS[act])
    pops = [Population("x", in_size, ("r",), streams={"r": "x"}, model="input")]
    ones = {}   # (H', W') -> population name
    if bias:
        for c in convs:
            hw = c.out_shape[1:]
            if hw not in ones:
                ones[hw] = f"one{hw[0]}x{hw[1]}"
                pops.append(Population(ones[hw], hw[0] * hw[1], ("r",), init={"r": 1.0},
                                       model="input"))
        if L > n_conv:
            pops.append(Population("bias", 1, ("r",), init={"r": 1.0}, model="input"))
    for l in range(1, L):
        if norm is None:
            pops.append(Population(f"h{l}", sizes[l], ("a", "r", "delta"), ports=("ff", "fb"),
                                   update=("a = ff", f"r = {f}", f"delta = fb * ({df})")))
        else:
            pops.append(_normed_hidden(f"h{l}", sizes[l], act, norm))
    pops.append(Population("out", sizes[-1], ("a", "r", "y", "delta"), ports=("ff",),
                           streams={"y": "y"}, update=("a = ff", "r = a", "delta = r - y")))
    names = ["x"] + [f"h{l}" for l in range(1, L)] + ["out"]
    baseline = rule in ("bp", "ss")
    decay = " - lam * w" if lam else ""

    def params(conv=None):
        p = {"eta": float(eta)}
        if lam:   # once per position on a shared kernel: lam / H'W' decays it about as lam
            p["lam"] = float(lam) / (conv.positions if conv is not None else 1)
        return p

    def fwd_rule(conv=None):
        return Rule(f"dw = -eta * post.delta * pre.r{decay}", params(conv), baseline=baseline)

    def draw(fan_in: int, scale: float = 1.0) -> Init:
        if init == "xavier":
            return Init("xavier", scale=scale)
        return Init("uniform", scale=scale * math.sqrt(6.0 / fan_in))

    def fan_in_of(l: int) -> int:   # W_l's fan-in
        return convs[l - 1].fans[0] if l <= n_conv else sizes[l - 1]

    projs = []
    for l in range(1, L + 1):
        conv = convs[l - 1] if l <= n_conv else None
        projs.append(Projection(f"W{l}", names[l - 1], names[l], "ff", init=draw(fan_in_of(l)),
                                rule=fwd_rule(conv), conv=conv))
        if bias:
            if conv is not None:
                hw = conv.out_shape[1:]
                bconv = Conv((1, hw[0], hw[1]), conv.out_channels, kernel=1)
                projs.append(Projection(f"b{l}", ones[hw], names[l], "ff", init=Init("zeros"),
                                        rule=fwd_rule(bconv), conv=bconv))
            else:
                projs.append(Projection(f"b{l}", "bias", names[l], "ff", init=Init("zeros"),
                                        rule=fwd_rule()))
    for l in range(1, L):
        nxt = convs[l] if l < n_conv else None       # W_{l+1}'s geometry (None: dense)
        src = "out" if rule == "dfa" else names[l + 1]
        common = dict(source=src, target=names[l], port="fb", variable="delta")
        if rule == "bp":
            projs.append(Projection(f"B{l}", tied=Tied(f"W{l + 1}"), **common))
        elif rule == "ss":
            fan_in, fan_out = nxt.fans if nxt is not None else (sizes[l], sizes[l + 1])
            s = math.sqrt(2.0 / (fan_in + fan_out))
            projs.append(Projection(f"B{l}", tied=Tied(f"W{l + 1}", fn="sign", scale=s),
                                    **common))
        elif rule == "dfa":
            projs.append(Projection(f"B{l}", init=draw(int(n_out), feedback_scale), **common))
        elif rule == "fa":
            projs.append(Projection(f"B{l}", init=draw(fan_in_of(l + 1), feedback_scale),
                                    conv=None if nxt is None else nxt.transposed(), **common))
        elif rule == "kp":
            projs.append(Projection(
                f"B{l}", init=draw(fan_in_of(l + 1)),
                rule=Rule(f"dw = -eta * post.r * pre.delta{decay}", params(nxt)),
                conv=None if nxt is None else nxt.transposed(), **common))
    T = window if window is not None else 2 * L + 1
    tag = (f"_{norm}" if norm else "") + ("_muon" if muon else "")
    meta = {"builder": "cnn", "rule": rule, "sizes": sizes, "act": act, "eta": eta, "lam": lam,
            "in_shape": list(convs[0].in_shape), "channels": channels,
            "kernels": [c.kernel[0] for c in convs], "strides": [c.stride[0] for c in convs],
            "paddings": [c.padding[0] for c in convs], "hidden": hidden, "n_out": int(n_out),
            "bias": bool(bias), "init": init,
            "shapes": {f"h{l}": list(convs[l - 1].out_shape) for l in range(1, n_conv + 1)
                       if l < L}}
    if norm is not None:
        meta["norm"] = norm
    shape = "x".join(map(str, convs[0].in_shape))
    arch = "-".join([shape, *(f"c{c}" for c in channels), *map(str, hidden), str(n_out)])
    circuit = Circuit(name=name or f"{rule}{tag}_cnn_{arch}", populations=tuple(pops),
                      projections=tuple(projs), schedule=Schedule(window=T),
                      streams={"x": in_size, "y": int(n_out)}, readout=("out", "r"),
                      metadata=meta)
    return _with_muon(circuit, L, muon_beta, muon_lr) if muon else circuit


def cnn_from_metadata(meta: dict, **overrides) -> Circuit:
    """The :func:`cnn` circuit a CNN's ``metadata`` describes, with ``overrides``
    (e.g. ``rule="bp", eta=1.0``)."""
    kw = dict(in_shape=meta["in_shape"], channels=meta["channels"], n_out=meta["n_out"],
              kernels=meta["kernels"], strides=meta["strides"], paddings=meta["paddings"],
              hidden=meta.get("hidden", ()), rule=meta["rule"], act=meta.get("act", "relu"),
              eta=meta.get("eta", 0.01), lam=meta.get("lam", 0.0),
              bias=meta.get("bias", True), norm=meta.get("norm"), init=meta.get("init", "xavier"))
    kw.update(overrides)
    return cnn(**kw)


def fixed_convs(circuit: Circuit) -> Circuit:
    """``circuit`` with every convolution's kernel fixed (its rule removed): the
    conv layers keep the kernels they are given (trained elsewhere) while the
    dense projections learn. This is what a backend that cannot learn a shared
    kernel (Brian2, Lava, Loihi's learning engine) can train."""
    import dataclasses

    projs = tuple(dataclasses.replace(p, rule=None) if p.conv is not None else p
                  for p in circuit.projections)
    return circuit.replace(projections=projs, name=f"{circuit.name}_fixedconv",
                           metadata={**circuit.metadata, "fixed_convs": True})
