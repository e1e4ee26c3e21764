"""Meta-representational predictive coding (MPC) as a neuro_pc circuit.

Ororbia, Friston & Rao, *Meta-Representational Predictive Coding: Biomimetic
Self-Supervised Learning* (arXiv 2503.21796v1), Eqs. 2-11; the gaps in the text
and every choice made here are in ``docs/models/mpc.md``.

Streams ``v`` (one per view of the glimpse sensor, :mod:`neuro_pc.models.glimpse`)
each have a sensory layer ``z^0 = g_v`` and ``L`` latent layers. With
``phi = kwta(., k)`` (N-winners-take-all, Eq. 5; ``phi_0`` = identity):

    mu^{l,v}     = W^{l,v} phi(z^{l-1,v})                      (3) bottom-up
    mu_C^{l,v,q} = R^{l,v,q} phi(z^{l,v}) + A^{l,v,q} a        (4) v predicts q
    e^{l,v}      = z^{l,v} - mu^{l,v}                          (6)
    e_C^{l,v,q}  = z^{l,q} - mu_C^{l,v,q}                      (7)
    F = 1/2 sum ||e||^2 + 1/2 sum ||e_C||^2   (sigma = 1)

and the E-step is Eq. 8 with its sign fixed (``docs/models/mpc.md``, choice 1):

    z^{l,v} += gamma * ( -e^{l,v} + phi'(z^{l,v}) * (E_W^{l+1,v} e^{l+1,v}
                                   + sum_q E_R^{l,v,q} e_C^{l,v,q})
                         [- sum_{q'} e_C^{l,q',v}] )

By default as printed: a stream's state moves to make its *predictions* of
other streams better, but is not pulled towards the predictions it receives
(the target is held, like a stop-gradient). ``target_term=True`` adds the
bracketed "being a target" term that the derivative of F has and Eq. 8 omits,
making the E-step exact gradient descent on F; measured on digits it shrinks
the states towards the predictions and the M-step then learns nothing the probe
can use (docs/models/mpc.md, choice 2).

The M-step, once at the end of every window (one window per glimpse), Eqs. 9-11:
``dW = eta (e phi(z_{l-1})^T) - eta*lam W``, the same for ``R`` with ``e_C``,
``dA = eta e_C a^T - eta*lam A``, then every column of ``W``, ``R`` (and ``A``)
rescaled to unit norm (the rule transform ``"unit_columns"``).

Circuit layout (names are the API of the analyses and the experiment):

* ``x``: the glimpse vector ``[g_1..g_V, a]`` (stream ``"x"``);
* ``g_<s>`` (``S*S``) and ``a`` (2): the sensory layer of stream ``s`` and the
  action, each fed from ``x`` by a fixed 0/1 **selection** projection
  ``S_<s>`` / ``S_a`` (``Init("select", offset=...)``);
* ``z<l>_<s>``: state units ``z``, prediction ``mu``, error ``e``,
  ``phi = kwta(z, k)`` (the output), ``dphi = phi'(z)`` (1 on the winners);
* ``c<l>_<v>_<q>``: the cross-stream error units ``e = z^{l,q} - mu_C``;
* projections ``W<l>_<s>`` (bottom-up), ``E<l>_<s>`` (feedback of
  ``e^{l+1}`` into ``z<l>``), ``R<l>_<v>_<q>``, ``A<l>_<v>_<q>``,
  ``ER<l>_<v>_<q>`` (feedback of ``e_C`` into the predictor), ``T<l>_<v>_<q>``
  (fixed identity: ``z^{l,q}`` into the error units) and ``B<l>_<v>_<q>``
  (fixed identity: ``e_C`` back into the target's ``tgt`` port).

Feedback ``E`` and ``ER`` are their own plastic projections (``feedback="learned"``):
initialised as the transpose of ``W``/``R`` (a one-time copy) and updated with
the mirrored rule ``dw = eta * post.phi * pre.e - eta*lam * w``, so there is no
run-time weight transport. Where ``W`` (``R``) has unit columns, ``E`` (``ER``)
gets unit rows (the transform ``"unit_rows"``): its rows are ``W``'s columns, so
with ``eta_feedback = eta`` (and no homeostasis term) it stays exactly ``Wᵀ``
(``Rᵀ``). ``feedback="tied"`` uses ``Wᵀ``/``Rᵀ`` directly (the paper's
simplification; weight transport, a marked baseline).
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np

from neuro_pc.ir import Circuit, Init, Population, Projection, Rule, Schedule, Tied
from neuro_pc.ir.functions import kwta
from neuro_pc.models.glimpse import GlimpseGeometry

__all__ = ["TOPOLOGIES", "DEFAULTS", "mpc", "topology_pairs", "energy", "energy_terms",
           "energy_grad", "latent_states"]

TOPOLOGIES = ("st1", "st2", "st3", "st4")


def topology_pairs(streams, foveal, topology: str = "st2") -> list[tuple[str, str]]:
    """Ordered ``(predictor, target)`` stream pairs of a cross-stream topology (paper Fig. 5).

    st1: all-to-all, self included. st2: a one-to-one chain over the foveal
    streams (``f_i -> f_{i+1}``, cyclic); every non-foveal stream predicts all
    foveal streams and itself. st3: every foveal stream predicts its two
    neighbours in the cycle; non-foveal as st2. st4: foveal all-to-all (self
    included); non-foveal as st2.
    """
    streams = list(streams)
    fov = [s for s, f in zip(streams, foveal) if f]
    other = [s for s, f in zip(streams, foveal) if not f]
    if topology == "st1":
        return [(v, q) for v in streams for q in streams]
    if topology not in TOPOLOGIES:
        raise ValueError(f"unknown topology {topology!r}; choose one of {TOPOLOGIES}")
    n = len(fov)
    pairs: list[tuple[str, str]] = []
    if topology == "st2":
        pairs += [(fov[i], fov[(i + 1) % n]) for i in range(n)] if n > 1 else [(f, f) for f in fov]
    elif topology == "st3":
        for i in range(n):
            for q in dict.fromkeys([fov[(i - 1) % n], fov[(i + 1) % n]]):
                pairs.append((fov[i], q))
    elif topology == "st4":
        pairs += [(v, q) for v in fov for q in fov]
    for v in other:
        pairs += [(v, q) for q in fov] + [(v, v)]
    return list(dict.fromkeys(pairs))


def mpc(geometry: GlimpseGeometry | None = None, hidden=(64, 64), k: int = 8,
        topology: str = "st2", gamma: float = 0.1, relax_steps: int = 20, eta: float = 0.01,
        eta_feedback: float | None = None, lam: float = 1e-3, feedback: str = "learned",
        normalize=("W", "R", "A"), norm_axis: str = "columns", target_term: bool = False,
        cross_precision: float = 0.1, homeostasis: float = 0.0,
        homeo_target: float | None = None, homeo_rate: float = 0.01, homeo_var: str = "z",
        decorrelation: float = 0.0, decor_gain: float = 10.0, decor_target: float = 0.0,
        pairs=None, name: str | None = None) -> Circuit:
    """Build the MPC circuit for a glimpse ``geometry`` (default: digits).

    hidden: widths of the latent layers ``1..L`` (the same in every stream).
    k: winners kept by ``phi = kwta`` (``k >= width`` makes phi the identity).
    topology: cross-stream prediction pattern (:func:`topology_pairs`), or give
        ``pairs`` explicitly as ``[(predictor, target), ...]`` stream names.
    gamma: Euler step of the E-step (``dt / tau_z``); relax_steps: E-step
        steps per window after the feedforward sweep (``L + 3`` steps).
    eta, lam: learning rate and weight decay (``dw = eta*(e phi^T - lam w)``);
        eta_feedback: learning rate of ``E``/``ER`` (default ``eta``, which keeps
        them the exact mirror ``Wᵀ``/``Rᵀ`` while ``homeostasis`` is off).
    feedback: ``"learned"`` (own plastic matrices, local) or ``"tied"``
        (``Wᵀ``, ``Rᵀ``: weight transport, a marked baseline).
    normalize: which of ``"W"``, ``"R"``, ``"A"`` get unit norms (along ``norm_axis``)
        after each step; with learned feedback, ``E`` (``ER``) gets them along the
        other axis when ``W`` (``R``) is normalised, the same normalisation seen
        through the transpose.
    norm_axis: ``"columns"`` (default): unit columns of the ``(n_target, n_source)``
        matrix, each *source* unit's outgoing weights; ``"rows"``: unit rows,
        each *target* unit's incoming weights (its receptive field), which are
        the columns of the ``(n_in, n_out)`` layout of libraries that compute
        ``x @ W`` (ngc-learn, the paper's group's). The initial scale follows:
        ``N(0, 1/n_target)`` for columns, ``N(0, 1/n_source)`` for rows, so the
        normalised vectors have norm ~1 from the start.
    target_term: include ``-sum_q' e_C^{l,q',v}`` in the state update (the
        term Eq. 8 omits; the E-step is then exact gradient descent on F).
        Default ``False``: Eq. 8 as printed, each target state held fixed.
    cross_precision: ``beta = sigma / sigma_C``; the cross-stream error units are
        ``e_C = beta (z^q - mu_C)``, i.e. the cross term of F is weighted by
        ``beta`` (the paper: ``Sigma_C = Sigma``, ``beta = 1``).
    homeostasis: ``eta_h`` of the neuron-local anti-collapse term (0 = off, the
        paper). Every latent unit keeps a running second moment of its own state,
        ``v += homeo_rate * (z^2 - v)`` (a per-unit state variable, one step of
        the window at a time), and ``h = (1 - v / homeo_target) * z``; the
        bottom-up rule gains ``+ eta_h * post.h * pre.phi``: Hebbian while the
        unit's activity is below its target, anti-Hebbian above (BCM-like
        intrinsic homeostasis). It counters the shrinking of the
        representation (docs/models/mpc.md) and only reads the post unit's own
        variables. homeo_target: the target second moment ``v*`` (default
        ``k / width``: the mean ``z^2`` of a unit-norm state over the layer).
    decorrelation: ``eta_d`` of an anti-Hebbian lateral projection ``D<l>_<s>``
        (``z<l>_<s>.z`` onto itself, port ``lat``; 0 = off). Its rule
        ``dw = -eta_d * (post.z * pre.z + w / decor_gain)`` settles at
        ``D = -decor_gain * <z z^T>`` (batch mean), and the E-step adds ``lat``:
        the settled state is pushed away from directions the layer's units share
        (Foldiak-style decorrelation), and the bottom-up rule ``e phi^T`` then
        learns to produce decorrelated states. Local (post x pre of the same
        layer); the diagonal is a variance-scaled leak. decor_target: ``v*``; the
        state update also gets ``+ decor_gain * v* * z``, so the lateral term is
        ``-decor_gain * (<z z^T> - v* I) z`` at equilibrium: off the diagonal
        decorrelation, on it a unit-local variance homeostasis towards ``v*``
        (a whitening constraint, the one CCA-style objectives use against collapse).
    """
    o = _options(**locals())        # first statement: locals() holds just the arguments
    sel = _selections(o.geometry)
    pops, projs = _inputs(o, sel["S_a"][0])
    for s in o.streams:
        stream_pops, stream_projs = _stream(o, s, sel[f"S_{s}"][0])
        pops += stream_pops
        projs += stream_projs
    for l in range(1, o.depth + 1):
        for v, q in o.pairs:
            unit, unit_projs = _cross_stream(o, l, v, q)
            pops.append(unit)
            projs += unit_projs
    return Circuit(name=o.name or f"mpc_{o.topology}_{'-'.join(map(str, o.hidden))}_k{o.k}",
                   populations=tuple(pops), projections=tuple(projs),
                   schedule=Schedule(window=o.window), streams={"x": o.geometry.width},
                   readout=None, metadata=_metadata(o, sel))


#: Defaults of :func:`mpc` (the digits configuration; docs/models/mpc.md says why): its
#: keyword arguments bar ``geometry``, ``pairs`` and ``name``, read from its signature,
#: the one place they are written.
DEFAULTS = {p.name: p.default for p in inspect.signature(mpc).parameters.values()
            if p.name not in ("geometry", "pairs", "name")}


# -- the parts of the circuit -------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    """The arguments of :func:`mpc` as checked and normalised by :func:`_options`."""

    geometry: GlimpseGeometry
    hidden: list[int]
    k: int
    topology: str
    pairs: list[tuple[str, str]]
    gamma: float
    relax_steps: int
    eta: float
    eta_feedback: float | None
    lam: float
    feedback: str
    normalize: tuple[str, ...]
    norm_axis: str
    target_term: bool
    cross_precision: float
    homeostasis: float
    homeo_target: float | None
    homeo_rate: float
    homeo_var: str
    decorrelation: float
    decor_gain: float
    decor_target: float
    name: str | None

    @property
    def streams(self) -> tuple[str, ...]:
        return self.geometry.stream_names

    @property
    def depth(self) -> int:
        """``L``, the latent layers per stream."""
        return len(self.hidden)

    @property
    def sweep(self) -> int:
        """Steps of the feedforward sweep: x -> g/a -> z1 ... zL -> e_C -> ports."""
        return self.depth + 3

    @property
    def window(self) -> int:
        return self.sweep + int(self.relax_steps)

    @property
    def eta_fb(self) -> float:
        return self.eta if self.eta_feedback is None else self.eta_feedback

    @property
    def tied(self) -> bool:
        return self.feedback == "tied"


def _options(geometry, hidden, k, topology, feedback, normalize, pairs, **rest) -> _Options:
    """:func:`mpc`'s arguments, checked (a ValueError names the first bad one) and
    normalised: the digits geometry by default, integer widths and ``k``, the
    ``(predictor, target)`` pairs of ``topology`` unless given."""
    g = geometry or GlimpseGeometry.digits()
    hidden = [int(h) for h in hidden]
    if not hidden or min(hidden) < 1:
        raise ValueError(f"hidden must list at least one latent width >= 1, got {hidden}")
    if feedback not in ("learned", "tied"):
        raise ValueError(f"feedback must be 'learned' or 'tied', got {feedback!r}")
    if rest["norm_axis"] not in ("columns", "rows"):
        raise ValueError(f"norm_axis must be 'columns' or 'rows', got {rest['norm_axis']!r}")
    bad = set(normalize) - {"W", "R", "A"}
    if bad:
        raise ValueError(f"normalize takes 'W', 'R', 'A'; got {sorted(bad)}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k (winners) must be >= 1, got {k}")
    streams = g.stream_names
    pairs = [tuple(p) for p in (pairs if pairs is not None
                                else topology_pairs(streams, g.foveal, topology))]
    for v, q in pairs:
        if v not in streams or q not in streams:
            raise ValueError(f"pair {(v, q)} names an unknown stream; streams: {streams}")
    return _Options(geometry=g, hidden=hidden, k=k, topology=topology, feedback=feedback,
                    normalize=normalize, pairs=pairs, **rest)


def _selections(g: GlimpseGeometry) -> dict[str, list[int]]:
    """``{selection projection: [offset, width]}``: where the action (``S_a``) and each
    stream's sensory layer (``S_<s>``) sit in the glimpse vector ``x = [g_1..g_V, a]``."""
    S = g.stream_width
    return {"S_a": [g.width - 2, 2],
            **{f"S_{s}": [i * S, S] for i, s in enumerate(g.stream_names)}}


