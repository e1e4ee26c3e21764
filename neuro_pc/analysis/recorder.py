"""A training callback that records how a local rule relates to backprop, per layer, over training.

:class:`AlignmentRecorder` is called as ``callback(epoch, sim)`` by
:meth:`neuro_pc.backends.base.Simulator.train` (any backend: it reads only
``sim.weights``) or directly with :meth:`AlignmentRecorder.record`. At each
call it takes the live weights, runs the rule's circuit **and** its backprop
counterpart on the reference backend's batched mode, on the same fixed probe
batch ``(x, y)`` and the same weights, and records, per layer:

``angle_update_deg``
    angle between the rule's update of each forward matrix ``W_l`` and BP's
    (``angle(ΔW_rule, ΔW_BP)``), before any population-level
    transform (Muon) is applied;
``angle_signal_deg``
    angle between the delivered error signal ``Δ_l`` (batch × n_l) and BP's
    ``δ_l = ∂L/∂a_l`` on the same batch; predictive-coding error units are
    compared as ``−ε_l`` (``ε ≈ −δ`` at equilibrium), so both are descent-signed;
``weight_alignment``
    angle and norm ratio ``‖B‖_F/‖M‖_F`` between each stored feedback matrix
    ``B`` and the transport it stands in for, ``M = Wᵀ`` of the forward
    projection it mirrors (FA, KP, PC), or the transposed product of the
    forward matrices it skips (DFA: ``(W_L ⋯ W_{l+1})ᵀ``) (§6.2); a transposed
    convolution's kernel is compared with the forward kernel it mirrors (the
    same ``(O, C·kh·kw)`` layout), and DFA's product through convolutions is
    computed by applying each map to the ``n_out`` unit vectors;
``rank``
    the three effective-rank measures (:func:`~neuro_pc.analysis.rank_measures`:
    ``erank`` = exp of the entropy of the normalised singular values,
    ``participation_ratio`` = (Σσ²)²/Σσ⁴, ``stable_rank`` = Σσ²/σ_max²) of the
    rule's error signal ``Δ_l`` (batch × n_l) and update ``ΔW_l``, and of BP's
    (§6.3), under ``signal``, ``signal_bp``, ``update``, ``update_bp``; for a
    convolutional layer (``metadata["shapes"]``, :func:`neuro_pc.models.cnn`) also
    of its channel view ``(batch·H·W) × C`` (``signal_channels``,
    ``signal_channels_bp``: how many channel directions the error uses, at most C);
    a kernel's update is its ``(O, C·kh·kw)`` matrix;
``muon``
    for rules with the Muon transform: the erank of the batch update before and
    after Newton–Schulz, and, when the simulator exposes its Muon state (the
    reference backend does), of the momentum-accumulated update before and after;
``pc_energy``
    for predictive-coding circuits: ``E_l(t) = mean_batch ½‖ε_l(t)‖²`` at every
    inference step ``t`` of the window and every layer, from ``record=`` monitors
    (§6.4);
``loss``
    BP's squared-error loss ``mean_batch ½‖r_out − y‖²`` on the probe batch.

Every series has one entry per record call, in call order; :attr:`steps` holds
the label of each call (the epoch; ``-1`` for a record before training).
:meth:`results` returns all of it as JSON-able data for a run's results.

The BP counterpart is built with :func:`neuro_pc.models.mlp` from the circuit's
metadata (same sizes, activation and normalisation, ``rule="bp"``), so the
recorder works for the circuits that builder makes; pass ``reference=`` (a BP
circuit with the same forward projection names) for others.
"""
from __future__ import annotations

import re

import numpy as np

from neuro_pc.analysis.metrics import angle, pc_energy, rank_measures, weight_alignment
from neuro_pc.rules.muon import newton_schulz

__all__ = ["AlignmentRecorder", "bp_counterpart", "RANK_MEASURES"]

#: the effective-rank measures recorded, in the order of :func:`rank_measures`
RANK_MEASURES = ("erank", "participation_ratio", "stable_rank")

_FORWARD = re.compile(r"^W\d+$")


