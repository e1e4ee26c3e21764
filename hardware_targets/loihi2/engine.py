"""Loihi's learning engine, emulated: the one statement of its semantics.

A learning synapse block (Lava's ``LearningDense``) is a weight matrix ``w``
``(n_post, n_pre)`` with pre traces ``x1, x2`` (one per pre neuron), post
traces ``y1, y2, y3`` (one per post neuron) and a rule ``dw`` that is a **sum
of products** (:class:`EngineRule`)::

    dw = sum_i  S_i * D_i * prod_j (V_ij + C_ij)

``D_i`` a dependency (``x0``: the pre neuron spiked in the epoch, ``y0``: the
post neuron sent a back-propagating action potential, ``u``: every epoch),
``S_i = s_mant * 2**s_exp`` (4-bit mantissa), ``V_ij`` a trace or the weight.

:class:`EngineSynapses` executes one block step by step, in the order Lava
0.10's process models do (``lava/proc/dense/models.py``,
``lava/magma/core/model/py/connection.py``,
``lava/magma/core/learning/learning_rule_applier.py``), in two arithmetics:

``"float"`` (Lava ``floating_pt``)
    traces and weights are floats; nothing is rounded or clipped.
``"fixed"`` (Lava ``fixed_pt``, the *bit-approximate* Loihi model)
    7-bit unsigned traces, 9-bit signed weight register, a 16-bit signed
    accumulator, stochastic rounding driven by seeded generators.

Per time step (``step``), with ``t`` the step counted from 1 in the run:

1. **send** ``a_buff`` (the activation computed the step before): every
   synapse block delays by one step;
2. ``a_buff = w @ s`` with the weights *before* this step's learning
   (``fixed``: ``(w @ s) >> -weight_exp``), so new weights reach the post
   neuron two steps after the epoch that learned them;
3. **pre spikes** ``s`` (a nonzero payload is a spike; **a zero payload is no
   spike**): graded ``"overwrite"`` sets ``x1 = s / 2`` (``fixed``:
   ``round(s / 2)`` to an unsigned byte) where ``s != 0``; ``"impulse"``
   (binary spikes) adds the impulse to ``x1``/``x2`` at once for the second
   and later spikes of an epoch; the within-epoch time of the last spike is
   kept in ``tx``;
4. **post**: ``bap`` marks ``y0``/``ty``; the three post traces are
   *overwritten* with the values the post neuron sends (three-factor rules);
5. at the end of every epoch (``t % t_epoch == 0``) **learning**: the traces'
   history over the epoch is rebuilt from the values now held: row 0 is the
   current value, each of the ``t_epoch`` rows after it decays the one before
   by ``exp(-1/tau)`` (a trace whose ``tau`` is 0 is **zero** in every later
   row: it does not survive the epoch) and adds the impulse at the recorded
   spike time; a product gated by ``u`` reads the last row, by ``x0``/``y0``
   the row of that neuron's spike time. The pre traces then take the last
   row's values; the weights change by the rule; spike flags reset.

The fixed arithmetic of a product (``LearningRuleApplierBitApprox``): each
factor is clipped to its width, the product times ``s_mant`` is shifted right
by ``max(0, widths + 4 - 15)`` (a floor), then left by ``s_exp + 7``, and
added to the accumulator ``w << 7`` with saturation at ``±(2**15 - 1)``; the
sum is rounded stochastically to whole weight steps and clipped to the
register ``[-256, 255]``. So one unit of a product is ``2**(s_exp - 7)``
weight steps *after* the floor: the float model has no such floor and no
``>> shift`` — a rule string means ``2**shift`` times less in ``fixed`` than
in ``float``; :func:`product_shift` gives the shift.

Random numbers (``fixed``): like Lava, two generators per side
(``default_rng(seed)``, ``seed + 1`` for x; ``seed + 2``, ``seed + 3`` for y)
advance twice per step; the weights' stochastic rounding draws from
``default_rng(2)`` once per epoch. Equal seeds give equal runs.

This module imports only NumPy; the Lava backend's ``LearningDense`` must
equal it (``float`` to rounding, ``fixed`` bit for bit: tests in
``tests/hardware_targets/test_engine.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

__all__ = ["Factor", "Product", "EngineRule", "EngineSynapses", "product_shift",
           "TRACE_BITS", "TRACE_MAX", "WEIGHT_RANGE", "ACCUMULATOR_MAX", "GRADED_MODES"]

#: widths of Lava 0.10's bit-approximate engine (lava/magma/core/learning/constants.py)
TRACE_BITS = 7                      # W_TRACE
TRACE_MAX = (1 << TRACE_BITS) - 1
TRACE_FRAC_BITS = 8                 # W_TRACE_FRACTIONAL_PART: impulses' fraction
WEIGHT_BITS_U = 8                   # W_WEIGHTS_U
WEIGHT_RANGE = (-(1 << WEIGHT_BITS_U), (1 << WEIGHT_BITS_U) - 1)   # mixed sign
ACCUMULATOR_U = 15                  # W_ACCUMULATOR_U
ACCUMULATOR_MAX = (1 << ACCUMULATOR_U) - 1
ACCUMULATOR_MIN = -(1 << ACCUMULATOR_U) - 1
ACC_SHIFT = 16 - (WEIGHT_BITS_U + 1)          # W_ACCUMULATOR_S - W_WEIGHTS_S = 7
S_MANT_BITS = 4                     # W_S_MANT
FACTOR_BITS = {"x0": 1, "y0": 1, "x1": TRACE_BITS, "x2": TRACE_BITS, "y1": TRACE_BITS,
               "y2": TRACE_BITS, "y3": TRACE_BITS, "w": WEIGHT_BITS_U + 1}
TRACES = ("x1", "x2", "y1", "y2", "y3")
DEPENDENCIES = ("x0", "y0", "u")
#: how a pre spike's payload reaches the pre traces (Lava GradedSpikeCfg)
GRADED_MODES = ("impulse", "overwrite")
#: the post traces' tau of a three-factor rule (Lava: np.iinfo(np.uint16).max)
THREE_FACTOR_Y_TAU = 65535
#: Lava ConnVarRandom's default seed (the weights' stochastic rounding)
CONN_VAR_SEED = 2


@dataclass(frozen=True)
class Factor:
    """``(var + const)``, or ``sgn(var + const)``; ``var`` a trace, ``"w"`` or a
    dependency (a number on its own is not a factor: Lava folds it into the
    product's scaling mantissa)."""

    var: str
    const: int = 0
    sgn: bool = False

    def __post_init__(self):
        if self.var not in FACTOR_BITS:
            raise ValueError(f"unknown engine factor {self.var!r}; known: {sorted(FACTOR_BITS)}")
        if self.sgn and self.var != "w":
            raise ValueError("sgn() applies to the weight only")

    def lava(self) -> str:
        inner = self.var if not self.const else \
            f"{self.var} {'+' if self.const > 0 else '-'} {abs(self.const)}"
        if self.sgn:
            return f"sgn({inner})"
        return f"({inner})" if self.const else inner


@dataclass(frozen=True)
class Product:
    """``mantissa * 2**exp * dependency * factors...`` (``mantissa`` in [-8, 7],
    ``exp`` in [-7, 8], Lava's ``s_mantissa`` and written exponent)."""

    mantissa: int
    exp: int
    dependency: str
    factors: tuple[Factor, ...] = ()

    def __post_init__(self):
        if not -8 <= self.mantissa <= 7 or self.mantissa == 0:
            raise ValueError(f"scaling mantissa {self.mantissa} is outside [-8, 7] \\ {{0}}")
        if not -7 <= self.exp <= 8:
            raise ValueError(f"scaling exponent {self.exp} is outside [-7, 8]")
        # Lava halves an even mantissa beyond 7 (-8 -> -4, exponent + 1); the fixed
        # engine's floor then differs, so the canonical form is Lava's
        m, e = self.mantissa, self.exp
        while abs(m) > 7 and m % 2 == 0 and e < 8:
            m, e = m // 2, e + 1
        object.__setattr__(self, "mantissa", m)
        object.__setattr__(self, "exp", e)
        if self.dependency not in DEPENDENCIES:
            raise ValueError(f"dependency {self.dependency!r} is not one of {DEPENDENCIES}")

    @property
    def scale(self) -> float:
        return self.mantissa * 2.0 ** self.exp

    def lava(self, first: bool) -> str:
        dep = "u0" if self.dependency == "u" else self.dependency
        body = " * ".join([dep] + [f.lava() for f in self.factors])
        m = self.mantissa if first else abs(self.mantissa)
        sign = "" if first else (" - " if self.mantissa < 0 else " + ")
        return f"{sign}{m}*2^{self.exp} * {body}"


def product_shift(product: Product) -> int:
    """The right shift the fixed engine applies to a product before scaling."""
    width = sum(FACTOR_BITS[f.var] for f in product.factors) + S_MANT_BITS
    return max(0, width - ACCUMULATOR_U)


@dataclass(frozen=True)
class EngineRule:
    """A compiled weight rule and its trace configuration (one ``LearningDense``).

    t_epoch: steps per learning epoch. graded: ``"overwrite"`` (graded
    payloads set ``x1 = s/2``) or ``"impulse"`` (binary spikes add
    ``x1_impulse``). taus in steps (0: the trace does not survive an epoch),
    impulses in trace units (8 fractional bits in ``fixed``). rng_seed: the
    trace generators' seed.
    """

    products: tuple[Product, ...]
    t_epoch: int = 1
    graded: str = "overwrite"
    x1_tau: float = 0.0
    x1_impulse: float = 0.0
    x2_tau: float = 0.0
    x2_impulse: float = 0.0
    y1_tau: float = 0.0
    y2_tau: float = 0.0
    y3_tau: float = 0.0
    y1_impulse: float = 0.0
    y2_impulse: float = 0.0
    y3_impulse: float = 0.0
    rng_seed: int = 0

    def __post_init__(self):
        if self.graded not in GRADED_MODES:
            raise ValueError(f"graded must be one of {GRADED_MODES}, got {self.graded!r}")
        if int(self.t_epoch) != self.t_epoch or self.t_epoch < 1:
            raise ValueError(f"t_epoch must be a whole number of steps >= 1, got {self.t_epoch}")
        for k in ("x1_tau", "x2_tau", "y1_tau", "y2_tau", "y3_tau", "x1_impulse",
                  "x2_impulse", "y1_impulse", "y2_impulse", "y3_impulse"):
            if getattr(self, k) < 0:
                raise ValueError(f"{k} must be >= 0")
        if self.three_factor:
            # Lava's Loihi3FLearningRule: the post neuron writes y1..y3 every step; the
            # synapse gives them tau = 65535 (uint16 max) and no impulse
            for k in ("y1", "y2", "y3"):
                object.__setattr__(self, f"{k}_tau", float(THREE_FACTOR_Y_TAU))
                object.__setattr__(self, f"{k}_impulse", 0.0)

    @property
    def lava_dw(self) -> str:
        """The rule in Lava's string syntax (``Loihi3FLearningRule(dw=...)``)."""
        return "".join(p.lava(k == 0) for k, p in enumerate(self.products))

    @property
    def three_factor(self) -> bool:
        return any(f.var in ("y1", "y2", "y3") for p in self.products for f in p.factors)

    def trace_kwargs(self) -> dict:
        """Keyword arguments of Lava's learning-rule classes (taus, impulses, epoch,
        seed). In ``"overwrite"`` mode Lava's ``LearningDense`` sets
        ``x1_impulse = 0`` itself."""
        names = ("x1_tau", "x1_impulse", "x2_tau", "x2_impulse")
        if not self.three_factor:
            names += ("y1_tau", "y1_impulse", "y2_tau", "y2_impulse", "y3_tau", "y3_impulse")
        kw = {k: getattr(self, k) for k in names}
        if self.graded == "overwrite":
            kw["x1_impulse"] = 0.0
        return {**kw, "t_epoch": int(self.t_epoch), "rng_seed": int(self.rng_seed)}

    def with_seed(self, seed: int) -> "EngineRule":
        return replace(self, rng_seed=int(seed))


# --------------------------------------------------------------------------- randomness
class _TraceRandom:
    """Lava's TraceRandom: a decay draw in [0, 1) and an impulse draw in [0, 128)."""

    def __init__(self, seed_decay: int, seed_impulse: int):
        self._rd = np.random.default_rng(seed=seed_decay)
        self._ri = np.random.default_rng(seed=seed_impulse)
        self.decay = self._rd.random(1)[0]
        self.impulse = self._ri.integers(0, 1 << TRACE_BITS, size=1, dtype=int)[0]

    def advance(self):
        self.decay = self._rd.random(1)[0]
        self.impulse = self._ri.integers(0, 1 << TRACE_BITS, size=1, dtype=int)[0]


def _stochastic_round(values, random, probabilities):
    return (values + (random < probabilities).astype(int)).astype(int)


# --------------------------------------------------------------------------- one block
@dataclass
class EngineSynapses:
    """One learning synapse block, stepped like Lava's ``LearningDense``.

    weights: ``(n_post, n_pre)``; ``fixed``: integers in the register (Lava's
    ``weights`` Var) with ``weight_exp`` and ``num_weight_bits``. ``graded``
    (``num_message_bits > 0``): payloads are values, else 0/1 spikes.
    Call :meth:`start_run` at the start of every Lava run (Lava truncates the
    weights to ``num_weight_bits`` at a run's first step), then
    :meth:`step` once per time step.
    """

    rule: EngineRule
    weights: np.ndarray
    mode: str = "fixed"
    weight_exp: int = 0
    num_weight_bits: int = 8
    graded_payload: bool = True
    a_buff: np.ndarray | None = None
    t: int = 0

    def __post_init__(self):
        if self.mode not in ("float", "fixed"):
            raise ValueError(f"mode must be 'float' or 'fixed', got {self.mode!r}")
        fixed = self.mode == "fixed"
        self.weights = np.array(self.weights, dtype=np.int64 if fixed else np.float64)
        n_post, n_pre = self.weights.shape
        self.shape = (n_post, n_pre)
        if self.a_buff is None:
            self.a_buff = np.zeros(n_post, dtype=np.int64 if fixed else np.float64)
        tr = np.int64 if fixed else np.float64
        self.x = np.zeros((2, n_pre), dtype=tr)          # x1, x2
        self.y = np.zeros((3, n_post), dtype=tr)         # y1, y2, y3
        self.tx = np.zeros(n_pre, dtype=np.int64)
        self.ty = np.zeros(n_post, dtype=np.int64)
        r = self.rule
        self._x_tau = np.array([r.x1_tau, r.x2_tau], dtype=np.float64)
        self._y_tau = np.array([r.y1_tau, r.y2_tau, r.y3_tau], dtype=np.float64)
        x_imp = np.array([0.0 if r.graded == "overwrite" else r.x1_impulse, r.x2_impulse])
        y_imp = np.array([r.y1_impulse, r.y2_impulse, r.y3_impulse])
        if fixed:
            self._x_imp = _split_impulse(x_imp)
            self._y_imp = _split_impulse(y_imp)
            self._xr = _TraceRandom(r.rng_seed, r.rng_seed + 1)
            self._yr = _TraceRandom(r.rng_seed + 2, r.rng_seed + 3)
            self._wr = np.random.default_rng(seed=CONN_VAR_SEED)
            self._w_random = self._wr.random(1)[0]
        else:
            self._x_imp, self._y_imp = x_imp, y_imp

    # -- a run -------------------------------------------------------------------------
    def start_run(self) -> None:
        """What Lava does at the first step of a run: in ``fixed``, truncate the
        weights to ``num_weight_bits`` (mixed sign: drop ``9 - num_weight_bits``
        low bits, a floor)."""
        if self.mode == "fixed":
            k = WEIGHT_BITS_U - self.num_weight_bits + 1
            self.weights = (self.weights >> k) << k

    def step(self, s, bap=None, y=None) -> np.ndarray:
        """One time step. ``s``: the pre payloads ``(n_pre,)``; ``bap``: post
        spikes ``(n_post,)`` bool; ``y``: the three post traces ``(3, n_post)``
        the post neuron sends (three-factor rules). Returns what the block sends
        to the post neurons at this step (computed at the step before)."""
        self.t += 1
        fixed = self.mode == "fixed"
        out = self.a_buff.copy()
        s = np.asarray(s, dtype=np.float64 if not fixed else np.int64)
        if not self.graded_payload:
            s = (s != 0)
        acc = self.weights @ (s.astype(self.weights.dtype))
        if fixed:
            e = self.weight_exp
            acc = acc << e if e > 0 else acc >> -e
        self.a_buff = acc
        self._pre(s)
        if fixed:
            self._xr.advance()
            self._yr.advance()
        bap = np.zeros(self.shape[0], dtype=bool) if bap is None else np.asarray(bap, bool)
        self._post(bap)
        if y is not None and self.rule.three_factor:
            self.y = np.array(y, dtype=self.y.dtype).reshape(3, self.shape[0])
        if fixed:
            self._xr.advance()
            self._yr.advance()
        if self.t % self.rule.t_epoch == 0:
            self._learn()
        return out

    # -- spikes --------------------------------------------------------------------------
    def _epoch_time(self) -> int:
        e = self.t % self.rule.t_epoch
        return e if e else self.rule.t_epoch

    def _pre(self, s) -> None:
        spiked = s.astype(bool)
        multi = (self.tx > 0) & spiked
        if self.mode == "fixed":
            if self.rule.graded == "impulse":
                self.x[0, multi] = _add_impulse(self.x[0, multi], 0, *self._x_imp_k(0))
            else:
                scaled = np.round(s / 2).astype(np.uint8)
                self.x[0, spiked] = scaled[spiked]
            self.x[1, multi] = _add_impulse(self.x[1, multi], 0, *self._x_imp_k(1))
        else:
            if self.rule.graded == "impulse":
                self.x[0, multi] += self._x_imp[0]
            else:
                self.x[0, spiked] = s[spiked] / 2
            self.x[1, multi] += self._x_imp[1]
        self.tx[spiked] = self._epoch_time()

    def _x_imp_k(self, k):
        return self._x_imp[0][k], self._x_imp[1][k]

    def _post(self, bap) -> None:
        multi = (self.ty > 0) & bap
        if self.mode == "fixed":
            self.y[:, multi] = _add_impulse(self.y[:, multi], self._yr.impulse,
                                            self._y_imp[0][:, None], self._y_imp[1][:, None])
        else:
            self.y[:, multi] += self._y_imp[:, None]
        self.ty[bap] = self._epoch_time()

    # -- learning ---------------------------------------------------------------------------
    def _histories(self):
        E = self.rule.t_epoch
        fixed = self.mode == "fixed"
        if fixed:
            xh = np.zeros((E + 1,) + self.x.shape, dtype=np.int64)
            yh = np.zeros((E + 1,) + self.y.shape, dtype=np.int64)
        else:
            xh = np.full((E + 1,) + self.x.shape, np.nan)
            yh = np.full((E + 1,) + self.y.shape, np.nan)
        xh[0], yh[0] = self.x, self.y
        xd, yd = self._x_tau != 0, self._y_tau != 0
        for t in range(1, E + 1):
            if fixed:
                xh[t][xd] = _decay(xh[t - 1][xd], self._x_tau[xd][:, None], self._xr.decay)
                yh[t][yd] = _decay(yh[t - 1][yd], self._y_tau[yd][:, None], self._yr.decay)
                ids = np.where(self.tx == t)[0]
                xh[t][:, ids] = _add_impulse(xh[t][:, ids], self._xr.impulse,
                                             self._x_imp[0][:, None], self._x_imp[1][:, None])
                ids = np.where(self.ty == t)[0]
                yh[t][:, ids] = _add_impulse(yh[t][:, ids], self._yr.impulse,
                                             self._y_imp[0][:, None], self._y_imp[1][:, None])
            else:
                xh[t][xd] = np.exp(-1.0 / self._x_tau[xd][:, None]) * xh[t - 1][xd]
                yh[t][yd] = np.exp(-1.0 / self._y_tau[yd][:, None]) * yh[t - 1][yd]
                xh[t][:, np.where(self.tx == t)[0]] += self._x_imp[:, None]
                yh[t][:, np.where(self.ty == t)[0]] += self._y_imp[:, None]
        return xh, yh

    def _evaluated(self, xh, yh) -> dict:
        """Each trace as a product gated by each dependency reads it."""
        tx, ty = self.tx, self.ty
        ev = {}
        for k, name in enumerate(("x1", "x2")):
            ev[f"{name}_x0"] = xh[tx, k].diagonal()[None, :]
            ev[f"{name}_y0"] = xh[ty, k]
            ev[f"{name}_u"] = xh[-1, k][None, :]
        for k, name in enumerate(("y1", "y2", "y3")):
            ev[f"{name}_x0"] = yh[tx, k].T
            ev[f"{name}_y0"] = yh[ty, k].diagonal()[:, None]
            ev[f"{name}_u"] = yh[-1, k][:, None]
        return ev

    def _learn(self) -> None:
        fixed = self.mode == "fixed"
        if fixed:
            self._w_random = self._wr.random(1)[0]
        x0 = self.tx > 0
        y0 = self.ty > 0
        xh, yh = self._histories()
        self.x = xh[-1].copy()
        ev = self._evaluated(xh, yh)
        dep = {"x0": x0[None, :], "y0": y0[:, None], "u": 1}
        if fixed:
            acc = self.weights << ACC_SHIFT
            for p in self.rule.products:
                cur = np.ones(self.shape, dtype=np.int64) * dep[p.dependency]
                width = 0
                for f in p.factors:
                    width += FACTOR_BITS[f.var]
                    v = self._factor(f, p.dependency, ev, dep)
                    v = np.clip(v, -(1 << FACTOR_BITS[f.var]), (1 << FACTOR_BITS[f.var]) - 1)
                    cur = cur * v.astype(np.int64)
                cur = cur * p.mantissa
                cur = cur >> max(0, width + S_MANT_BITS - ACCUMULATOR_U)
                cur = cur << (p.exp + 7)
                cur = np.clip(cur, ACCUMULATOR_MIN, ACCUMULATOR_MAX)
                acc = np.clip(acc + cur, ACCUMULATOR_MIN, ACCUMULATOR_MAX)
            unit = 1 << ACC_SHIFT
            whole = acc / unit
            frac = whole % 1
            acc = (_stochastic_round(np.floor(whole), self._w_random, frac) * unit).astype(np.int64)
            self.weights = np.clip(acc >> ACC_SHIFT, *WEIGHT_RANGE)
        else:
            dw = 0.0
            for p in self.rule.products:
                term = p.mantissa * 2.0 ** p.exp * dep[p.dependency]
                for f in p.factors:
                    term = term * self._factor(f, p.dependency, ev, dep)
                dw = dw + term
            self.weights = self.weights + dw
        self.tx[:] = 0
        self.ty[:] = 0

    def _factor(self, f: Factor, dependency: str, ev: dict, dep: dict):
        if f.var in ("x0", "y0"):
            v = dep[f.var]
        elif f.var in TRACES:
            v = ev[f"{f.var}_{dependency}"]
        else:   # w
            v = self.weights
        v = v + f.const
        return np.sign(v) if f.sgn else v


def _split_impulse(imp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An impulse as its integer part and its fraction in 1/256 steps."""
    whole = np.floor(imp)
    frac = np.round((imp - whole) * (1 << TRACE_FRAC_BITS))
    return whole.astype(int), frac.astype(int)


def _add_impulse(trace, random, whole, frac):
    new = trace + whole
    new = _stochastic_round(new, random, frac)
    return np.clip(new, 0, TRACE_MAX)


def _decay(trace, tau, random):
    v = np.exp(-1.0 / tau) * trace
    frac = v % 1
    return _stochastic_round(np.floor(v), random, frac)


def float_scale(product: Product) -> float:
    """Weight change per unit of a product's factors in ``float`` (Lava's float
    applier: ``s_mant * 2**(s_exp - 7)``... written exponent)."""
    return product.mantissa * 2.0 ** product.exp


def exact_exponent(x: float) -> int:
    """``log2(x)`` for a power of two ``x`` (ValueError otherwise)."""
    e = math.log2(x)
    if e != int(e):
        raise ValueError(f"{x} is not a power of two")
    return int(e)