def _inputs(o: _Options, offset: int) -> tuple[list[Population], list[Projection]]:
    """The glimpse input ``x`` and the action ``a`` selected from it at ``offset``."""
    pops = [Population("x", o.geometry.width, ("r",), streams={"r": "x"}, model="input"),
            Population("a", 2, ("r",), ports=("inp",), update=("r = inp",), model="input")]
    projs = [Projection("S_a", "x", "a", "inp", init=Init("select", offset=offset))]
    return pops, projs


def _stream(o: _Options, s: str, offset: int) -> tuple[list[Population], list[Projection]]:
    """Stream ``s``: its sensory layer ``g_<s>`` (selected from ``x`` at ``offset``),
    its latent layers ``z<l>_<s>``, and their bottom-up ``W``, feedback ``E`` and
    (with ``decorrelation``) lateral ``D`` projections."""
    pops = [Population(f"g_{s}", o.geometry.stream_width, ("r",), ports=("inp",),
                       update=("r = inp",), model="input")]
    projs = [Projection(f"S_{s}", "x", f"g_{s}", "inp", init=Init("select", offset=offset))]
    for l in range(1, o.depth + 1):
        pops.append(_latent(o, l, s))
        if o.decorrelation:
            projs.append(_decorrelation(o, l, s))
        src = f"g_{s}" if l == 1 else f"z{l - 1}_{s}"
        pre = "r" if l == 1 else "phi"
        projs.append(Projection(f"W{l}_{s}", src, f"z{l}_{s}", "ff",
                                init=_init(o, o.hidden[l - 1],
                                           o.geometry.stream_width if l == 1
                                           else o.hidden[l - 2]),
                                rule=_rule(o, "e", pre, o.eta, _unit(o, "W"), homeo=True)))
        if l < o.depth:
            projs.append(_feedback(o, f"E{l}_{s}", f"W{l + 1}_{s}", "W",
                                   source=f"z{l + 1}_{s}", target=f"z{l}_{s}",
                                   port="fbw", variable="e"))
    return pops, projs


