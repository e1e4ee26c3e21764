"""Spiking circuits: LIF neurons, Loihi-style spike traces, spike encoders, and
spiking FA / DFA learning circuits, all written in the IR's per-step statement
language (no IR extension), so every backend that compiles update statements
generically runs them unchanged.

Time is discrete (step ``dt``, one IR step). Every spiking population starts
each presentation window from rest: at ``tw == 0`` its state is reset and the
port value of that step (which carries the *previous* sample's last spikes,
because every projection has a one-step delay) is ignored. Windows are
therefore independent, whatever a backend does between them.

Neuron models
-------------
:class:`LIF` (leaky integrate-and-fire), per step, with drive ``I`` (a port,
i.e. ``sum W @ pre.s`` of the previous step's spikes)::

    i   = i * i_decay + I                       (current-based only)
    v   = where(ref > 0, v_reset, v * v_decay + i)   (or ``+ I``, voltage-based)
    ref = maximum(ref - 1, 0)                   (refractory only)
    s   = step(v - thr)                         spike: 1.0 where v > thr
    v   = v - thr * s  |  where(s > 0, v_reset, v)   reset by subtraction | to v_reset
    ref = ref + t_ref * s                       (refractory only)

``v_decay = exp(-dt / tau_m)`` (1: a non-leaky integrate-and-fire unit). With a
constant drive ``I`` (voltage-based, reset to 0, ``t_ref`` refractory steps)
the unit fires with period ``t_ref + k*`` steps, ``k*`` the first ``k`` with
``I (1 - v_decay**k) / (1 - v_decay) > thr`` (:func:`lif_rate`, the discrete
f–I curve; its ``dt → 0`` limit is the textbook
``1 / (t_ref + tau_m ln(I tau_m / (I tau_m - thr)))``). A non-leaky unit that
resets by subtraction fires at exactly ``clip(I / thr, 0, 1)`` spikes per step
in the long run: the spiking counterpart of a clipped ReLU.

:class:`Trace` (a Loihi / Lava learning-engine trace): per step ::

    tr = tr * decay + impulse * s,      decay = exp(-dt / tau)

i.e. it decays multiplicatively every step and jumps by ``impulse`` at each
spike. This is the floating-point form of Lava's ``LearningDense`` traces
(``x1``/``y1``: ``exp(-t/tau) * trace`` then ``+ impulse`` on a spike;
``lava/magma/core/model/py/connection.py``); on chip (Lava ``fixed_pt``) the
trace is additionally stochastically rounded and clipped to 7 bits
(``[0, 127]``). ``decay = 1`` (``tau = inf``) makes it a spike counter; with
``impulse = 1 / T`` it is the spike *rate* over the window.

Encoders
--------
:class:`RateEncoder`: a deterministic integrate-and-fire accumulator per input
``r`` (clipped to ``[0, 1]``)::

    acc = where(tw < 1, phase, acc) + clip(gain * r, 0, 1)
    s   = step(acc - 1)
    acc = acc - s

It emits exactly ``max(ceil(phase + T q) - 1, 0)`` spikes in ``T`` steps, ``q =
clip(gain r, 0, 1)`` (:func:`encoder_count`), evenly spread: the same spikes on
every backend, no random numbers.

:func:`poisson_spikes`: Poisson (Bernoulli per step) spike trains from rates
with an explicit seed. The IR has no per-step random source and its streams
are constant over a window, so this encoder is a **data-level
pre-generation** (arrays ``(n, T, n_in)``) for analysis and for backends'
spike-train inputs; it cannot yet drive an IR circuit (see docs/models/spiking.md
for the IR change it needs).

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

import math
from dataclasses import dataclass

import numpy as np

from neuro_pc.ir import Circuit, Init, Population, Projection, Rule, Schedule
from neuro_pc.models.rate import forward_projections

SPIKING_RULES = ("fa", "dfa")
RESETS = ("subtract", "zero")

#: the window-start condition: true at the first step of every window
AT_START = "tw < 1"


# --------------------------------------------------------------------------- neurons
@dataclass(frozen=True)
class LIF:
    """A leaky integrate-and-fire neuron, in units of the threshold and steps.

    v_decay: per-step membrane decay ``exp(-dt/tau_m)`` (1.0: no leak).
    thr: firing threshold (a spike when ``v > thr``).
    reset: ``"subtract"`` (``v -= thr``, keeps the overshoot) or ``"zero"``
        (``v = v_reset``).
    v_reset: the reset (and refractory clamp) potential of ``reset="zero"``.
    refractory: steps after a spike during which ``v`` is held at ``v_reset``
        and the input is ignored (0: none).
    i_decay: ``None`` for a voltage-based unit (the drive adds to ``v``), or
        the per-step decay ``exp(-dt/tau_syn)`` of a synaptic current ``i``
        that the drive feeds (current-based, two state variables).
    """

    v_decay: float = 1.0
    thr: float = 1.0
    reset: str = "subtract"
    v_reset: float = 0.0
    refractory: int = 0
    i_decay: float | None = None

    def __post_init__(self):
        if self.reset not in RESETS:
            raise ValueError(f"LIF reset must be one of {RESETS}, got {self.reset!r}")
        if not 0.0 <= self.v_decay <= 1.0:
            raise ValueError(f"LIF v_decay must be in [0, 1] (exp(-dt/tau)), got {self.v_decay}")
        if self.i_decay is not None and not 0.0 <= self.i_decay <= 1.0:
            raise ValueError(f"LIF i_decay must be None or in [0, 1], got {self.i_decay}")
        if self.thr <= 0:
            raise ValueError(f"LIF thr must be positive, got {self.thr}")
        if int(self.refractory) != self.refractory or self.refractory < 0:
            raise ValueError(f"LIF refractory must be a whole number of steps >= 0, "
                             f"got {self.refractory}")

    @classmethod
    def from_tau(cls, tau_m: float, dt: float = 1.0, tau_syn: float | None = None, **kw) -> "LIF":
        """``v_decay = exp(-dt/tau_m)`` (``tau_m = inf``: no leak), likewise ``tau_syn``."""
        return cls(v_decay=_decay(tau_m, dt),
                   i_decay=None if tau_syn is None else _decay(tau_syn, dt), **kw)

    @property
    def variables(self) -> tuple[str, ...]:
        return (("i",) if self.i_decay is not None else ()) + ("v", "s") + \
            (("ref",) if self.refractory else ())

    @property
    def params(self) -> dict[str, float]:
        p = {"v_decay": float(self.v_decay), "thr": float(self.thr)}
        if self.i_decay is not None:
            p["i_decay"] = float(self.i_decay)
        if self.reset == "zero" or self.refractory:
            p["v_reset"] = float(self.v_reset)
        if self.refractory:
            p["t_ref"] = float(self.refractory)
        return p

    def statements(self, drive: str) -> tuple[str, ...]:
        """The update statements, with ``drive`` the input expression (a port)."""
        out = []
        if self.i_decay is not None:
            out.append(f"i = where({AT_START}, 0, i * i_decay + {drive})")
            drive = "i"
        leak = "v" if self.v_decay == 1.0 else "v * v_decay"
        if self.refractory:
            out.append(f"v = where({AT_START}, 0, where(ref > 0, v_reset, {leak} + {drive}))")
            out.append(f"ref = where({AT_START}, 0, maximum(ref - 1, 0))")
        else:
            out.append(f"v = where({AT_START}, 0, {leak} + {drive})")
        out.append("s = step(v - thr)")
        out.append("v = v - thr * s" if self.reset == "subtract"
                   else "v = where(s > 0, v_reset, v)")
        if self.refractory:
            out.append("ref = ref + t_ref * s")
        return tuple(out)


@dataclass(frozen=True)
class LavaLIF:
    """Lava's own LIF neuron (``lava.proc.lif``: ``LIF`` / ``LIFReset``) in the IR.

    Per step, with drive ``I`` (a port), exactly Lava's float model
    (``AbstractPyLifModelFloat``; ``du = 1 - i_decay``, ``dv = 1 - v_decay``)::

        i = where(tw == k, 0, i * (1 - du)) + I           (current-based: Lava's u)
        v = where(tw == k, 0, v * (1 - dv)) + i + bias    (voltage-based: ... + I + bias)
        s = step(v - thr)                                 spike where v > thr
        v = where(s > 0, 0, v)                            reset to 0

    ``where(tw == k, 0, ·)`` is ``LIFReset``: at window step ``k`` (``reset_step``)
    ``u`` and ``v`` restart at 0 **and that step's input is added** (unlike
    :class:`LIF`, which ignores the port at the window's first step); with
    ``reset_step=None`` the unit never restarts (plain ``LIF``). The input at
    step ``k`` comes from the sources' step ``k - 1``; a layer ``l`` steps from
    the input therefore sees only the current window when ``k = l``
    (:func:`spiking_inference` staggers its layers so).

    Populations made of these statements and nothing else run on Lava's own
    LIF process models in both tags (``hardware_targets.neurons``); in
    ``fixed_pt`` that is the bit-accurate model: decays rounded to 12 bits,
    ``u`` and ``v`` with 6 more fractional bits than the messages, ``u``
    wrapping and ``v`` saturating at 24 bits (docs/backends/lava.md).

    v_decay, i_decay: per-step decays (``i_decay=None``: voltage-based, the
    drive adds to ``v``). thr: threshold (a spike when ``v > thr``). bias:
    added to ``v`` every step. reset_step: the window step of the restart.
    """

    v_decay: float = 1.0
    thr: float = 1.0
    i_decay: float | None = None
    bias: float = 0.0
    reset_step: int | None = 0

    def __post_init__(self):
        if not 0.0 <= self.v_decay <= 1.0:
            raise ValueError(f"LavaLIF v_decay must be in [0, 1], got {self.v_decay}")
        if self.i_decay is not None and not 0.0 <= self.i_decay <= 1.0:
            raise ValueError(f"LavaLIF i_decay must be None or in [0, 1], got {self.i_decay}")
        if self.thr < 0:
            raise ValueError(f"LavaLIF thr must be >= 0 (Lava's vth is unsigned), got {self.thr}")
        if self.reset_step is not None and (int(self.reset_step) != self.reset_step
                                            or self.reset_step < 0):
            raise ValueError(f"LavaLIF reset_step must be None or a step >= 0, "
                             f"got {self.reset_step}")

    @classmethod
    def from_tau(cls, tau_m: float, dt: float = 1.0, tau_syn: float | None = None, **kw):
        return cls(v_decay=_decay(tau_m, dt),
                   i_decay=None if tau_syn is None else _decay(tau_syn, dt), **kw)

    @property
    def variables(self) -> tuple[str, ...]:
        return (("i",) if self.i_decay is not None else ()) + ("v", "s")

    @property
    def params(self) -> dict[str, float]:
        p = {"dv": 1.0 - float(self.v_decay), "thr": float(self.thr), "bias": float(self.bias)}
        if self.i_decay is not None:
            p["du"] = 1.0 - float(self.i_decay)
        return p

    def statements(self, drive: str) -> tuple[str, ...]:
        """The update statements, with ``drive`` the input expression (a port)."""
        def restart(expr: str) -> str:
            return expr if self.reset_step is None else \
                f"where(tw == {int(self.reset_step)}, 0, {expr})"

        out = []
        if self.i_decay is not None:
            out.append(f"i = {restart('i * (1 - du)')} + {drive}")
            drive = "i"
        out.append(f"v = {restart('v * (1 - dv)')} + {drive} + bias")
        out.append("s = step(v - thr)")
        out.append("v = where(s > 0, 0, v)")
        return tuple(out)

    def declaration(self) -> dict:
        """The ``circuit.metadata["neurons"]`` entry builders record."""
        return {"model": "LavaLIF", **_asdict(self)}

    def at_step(self, k: int | None) -> "LavaLIF":
        """The same neuron restarting at window step ``k`` (unchanged if it never restarts)."""
        import dataclasses

        return self if self.reset_step is None else dataclasses.replace(self, reset_step=k)


def lif_rate(current: float | np.ndarray, lif: LIF) -> np.ndarray:
    """Discrete-time f–I curve: spikes per step of a voltage-based LIF with
    ``reset="zero"`` (``v_reset = 0``) under a constant drive ``current`` per step.

    The period is ``refractory + k*``, ``k*`` the smallest ``k >= 1`` with
    ``current * (1 + d + ... + d**(k-1)) > thr`` (``d = v_decay``); 0 if never.
    """
    if lif.i_decay is not None or lif.reset != "zero" or lif.v_reset != 0.0:
        raise ValueError("lif_rate is the f–I curve of a voltage-based LIF reset to 0")
    cur = np.atleast_1d(np.asarray(current, dtype=np.float64))
    d, thr = lif.v_decay, lif.thr
    rate = np.zeros_like(cur)
    for n, c in enumerate(cur):
        if c <= 0:
            continue
        if d == 1.0:
            k = math.floor(thr / c) + 1
        else:
            ceiling = c / (1.0 - d)          # the value v approaches
            if ceiling <= thr:
                continue
            k = math.floor(math.log(1.0 - thr * (1.0 - d) / c) / math.log(d)) + 1
            # guard the floating-point edge of the closed form
            while k > 1 and c * (1 - d ** (k - 1)) / (1 - d) > thr:
                k -= 1
            while c * (1 - d ** k) / (1 - d) <= thr:
                k += 1
        rate[n] = 1.0 / (lif.refractory + k)
    return rate


def lif_rate_continuous(current, tau_m: float, thr: float = 1.0, t_ref: float = 0.0):
    """The textbook continuous-time LIF f–I curve, rate per unit time:
    ``1 / (t_ref + tau_m ln(R / (R - thr)))`` with ``R = current * tau_m`` (the
    steady potential), 0 where ``R <= thr``."""
    cur = np.atleast_1d(np.asarray(current, dtype=np.float64))
    R = cur * tau_m
    out = np.zeros_like(R)
    ok = R > thr
    out[ok] = 1.0 / (t_ref + tau_m * np.log(R[ok] / (R[ok] - thr)))
    return out


@dataclass(frozen=True)
class Trace:
    """An exponential spike trace, Loihi style: ``tr = tr * decay + impulse * s``.

    decay: per-step factor ``exp(-dt/tau)`` (1.0: no decay, a counter).
    impulse: the jump per spike. ``var``: the variable's name.
    window_reset: restart at 0 at every window start (default). Loihi's
    learning engine never resets its traces; without the reset (and with
    ``decay**T`` negligible) a trace is exactly the chip's ``x1``/``y1``.
    """

    decay: float = 1.0
    impulse: float = 1.0
    var: str = "tr"
    window_reset: bool = True

    def __post_init__(self):
        if not 0.0 <= self.decay <= 1.0:
            raise ValueError(f"Trace decay must be in [0, 1] (exp(-dt/tau)), got {self.decay}")

    @classmethod
    def from_tau(cls, tau: float, dt: float = 1.0, impulse: float = 1.0, var: str = "tr"):
        return cls(decay=_decay(tau, dt), impulse=impulse, var=var)

    @property
    def params(self) -> dict[str, float]:
        return {f"{self.var}_decay": float(self.decay), f"{self.var}_imp": float(self.impulse)}

    def statement(self, spike: str = "s") -> str:
        v = self.var
        if not self.window_reset:
            return f"{v} = {v} * {v}_decay + {v}_imp * {spike}"
        return f"{v} = where({AT_START}, 0, {v} * {v}_decay) + {v}_imp * {spike}"

    def describe(self, spike: str = "s") -> dict:
        """Machine-readable form (circuit metadata ``spike_traces``): the trace of
        spike variable ``spike`` with Lava's ``tau`` in steps (``None``: no decay) and impulse."""
        tau = None if self.decay >= 1.0 else (0.0 if self.decay == 0 else
                                                  -1.0 / math.log(self.decay))
        return {"spike": spike, "decay": float(self.decay), "tau_steps": tau,
                "impulse": float(self.impulse), "window_reset": bool(self.window_reset)}

    def value_after(self, spike_steps, t: int) -> float:
        """Closed form at the end of step ``t`` for spikes at ``spike_steps`` (all
        within the window): ``sum impulse * decay**(t - t_k)``."""
        return float(sum(self.impulse * self.decay ** (t - k) for k in spike_steps if k <= t))

    def always_on(self, window: int) -> float:
        """The trace at the end of a window of a unit that spikes at every step."""
        return self.value_after(range(window), window - 1)


@dataclass(frozen=True)
class RateEncoder:
    """Deterministic rate coding by an integrate-and-fire accumulator.

    gain: spikes per step at input 1 (``gain * r`` is clipped to [0, 1]);
    phase: the accumulator's value at the window start (0.5 rounds the count
    to the nearest integer).
    """

    gain: float = 1.0
    phase: float = 0.5

    @property
    def params(self) -> dict[str, float]:
        return {"gain": float(self.gain), "phase": float(self.phase)}

    def statements(self, rate: str = "r") -> tuple[str, ...]:
        return (f"acc = where({AT_START}, phase, acc) + clip(gain * {rate}, 0, 1)",
                "s = step(acc - 1)",
                "acc = acc - s")


def encoder_count(rate, window: int, encoder: RateEncoder = RateEncoder()) -> np.ndarray:
    """Spikes a :class:`RateEncoder` emits in ``window`` steps:
    ``max(ceil(phase + T q) - 1, 0)``, ``q = clip(gain * rate, 0, 1)`` (``0 <= phase < 1``)."""
    q = np.clip(encoder.gain * np.asarray(rate, dtype=np.float64), 0.0, 1.0)
    return np.maximum(np.ceil(encoder.phase + window * q) - 1, 0.0)


def poisson_spikes(rates: np.ndarray, window: int, seed: int, gain: float = 1.0) -> np.ndarray:
    """Bernoulli spike trains ``(n, window, n_in)`` (float 0/1): at every step
    unit ``j`` of sample ``i`` spikes with probability ``clip(gain * rates[i, j], 0, 1)``.

    Data-level pre-generation from ``numpy.random.default_rng(seed)``; the IR
    cannot consume per-step random input yet (module docstring).
    """
    rates = np.atleast_2d(np.asarray(rates, dtype=np.float64))
    p = np.clip(gain * rates, 0.0, 1.0)[:, None, :]
    rng = np.random.default_rng(seed)
    return (rng.random((rates.shape[0], window, rates.shape[1])) < p).astype(np.float64)


def _decay(tau: float, dt: float) -> float:
    if tau is None or math.isinf(tau):
        return 1.0
    if tau <= 0:
        raise ValueError(f"a time constant must be positive, got {tau}")
    return math.exp(-dt / tau)


# --------------------------------------------------------------------------- populations
def spike_input(name: str, size: int, window: int, encoder: RateEncoder = RateEncoder(),
                trace: Trace | None = None, stream: str = "x") -> Population:
    """A population that turns the streamed rates ``r`` into spikes ``s``."""
    trace = trace or rate_trace(window)
    return Population(name, size, ("r", "acc", "s", trace.var),
                      update=(*encoder.statements("r"), trace.statement("s")),
                      output="s", streams={"r": stream},
                      params={**encoder.params, **trace.params}, model="spike_input")


def always_on(name: str, window: int, trace: Trace | None = None) -> Population:
    """One unit that spikes at every step (the bias), its trace held at the
    value a unit spiking at every step reaches at the window's end."""
    trace = trace or rate_trace(window)
    return Population(name, 1, ("s", trace.var), output="s",
                      init={"s": 1.0, trace.var: trace.always_on(window)}, model="spike_input")


def lif_population(name: str, size: int, lif: LIF = LIF(), trace: Trace | None = None,
                   ports: tuple[str, ...] = ("ff",), drive: str = "ff",
                   extra_variables: tuple[str, ...] = (), extra_update: tuple[str, ...] = (),
                   extra_params: dict | None = None, streams: dict | None = None,
                   window: int | None = None, model: str = "lif") -> Population:
    """A LIF population with a spike trace; ``extra_*`` append learning variables.

    Variables: ``v``, ``s`` (0/1 spikes, the output), the trace (``tr``),
    ``ref`` / ``i`` if refractory / current-based, then ``extra_variables``.
    """
    if trace is None:
        if window is None:
            raise ValueError("give a Trace or the window (for the default rate trace)")
        trace = rate_trace(window)
    return Population(name, size, (*lif.variables, trace.var, *extra_variables),
                      update=(*lif.statements(drive), trace.statement("s"), *extra_update),
                      ports=ports, output="s", streams=dict(streams or {}),
                      params={**lif.params, **trace.params, **(extra_params or {})}, model=model)


def rate_trace(window: int) -> Trace:
    """The default trace of the learning circuits: no decay, impulse ``1/T``,
    so that at the window's end it is the spike rate (spikes per step)."""
    return Trace(decay=1.0, impulse=1.0 / window)


# --------------------------------------------------------------------------- circuits
def spiking_mlp(sizes, rule: str = "fa", window: int = 24, eta: float = 0.01,
                lif: LIF = LIF(), out_lif: LIF | None = None, trace: Trace | None = None,
                encoder: RateEncoder = RateEncoder(), target_rate: float = 1.0,
                feedback_scale: float = 1.0, init_scale: float = 1.0, bias: bool = True,
                two_rail: bool = True, name: str | None = None) -> Circuit:
    """A spiking MLP ``sizes = [n_in, n_h1, ..., n_out]`` trained by spiking FA or DFA.

    Populations (the rate builders' names): ``x`` (:func:`spike_input`, stream
    ``x``: rates in [0, 1]), ``bias`` (:func:`always_on`), ``h1 …`` and ``out``
    (:class:`LIF`, output ``s``; ``out`` streams the one-hot target into ``y``);
    projections ``W1 …`` (forward, plastic), ``b1 …`` (bias, plastic),
    ``B1 …`` (fixed random feedback into ``h_l.fb``). Readout ``("out", "tr")``:
    the output spike rate at the window's end.

    Error and update, evaluated at every step (the values at the last step are
    the ones the rule uses):

    * output: ``delta = tr - target_rate * y`` (output spike rate vs target);
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
    :func:`rate_trace`); target_rate: spikes per step the correct output should
    fire; init_scale, feedback_scale: multiply the Xavier forward / feedback
    initialisations.
    """
    if rule not in SPIKING_RULES:
        raise ValueError(f"unknown spiking rule {rule!r}; choose one of {SPIKING_RULES}")
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list at least input and output widths >= 1, got {sizes}")
    if window < 2 * len(sizes):
        raise ValueError(f"window={window} is too short for {len(sizes) - 1} layers: spikes "
                         f"take one step per projection; use at least {2 * len(sizes)}")
    trace = trace or rate_trace(window)
    out_lif = out_lif or lif
    L = len(sizes) - 1
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
        extra_update=(f"delta = {trace.var} - target * y", *rail_update),
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
            "lif": _asdict(lif), "out_lif": _asdict(out_lif), "trace": _asdict(trace),
            "encoder": _asdict(encoder),
            # {population: {trace variable: its spike variable, decay, impulse}}: what a
            # chip mapper needs to carry pre.tr in the learning engine's x1 trace
            "spike_traces": {p.name: {trace.var: trace.describe("s")} for p in pops
                             if p.update}}
    return Circuit(name=name or f"spiking_{rule}_{'-'.join(map(str, sizes))}",
                   populations=tuple(pops), projections=tuple(projs),
                   schedule=Schedule(window=window), streams={"x": sizes[0], "y": sizes[-1]},
                   readout=("out", trace.var), metadata=meta)


