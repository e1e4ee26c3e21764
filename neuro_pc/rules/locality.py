"""The locality report: which information each plastic projection's rule uses.

Levels, from most to least local (``docs/rules.md``):

``synapse-local``
    the rule reads only the synapse itself (its weight): pure decay.
``neuron-local``
    it reads one variable of the pre- and/or post-synaptic unit, and what those
    variables depend on within the window came through ordinary projections
    (own weights, fixed or plastic feedback matrices) and element-wise updates.
``weight-shared``
    the projection is a convolution whose kernel is shared by every position:
    one synapse's update is the sum of the pre/post products of *all* the
    synapses that share its weight, so it reads other synapses' pre- and
    post-synaptic units (the flag :attr:`RuleLocality.weight_sharing` says so at
    every level, also when a less local level wins).
``population-level``
    somewhere on that path a population-level function (a normalisation,
    k-winners-take-all, softmax) reads the whole layer, or the rule applies a
    population-level transform to its update (Muon, column or row normalisation).
``network-global``
    the path crosses a *tied* projection: a matrix that is another
    projection's weights, transposed or signed. This is weight transport (BP)
    or sign transport (sign-symmetry).

The analysis follows dependencies: a rule factor ``post.v`` depends on the
statements that assign ``v``, the names they read, the ports among them, the
projections into those ports and the source variables they carry, and so on.

This module takes a circuit by duck typing and imports nothing else of the
project but the rule parser.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from neuro_pc.rules.parse import parse_rule

LEVELS = ("synapse-local", "neuron-local", "weight-shared", "population-level", "network-global")


@dataclass(frozen=True)
class RuleLocality:
    projection: str
    rule: str
    level: str
    weight_transport: str | None           # None, "weights" or "sign"
    reasons: tuple[str, ...] = field(default=())
    baseline: bool = False
    post_vars: tuple[str, ...] = ()
    pre_vars: tuple[str, ...] = ()
    transforms: tuple[str, ...] = ()
    #: every population the rule reads through a population-level function, with
    #: those functions (the reasons name at most three populations per function set)
    population_reads: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: the rule updates a kernel shared by this many positions (a convolution), else 0
    weight_sharing: int = 0

    def as_dict(self) -> dict:
        return {"projection": self.projection, "rule": self.rule, "level": self.level,
                "weight_transport": self.weight_transport, "reasons": list(self.reasons),
                "baseline": self.baseline, "transforms": list(self.transforms),
                "population_reads": {pop: list(fns) for pop, fns in self.population_reads},
                "weight_sharing": self.weight_sharing}


@dataclass
class _Path:
    tied: dict[str, str] = field(default_factory=dict)        # projection -> description
    population_fns: dict[str, set] = field(default_factory=dict)  # population -> functions


def _trace(circuit, pop_name: str, var: str, path: _Path, seen: set) -> None:
    """Collect what ``pop_name.var`` depends on into ``path``."""
    key = (pop_name, var)
    if key in seen:
        return
    seen.add(key)
    pop = circuit.population(pop_name)
    if var in pop.ports:
        for proj in circuit.projections_into(pop_name, var):
            if proj.tied is not None:
                what = "sign of" if proj.tied.fn == "sign" else "weights of"
                path.tied[proj.name] = (f"projection {proj.name!r} carries the {what} "
                                        f"{proj.tied.to!r}{' transposed' if proj.tied.transpose else ''}")
            _trace(circuit, proj.source, circuit.source_variable(proj), path, seen)
        return
    for st in pop.statements():
        if st.target != var:
            continue
        if st.population_functions:
            path.population_fns.setdefault(pop_name, set()).update(st.population_functions)
        for name in st.names:
            if name in pop.variables or name in pop.ports:
                _trace(circuit, pop_name, name, path, seen)


def rule_locality(circuit, proj) -> RuleLocality:
    """Locality of one plastic projection's rule (see the module docstring)."""
    rule = proj.rule
    parsed = parse_rule(rule.text, rule.params, where=f"rule of projection {proj.name!r}",
                        allow_nonlocal=rule.baseline)
    path, seen = _Path(), set()
    for v in parsed.post_vars:
        _trace(circuit, proj.target, v, path, seen)
    for v in parsed.pre_vars:
        _trace(circuit, proj.source, v, path, seen)
    reasons = []
    level = parsed.level
    transport = None
    pop_transforms = tuple(t for t in rule.transforms)
    conv = getattr(proj, "conv", None)
    shared = 0
    if conv is not None:
        shared = conv.positions
        level = "weight-shared"
        reasons.append(f"weight sharing: its {conv.out_channels}x{conv.patch} kernel is shared "
                       f"by the {shared} positions of the convolution ({conv.describe()}), so "
                       "one synapse's update sums the pre/post products of all the synapses "
                       "that hold the same weight: it reads other synapses' pre- and "
                       "post-synaptic units")
    if path.population_fns or pop_transforms:
        level = "population-level"
        by_fns: dict[tuple, list] = {}
        for pop, fns in sorted(path.population_fns.items()):
            by_fns.setdefault(tuple(sorted(fns)), []).append(pop)
        for fns, pops in by_fns.items():
            what = f"population-level {', '.join(fns)}()"
            if len(pops) == 1:
                reasons.append(f"reads population {pops[0]!r} through {what}")
            else:                       # one line per function set, not per population
                names = ", ".join(map(repr, pops[:3]))
                more = f" and {len(pops) - 3} more" if len(pops) > 3 else ""
                reasons.append(f"reads {len(pops)} populations through {what}: {names}{more}")
        for t in pop_transforms:
            reasons.append(f"applies the population-level transform {t!r} to the layer's "
                           "update or weights")
    if path.tied:
        level = "network-global"
        signs = all("sign of" in d for d in path.tied.values())
        transport = "sign" if signs else "weights"
        reasons += [f"{d} ({'sign' if 'sign of' in d else 'weight'} transport)"
                    for _, d in sorted(path.tied.items())]
    if not reasons:
        if level == "neuron-local":
            sides = ([f"post.{v}" for v in sorted(parsed.post_vars)]
                     + [f"pre.{v}" for v in sorted(parsed.pre_vars)])
            reasons.append(f"reads {', '.join(sides)}, each reached through ordinary projections "
                           "and element-wise updates")
        else:
            reasons.append("reads only the synapse's own weight")
    return RuleLocality(projection=proj.name, rule=rule.text, level=level,
                        weight_transport=transport, reasons=tuple(reasons),
                        baseline=rule.baseline, post_vars=tuple(sorted(parsed.post_vars)),
                        pre_vars=tuple(sorted(parsed.pre_vars)), transforms=pop_transforms,
                        population_reads=tuple((pop, tuple(sorted(fns))) for pop, fns
                                               in sorted(path.population_fns.items())),
                        weight_sharing=shared)


def locality_report(circuit) -> list[RuleLocality]:
    """One :class:`RuleLocality` per plastic projection, in circuit order."""
    return [rule_locality(circuit, p) for p in circuit.projections if p.rule is not None]


def circuit_level(report: list[RuleLocality]) -> str:
    """The least local level among the rules (the circuit's level)."""
    if not report:
        return "synapse-local"
    return max((r.level for r in report), key=LEVELS.index)


def format_report(report: list[RuleLocality]) -> str:
    """A plain-text table."""
    rows = [("projection", "level", "weight transport", "rule", "reason")]
    for r in report:
        rows.append((r.projection + (" (baseline)" if r.baseline else ""), r.level,
                     r.weight_transport or "no", r.rule, "; ".join(r.reasons)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    out = []
    for k, row in enumerate(rows):
        out.append("  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4])
        if k == 0:
            out.append("  ".join("-" * w for w in widths) + "  " + "-" * 6)
    return "\n".join(out)