def _latent(o: _Options, l: int, s: str) -> Population:
    """``z<l>_<s>``: prediction ``mu``, state ``z`` (the E-step), error ``e``,
    ``phi = kwta(z, k)`` and ``dphi``, plus the homeostasis variables."""
    n = o.hidden[l - 1]
    tgt = " - tgt" if o.target_term else ""
    lat = " + lat" if o.decorrelation else ""
    if o.decorrelation and o.decor_target:
        lat += " + dself * z"
    relax = f"z + gamma * (-e + dphi * (fbw + fbr){tgt}{lat})"
    hv, hp, hu, hi = _homeostasis(o, n)
    return Population(
        f"z{l}_{s}", n, ("mu", "z", "e", "phi", "dphi", *hv),
        ports=("ff", "fbw", "fbr", *(("tgt",) if o.target_term else ()),
               *(("lat",) if o.decorrelation else ())),
        output="phi",
        params={"gamma": float(o.gamma), **hp,
                **({"dself": float(o.decor_gain) * float(o.decor_target)}
                   if o.decorrelation and o.decor_target else {})}, model="pc", init=hi,
        update=("mu = ff", f"z = where(tw < {o.sweep}, mu, {relax})", "e = z - mu",
                *((f"phi = kwta(z, {o.k})", "dphi = abs(phi) > 0") if o.k < n
                  else ("phi = z", "dphi = 1.0 + 0.0 * z")), *hu))


