"""The spiking circuits: learning (:func:`spiking_mlp`, :func:`spiking_pc`) and
inference only (:func:`spiking_inference`, loading trained weights with
:func:`inference_weights`), and :func:`spike_variables`, the spike outputs of
any of them.

Learning circuits
-----------------
:func:`spiking_mlp` builds spiking FA / DFA in the form of EMSTDP (Shrestha et
al. 2021, "In-hardware learning of multilayer spiking neural networks on a
neuromorphic processor", DAC; code ``zmeidd/loihi_2_EMSTDP``): the forward
pass is spikes, the output error is computed from output spike traces against
the target, sent back through **fixed random** weights (FA: layer by layer,
Lillicrap et al. 2016; DFA: directly from the output, Nøkland 2016) to the
hidden neurons' third-factor variable, and each weight changes once per
window by the product of the post-synaptic error and the pre-synaptic spike
trace. See the function for the equations.

:func:`spiking_pc` builds discriminative predictive coding (Whittington &
Bogacz 2017) with spiking value units: each layer's LIF spike rate plays the
role of ``f(x)``, predictions are running means of the spikes from below,
error units ``eps = x - mu`` relax with the learned mirrored feedback
(``B_l`` starts as ``W_{l+1}ᵀ`` and learns the transposed rule, no run-time
weight transport), the output is clamped to the target while training and
every weight changes by ``eta * post.eps * pre.tr`` once per window.
"""
from __future__ import annotations

import numpy as np

from neuro_pc.ir import Circuit, Init, Population, Projection, Rule, Schedule
from neuro_pc.models.rate import forward_projections, layer_sizes
from neuro_pc.models.spiking.neurons import AT_START, LIF, LavaLIF, RateEncoder, Trace, _asdict
from neuro_pc.models.spiking.populations import always_on, lif_population, rate_trace, spike_input

SPIKING_RULES = ("fa", "dfa")
#: the output errors of :func:`spiking_mlp`
OUTPUT_ERRORS = ("target", "hinge")


def hinge_target(n_layers: int, window: int, rule: str = "fa") -> float:
    """The highest output rate every layer's error can see in a window of ``window``
    steps, for ``n_layers`` projections (one step of delay each).

    An output driven through the layers fires at most ``window - n_layers``
    spikes (the input spikes from step 0, each projection adds one step); a
    hidden layer reads the output's error one step late (DFA), or one step per
    layer of feedback late (FA: the first hidden layer ``n_layers - 1`` steps),
    when the count is lower still. With
    :func:`spiking_mlp`'s ``output_error="hinge"`` this target makes a correct
    output firing as fast as it can an error of exactly 0 in every layer's view,
    as the rate equivalent's ``clip(., 0, 1)`` output at 1 does.
    """
    late = 1 if rule == "dfa" else n_layers - 1
    return (window - n_layers - late) / window


def _check_window(window: int, sizes: list[int]) -> None:
    """A window long enough for spikes to cross every layer and come back."""
    if window < 2 * len(sizes):
        raise ValueError(f"window={window} is too short for {len(sizes) - 1} layers: spikes "
                         f"take one step per projection; use at least {2 * len(sizes)}")