def spiking_pc(sizes, window: int = 32, eta: float = 0.01, gamma: float = 0.2,
               lif: LIF = LIF(), out_lif: LIF | None = None, trace: Trace | None = None,
               encoder: RateEncoder = RateEncoder(), target_rate: float = 1.0,
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
    a :class:`LIF` (drive ``x`` per step, so a non-leaky unit fires
    ``clip(x / thr, 0, 1)`` spikes per step: its rate is ``f(x)``), and an error
    unit ``eps``. Per step:

    * prediction from the spikes of the layer below, averaged over the window so
      far (a running rate estimate): ``m = m + ff`` (``ff = W_l s_{l-1} + b_l``),
      ``mu = m / tw`` (so ``mu → W_l rate_{l-1} + b_l``);
    * hidden error and value: ``eps = 0`` for ``tw <= l`` (the feedforward
      sweep), then ``eps += gamma (−eps + f'(x) ⊙ fb)``, ``fb = B_l eps_{l+1}``;
      ``x = mu + eps``; ``f'(x) = step(x) step(thr − x) / thr`` (the derivative
      of the non-leaky unit's rate ``clip(x / thr, 0, 1)``; for leaky units an
      approximation);
    * output value: ``x = target_rate · y`` while training from step
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
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list at least input and output widths >= 1, got {sizes}")
    L = len(sizes) - 1
    clamp = L if clamp_step is None else int(clamp_step)
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
            "trace": _asdict(trace), "encoder": _asdict(encoder),
            "spike_traces": {p.name: {tv: trace.describe("s")} for p in pops if p.update}}
    return Circuit(name=name or f"spiking_pc_{'-'.join(map(str, sizes))}",
                   populations=tuple(pops), projections=tuple(projs),
                   schedule=Schedule(window=window), streams={"x": sizes[0], "y": sizes[-1]},
                   readout=("out", tv), metadata=meta)