def _homeostasis(o: _Options, n: int) -> tuple[tuple, dict, tuple, dict]:
    """Variables, parameters, update statements and initial values that the
    homeostasis term adds to a latent population of width ``n`` (none when off)."""
    if not o.homeostasis:
        return (), {}, (), {}
    vt = float(o.homeo_target) if o.homeo_target is not None else min(o.k, n) / n
    hz = o.homeo_var
    return (("v", "h"), {"rho": float(o.homeo_rate), "vt": vt},
            (f"v = v + rho * ({hz} * {hz} - v)", f"h = (1.0 - v / vt) * {hz}"), {"v": vt})


def _decorrelation(o: _Options, l: int, s: str) -> Projection:
    """``D<l>_<s>``: the anti-Hebbian lateral projection of ``z<l>_<s>.z`` onto itself."""
    return Projection(f"D{l}_{s}", f"z{l}_{s}", f"z{l}_{s}", "lat", variable="z",
                      init=Init("zeros"),
                      rule=Rule("dw = -eta_d * post.z * pre.z - eta_d * ilam * w",
                                {"eta_d": float(o.decorrelation),
                                 "ilam": 1.0 / float(o.decor_gain)}))


def _cross_stream(o: _Options, l: int, v: str, q: str) -> tuple[Population, list[Projection]]:
    """The error units ``c<l>_<v>_<q>`` of stream ``v`` predicting stream ``q`` at
    layer ``l`` and their projections ``R``, ``A``, ``T``, ``ER`` (and ``B``)."""
    n = o.hidden[l - 1]
    c = f"c{l}_{v}_{q}"
    unit = Population(c, n, ("mu", "e"), ports=("pred", "tgt"), output="e",
                      params={"beta": float(o.cross_precision)},
                      update=("mu = pred", "e = beta * (tgt - mu)"), model="error")
    projs = [Projection(f"R{l}_{v}_{q}", f"z{l}_{v}", c, "pred",
                        init=_init(o, n, n),
                        rule=_rule(o, "e", "phi", o.eta, _unit(o, "R"))),
             Projection(f"A{l}_{v}_{q}", "a", c, "pred",
                        init=_init(o, n, 2),
                        rule=_rule(o, "e", "r", o.eta, _unit(o, "A"))),
             Projection(f"T{l}_{v}_{q}", f"z{l}_{q}", c, "tgt", variable="z",
                        init=Init("identity")),
             _feedback(o, f"ER{l}_{v}_{q}", f"R{l}_{v}_{q}", "R", source=c,
                       target=f"z{l}_{v}", port="fbr", variable="e")]
    if o.target_term:   # the "being a target" term: e_C back into the target state
        projs.append(Projection(f"B{l}_{v}_{q}", c, f"z{l}_{q}", "tgt", variable="e",
                                init=Init("identity")))
    return unit, projs


