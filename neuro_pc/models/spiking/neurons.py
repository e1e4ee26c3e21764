"""The spiking units, each written as the IR update statements of one population:
the neurons (:class:`LIF`, :class:`LavaLIF`), the spike :class:`Trace` and the
:class:`RateEncoder`.

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
``I (1 - v_decay**k) / (1 - v_decay) > thr``
(:func:`~neuro_pc.models.spiking.closed_forms.lif_rate`, the discrete f–I curve;
its ``dt → 0`` limit is the textbook
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
clip(gain r, 0, 1)`` (:func:`~neuro_pc.models.spiking.closed_forms.encoder_count`),
evenly spread: the same spikes on every backend, no random numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

RESETS = ("subtract", "zero")

#: the window-start condition: true at the first step of every window
AT_START = "tw < 1"


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
    (:func:`~neuro_pc.models.spiking.builders.spiking_inference` staggers its layers so).

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

    def at_step(self, k: int | None) -> "LavaLIF":
        """The same neuron restarting at window step ``k`` (unchanged if it never restarts)."""
        import dataclasses

        return self if self.reset_step is None else dataclasses.replace(self, reset_step=k)


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


def _decay(tau: float, dt: float) -> float:
    if tau is None or math.isinf(tau):
        return 1.0
    if tau <= 0:
        raise ValueError(f"a time constant must be positive, got {tau}")
    return math.exp(-dt / tau)


def _asdict(obj) -> dict:
    import dataclasses

    return dataclasses.asdict(obj)
