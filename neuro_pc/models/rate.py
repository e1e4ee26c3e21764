"""Rate circuits: layered MLPs trained by BP, FA, DFA, sign-symmetry,
Kolen–Pollack, and discriminative predictive coding, built as IR.

Naming, shared by every builder so that weights and analyses line up:
populations ``x`` (input, stream ``x``), ``bias`` (one unit, always 1),
``h1 … h{L-1}`` (hidden), ``out`` (output, stream ``y`` the one-hot target);
forward projections ``W1 … WL`` (``W_l``: layer l-1 → l) and biases
``b1 … bL``; feedback projections ``B1 … B{L-1}`` into ``h_l.fb``.

Error-driven family (BP/FA/DFA/SS/KP), loss ``½‖r_out − y‖²`` with a linear
output: every layer has ``a = ff`` (pre-activation), ``r = f(a)`` and
``delta = fb * f'(a)`` (``= ∂L/∂a`` under BP), the output ``delta = r − y``.
With ``loss="ce"`` the output is a softmax, ``r = softmax(a)``, and the loss
the cross-entropy ``−Σ y log r``, whose gradient in ``a`` is the same
expression ``delta = r − y``.
Every forward rule is ``dw = -eta * post.delta * pre.r``: the rules differ
only in the feedback projection that delivers ``fb`` (``docs/models/rate.md``):

* **BP**: ``B_l`` tied to ``W_{l+1}ᵀ`` (weight transport: a marked baseline);
* **FA** (Lillicrap et al. 2016): ``B_l`` fixed random, from ``h_{l+1}.delta``;
* **DFA** (Nøkland 2016): ``B_l`` fixed random, from ``out.delta`` directly;
* **sign-symmetry** (Liao et al. 2016; Xiao et al. 2018): ``B_l = s·sign(W_{l+1})ᵀ``,
  ``s`` the Xavier std (sign transport: a marked baseline);
* **Kolen–Pollack** (Akrout et al. 2019): ``B_l`` plastic with the mirrored
  rule ``dw = -eta * post.r * pre.delta - lam * w`` and the same decay on ``W``.

With the input held for a window of ``T = 2L + 1`` steps (``L`` weight layers),
the one-step delays let the forward sweep settle by step ``L`` and the
feedback by step ``2L - 1``; the update at the window's end is then exactly
the algorithm's (tests/models/test_circuit_equals_algorithm.py).

**Discriminative PC** (Whittington & Bogacz 2017, Neural Comput. 29:1229):
value units ``x_l`` and error units ``eps_l = x_l − mu_l``, ``mu_l = W_l f(x_{l−1}) + b_l``.
The first steps of a window are a feedforward sweep (``x = mu``); then the
output is clamped to the target (while training) and hidden states descend
the energy ``Σ ½‖eps_l‖²``: ``x += gamma (−eps + f'(x) ⊙ B_l eps_{l+1})``.
The rule is ``dw = eta * post.eps * pre.r``. Feedback ``B_l`` starts as
``W_{l+1}ᵀ`` (a copy at set-up) and learns by the mirrored Hebbian rule
``dw = eta * post.r * pre.eps``, so it stays equal to ``W_{l+1}ᵀ`` without
any run-time weight transport (``feedback="tied"`` gives the transport
version as a marked baseline).
"""
from __future__ import annotations

import dataclasses
import math

from neuro_pc.ir import Circuit, Init, Population, Projection, Rule, Schedule, Tied

RULES = ("bp", "fa", "dfa", "ss", "kp", "pc")

#: output losses of :func:`mlp`: squared error on a linear output, or
#: cross-entropy on a softmax output (a population-level function)
LOSSES = ("mse", "ce")

#: activation -> (f(v), f'(v) written with r = f(v) and v), templates over {v}
ACTIVATIONS = {
    "tanh": ("tanh({v})", "1 - r**2"),
    "relu": ("relu({v})", "step({v})"),
    "sigmoid": ("sigmoid({v})", "r * (1 - r)"),
    "linear": ("{v}", "1.0 + 0 * {v}"),
}