def spiking_mlp(sizes, rule: str = "fa", window: int = 24, eta: float = 0.01,
                lif: LIF = LIF(), out_lif: LIF | None = None, trace: Trace | None = None,
                encoder: RateEncoder = RateEncoder(), target_rate: float | None = None,
                feedback_scale: float = 1.0, init_scale: float = 1.0, bias: bool = True,
                two_rail: bool = True, output_error: str = "target",
                name: str | None = None) -> Circuit:
    """A spiking MLP ``sizes = [n_in, n_h1, ..., n_out]`` trained by spiking FA or DFA.

    Populations (the rate builders' names): ``x``
    (:func:`~neuro_pc.models.spiking.populations.spike_input`, stream ``x``: rates
    in [0, 1]), ``bias`` (:func:`~neuro_pc.models.spiking.populations.always_on`),
    ``h1 …`` and ``out`` (:class:`~neuro_pc.models.spiking.neurons.LIF`, output ``s``;
    ``out`` streams the one-hot target into ``y``);
    projections ``W1 …`` (forward, plastic), ``b1 …`` (bias, plastic),
    ``B1 …`` (fixed random feedback into ``h_l.fb``). Readout ``("out", "tr")``:
    the output spike rate at the window's end.

    Error and update, evaluated at every step (the values at the last step are
    the ones the rule uses):

    * output, ``output_error="target"`` (default): ``delta = tr - target_rate * y``
      (output spike rate vs target); ``output_error="hinge"``:
      ``delta = (1 - y) * tr - y * relu(target_rate - tr)``: the correct output is
      pushed up until it fires at ``target_rate``, never down, the others down
      to silence (the error of the rate equivalent's ``clip(., 0, 1)`` output,
      whose error vanishes once the correct output saturates). ``target_rate``
      unset: 1 for ``"target"``, :func:`hinge_target` for ``"hinge"``: an
      output driven through ``L`` projections fires at most ``T - L`` spikes, so
      a target of 1 leaves a correct output's error at ``-L/T`` or less however
      fast it fires, an error of the same sign in every sample that adds up
      over a batch (784-500-10, ``T = 128``, trained weights: the update of ``W2`` 18° from
      the rate equivalent's, of ``W1`` 26°; with ``"hinge"`` at
      :func:`hinge_target`, 1.3° and 2.5°);
    * hidden: ``delta = fb * step(tr)``, ``fb = B_l @ delta`` of ``h_{l+1}``
      (FA) or of ``out`` (DFA): the fed-back error, gated by whether the unit
      fired in this window (the spiking counterpart of ReLU's derivative: a
      non-leaky unit's rate is ``clip(I, 0, 1)``);
    * rule, once at the window's end: ``dW = -eta * post.delta * pre.tr``.
      With ``two_rail`` (default) the error is carried on two non-negative
      rails ``ep = relu(delta)``, ``en = relu(-delta)`` (EMSTDP's positive and
      negative error channels; Loihi traces are unsigned) and the rule is
      ``dw = eta * post.en * pre.tr - eta * post.ep * pre.tr`` (the same
      numbers: each term a pre trace times a post third factor).

    The output error at the last step reaches the hidden layer one step later
    (projection delay), so the hidden update uses the error one step (per
    layer of feedback) before the window's end; with ``window`` well above the
    depth this is immaterial.

    Formulation: EMSTDP (Shrestha et al. 2021, DAC; ``zmeidd/loihi_2_EMSTDP``,
    ``dfa = 1/2``: FA/DFA, update ``pre_count ⊗ error_count / T``), here in one
    phase with the error as a graded value. FA: Lillicrap et al. 2016; DFA:
    Nøkland 2016. The 3-factor form (pre trace × post error trace) is that of
    e-prop's random feedback variant (Bellec et al. 2020) with the eligibility
    reduced to the pre-synaptic trace.

    lif / out_lif: neuron models of hidden / output layers (default: non-leaky,
    reset by subtraction); trace: the trace the rule reads (default
    :func:`~neuro_pc.models.spiking.populations.rate_trace`); target_rate: spikes
    per step the correct output should fire (see the output error above);
    output_error: ``"target"`` or ``"hinge"`` (above); init_scale, feedback_scale: multiply
    the Xavier forward / feedback initialisations.
    """
    if rule not in SPIKING_RULES:
        raise ValueError(f"unknown spiking rule {rule!r}; choose one of {SPIKING_RULES}")
    if output_error not in OUTPUT_ERRORS:
        raise ValueError(f"unknown output_error {output_error!r}; choose one of {OUTPUT_ERRORS}")
    sizes = layer_sizes(sizes)
    _check_window(window, sizes)
    trace = trace or rate_trace(window)
    out_lif = out_lif or lif
    L = len(sizes) - 1
    if target_rate is None:
        target_rate = hinge_target(L, window, rule) if output_error == "hinge" else 1.0
    error = (f"delta = (1 - y) * {trace.var} - y * relu(target - {trace.var})"
             if output_error == "hinge" else f"delta = {trace.var} - target * y")
    names = ["x"] + [f"h{l}" for l in range(1, L)] + ["out"]
    rails = ("ep", "en") if two_rail else ()
    rail_update = ("ep = relu(delta)", "en = relu(-delta)") if two_rail else ()
    pops = [spike_input("x", sizes[0], window, encoder, trace)]
    if bias:
        pops.append(always_on("bias", window, trace))
    for l in range(1, L):
        pops.append(lif_population(
            f"h{l}", sizes[l], lif, trace, ports=("ff", "fb"),
            extra_variables=("delta", *rails),
            extra_update=(f"delta = fb * step({trace.var})", *rail_update), model="lif"))
    pops.append(lif_population(
        "out", sizes[-1], out_lif, trace, ports=("ff",), streams={"y": "y"},
        extra_variables=("y", "delta", *rails),
        extra_update=(error, *rail_update),
        extra_params={"target": float(target_rate)}, model="lif"))
    params = {"eta": float(eta)}
    if two_rail:
        text = f"dw = eta * post.en * pre.{trace.var} - eta * post.ep * pre.{trace.var}"
    else:
        text = f"dw = -eta * post.delta * pre.{trace.var}"
    fwd = Rule(text, params)
    projs = forward_projections(names, fwd, bias, Init("xavier", scale=init_scale))
    for l in range(1, L):
        src = "out" if rule == "dfa" else names[l + 1]
        projs.append(Projection(f"B{l}", src, names[l], "fb", variable="delta",
                                init=Init("xavier", scale=feedback_scale)))
    meta = {"builder": "spiking_mlp", "rule": rule, "sizes": sizes, "eta": eta,
            "window": window, "target_rate": target_rate, "two_rail": two_rail,
            "output_error": output_error,
            "lif": _asdict(lif), "out_lif": _asdict(out_lif), "trace": _asdict(trace),
            "encoder": _asdict(encoder)}
    return Circuit(name=name or f"spiking_{rule}_{'-'.join(map(str, sizes))}",
                   populations=tuple(pops), projections=tuple(projs),
                   schedule=Schedule(window=window), streams={"x": sizes[0], "y": sizes[-1]},
                   readout=("out", trace.var), metadata=meta)


