"""The circuit IR: populations, projections, rules and a schedule, as plain data.

Semantics (the contract of every backend; ``docs/semantics.md`` states it in full):
discrete time, step ``dt``.
Within one step

1. every input port is recomputed from the *previous* step's outputs:
   ``port = sum over projections into it of  scale * W @ source.variable``
   (every projection has a one-step delay);
2. every population sets its streamed variables from the current sample and
   runs its update statements in order;
3. plastic projections apply their rule where the schedule says: once, at the
   end of each presentation window of ``T`` steps (or every step, if the rule
   says so), all rules reading the same state and the weights before any of
   this step's changes.

The classes are frozen dataclasses: printable, comparable, JSON-serialisable
(:meth:`Circuit.to_json` / :meth:`Circuit.from_json`). Weights are not part
of the IR: :meth:`Circuit.init_weights` draws them from each projection's
initialiser for a seed, and an artifact stores trained ones.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuro_pc.ir.conv import Conv
from neuro_pc.ir.expr import BUILTIN_SCALARS, ExpressionError, Statement, parse_statement
from neuro_pc.ir.kinds import INIT_KINDS, RULE_TRANSFORMS, CircuitError
from neuro_pc.ir.validate import validate_circuit


@dataclass(frozen=True)
class Init:
    """How a projection's weight matrix ``(n_target, n_source)`` is drawn.

    Attributes
    ----------
    kind : str, default "xavier"
        ``"xavier"`` (uniform ±scale·sqrt(6/(n_in+n_out))), ``"uniform"``
        (±scale), ``"normal"`` (std = scale), ``"zeros"``, ``"constant"`` (all =
        scale), ``"identity"`` (scale·I, square only), ``"select"`` (``W[i, offset + i]
        = scale``: the target copies a slice of the source, e.g. one stream of a
        concatenated input), or ``"transpose_of"``: a copy of projection ``of``'s
        initial matrix, transposed (symmetric initialisation; a one-time copy at
        set-up, not a run-time transport).
    scale : float, default 1.0
        The scale the kinds above use.
    of : str, optional
        ``"transpose_of"`` only: the projection whose initial matrix is copied.
    offset : int, default 0
        ``"select"`` only: the first source unit copied.
    """

    kind: str = "xavier"
    scale: float = 1.0
    of: str | None = None
    offset: int = 0


@dataclass(frozen=True)
class Tied:
    """A projection whose weights are, at every step, ``scale * fn(W_to)ᵀ``.

    This is **weight transport** (BP's ``Wᵀ``; ``fn="sign"`` is sign-symmetry's
    sign transport): rules that depend on a tied projection are network-global
    and must be marked as non-local baselines.

    Attributes
    ----------
    to : str
        The projection whose weights ``W_to`` this one reads.
    transpose : bool, default True
        Apply ``fn(W_to)`` transposed (for a convolution: the transposed
        convolution of the same kernel).
    fn : str, default "identity"
        ``"identity"`` or ``"sign"``.
    scale : float, default 1.0
        Multiplies ``fn(W_to)``.
    """

    to: str
    transpose: bool = True
    fn: str = "identity"   # "identity" | "sign"
    scale: float = 1.0


@dataclass(frozen=True)
class Rule:
    """A plasticity rule: ``text`` in the rule language (:mod:`neuro_pc.rules`).

    Attributes
    ----------
    text : str
        The rule, e.g. ``"dw = -eta * post.delta * pre.r"``.
    params : dict of str to float, default {}
        The named constants the text uses (``eta``, ``lam``...).
    baseline : bool, default False
        The circuit knowingly uses a non-local rule (e.g. BP); without it
        validation rejects rules that depend on weight transport.
    transforms : tuple of str, default ()
        Population-level operations on the update or the weights, in
        order: ``"muon"`` (momentum + Newton–Schulz orthogonalisation of dW;
        params ``muon_beta``, ``muon_steps``), ``"unit_columns"`` (rescale
        every column of W to unit Euclidean norm after the update) and
        ``"unit_rows"`` (the same for every row: the synapses into one target
        unit). A zero column or row stays zero.
    every_step : bool, default False
        Apply at every step instead of once at the end of the window.
    """

    text: str
    params: dict[str, float] = field(default_factory=dict)
    baseline: bool = False
    transforms: tuple[str, ...] = ()
    every_step: bool = False




@dataclass(frozen=True)
class Population:
    """``size`` units with named state variables and a per-step update.

    Attributes
    ----------
    name : str
        The population's name, unique in its circuit.
    size : int
        The number of units.
    variables : tuple of str
        State variables (float), initial value 0 unless in ``init``.
    update : tuple of str, default ()
        Ordered statements ``"var = expr"`` (:mod:`neuro_pc.ir.expr`).
    ports : tuple of str, default ()
        Input ports, each the sum of the projections into it.
    output : str, default "r"
        The variable projections read by default.
    streams : dict of str to str, default {}
        ``{variable: stream}``: set from the data stream at every step,
        before the update (an input layer's rate, a target).
    params : dict of str to float, default {}
        Named constants the update reads.
    init : dict of str to float, default {}
        ``{variable: initial value}`` for the variables that do not start at 0.
    model : str, default "rate"
        Its kind, a key of :data:`neuro_pc.ir.kinds.POPULATION_MODELS`
        (``"input"``, ``"rate"``, ``"pc"``...): printed by reports and read by
        the analysis, never by a backend.
    """

    name: str
    size: int
    variables: tuple[str, ...]
    update: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    output: str = "r"
    streams: dict[str, str] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)
    init: dict[str, float] = field(default_factory=dict)
    model: str = "rate"

    def statements(self) -> tuple[Statement, ...]:
        """The parsed ``update`` statements (cached: the locality analysis asks often).

        Returns
        -------
        tuple of Statement
            One :class:`~neuro_pc.ir.expr.Statement` per line of ``update``, in order.

        Raises
        ------
        ExpressionError
            For a statement that is not one assignment in the expression language.
        """
        return _statements(self.name, tuple(self.update))


@dataclass(frozen=True)
class Projection:
    """``target.port += scale * W @ source.variable``, one step late.

    W has shape ``(target.size, source.size)``. ``rule`` makes it plastic;
    ``tied`` makes it a view of another projection's weights (no matrix of its
    own); ``connectivity`` < 1 draws a fixed sparse mask (probability of a
    synapse, seeded with the weights), kept by every update.

    Attributes
    ----------
    name : str
        The projection's name, unique in its circuit.
    source : str
        The population read.
    target : str
        The population written.
    port : str
        The port of ``target`` it adds to.
    variable : str, default ""
        The variable of ``source`` read; empty: the source's ``output``
        (:meth:`Circuit.source_variable`).
    init : Init, default Init()
        How the initial weights are drawn.
    rule : Rule, optional
        Its plasticity rule (None: fixed).
    tied : Tied, optional
        Makes the weights a view of another projection's (no matrix of its own).
    scale : float, default 1.0
        Multiplies ``W`` in the port's sum.
    connectivity : float, default 1.0
        The probability of a synapse; below 1 a fixed sparse mask is drawn.
    conv : Conv, optional
        Convolutional connectivity (:class:`~neuro_pc.ir.conv.Conv`): the
        stored weights are one kernel ``(O, C*kh*kw)`` shared by every position, the
        matrix applied is its expansion ``E(K)`` (or ``E(K)ᵀ`` for a transposed
        convolution), and a rule's update of the kernel is the sum of its
        per-position terms (:mod:`neuro_pc.ir.conv`).
    """

    name: str
    source: str
    target: str
    port: str
    variable: str = ""
    init: Init = field(default_factory=Init)
    rule: Rule | None = None
    tied: Tied | None = None
    scale: float = 1.0
    connectivity: float = 1.0
    conv: Conv | None = None

    @property
    def plastic(self) -> bool:
        """True when the projection has a rule."""
        return self.rule is not None


@dataclass(frozen=True)
class Schedule:
    """The timing of a circuit: presentation windows of ``window`` steps of ``dt``.

    Attributes
    ----------
    window : int
        Steps per presentation (T).
    dt : float, default 1.0
        The step (arbitrary units).
    """

    window: int
    dt: float = 1.0


@dataclass(frozen=True)
class Circuit:
    """Populations and projections with a schedule.

    Attributes
    ----------
    name : str
        The circuit's name.
    populations : tuple of Population
        Its populations.
    projections : tuple of Projection
        Its projections.
    schedule : Schedule
        Its timing.
    streams : dict of str to int, default {}
        ``{name: width}`` of the data fed in (``"x"`` inputs, ``"y"``
        one-hot targets).
    readout : tuple of (str, str), optional
        ``(population, variable)`` whose argmax at the end of a window is the
        predicted class.
    metadata : dict of str to Any, default {}
        Free data about the circuit, e.g. what its builder recorded
        (``"builder"``, ``"sizes"``, ``"rule"``...), read by the analysis and
        the hardware reports.
    """

    name: str
    populations: tuple[Population, ...]
    projections: tuple[Projection, ...]
    schedule: Schedule
    streams: dict[str, int] = field(default_factory=dict)
    readout: tuple[str, str] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    # -- look-up -------------------------------------------------------------
    def population(self, name: str) -> Population:
        """The population called ``name``.

        Parameters
        ----------
        name : str
            The population's name.

        Returns
        -------
        Population
            The population.

        Raises
        ------
        CircuitError
            For a name that is not a population of the circuit (the message lists
            the populations).
        """
        for p in self.populations:
            if p.name == name:
                return p
        raise CircuitError(f"circuit {self.name!r} has no population {name!r}; "
                           f"populations: {[p.name for p in self.populations]}")

    def projection(self, name: str) -> Projection:
        """The projection called ``name``.

        Parameters
        ----------
        name : str
            The projection's name.

        Returns
        -------
        Projection
            The projection.

        Raises
        ------
        CircuitError
            For a name that is not a projection of the circuit (the message lists
            the projections).
        """
        for p in self.projections:
            if p.name == name:
                return p
        raise CircuitError(f"circuit {self.name!r} has no projection {name!r}; "
                           f"projections: {[p.name for p in self.projections]}")

    def source_variable(self, proj: Projection) -> str:
        """The variable of its source population a projection reads.

        Parameters
        ----------
        proj : Projection
            A projection of the circuit.

        Returns
        -------
        str
            ``proj.variable``, or if that is empty the source population's ``output``.

        Raises
        ------
        CircuitError
            For a projection whose source is not a population of the circuit (when
            ``proj.variable`` is empty).
        """
        return proj.variable or self.population(proj.source).output

    def projections_into(self, target: str, port: str) -> tuple[Projection, ...]:
        """The projections that add to one input port.

        Parameters
        ----------
        target : str
            The population's name.
        port : str
            One of its ports.

        Returns
        -------
        tuple of Projection
            The projections into ``target.port``, in circuit order (empty if none).
        """
        return tuple(p for p in self.projections if p.target == target and p.port == port)

    @property
    def plastic(self) -> tuple[Projection, ...]:
        """Projections with a rule, in circuit order."""
        return tuple(p for p in self.projections if p.rule is not None)

    @property
    def stored(self) -> tuple[Projection, ...]:
        """Projections that own a weight matrix (all but the tied ones)."""
        return tuple(p for p in self.projections if p.tied is None)

    def replace(self, **changes) -> "Circuit":
        """A copy with some fields changed (:func:`dataclasses.replace`).

        Parameters
        ----------
        **changes
            New values of fields, e.g. ``projections=...``, ``name=...``.

        Returns
        -------
        Circuit
            The new circuit (not validated).

        Raises
        ------
        TypeError
            For a name that is not a field of :class:`Circuit`.
        """
        return dataclasses.replace(self, **changes)

    # -- validation ----------------------------------------------------------
    def validate(self) -> "Circuit":
        """Check every reference; return ``self`` or raise :class:`CircuitError`.

        Returns
        -------
        Circuit
            ``self``.

        Raises
        ------
        CircuitError
            For the first inconsistency found; the message names it and the fix.
        """
        validate_circuit(self)
        return self

    # -- weights -------------------------------------------------------------
    def init_weights(self, seed: int) -> dict[str, np.ndarray]:
        """Initial matrices ``{projection: (n_target, n_source) float64}`` for ``seed``.

        Each projection draws from its own stream ``default_rng([seed, k])``
        (``k`` its index), so adding a projection does not change the others.
        Sparse projections are multiplied by their mask (see :meth:`masks`). A
        convolution's entry is its kernel ``(O, C*kh*kw)``.

        Parameters
        ----------
        seed : int
            The seed of every projection's stream.

        Returns
        -------
        dict of str to numpy.ndarray
            One matrix per projection that owns weights (tied projections have none);
            ``"transpose_of"`` projections hold a copy of the other's matrix, transposed
            (a convolution's kernel is copied as it is).

        Raises
        ------
        CircuitError
            For an unknown initialiser kind.
        """
        sizes = {p.name: p.size for p in self.populations}
        weights: dict[str, np.ndarray] = {}
        pending = []
        masks = self.masks(seed)
        for k, proj in enumerate(self.projections):
            if proj.tied is not None:
                continue
            if proj.init.kind == "transpose_of":
                pending.append(proj)
                continue
            if proj.conv is not None:   # one kernel (O, C*kh*kw), Xavier from its fans
                w = _draw(proj.init, proj.conv.weight_shape, np.random.default_rng([seed, k]),
                          fans=proj.conv.fans)
            else:
                shape = (sizes[proj.target], sizes[proj.source])
                w = _draw(proj.init, shape, np.random.default_rng([seed, k]))
            weights[proj.name] = w * masks[proj.name] if proj.name in masks else w
        for proj in pending:
            other = weights[proj.init.of]
            # a kernel mirrored by a transposed convolution is the same kernel
            weights[proj.name] = other.copy() if proj.conv is not None else other.T.copy()
        return weights

    def conv_of(self, proj) -> Conv | None:
        """The convolution geometry a projection applies, with its direction.

        Parameters
        ----------
        proj : Projection or str
            A projection of the circuit, or its name.

        Returns
        -------
        Conv or None
            Its own ``conv``, or for a tied projection the geometry of the
            projection it reads (reversed if ``tied.transpose``); None for a dense
            projection.

        Raises
        ------
        CircuitError
            For a name (``proj``, or the projection it is tied to) that is not a
            projection of the circuit.
        """
        proj = self.projection(proj) if isinstance(proj, str) else proj
        if proj.tied is None:
            return proj.conv
        other = self.projection(proj.tied.to).conv
        if other is None:
            return None
        return other.transposed() if proj.tied.transpose else other

    def effective_matrix(self, weights: dict, proj) -> np.ndarray:
        """The real matrix a projection applies, ``port += M @ src``.

        Its own weights times ``scale``, or for a tied
        projection ``scale * tied.scale * fn(W_to)`` (transposed if
        ``tied.transpose``). For a convolution, the kernel's expansion
        (:func:`neuro_pc.ir.conv.expand`; large for large maps: backends use the
        kernel itself where they can). The one definition every backend uses.

        Parameters
        ----------
        weights : dict of str to numpy.ndarray
            The stored weights ``{projection: matrix or kernel}``
            (:meth:`init_weights`, a simulator's or an artifact's).
        proj : Projection or str
            A projection of the circuit, or its name.

        Returns
        -------
        numpy.ndarray
            ``M``, float64, shape ``(n_target, n_source)``.

        Raises
        ------
        CircuitError
            For a projection whose weights (its own, or those of the projection it
            is tied to) are not in ``weights``, or a name that is not a projection
            of the circuit.
        """
        proj = self.projection(proj) if isinstance(proj, str) else proj
        key = proj.name if proj.tied is None else proj.tied.to
        if key not in weights:
            what = "" if proj.tied is None else f"(tied to {key!r}) "
            raise CircuitError(f"projection {proj.name!r} {what}has no weights: "
                               f"{key!r} is not among {sorted(weights)}")
        m = np.asarray(weights[key], dtype=np.float64)
        conv = self.conv_of(proj)
        if proj.tied is not None:
            if proj.tied.fn == "sign":
                m = np.sign(m)
            if conv is None:
                m = m.T if proj.tied.transpose else m
            m = m * proj.tied.scale
        if conv is not None:   # the kernel's expansion (memory: n_target x n_source)
            from neuro_pc.ir.conv import expand

            m = expand(conv, m)
        return m * proj.scale

    def masks(self, seed: int) -> dict[str, np.ndarray]:
        """Fixed 0/1 masks of the sparse projections (``connectivity`` < 1).

        Projection ``k`` draws its mask from ``default_rng([seed, k, 1])``; tied
        projections and convolutions have none.

        Parameters
        ----------
        seed : int
            The seed (the one the weights are drawn for).

        Returns
        -------
        dict of str to numpy.ndarray
            ``{projection: (n_target, n_source) float64 array of 0 and 1}``.
        """
        sizes = {p.name: p.size for p in self.populations}
        out = {}
        for k, proj in enumerate(self.projections):
            if proj.connectivity < 1.0 and proj.tied is None and proj.conv is None:
                rng = np.random.default_rng([seed, k, 1])
                shape = (sizes[proj.target], sizes[proj.source])
                out[proj.name] = (rng.random(shape) < proj.connectivity).astype(np.float64)
        return out

    # -- serialisation ---------------------------------------------------------
    def to_dict(self) -> dict:
        """The circuit as nested plain data: dicts, tuples, strings and numbers.

        Returns
        -------
        dict
            :func:`dataclasses.asdict` of the circuit: what :meth:`from_dict` reads
            back.
        """
        return dataclasses.asdict(self)

    def to_json(self, **kw) -> str:
        """The circuit as JSON text (:meth:`to_dict`).

        Parameters
        ----------
        **kw
            Passed to :func:`json.dumps` (``indent`` defaults to 1).

        Returns
        -------
        str
            What :meth:`from_json` reads back.
        """
        kw.setdefault("indent", 1)
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_dict(cls, d: dict) -> "Circuit":
        """The circuit a :meth:`to_dict` dictionary describes.

        Parameters
        ----------
        d : dict
            A :meth:`to_dict` dictionary (e.g. parsed JSON).

        Returns
        -------
        Circuit
            The circuit, not yet validated: call :meth:`validate`.

        Raises
        ------
        CircuitError
            For a dictionary of the wrong shape, naming what is missing or
            unexpected.
        """
        try:
            return cls._from_dict(d)
        except CircuitError:
            raise
        except KeyError as exc:
            raise CircuitError(f"not a circuit: field {exc} is missing") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise CircuitError(f"not a circuit: {exc}") from None

    @classmethod
    def _from_dict(cls, d: dict) -> "Circuit":
        if not isinstance(d, dict):
            raise CircuitError(f"not a circuit: expected a JSON object, got "
                               f"{type(d).__name__}")

        def rule(r):
            return None if r is None else Rule(**{**r, "transforms": tuple(r.get("transforms", ()))})

        pops = tuple(Population(**{**p, "variables": tuple(p["variables"]),
                                   "update": tuple(p.get("update", ())),
                                   "ports": tuple(p.get("ports", ()))}) for p in d["populations"])
        def conv(c):
            return None if c is None else Conv(**c)

        projs = tuple(Projection(**{**p, "init": Init(**p["init"]), "rule": rule(p.get("rule")),
                                    "tied": None if p.get("tied") is None else Tied(**p["tied"]),
                                    "conv": conv(p.get("conv"))})
                      for p in d["projections"])
        readout = d.get("readout")
        return cls(name=d["name"], populations=pops, projections=projs,
                   schedule=Schedule(**d["schedule"]), streams=dict(d.get("streams", {})),
                   readout=None if readout is None else tuple(readout),
                   metadata=dict(d.get("metadata", {})))

    @classmethod
    def from_json(cls, text: str) -> "Circuit":
        """The circuit a :meth:`to_json` text describes (:meth:`from_dict`).

        Parameters
        ----------
        text : str
            The JSON text.

        Returns
        -------
        Circuit
            The circuit, not yet validated: call :meth:`validate`
            (:func:`~neuro_pc.ir.artifact.read_circuit` reads and validates).

        Raises
        ------
        CircuitError
            For text that is not JSON, or JSON that is not a circuit.
        """
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CircuitError(f"not a circuit: invalid JSON ({exc})") from None
        return cls.from_dict(d)

    def __str__(self) -> str:
        lines = [f"Circuit {self.name!r} (T={self.schedule.window} steps, dt={self.schedule.dt})"]
        for p in self.populations:
            src = f" streams={p.streams}" if p.streams else ""
            lines.append(f"  population {p.name} [{p.size}] {p.model}: vars={list(p.variables)} "
                         f"ports={list(p.ports)}{src}")
            lines += [f"      {s}" for s in p.update]
        for pr in self.projections:
            how = (f"tied to {pr.tied.to}{'ᵀ' if pr.tied.transpose else ''} ({pr.tied.fn})"
                   if pr.tied else ("plastic: " + pr.rule.text if pr.rule else "fixed"))
            geom = f" [{pr.conv.describe()}]" if pr.conv is not None else ""
            lines.append(f"  projection {pr.name}: {pr.source}.{self.source_variable(pr)} -> "
                         f"{pr.target}.{pr.port}  {how}{geom}")
        return "\n".join(lines)


@functools.lru_cache(maxsize=4096)
def _statements(name: str, update: tuple[str, ...]) -> tuple[Statement, ...]:
    """Parsed statements of a population (cached: the locality analysis asks often)."""
    return tuple(parse_statement(s, where=f"population {name!r}") for s in update)


def _draw(init: Init, shape: tuple[int, int], rng: np.random.Generator,
          fans: tuple[int, int] | None = None) -> np.ndarray:
    n_out, n_in = shape
    if init.kind == "xavier":
        if fans is not None:   # a kernel: Glorot's fans of the convolution
            n_in, n_out = fans
        a = init.scale * np.sqrt(6.0 / (n_in + n_out))
        return rng.uniform(-a, a, size=shape)
    if init.kind == "uniform":
        return rng.uniform(-init.scale, init.scale, size=shape)
    if init.kind == "normal":
        return rng.normal(0.0, init.scale, size=shape)
    if init.kind == "zeros":
        return np.zeros(shape)
    if init.kind == "constant":
        return np.full(shape, float(init.scale))
    if init.kind == "identity":
        return init.scale * np.eye(n_out, n_in)
    if init.kind == "select":
        return init.scale * np.eye(n_out, n_in, k=int(init.offset))
    raise CircuitError(f"unknown initialiser kind {init.kind!r}; use one of {INIT_KINDS}")


__all__ = ["CircuitError", "Init", "Tied", "Rule", "Population", "Projection", "Schedule",
           "Circuit", "Conv", "ExpressionError", "BUILTIN_SCALARS", "RULE_TRANSFORMS"]