def bp_counterpart(circuit):
    """The backprop circuit with the same forward network as ``circuit``.

    Parameters
    ----------
    circuit : Circuit
        A circuit from :func:`neuro_pc.models.mlp` (``metadata["builder"]
        == "mlp"``) or :func:`neuro_pc.models.cnn` (``"cnn"``), any rule.

    Returns
    -------
    Circuit
        An ``mlp(sizes, rule="bp", act=..., norm=...)`` (or the same CNN with
        ``rule="bp"``) circuit with ``eta = 1`` (so its updates are ``−∂L/∂W``,
        the negative gradient of the batch-mean loss: ``½‖r_out − y‖²``, or
        the cross-entropy for a circuit built with ``loss="ce"``), named
        ``bp_reference_of_<circuit name>``.

    Raises
    ------
    ValueError
        For a circuit that neither builder made (pass ``reference=`` to
        :class:`AlignmentRecorder` instead).
    """
    from neuro_pc.models import mlp

    meta = circuit.metadata
    if meta.get("builder") == "cnn":
        from neuro_pc.models.conv import cnn_from_metadata

        return cnn_from_metadata(meta, rule="bp", eta=1.0, lam=0.0,
                                 name=f"bp_reference_of_{circuit.name}")
    if meta.get("builder") != "mlp":
        raise ValueError(f"circuit {circuit.name!r} was not built by neuro_pc.models.mlp; pass "
                         "reference=<a BP circuit with the same forward projections>")
    has_bias = any(p.name == "bias" for p in circuit.populations)
    return mlp(meta["sizes"], rule="bp", act=meta.get("act", "tanh"), eta=1.0, bias=has_bias,
               norm=meta.get("norm"), loss=meta.get("loss", "mse"),
               name=f"bp_reference_of_{circuit.name}")


def _error_variable(pop) -> tuple[str, float] | None:
    """``(variable, sign)`` of a population's error signal in descent-sign convention."""
    if "delta" in pop.variables:
        return "delta", 1.0
    if "eps" in pop.variables and pop.model == "pc":
        return "eps", -1.0
    return None