def spiking_pc(sizes, window: int = 32, eta: float = 0.01, gamma: float = 0.2,
               lif: LIF = LIF(), out_lif: LIF | None = None, trace: Trace | None = None,
               encoder: RateEncoder = RateEncoder(), target_rate: float | None = None,
               clamp_step: int | None = None, init_scale: float = 1.0, bias: bool = True,
               two_rail: bool = True, name: str | None = None) -> Circuit:
    """A spiking MLP ``sizes = [n_in, n_h1, ..., n_out]`` trained by discriminative
    predictive coding: Whittington & Bogacz (2017, Neural Comput. 29:1229) with
    spiking value units (a rate-coded PC: the value units' spike rates play the
    role of ``f(x)``).

    Populations and projections use :func:`spiking_mlp`'s names (``x``, ``bias``,
    ``h1 …``, ``out``; ``W_l``, ``b_l`` forward and plastic, ``B_l`` feedback into
    ``h_l.fb``). Readout ``("out", "tr")``: the output spike rate.

    Every layer ``l >= 1`` is a value unit with a graded state ``x`` that drives
    a :class:`~neuro_pc.models.spiking.neurons.LIF` (drive ``x`` per step, so a
    non-leaky unit fires ``clip(x / thr, 0, 1)`` spikes per step: its rate is
    ``f(x)``), and an error unit ``eps``. Per step:

    * prediction from the spikes of the layer below, averaged over the window so
      far (a running rate estimate): ``m = m + ff`` (``ff = W_l s_{l-1} + b_l``),
      ``mu = m / tw`` (so ``mu → W_l rate_{l-1} + b_l``);
    * hidden error and value: ``eps = 0`` for ``tw <= l`` (the feedforward
      sweep), then ``eps += gamma (−eps + f'(x) ⊙ fb)``, ``fb = B_l eps_{l+1}``;
      ``x = mu + eps``; ``f'(x) = step(x) step(thr − x) / thr`` (the derivative
      of the non-leaky unit's rate ``clip(x / thr, 0, 1)``; for leaky units an
      approximation);
    * output value: ``x = target_rate · y`` (unset: 1) while training from step
      ``clamp_step`` (default ``L``, read from the ``train`` and ``tw``
      scalars), else ``x = mu``; error unit ``eps = x − mu``.

    The hidden relaxation is written on the error, not on the value: W&B's
    ``x += gamma (−eps + f'(x) ⊙ fb)`` with ``eps = x − mu`` becomes, with
    ``x = mu + eps``, the same update of ``eps`` plus the term ``−Δmu``, which is
    dropped here, i.e. the value also follows every change of its prediction.
    The fixed points are W&B's (``eps_l = f'(x_l) ⊙ B_l eps_{l+1}``,
    ``x_l = mu_l + eps_l``); only the path to them differs. The reason: the
    prediction is a running *estimate* of a rate that keeps refining during
    the window (its early values jump by ``|W| / tw``), and with W&B's form
    the value lags it, so ``eps ≠ 0`` even without a target; here ``eps = 0``
    exactly whenever the output is not clamped (tested).

    * rule, once at the window's end: ``dw = eta * post.eps * pre.tr`` (pre
      trace: the spike rate over the window), split by default (``two_rail``)
      into two non-negative error channels ``ep = relu(eps)``,
      ``en = relu(−eps)``: ``dw = eta * post.ep * pre.tr − eta * post.en * pre.tr``.

    Feedback ``B_l`` (carrying ``h_{l+1}.eps`` / ``out.eps``, graded) starts as
    a copy of ``W_{l+1}ᵀ`` (set-up) and learns by the mirrored rule
    ``dw = eta * post.tr * pre.eps`` (two rails likewise), the same numbers as
    ``W_{l+1}``'s update transposed, so it stays equal to ``W_{l+1}ᵀ`` with no
    run-time weight transport (as in the rate PC, ``neuro_pc.models.rate._pc``).

    Choices, stated plainly: forward communication is spikes; errors are graded
    values (Loihi 2 graded spikes), not error spike trains; ``eps`` compares the
    graded value ``x`` with a prediction built from spike *rates*. The
    prediction's rate estimate (``m / tw``: the pre spikes of steps
    ``0 … tw−1``, one-step delay) and the pre trace the rule reads (the count
    over the whole window / ``T``) differ by the last step's spikes. The running
    mean needs a division by ``tw``, which the quantised (Loihi fixed-point)
    reference does not support, so the circuit has no fixed-point path yet.
    As ``T → ∞`` with a non-leaky unit, the circuit has the equilibria of the
    rate PC with ``f = clip(·, 0, 1)``. Related, not followed: Ororbia 2019,
    spiking neural coding (arXiv 1908.08655), a different spiking predictive
    formulation with its own error units and update rule; not reproduced here.
    """
    sizes = layer_sizes(sizes)
    L = len(sizes) - 1
    clamp = L if clamp_step is None else int(clamp_step)
    target_rate = 1.0 if target_rate is None else target_rate
    if window < max(2 * len(sizes), clamp + 2):
        raise ValueError(f"window={window} is too short for {L} layers (clamp at step "
                         f"{clamp}): use at least {max(2 * len(sizes), clamp + 2)}")
    trace = trace or rate_trace(window)
    out_lif = out_lif or lif
    tv = trace.var
    names = ["x"] + [f"h{l}" for l in range(1, L)] + ["out"]
    rails = ("ep", "en") if two_rail else ()
    rail_update = ("ep = relu(eps)", "en = relu(-eps)") if two_rail else ()
    predict = (f"m = where({AT_START}, 0, m + ff)", "mu = m / maximum(tw, 1)")
    pops = [spike_input("x", sizes[0], window, encoder, trace)]
    if bias:
        pops.append(always_on("bias", window, trace))
    for l in range(1, L):
        pops.append(Population(
            f"h{l}", sizes[l], ("m", "mu", "x", "eps", "dr", *lif.variables, tv, *rails),
            update=(*predict,
                    f"eps = where(tw <= {l}, 0, eps + gamma * (-eps + dr * fb))",
                    "x = mu + eps", "dr = step(x) * step(thr - x) / thr",
                    *lif.statements("x"), trace.statement("s"), *rail_update),
            ports=("ff", "fb"), output="s",
            params={**lif.params, **trace.params, "gamma": float(gamma)}, model="lif"))
    pops.append(Population(
        "out", sizes[-1], ("m", "mu", "x", "y", "eps", *out_lif.variables, tv, *rails),
        update=(*predict, f"x = where(train * (tw >= {clamp}), target * y, mu)",
                "eps = x - mu", *out_lif.statements("x"), trace.statement("s"), *rail_update),
        ports=("ff",), output="s", streams={"y": "y"},
        params={**out_lif.params, **trace.params, "target": float(target_rate)}, model="lif"))
    params = {"eta": float(eta)}
    if two_rail:
        fwd = Rule(f"dw = eta * post.ep * pre.{tv} - eta * post.en * pre.{tv}", params)
        back = Rule(f"dw = eta * post.{tv} * pre.ep - eta * post.{tv} * pre.en", params)
    else:
        fwd = Rule(f"dw = eta * post.eps * pre.{tv}", params)
        back = Rule(f"dw = eta * post.{tv} * pre.eps", params)
    projs = forward_projections(names, fwd, bias, Init("xavier", scale=init_scale))
    for l in range(1, L):
        projs.append(Projection(f"B{l}", names[l + 1], names[l], "fb", variable="eps",
                                init=Init("transpose_of", of=f"W{l + 1}"), rule=back))
    meta = {"builder": "spiking_pc", "rule": "pc", "sizes": sizes, "eta": eta, "gamma": gamma,
            "window": window, "clamp_step": clamp, "target_rate": target_rate,
            "two_rail": two_rail, "lif": _asdict(lif), "out_lif": _asdict(out_lif),
            "trace": _asdict(trace), "encoder": _asdict(encoder)}
    return Circuit(name=name or f"spiking_pc_{'-'.join(map(str, sizes))}",
                   populations=tuple(pops), projections=tuple(projs),
                   schedule=Schedule(window=window), streams={"x": sizes[0], "y": sizes[-1]},
                   readout=("out", tv), metadata=meta)