def _rule(o: _Options, post: str, pre: str, eta: float, transforms=(), homeo=False) -> Rule:
    """``dw = eta * post * pre - eta * lam * w`` (the decay only when ``lam``), plus the
    homeostasis term where ``homeo``; a marked baseline when the feedback is tied."""
    text = f"dw = eta * post.{post} * pre.{pre}" + (" - eta * lam * w" if o.lam else "")
    params = {"eta": float(eta), **({"lam": float(o.lam)} if o.lam else {})}
    if homeo and o.homeostasis:
        text += f" + eta_h * post.h * pre.{pre}"
        params["eta_h"] = float(o.homeostasis)
    return Rule(text, params, baseline=o.tied, transforms=tuple(transforms))


def _unit(o: _Options, kind: str, mirror: bool = False) -> tuple[str, ...]:
    """The normalising transform of a ``kind`` (``"W"``, ``"R"``, ``"A"``) matrix, if
    any; ``mirror``: of its learned feedback (the transpose: the other axis)."""
    if kind not in o.normalize:
        return ()
    return ("unit_rows",) if mirror != (o.norm_axis == "rows") else ("unit_columns",)


def _init(o: _Options, n_target: int, n_source: int) -> Init:
    """``N(0, 1/n)`` with ``n`` the length of the normalised vectors (``norm_axis``)."""
    return Init("normal", scale=1.0 / math.sqrt(n_source if o.norm_axis == "rows" else n_target))