def layer_sizes(sizes) -> list[int]:
    """``sizes`` as a list of ints: at least an input and an output width, each >= 1
    (else a ValueError naming them); every layered builder checks its widths here."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list at least input and output widths >= 1, got {sizes}")
    return sizes


def _check(sizes, rule, act):
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; choose one of {RULES}")
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; choose one of {sorted(ACTIVATIONS)}")
    return layer_sizes(sizes)


def _inputs(sizes, bias):
    pops = [Population("x", sizes[0], ("r",), streams={"r": "x"}, model="input")]
    if bias:
        pops.append(Population("bias", 1, ("r",), init={"r": 1.0}, model="input"))
    return pops


def mlp(sizes, rule: str = "fa", act: str = "tanh", eta: float = 0.01, lam: float = 0.0,
        bias: bool = True, window: int | None = None, gamma: float = 0.2,
        relax_steps: int = 20, feedback: str = "learned", feedback_scale: float = 1.0,
        out_precision: float = 1.0, name: str | None = None, norm: str | None = None,
        muon: bool = False, muon_beta: float = 0.95, muon_lr: float = 0.02,
        leak: float = 1.0, loss: str = "mse") -> Circuit:
    """A layered MLP circuit ``sizes = [n_in, n_h1, ..., n_out]`` trained by ``rule``.

    The populations, projections and equations are those of the module's
    docstring (:mod:`neuro_pc.models.rate`). Leaky units (``leak < 1``) approach
    the algorithm's values geometrically (error ``(1-leak)^k`` after ``k``
    steps), so they need a longer ``window`` and then approximate the
    algorithm's update rather than equal it. The defaults
    (``norm=None, muon=False``) build exactly the circuits built before these
    options existed.

    Parameters
    ----------
    sizes : sequence of int
        The layer widths ``[n_in, n_h1, ..., n_out]``: at least the input and
        output widths, each ``>= 1``.
    rule : str, default "fa"
        The learning rule, one of :data:`RULES` (``"bp"``, ``"fa"``, ``"dfa"``,
        ``"ss"``, ``"kp"``, ``"pc"``).
    act : str, default "tanh"
        The hidden activation, a key of :data:`ACTIVATIONS`.
    eta : float, default 0.01
        The learning rate.
    lam : float, default 0.0
        Weight decay (Kolen–Pollack needs ``lam > 0`` to align).
    bias : bool, default True
        Give every layer a bias projection ``b_l`` from the one-unit ``bias``
        population.
    window : int, optional
        Steps per sample (default ``2L+1``, PC ``L + relax_steps``).
    gamma : float, default 0.2
        PC only: the inference rate.
    relax_steps : int, default 20
        PC only: the inference steps after the feedforward sweep.
    feedback : str, default "learned"
        PC only: ``"learned"`` (local, default) or ``"tied"`` (weight transport
        baseline).
    feedback_scale : float, default 1.0
        Multiplies the random feedback initialisation (FA/DFA).
    out_precision : float, default 1.0
        PC only: the output error is ``eps = out_precision * (x − mu)``
        (1/Σ_L of Whittington & Bogacz); as it shrinks the PC update approaches
        ``out_precision`` × BP's.
    name : str, optional
        The circuit's name (default from the rule, the options and ``sizes``).
    norm : str, optional
        Error-driven rules only: hidden-activity normalisation, a
        population-level operation inside every hidden population's update
        (one of :data:`NORMS`):

        * ``"layernorm"``: ``n = (a − ⟨a⟩)/σ`` (= ``layernorm(a)``, written with
          ``popmean`` so that ``σ`` is at hand), ``r = f(n)``; the error is the
          **exact** local derivative through the normalisation,
          ``g = fb ⊙ f'(n)``, ``delta = (g − ⟨g⟩ − n ⟨g ⊙ n⟩) / σ`` with ``⟨·⟩`` the
          mean over the layer's units (``popmean``) and ``σ = sqrt(var(a) + 1e-5)``
          (so under BP ``delta = ∂L/∂a`` still holds).
        * ``"batchnorm"``: ``n = (a − ⟨a⟩_B)/σ_B`` (= ``batchnorm(a)``, written with
          ``batchmean``: statistics over the batch, so use the batched mode; a
          batch of one normalises to 0), ``r = f(n)``, and the same exact
          derivative as layer norm with the batch in place of the layer:
          ``delta = (g − ⟨g⟩_B − n ⟨g ⊙ n⟩_B) / σ_B`` (so under BP ``delta``
          is the gradient of the batch's summed loss with respect to ``a``).
    muon : bool, default False
        Give the rules of the hidden forward weights ``W1 … W{L-1}`` the
        population-level transform ``("muon",)`` (momentum ``muon_beta``, then
        Newton–Schulz orthogonalisation of the layer's update) with rule params
        ``muon_beta`` and ``muon_lr``. The output layer and the biases keep the
        plain rule.
    muon_beta : float, default 0.95
        Muon's momentum.
    muon_lr : float, default 0.02
        The intended step size of the orthogonalised update, whose own scale
        is ~1 per singular direction.
    leak : float, default 1.0
        Error-driven rules only: ``dt/tau`` of leaky rate units,
        ``a = a + leak * (ff - a)``, in ``(0, 1]``; 1 (default) is the
        instantaneous unit ``a = ff``.
    loss : str, default "mse"
        ``"mse"``: a linear output and ``½‖r − y‖²``. ``"ce"``: a softmax
        output ``r = softmax(a)`` and the cross-entropy ``−Σ y log r``; the
        output's error is ``r − y`` either way (the gradient in ``a``). For PC
        the clamped output's error becomes ``y − softmax(mu)`` and the free
        output settles at ``softmax(mu)`` (error 0), the discriminative PC
        energy with a cross-entropy top term. The softmax reads the whole
        output layer (a population-level function); the predicted class, the
        argmax, is that of the logits ``a`` (:func:`logit_twin`).

    Returns
    -------
    Circuit
        The circuit (IR); its metadata records the builder and its options.

    Raises
    ------
    ValueError
        For an unknown ``rule``, ``act``, ``norm``, ``loss`` or PC ``feedback``, for
        ``sizes`` with fewer than two widths or a width below 1, for ``leak``
        outside ``(0, 1]`` or with ``rule="pc"``, and for ``norm`` with
        ``rule="pc"``.
    """
    sizes = _check(sizes, rule, act)
    if not 0.0 < leak <= 1.0:
        raise ValueError(f"leak = dt/tau must be in (0, 1], got {leak}")
    if leak != 1.0 and rule == "pc":
        raise ValueError("leak applies to the error-driven rules; PC's value units already "
                         "relax with gamma")
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; choose one of {NORMS}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {LOSSES}")
    if rule == "pc":
        if norm is not None:
            raise ValueError("norm is implemented for the error-driven rules (bp, fa, dfa, ss, "
                             "kp), not for predictive coding")
        circuit = _pc(sizes, act, eta, lam, bias, window, gamma, relax_steps, feedback,
                      out_precision, name, loss)
        return _with_muon(circuit, len(sizes) - 1, muon_beta, muon_lr) if muon else circuit
    L = len(sizes) - 1
    f, df = (t.format(v="a") for t in ACTIVATIONS[act])
    pops = _inputs(sizes, bias)
    for l in range(1, L):
        if norm is None:
            pops.append(Population(f"h{l}", sizes[l], ("a", "r", "delta"), ports=("ff", "fb"),
                                   update=(_drive(leak), f"r = {f}", f"delta = fb * ({df})"),
                                   params=_leak_params(leak)))
        else:
            pops.append(_normed_hidden(f"h{l}", sizes[l], act, norm, leak))
    pops.append(Population("out", sizes[-1], ("a", "r", "y", "delta"), ports=("ff",),
                           streams={"y": "y"}, params=_leak_params(leak),
                           update=(_drive(leak), "r = softmax(a)" if loss == "ce" else "r = a",
                                   "delta = r - y")))
    names = ["x"] + [f"h{l}" for l in range(1, L)] + ["out"]
    baseline = rule in ("bp", "ss")
    decay = " - lam * w" if lam else ""
    params = {"eta": float(eta), **({"lam": float(lam)} if lam else {})}
    fwd_rule = Rule(f"dw = -eta * post.delta * pre.r{decay}", params, baseline=baseline)
    projs = forward_projections(names, fwd_rule, bias)
    for l in range(1, L):
        src = "out" if rule == "dfa" else names[l + 1]
        common = dict(source=src, target=names[l], port="fb", variable="delta")
        if rule == "bp":
            projs.append(Projection(f"B{l}", tied=Tied(f"W{l + 1}"), **common))
        elif rule == "ss":
            s = math.sqrt(2.0 / (sizes[l] + sizes[l + 1]))
            projs.append(Projection(f"B{l}", tied=Tied(f"W{l + 1}", fn="sign", scale=s), **common))
        elif rule in ("fa", "dfa"):
            projs.append(Projection(f"B{l}", init=Init("xavier", scale=feedback_scale), **common))
        elif rule == "kp":
            projs.append(Projection(
                f"B{l}", init=Init("xavier"),
                rule=Rule(f"dw = -eta * post.r * pre.delta{decay}", params), **common))
    T = window if window is not None else 2 * L + 1
    tag = (f"_{norm}" if norm else "") + ("_ce" if loss == "ce" else "") + ("_muon" if muon else "")
    meta = {"builder": "mlp", "rule": rule, "sizes": sizes, "act": act, "eta": eta, "lam": lam}
    if norm is not None:
        meta["norm"] = norm
    if loss != "mse":
        meta["loss"] = loss
    circuit = Circuit(name=name or f"{rule}{tag}_{'-'.join(map(str, sizes))}",
                      populations=tuple(pops), projections=tuple(projs),
                      schedule=Schedule(window=T), streams={"x": sizes[0], "y": sizes[-1]},
                      readout=("out", "r"), metadata=meta)
    return _with_muon(circuit, L, muon_beta, muon_lr) if muon else circuit


def logit_twin(circuit: Circuit) -> Circuit:
    """The circuit with its softmax output replaced by the logits, for inference.

    ``softmax`` is monotone, so the predicted class (the argmax of the
    readout) is the same; the twin runs where the softmax cannot, such as
    Lava's ``fixed_pt`` (no population functions, no ``exp``). Its training
    semantics are not the original's: use it for prediction only.

    Parameters
    ----------
    circuit : Circuit
        A circuit from :func:`mlp`; one built with ``loss="mse"`` is returned
        unchanged.

    Returns
    -------
    Circuit
        The same populations, projections and weight names, the output's
        ``softmax(a)`` (PC: ``softmax(mu)``) written as ``a`` (``mu``), named
        ``<name>_logits``.
    """
    if circuit.metadata.get("loss", "mse") != "ce":
        return circuit
    pops = []
    for p in circuit.populations:
        if p.name == "out":
            p = dataclasses.replace(p, update=tuple(
                u.replace("softmax(a)", "a").replace("softmax(mu)", "mu") for u in p.update))
        pops.append(p)
    meta = {**circuit.metadata, "loss": "mse", "logits_of": circuit.name}
    return circuit.replace(populations=tuple(pops), metadata=meta, name=f"{circuit.name}_logits")


#: hidden-activity normalisations of :func:`mlp` (None: none)
NORMS = (None, "layernorm", "batchnorm")


def forward_projections(names: list[str], rule: Rule, bias: bool,
                        init: Init = Init("xavier")) -> list[Projection]:
    """``W1 … WL`` (layer ``names[l-1]`` → ``names[l]``, port ``ff``) and, with
    ``bias``, ``b1 … bL`` from the ``bias`` unit (zero-initialised), all with
    ``rule``; in the order ``W1, b1, W2, b2, …`` every builder shares."""
    projs = []
    for l in range(1, len(names)):
        projs.append(Projection(f"W{l}", names[l - 1], names[l], "ff", init=init, rule=rule))
        if bias:
            projs.append(Projection(f"b{l}", "bias", names[l], "ff", init=Init("zeros"),
                                    rule=rule))
    return projs


def _drive(leak: float) -> str:
    """The pre-activation statement: instantaneous, or leaky with rate ``leak``."""
    return "a = ff" if leak == 1.0 else "a = a + leak * (ff - a)"


def _leak_params(leak: float) -> dict:
    return {} if leak == 1.0 else {"leak": float(leak)}


def _normed_hidden(name: str, size: int, act: str, norm: str, leak: float = 1.0) -> Population:
    """A hidden population ``r = f(norm(a))`` whose ``delta`` is ``∂L/∂a`` given ``fb = ∂L/∂r``:
    the exact derivative through the normalisation, over the layer's units
    (``popmean``, layer norm) or over the batch (``batchmean``, batch norm)."""
    f, df = (t.format(v="n") for t in ACTIVATIONS[act])
    mean = "popmean" if norm == "layernorm" else "batchmean"
    # n = layernorm(a) / batchnorm(a), written out so that sd is at hand for the derivative
    return Population(name, size, ("a", "c", "sd", "n", "r", "g", "delta"),
                      ports=("ff", "fb"), params=_leak_params(leak),
                      update=(_drive(leak), f"c = a - {mean}(a)",
                              f"sd = sqrt({mean}(c * c) + 1e-05)", "n = c / sd",
                              f"r = {f}", f"g = fb * ({df})",
                              f"delta = (g - {mean}(g) - n * {mean}(g * n)) / sd"))


def _with_muon(circuit: Circuit, L: int, beta: float, lr: float) -> Circuit:
    """``circuit`` with the Muon transform on the rules of ``W1 … W{L-1}``."""
    hidden = {f"W{l}" for l in range(1, L)}
    projs = []
    for p in circuit.projections:
        if p.name in hidden and p.rule is not None:
            rule = dataclasses.replace(
                p.rule, params={**p.rule.params, "muon_beta": float(beta), "muon_lr": float(lr)},
                transforms=tuple(p.rule.transforms) + ("muon",))
            p = dataclasses.replace(p, rule=rule)
        projs.append(p)
    meta = {**circuit.metadata, "muon": True, "muon_beta": float(beta), "muon_lr": float(lr)}
    name = circuit.name if "muon" in circuit.name else circuit.name.replace("_", "_muon_", 1)
    return circuit.replace(projections=tuple(projs), metadata=meta, name=name)


def _pc(sizes, act, eta, lam, bias, window, gamma, relax_steps, feedback, out_precision,
        name, loss="mse") -> Circuit:
    if feedback not in ("learned", "tied"):
        raise ValueError(f"PC feedback must be 'learned' or 'tied', got {feedback!r}")
    L = len(sizes) - 1
    f_x, df_x = (t.format(v="x") for t in ACTIVATIONS[act])
    pops = _inputs(sizes, bias)
    for l in range(1, L):
        pops.append(Population(
            f"h{l}", sizes[l], ("mu", "x", "eps", "r", "dr"), ports=("ff", "fb"),
            params={"gamma": float(gamma)},
            update=("mu = ff",
                    f"x = where(tw <= {l}, mu, x + gamma * (-eps + dr * fb))",
                    "eps = x - mu", f"r = {f_x}", f"dr = {df_x}"),
            model="pc"))
    pred = "softmax(mu)" if loss == "ce" else "mu"   # the free output's value
    out_eps = f"eps = x - {pred}" if out_precision == 1.0 else f"eps = precision * (x - {pred})"
    pops.append(Population("out", sizes[-1], ("mu", "x", "eps", "r", "y"), ports=("ff",),
                           streams={"y": "y"}, model="pc",
                           params={} if out_precision == 1.0 else
                           {"precision": float(out_precision)},
                           update=("mu = ff", f"x = where(train * (tw >= {L}), y, {pred})",
                                   out_eps, "r = x")))
    names = ["x"] + [f"h{l}" for l in range(1, L)] + ["out"]
    decay = " - lam * w" if lam else ""
    params = {"eta": float(eta), **({"lam": float(lam)} if lam else {})}
    tied = feedback == "tied"
    fwd = Rule(f"dw = eta * post.eps * pre.r{decay}", params, baseline=tied)
    projs = forward_projections(names, fwd, bias)
    for l in range(1, L):
        common = dict(source=names[l + 1], target=names[l], port="fb", variable="eps")
        if tied:
            projs.append(Projection(f"B{l}", tied=Tied(f"W{l + 1}"), **common))
        else:
            projs.append(Projection(f"B{l}", init=Init("transpose_of", of=f"W{l + 1}"),
                                    rule=Rule(f"dw = eta * post.r * pre.eps{decay}", params),
                                    **common))
    T = window if window is not None else L + relax_steps
    meta = {"builder": "mlp", "rule": "pc", "sizes": sizes, "act": act, "eta": eta, "lam": lam,
            "gamma": gamma, "feedback": feedback, "out_precision": out_precision}
    if loss != "mse":
        meta["loss"] = loss
    tag = "_ce" if loss == "ce" else ""
    return Circuit(name=name or f"pc{tag}_{'-'.join(map(str, sizes))}", populations=tuple(pops),
                   projections=tuple(projs), schedule=Schedule(window=T),
                   streams={"x": sizes[0], "y": sizes[-1]}, readout=("out", "x"),
                   metadata=meta)