def spiking_inference(sizes, window: int = 24, lif=None, out_lif=None,
                      trace: Trace | None = None, encoder: RateEncoder = RateEncoder(),
                      bias: bool = True, stagger: bool = True, init_scale: float = 1.0,
                      name: str | None = None) -> Circuit:
    """A spiking MLP ``sizes = [n_in, ..., n_out]`` for inference only, its hidden
    layers Lava's own LIF (:class:`~neuro_pc.models.spiking.neurons.LavaLIF`): a
    trained :func:`spiking_mlp` deployed without its learning variables.

    Names are :func:`spiking_mlp`'s (``x``, ``bias``, ``h1 …``, ``out``; ``W_l``,
    ``b_l``, no feedback), so its trained weights load with
    :func:`inference_weights`. ``x`` is the deterministic rate encoder, ``bias``
    one unit spiking at every step; ``h_l`` is exactly ``lif`` (``v``, ``s``:
    nothing else, so it runs on Lava's LIF models); ``out`` is ``out_lif`` plus
    the rate trace ``tr`` (the readout), a custom population.

    stagger: layer ``l`` restarts at window step ``l`` (``out`` at ``L``), the
    first step at which its input comes from this window's spikes only (one
    step per projection), so every window is independent of the previous one,
    as with the project's :class:`~neuro_pc.models.spiking.neurons.LIF`. Without it
    every layer restarts at step 0 and adds what arrives then: the previous
    window's last spikes. The
    readout counts ``out``'s spikes from its restart to the window's end
    (``T − L`` steps with the stagger), times the trace's impulse (``1/T``).
    """
    sizes = layer_sizes(sizes)
    _check_window(window, sizes)
    lif = LavaLIF() if lif is None else lif
    out_lif = lif if out_lif is None else out_lif
    trace = trace or rate_trace(window)
    L = len(sizes) - 1
    names = ["x"] + [f"h{l}" for l in range(1, L)] + ["out"]

    def at(neuron, k):
        return neuron.at_step(k if stagger else 0) if isinstance(neuron, LavaLIF) else neuron

    pops = [Population("x", sizes[0], ("r", "acc", "s"), update=encoder.statements("r"),
                       output="s", streams={"r": "x"}, params=encoder.params,
                       model="spike_input")]
    if bias:
        pops.append(Population("bias", 1, ("s",), output="s", init={"s": 1.0},
                               model="spike_input"))
    for l in range(1, L):
        n = at(lif, l)
        pops.append(Population(f"h{l}", sizes[l], n.variables, update=n.statements("ff"),
                               ports=("ff",), output="s", params=n.params, model="lif"))
    n = at(out_lif, L)
    tv = trace.var
    if isinstance(n, LavaLIF) and n.reset_step is not None and trace.window_reset:
        count = f"{tv} = where(tw == {int(n.reset_step)}, 0, {tv} * {tv}_decay) + {tv}_imp * s"
    else:
        count = trace.statement("s")
    pops.append(Population("out", sizes[-1], (*n.variables, tv),
                           update=(*n.statements("ff"), count), ports=("ff",), output="s",
                           params={**n.params, **trace.params}, model="lif"))
    projs = forward_projections(names, None, bias, Init("xavier", scale=init_scale))
    meta = {"builder": "spiking_inference", "sizes": sizes, "window": window,
            "stagger": stagger, "lif": _asdict(lif), "out_lif": _asdict(out_lif),
            "trace": _asdict(trace), "encoder": _asdict(encoder)}
    return Circuit(name=name or f"spiking_inference_{'-'.join(map(str, sizes))}",
                   populations=tuple(pops), projections=tuple(projs),
                   schedule=Schedule(window=window), streams={"x": sizes[0]},
                   readout=("out", tv), metadata=meta)


def inference_weights(circuit: Circuit, weights: dict) -> dict:
    """The entries of ``weights`` (e.g. a trained :func:`spiking_mlp`'s) that
    ``circuit`` has projections for (its ``W_l``, ``b_l``; the feedback is dropped)."""
    names = {p.name for p in circuit.projections}
    return {k: np.asarray(v, dtype=np.float64) for k, v in weights.items() if k in names}


def spike_variables(circuit: Circuit) -> list[tuple[str, str]]:
    """``(population, "s")`` for every population that emits spikes per step."""
    return [(p.name, "s") for p in circuit.populations
            if p.model in ("lif", "spike_input") and "s" in p.variables and p.update]