def _feedback(o: _Options, name: str, forward: str, kind: str, **common) -> Projection:
    """The feedback projection mirroring ``forward``: tied to it (weight
    transport, the baseline) or its own plastic copy with the mirrored rule."""
    if o.tied:
        return Projection(name, tied=Tied(forward), **common)
    return Projection(name, init=Init("transpose_of", of=forward),
                      rule=_rule(o, "phi", "e", o.eta_fb, _unit(o, kind, mirror=True)), **common)


def _metadata(o: _Options, selections: dict) -> dict:
    """``circuit.metadata``: the configuration, the pairs, the sweep length and the
    selections (the analyses and :func:`energy` read them)."""
    return {"builder": "mpc", "geometry": dict(o.geometry.__dict__), "streams": list(o.streams),
            "hidden": o.hidden, "k": o.k, "pairs": [list(p) for p in o.pairs],
            "topology": o.topology, "gamma": o.gamma, "relax_steps": int(o.relax_steps),
            "sweep_steps": o.sweep, "eta": o.eta, "eta_feedback": o.eta_fb, "lam": o.lam,
            "feedback": o.feedback, "normalize": list(o.normalize),
            "norm_axis": o.norm_axis,
            "target_term": bool(o.target_term), "cross_precision": float(o.cross_precision),
            "homeostasis": float(o.homeostasis), "homeo_target": o.homeo_target,
            "homeo_rate": float(o.homeo_rate), "decorrelation": float(o.decorrelation),
            "decor_gain": float(o.decor_gain), "selections": selections}


# -- the algorithm in NumPy (for tests and analysis) -------------------------------