def spiking_inference(sizes, window: int = 24, lif=None, out_lif=None,
                      trace: Trace | None = None, encoder: RateEncoder = RateEncoder(),
                      bias: bool = True, stagger: bool = True, init_scale: float = 1.0,
                      name: str | None = None) -> Circuit:
    """A spiking MLP ``sizes = [n_in, ..., n_out]`` for inference only, its hidden
    layers Lava's own LIF (:class:`LavaLIF`): a trained :func:`spiking_mlp`
    deployed without its learning variables.

    Names are :func:`spiking_mlp`'s (``x``, ``bias``, ``h1 …``, ``out``; ``W_l``,
    ``b_l``, no feedback), so its trained weights load with
    :func:`inference_weights`. ``x`` is the deterministic rate encoder, ``bias``
    one unit spiking at every step; ``h_l`` is exactly ``lif`` (``v``, ``s``:
    nothing else, so it runs on Lava's LIF models); ``out`` is ``out_lif`` plus
    the rate trace ``tr`` (the readout), a custom population.

    stagger: layer ``l`` restarts at window step ``l`` (``out`` at ``L``), the
    first step at which its input comes from this window's spikes only (one
    step per projection), so every window is independent of the previous one,
    as with the project's :class:`LIF`. Without it every layer restarts at step
    0 and adds what arrives then: the previous window's last spikes. The
    readout counts ``out``'s spikes from its restart to the window's end
    (``T − L`` steps with the stagger), times the trace's impulse (``1/T``).
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list at least input and output widths >= 1, got {sizes}")
    if window < 2 * len(sizes):
        raise ValueError(f"window={window} is too short for {len(sizes) - 1} layers: use at "
                         f"least {2 * len(sizes)}")
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
    neurons = {}
    for l in range(1, L):
        n = at(lif, l)
        pops.append(Population(f"h{l}", sizes[l], n.variables, update=n.statements("ff"),
                               ports=("ff",), output="s", params=n.params, model="lif"))
        if isinstance(n, LavaLIF):
            neurons[f"h{l}"] = n.declaration()
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
            "trace": _asdict(trace), "encoder": _asdict(encoder), "neurons": neurons}
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


def shipped_spiking_circuits(sizes=(8, 6, 4), window: int = 12) -> dict[str, Circuit]:
    """Small spiking circuits for cross-backend spike-train equality tests."""
    return {
        "spiking_fa": spiking_mlp(list(sizes), rule="fa", window=window, init_scale=3.0),
        "spiking_dfa": spiking_mlp([*sizes[:-1], sizes[-2], sizes[-1]], rule="dfa",
                                   window=window, init_scale=3.0),
        "spiking_fa_lif": spiking_mlp(list(sizes), rule="fa", window=window, init_scale=3.0,
                                      lif=LIF(v_decay=0.9, reset="zero", refractory=1),
                                      trace=Trace(decay=0.8, impulse=0.25)),
        "spiking_fa_cuba": spiking_mlp(list(sizes), rule="fa", window=window, init_scale=3.0,
                                       lif=LIF(v_decay=0.95, i_decay=0.5)),
        "spiking_pc": spiking_pc([*sizes[:-1], sizes[-2], sizes[-1]], window=window,
                                 init_scale=3.0, eta=0.05),
    }


def _asdict(obj) -> dict:
    import dataclasses

    return dataclasses.asdict(obj)


__all__ = ["LIF", "LavaLIF", "Trace", "RateEncoder", "SPIKING_RULES", "lif_rate",
           "lif_rate_continuous",
           "encoder_count", "poisson_spikes", "spike_input", "always_on", "lif_population",
           "rate_trace", "spiking_mlp", "spiking_pc", "spiking_inference", "inference_weights",
           "spike_variables", "shipped_spiking_circuits"]