class AlignmentRecorder:
    """Record alignment, weight alignment, effective rank and PC energy over training.

    Use as ``sim.train(..., callback=rec)``; call ``rec.record(sim.weights, -1)``
    before training for the initial point.

    Parameters
    ----------
    circuit : Circuit
        The trained circuit (an :func:`~neuro_pc.models.mlp` circuit, any rule).
    x, y : array_like
        The probe batch, ``(B, n_in)`` inputs and ``(B, n_out)`` one-hot targets;
        every record uses the same batch. ``B`` should exceed the layer widths for
        the rank measures to be able to reach the layer width.
    reference : Circuit, optional
        The BP circuit to compare with (default :func:`bp_counterpart`), with the
        same forward projection names.
    every : int, default 1
        Record only every ``every``-th call of the callback (``record`` always records).
    energy : bool, default True
        Record the PC energy per inference step (PC circuits only).

    Attributes
    ----------
    circuit : Circuit
        The trained circuit.
    reference : Circuit
        The BP circuit compared with.
    x : numpy.ndarray
        The probe inputs ``(B, n_in)``, float64.
    y : numpy.ndarray
        The probe targets ``(B, n_out)``, float64.
    every : int
        Record every ``every``-th callback call (at least 1).
    layers : list of str
        The populations with an error signal, input side first.
    projections : list of str
        The forward projections (``W<k>`` into an ``ff`` port) that are plastic.
    feedback : dict of str to list of str
        ``{feedback projection: the forward projections it stands in for}``.
    steps : list
        The label of each record call (the epoch; ``-1`` for a record before
        training).

    Raises
    ------
    ValueError
        For ``x`` and ``y`` with different numbers of samples, a reference
        without one of the circuit's forward projections, or (without
        ``reference``) a circuit :func:`bp_counterpart` cannot mirror.
    """

    def __init__(self, circuit, x, y, *, reference=None, every: int = 1, energy: bool = True):
        from neuro_pc.backends.reference import ReferenceSimulator

        self.circuit = circuit
        self.x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        self.y = np.atleast_2d(np.asarray(y, dtype=np.float64))
        if len(self.x) != len(self.y):
            raise ValueError(f"probe batch: x has {len(self.x)} samples, y has {len(self.y)}")
        self.reference = reference if reference is not None else bp_counterpart(circuit)
        self.every = max(1, int(every))
        self._calls = 0
        self.layers = []          # populations with an error signal, input side first
        self._err = {}
        for pop in circuit.populations:
            ev = _error_variable(pop)
            if ev is not None:
                self.layers.append(pop.name)
                self._err[pop.name] = ev
        self.projections = [p.name for p in circuit.plastic
                            if _FORWARD.match(p.name) and p.port == "ff"]
        self._muon = [p.name for p in circuit.plastic if "muon" in p.rule.transforms
                      and p.name in self.projections]
        self.feedback = {}        # B name -> (forward projections it stands in for)
        for p in circuit.stored:
            if p.port == "fb":
                chain = self._forward_chain(p.target, p.source)
                if chain:
                    self.feedback[p.name] = chain
        self._shapes = {k: tuple(v) for k, v in circuit.metadata.get("shapes", {}).items()}
        self._energy_pops = [p.name for p in circuit.populations
                             if p.model == "pc" and "eps" in p.variables] if energy else []
        record = tuple((p, "eps") for p in self._energy_pops)
        self._rule_sim = ReferenceSimulator(circuit, record=record)
        self._bp_sim = ReferenceSimulator(self.reference)
        self._bp_names = {p.name for p in self.reference.stored}
        for name in self.projections:
            if name not in self._bp_names:
                raise ValueError(f"the reference circuit has no forward projection {name!r}")
        self.steps: list = []
        self._data: dict = {}

    # -- structure ------------------------------------------------------------
    def _forward_chain(self, start: str, end: str) -> list[str]:
        """Names of the forward projections on the path ``start → … → end``."""
        fwd = {p.source: p for p in self.circuit.projections
               if _FORWARD.match(p.name) and p.port == "ff"}
        chain, node = [], start
        while node in fwd and len(chain) <= len(fwd):
            proj = fwd[node]
            chain.append(proj.name)
            node = proj.target
            if node == end:
                return chain
        return []

    # -- recording ------------------------------------------------------------
    def __call__(self, epoch, sim) -> None:
        """Training callback: record from ``sim.weights`` (every ``every``-th call).

        Parameters
        ----------
        epoch : int
            The label of the record.
        sim : Simulator
            The simulator training the circuit.
        """
        self._calls += 1
        if self._calls % self.every == 0:
            self.record(sim.weights, epoch, sim=sim)

    def _append(self, *path_and_value) -> None:
        *path, value = path_and_value
        d = self._data
        for key in path[:-1]:
            d = d.setdefault(key, {})
        d.setdefault(path[-1], []).append(value)

    def record(self, weights: dict, step=None, sim=None) -> dict:
        """Record one point from ``weights`` (``{projection: (n_target, n_source)}``).

        Parameters
        ----------
        weights : dict of str to numpy.ndarray
            The circuit's weights (e.g. ``sim.weights``).
        step : int, optional
            Labels the point (default: the number of records so far).
        sim : Simulator, optional
            If given, asked for its Muon momentum state.

        Returns
        -------
        dict
            This point's values as a flat dict ``{"series/key": value}``.
        """
        rule_w = {k: np.array(v, dtype=np.float64) for k, v in weights.items()
                  if k in self._rule_sim.weights}
        self._rule_sim.weights.update(rule_w)
        self._bp_sim.weights.update({k: v for k, v in rule_w.items() if k in self._bp_names})
        du = self._rule_sim.compute_updates(self.x, self.y)
        monitor = dict(self._rule_sim.monitor)
        rule_state = self._rule_sim.state
        dbp = self._bp_sim.compute_updates(self.x, self.y)
        bp_state = self._bp_sim.state
        self.steps.append(len(self.steps) if step is None else step)
        point = {}

        def put(*path_and_value):
            self._append(*path_and_value)
            point["/".join(map(str, path_and_value[:-1]))] = path_and_value[-1]

        out = self.reference.readout or ("out", "r")
        put("loss", float(np.mean(0.5 * np.sum((bp_state[f"{out[0]}.{out[1]}"] - self.y) ** 2,
                                               axis=1))))
        for name in self.projections:
            put("angle_update_deg", name, angle(du[name], dbp[name]))
            for m, v in rank_measures(du[name]).items():
                put("rank", "update", name, m, v)
            for m, v in rank_measures(dbp[name]).items():
                put("rank", "update_bp", name, m, v)
        for layer in self.layers:
            var, sign = self._err[layer]
            sig = sign * rule_state[f"{layer}.{var}"]
            bp_sig = bp_state[f"{layer}.delta"]
            put("angle_signal_deg", layer, angle(sig, bp_sig))
            for m, v in rank_measures(sig).items():
                put("rank", "signal", layer, m, v)
            for m, v in rank_measures(bp_sig).items():
                put("rank", "signal_bp", layer, m, v)
            shape = self._shapes.get(layer)
            if shape is not None:       # a conv layer: (batch·H·W) × C
                for kind, arr in (("signal_channels", sig), ("signal_channels_bp", bp_sig)):
                    chan = np.asarray(arr).reshape(len(arr), shape[0], -1).transpose(0, 2, 1)
                    for m, v in rank_measures(chan.reshape(-1, shape[0])).items():
                        put("rank", kind, layer, m, v)
        for b, chain in self.feedback.items():
            wa = self._weight_alignment(b, chain, rule_w)
            put("weight_alignment", b, "angle_deg", wa["angle_deg"])
            put("weight_alignment", b, "norm_ratio", wa["norm_ratio"])
        muons = getattr(sim, "muon", {})
        for name in self._muon:
            put("muon", name, "erank_batch_update", rank_measures(du[name])["erank"])
            put("muon", name, "erank_batch_orthogonalised",
                rank_measures(newton_schulz(du[name]))["erank"])
            muon = muons.get(name)
            pre = getattr(muon, "last_pre_orth", None)
            put("muon", name, "erank_momentum",
                float("nan") if pre is None else rank_measures(pre)["erank"])
            put("muon", name, "erank_momentum_orthogonalised",
                float("nan") if pre is None else rank_measures(newton_schulz(pre))["erank"])
        if self._energy_pops:
            traces = [monitor[f"{p}.eps"] for p in self._energy_pops]   # each (T, B, n)
            per_step = np.array([pc_energy([tr[t] for tr in traces])[0]
                                 for t in range(traces[0].shape[0])])  # (T, layers)
            self._append("pc_energy", "per_step", per_step.tolist())
            put("pc_energy", "total_final", float(per_step[-1].sum()))
        return point

    def _weight_alignment(self, b: str, chain: list, w: dict) -> dict:
        """``weight_alignment`` of feedback ``b`` with the forward ``chain`` it skips."""
        c = self.circuit
        bconv = c.projection(b).conv
        if bconv is not None:         # a transposed kernel mirrors one forward kernel
            fconv = c.projection(chain[0]).conv
            if len(chain) != 1 or fconv is None or not fconv.same_geometry(bconv):
                raise ValueError(f"feedback {b!r} is a convolution that does not mirror "
                                 f"{chain}")
            return weight_alignment(w[chain[0]], w[b].T)
        if not any(c.projection(n).conv is not None for n in chain):
            M = w[chain[0]]
            for name in chain[1:]:
                M = w[name] @ M
            return weight_alignment(M, w[b])
        # through convolutions: the unit vectors of the end, carried back by each transposed map
        from neuro_pc.ir import ConvOp

        end = c.population(c.projection(chain[-1]).target).size
        G = np.eye(end)
        for name in reversed(chain):
            p = c.projection(name)
            G = ConvOp(p.conv).conv_t(G, w[name]) if p.conv is not None else G @ w[name]
        return weight_alignment(G, w[b])       # the rows of G are e_kᵀ M: G = M (n_end, n_l)

    # -- output -----------------------------------------------------------------
    def results(self) -> dict:
        """Everything recorded, JSON-able: lists with one entry per record call.

        Returns
        -------
        dict
            The series (module docstring) under their names, with ``circuit``,
            ``rule``, ``reference``, ``n_samples``, ``steps``, ``layers``,
            ``projections``, ``feedback`` (each feedback matrix with the transport
            it stands in for) and ``rank_measures``.
        """
        res = {"circuit": self.circuit.name, "rule": self.circuit.metadata.get("rule"),
               "reference": self.reference.name, "n_samples": int(len(self.x)),
               "steps": list(self.steps), "layers": list(self.layers),
               "projections": list(self.projections),
               "feedback": {b: ("(" + " ".join(reversed(c)) + ")ᵀ") for b, c in
                            self.feedback.items()},
               "rank_measures": list(RANK_MEASURES)}
        res.update(_copy(self._data))
        if self._energy_pops:
            res.setdefault("pc_energy", {})["layers"] = list(self._energy_pops)
        return res

    def array(self, *path) -> np.ndarray:
        """One recorded series as an array.

        Parameters
        ----------
        *path : str
            The keys of the series, e.g. ``array("angle_signal_deg", "h1")``
            (shape ``(n_records,)``) or ``array("pc_energy", "per_step")``
            (``(n_records, T, n_layers)``).

        Returns
        -------
        numpy.ndarray
            The series, float64.

        Raises
        ------
        KeyError
            For a path that was not recorded.
        """
        d = self._data
        for key in path:
            d = d[key]
        return np.asarray(d, dtype=np.float64)

    def by_layer(self, series: str, measure: str | None = None, kind: str = "signal") -> np.ndarray:
        """A per-layer series stacked to ``(n_records, n_items)``.

        Parameters
        ----------
        series : str
            ``"angle_update_deg"`` (items: :attr:`projections`),
            ``"angle_signal_deg"`` (items: :attr:`layers`) or ``"rank"``.
        measure : str, optional
            ``"rank"`` only: one of :data:`RANK_MEASURES`.
        kind : str, default "signal"
            ``"rank"`` only: ``signal, signal_bp`` (layers) / ``update, update_bp``
            (projections).

        Returns
        -------
        numpy.ndarray
            Float64, one row per record and one column per item.

        Raises
        ------
        KeyError
            For a series, kind or measure that was not recorded.
        """
        if series == "rank":
            items = self.layers if kind.startswith("signal") else self.projections
            cols = [self._data["rank"][kind][i][measure] for i in items]
        else:
            items = self.projections if series == "angle_update_deg" else self.layers
            cols = [self._data[series][i] for i in items]
        return np.asarray(cols, dtype=np.float64).T.reshape(len(self.steps), len(items))


def _copy(d):
    if isinstance(d, dict):
        return {k: _copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_copy(v) for v in d]
    return d