def latent_states(circuit: Circuit, state: dict) -> dict[tuple[int, str], np.ndarray]:
    """``{(l, stream): z}`` from a simulator's ``state`` dict (``"pop.var"`` keys)."""
    m = circuit.metadata
    return {(l, s): state[f"z{l}_{s}.z"] for l in range(1, len(m["hidden"]) + 1)
            for s in m["streams"]}


def _split_x(circuit, x):
    m = circuit.metadata
    sel = m["selections"]
    g = {s: x[:, sel[f"S_{s}"][0]:sel[f"S_{s}"][0] + sel[f"S_{s}"][1]] for s in m["streams"]}
    return g, x[:, -2:]


def _phi(circuit, z):
    k = circuit.metadata["k"]
    return kwta(z, k) if k < z.shape[1] else z.copy()


def _errors(circuit, weights, x, z):
    m = circuit.metadata
    g, a = _split_x(circuit, np.atleast_2d(x))
    L = len(m["hidden"])
    e, ec = {}, {}
    for s in m["streams"]:
        for l in range(1, L + 1):
            below = g[s] if l == 1 else _phi(circuit, z[(l - 1, s)])
            e[(l, s)] = z[(l, s)] - below @ weights[f"W{l}_{s}"].T
    for l in range(1, L + 1):
        for v, q in m["pairs"]:
            mu = (_phi(circuit, z[(l, v)]) @ weights[f"R{l}_{v}_{q}"].T
                  + a @ weights[f"A{l}_{v}_{q}"].T)
            ec[(l, v, q)] = m.get("cross_precision", 1.0) * (z[(l, q)] - mu)
    return e, ec


def energy(circuit: Circuit, weights: dict, x: np.ndarray, z: dict) -> np.ndarray:
    """Per-sample MPC energy ``F = 1/2 sum ||e||^2 + 1/(2 beta) sum ||e_C||^2`` ``(B,)``
    (``e_C = beta (z^q - mu_C)``, so the cross term is ``beta/2 ||z^q - mu_C||^2``),
    recomputed from the states ``z`` ``{(l, stream): (B, n_l)}`` and the glimpses
    ``x`` ``(B, width)`` (the weight prior is left out: constant during inference)."""
    intra, cross = energy_terms(circuit, weights, x, z)
    return intra + cross


def energy_terms(circuit: Circuit, weights: dict, x: np.ndarray,
                 z: dict) -> tuple[np.ndarray, np.ndarray]:
    """:func:`energy`'s two parts, per sample: the intra-stream term
    ``1/2 sum ||e||^2`` and the cross-stream term ``1/(2 beta) sum ||e_C||^2``."""
    e, ec = _errors(circuit, weights, x, z)
    beta = circuit.metadata.get("cross_precision", 1.0)
    return (0.5 * sum((v ** 2).sum(axis=1) for v in e.values()),
            0.5 * sum((v ** 2).sum(axis=1) for v in ec.values()) / beta)


def energy_grad(circuit: Circuit, weights: dict, x: np.ndarray, z: dict) -> dict:
    """``dF/dz`` ``{(l, stream): (B, n_l)}`` with exact transposes (the algorithm),
    treating the winner set of ``kwta`` as fixed (its derivative almost everywhere).
    The state update of the circuit is ``-gamma`` times this (with ``E = Wᵀ``)."""
    m = circuit.metadata
    L = len(m["hidden"])
    e, ec = _errors(circuit, weights, x, z)
    grad = {key: e[key].copy() for key in e}
    for (l, s), zz in z.items():
        dphi = ((np.abs(_phi(circuit, zz)) > 0).astype(float)
                if m["k"] < zz.shape[1] else np.ones_like(zz))
        fb = np.zeros_like(zz)
        if l < L:
            fb += e[(l + 1, s)] @ weights[f"W{l + 1}_{s}"]
        for v, q in m["pairs"]:
            if v == s:
                fb += ec[(l, v, q)] @ weights[f"R{l}_{v}_{q}"]
        grad[(l, s)] -= dphi * fb
        if m.get("target_term", True):
            for v, q in m["pairs"]:
                if q == s:
                    grad[(l, s)] += ec[(l, v, q)]
    return grad
