"""Validation of a circuit: every error names the object and the fix."""
from __future__ import annotations

import keyword
import math
from typing import TYPE_CHECKING

from neuro_pc.ir.expr import (BUILTIN_SCALARS, NEURON_FUNCTIONS, POPULATION_FUNCTIONS,
                              ExpressionError)
from neuro_pc.ir.kinds import (INIT_KINDS, POPULATION_MODELS, RULE_TRANSFORMS, TIED_FUNCTIONS,
                              CircuitError)

if TYPE_CHECKING:   # the circuit imports this module, never the reverse
    from neuro_pc.ir.circuit import Circuit


def _unique(kind: str, names: list[str], circuit: str) -> None:
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise CircuitError(f"circuit {circuit!r}: {kind} names must be unique; repeated: {dup}")


def _finite(value, what: str, where: str, integer: bool = False) -> None:
    """``value`` is a finite number (an integer if ``integer``), else a CircuitError."""
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    if not ok or not math.isfinite(value):
        raise CircuitError(f"{where}: {what} must be a finite {'integer' if integer else 'number'}"
                           f", got {value!r}")


def _check_name(kind: str, name, circuit: str) -> None:
    """Names end up in generated code: only plain identifiers, never keywords or dunders."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) \
            or name.startswith("__"):
        raise CircuitError(f"circuit {circuit!r}: {kind} name {name!r} is not allowed; use a "
                           "Python identifier that is not a keyword and does not start with '__'")


def validate_circuit(c: Circuit) -> None:
    from neuro_pc.rules.locality import rule_locality
    from neuro_pc.rules.parse import RuleError

    for pop in c.populations:
        _check_name("population", pop.name, c.name)
    for proj in c.projections:
        _check_name("projection", proj.name, c.name)
    for name, width in c.streams.items():
        _check_name("stream", name, c.name)
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise CircuitError(f"circuit {c.name!r}: stream {name!r} has width {width!r}; "
                               "a width is a positive integer")
    if isinstance(c.schedule.window, bool) or not isinstance(c.schedule.window, int):
        raise CircuitError(f"circuit {c.name!r}: schedule.window must be an integer, got "
                           f"{c.schedule.window!r}")
    if isinstance(c.schedule.dt, bool) or not isinstance(c.schedule.dt, (int, float)) \
            or not math.isfinite(c.schedule.dt) or c.schedule.dt <= 0:
        raise CircuitError(f"circuit {c.name!r}: schedule.dt must be a finite number > 0, got "
                           f"{c.schedule.dt!r}")
    if c.schedule.window < 1:
        raise CircuitError(f"circuit {c.name!r}: schedule.window is {c.schedule.window}; "
                           "a presentation window needs at least 1 step")
    _unique("population", [p.name for p in c.populations], c.name)
    _unique("projection", [p.name for p in c.projections], c.name)
    for pop in c.populations:
        _validate_population(c, pop)
    for proj in c.projections:
        _validate_projection(c, proj)
    if c.readout is not None:
        pop = c.population(c.readout[0])
        if c.readout[1] not in pop.variables:
            raise CircuitError(f"circuit {c.name!r}: readout variable {c.readout[1]!r} is not a "
                               f"variable of population {pop.name!r} ({list(pop.variables)})")
    for proj in c.plastic:
        try:
            loc = rule_locality(c, proj)
        except RuleError as exc:
            raise CircuitError(str(exc)) from None
        src, tgt = c.population(proj.source), c.population(proj.target)
        for side, pop, names in (("post", tgt, loc.post_vars), ("pre", src, loc.pre_vars)):
            missing = [v for v in names if v not in pop.variables]
            if missing:
                raise CircuitError(
                    f"rule of projection {proj.name!r} reads {side}.{missing[0]}, but population "
                    f"{pop.name!r} has no variable {missing[0]!r}; its variables: "
                    f"{list(pop.variables)}")
        if loc.level == "network-global" and not proj.rule.baseline:
            raise CircuitError(
                f"rule of projection {proj.name!r} is network-global: {'; '.join(loc.reasons)}. "
                "Mark it as a non-local baseline (Rule(..., baseline=True)) or give the feedback "
                "its own weights (fixed random for FA/DFA, plastic for Kolen–Pollack).")


def _validate_population(c: Circuit, pop) -> None:
    where = f"population {pop.name!r}"
    if pop.model not in POPULATION_MODELS:
        raise CircuitError(f"{where}: model {pop.model!r} unknown; use one of "
                           f"{sorted(POPULATION_MODELS)} (what each means: "
                           "neuro_pc.ir.kinds.POPULATION_MODELS)")
    if isinstance(pop.size, bool) or not isinstance(pop.size, int) or pop.size < 1:
        raise CircuitError(f"{where}: size must be a positive integer, got {pop.size!r}")
    names = list(pop.variables) + list(pop.ports) + list(pop.params)
    for n in names:
        if isinstance(n, str) and keyword.iskeyword(n):
            raise CircuitError(f"{where}: {n!r} is a Python keyword and cannot be a name")
    _unique(f"{where} variable/port/parameter", names, c.name)
    for n in names:
        if not isinstance(n, str) or not n.isidentifier() or n.startswith("__"):
            raise CircuitError(f"{where}: {n!r} cannot be a name (a Python identifier not "
                               "starting with '__')")
        if n in BUILTIN_SCALARS or n in NEURON_FUNCTIONS or n in POPULATION_FUNCTIONS:
            raise CircuitError(f"{where}: {n!r} shadows a name of the expression language "
                               f"(the scalars {BUILTIN_SCALARS} and the functions); rename it")
    for n, value in pop.params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise CircuitError(f"{where}: parameter {n!r} is {value!r}; parameters must be "
                               "finite numbers")
    if pop.output not in pop.variables:
        raise CircuitError(f"{where}: output {pop.output!r} is not one of its variables "
                           f"{list(pop.variables)}")
    for var, stream in pop.streams.items():
        if var not in pop.variables:
            raise CircuitError(f"{where}: streamed variable {var!r} is not declared; add it to "
                               f"variables {list(pop.variables)}")
        if stream not in c.streams:
            raise CircuitError(f"{where}: stream {stream!r} is not a stream of the circuit; "
                               f"declare it in Circuit.streams (known: {list(c.streams)})")
        if c.streams[stream] != pop.size:
            raise CircuitError(f"{where}: stream {stream!r} is {c.streams[stream]} wide but the "
                               f"population has {pop.size} units; make them equal")
    for v, value in pop.init.items():
        if v not in pop.variables:
            raise CircuitError(f"{where}: init names unknown variable {v!r}")
        _finite(value, f"init[{v!r}]", where)
    try:
        statements = pop.statements()
    except ExpressionError as exc:
        raise CircuitError(str(exc)) from None
    known = set(pop.variables) | set(pop.ports) | set(pop.params) | set(BUILTIN_SCALARS)
    for st in statements:
        if st.target not in pop.variables:
            hint = " (ports are computed from projections and cannot be assigned)" \
                if st.target in pop.ports else ""
            raise CircuitError(f"{where}: {st.text!r} assigns {st.target!r}, which is not one of "
                               f"its variables {list(pop.variables)}{hint}")
        if st.target in pop.streams:
            raise CircuitError(f"{where}: {st.text!r} assigns {st.target!r}, which is streamed "
                               "from data; remove the statement or the stream")
        unknown = sorted(st.names - known)
        if unknown:
            raise CircuitError(f"{where}: {st.text!r} reads unknown name(s) {unknown}; declare "
                               "them as variables, ports or params of the population")


def _validate_projection(c: Circuit, proj) -> None:
    where = f"projection {proj.name!r}"
    try:
        src, tgt = c.population(proj.source), c.population(proj.target)
    except CircuitError as exc:
        raise CircuitError(f"{where}: {exc}") from None
    _finite(proj.scale, "scale", where)
    _finite(proj.connectivity, "connectivity", where)
    var = c.source_variable(proj)
    if var not in src.variables:
        raise CircuitError(f"{where}: source variable {var!r} is not a variable of "
                           f"{src.name!r} ({list(src.variables)})")
    if proj.port not in tgt.ports:
        raise CircuitError(f"{where}: target port {proj.port!r} is not a port of {tgt.name!r} "
                           f"(ports: {list(tgt.ports)}); add it to the population's ports")
    if not 0.0 < proj.connectivity <= 1.0:
        raise CircuitError(f"{where}: connectivity must be in (0, 1], got {proj.connectivity}")
    if proj.conv is not None:
        _validate_conv(c, proj, src, tgt, where)
    if proj.tied is not None:
        if proj.rule is not None:
            raise CircuitError(f"{where}: a tied projection has no weights of its own and cannot "
                               "be plastic; remove the rule or the tie")
        _finite(proj.tied.scale, "tied.scale", where)
        other = c.projection(proj.tied.to)
        if other.tied is not None:
            raise CircuitError(f"{where}: tied to {other.name!r}, which is itself tied")
        if proj.tied.fn not in TIED_FUNCTIONS:
            raise CircuitError(f"{where}: tied fn {proj.tied.fn!r} unknown; use {TIED_FUNCTIONS}")
        o_shape = (c.population(other.target).size, c.population(other.source).size)
        eff = o_shape[::-1] if proj.tied.transpose else o_shape
        if eff != (tgt.size, src.size):
            raise CircuitError(f"{where}: tied to {other.name!r} whose matrix"
                               f"{'ᵀ' if proj.tied.transpose else ''} is {eff}, but this "
                               f"projection needs ({tgt.size}, {src.size}) (target, source)")
        return
    _finite(proj.init.scale, "init.scale", where)
    _finite(proj.init.offset, "init.offset", where, integer=True)
    if proj.init.kind not in INIT_KINDS:
        raise CircuitError(f"{where}: unknown initialiser {proj.init.kind!r}; use {INIT_KINDS}")
    if proj.conv is not None and proj.init.kind in ("identity", "select"):
        raise CircuitError(f"{where}: the {proj.init.kind!r} initialiser draws a dense matrix; "
                           "a convolution's kernel takes xavier, uniform, normal, zeros, "
                           "constant or transpose_of")
    if proj.init.kind == "transpose_of" and proj.conv is not None:
        other = c.projection(proj.init.of or "")
        if other.conv is None or not other.conv.same_geometry(proj.conv) or \
                other.conv.transpose == proj.conv.transpose:
            raise CircuitError(f"{where}: transpose_of {other.name!r} copies a kernel into the "
                               "transposed convolution of the same geometry; "
                               f"{other.name!r} is "
                               f"{other.conv.describe() if other.conv else 'dense'}, this "
                               f"projection {proj.conv.describe()}")
        return _validate_rule(proj, where)
    if proj.init.kind == "identity" and tgt.size != src.size:
        raise CircuitError(f"{where}: identity initialiser needs a square matrix, "
                           f"got ({tgt.size}, {src.size})")
    if proj.init.kind == "select" and not 0 <= proj.init.offset <= src.size - tgt.size:
        raise CircuitError(f"{where}: select initialiser copies source units offset.."
                           f"offset+{tgt.size - 1}; offset {proj.init.offset} does not fit a "
                           f"source of {src.size} units (0 <= offset <= {src.size - tgt.size})")
    if proj.init.kind == "transpose_of":
        other = c.projection(proj.init.of or "")
        shape = (c.population(other.source).size, c.population(other.target).size)
        if shape != (tgt.size, src.size):
            raise CircuitError(f"{where}: transpose_of {other.name!r} gives {shape}, "
                               f"needs ({tgt.size}, {src.size})")
        if other.conv is not None:
            raise CircuitError(f"{where}: transpose_of {other.name!r} (a convolution) gives a "
                               "kernel, not a matrix; make this projection the transposed "
                               "convolution (Conv(..., transpose=True)) of the same geometry")
    _validate_rule(proj, where)


def _validate_conv(c: Circuit, proj, src, tgt, where: str) -> None:
    """A convolution's geometry fits its populations (errors name the shapes)."""
    from neuro_pc.ir.conv import Conv

    conv = proj.conv
    if not isinstance(conv, Conv):
        raise CircuitError(f"{where}: conv must be a neuro_pc.ir.Conv, got {conv!r}")
    problem = conv.problem()
    if problem:
        raise CircuitError(f"{where}: {problem}")
    if proj.tied is not None:
        raise CircuitError(f"{where}: a tied projection takes its geometry from the projection "
                           f"it reads ({proj.tied.to!r}); remove conv=")
    if proj.connectivity < 1.0:
        raise CircuitError(f"{where}: a convolution's connectivity is its kernel; "
                           "connectivity < 1 is for dense projections (set it to 1)")
    C, H, W = conv.in_shape
    O, Ho, Wo = conv.out_shape
    ins, outs = (f"{C}x{H}x{W} = {conv.in_size}", f"{O}x{Ho}x{Wo} = {conv.out_size}")
    src_need, tgt_need = (outs, ins) if conv.transpose else (ins, outs)
    if conv.source_size != src.size:
        raise CircuitError(f"{where}: {conv.describe()} reads {src_need} units, but its source "
                           f"{src.name!r} has {src.size}; make the population that size or "
                           "change in_shape")
    if conv.target_size != tgt.size:
        raise CircuitError(f"{where}: {conv.describe()} writes {tgt_need} units, but its target "
                           f"{tgt.name!r} has {tgt.size}; make the population that size (the "
                           "output is (in + 2*padding - kernel) // stride + 1 per side)")


def _validate_rule(proj, where: str) -> None:
    if proj.rule is not None:
        from neuro_pc.rules.parse import RuleError, check_rule_params

        try:
            check_rule_params(proj.rule.text, proj.rule.params,
                              where=f"rule of projection {proj.name!r}")
        except RuleError as exc:
            raise CircuitError(str(exc)) from None
        bad = [t for t in proj.rule.transforms if t not in RULE_TRANSFORMS]
        if bad:
            raise CircuitError(f"{where}: unknown rule transform {bad[0]!r}; "
                               f"known: {RULE_TRANSFORMS}")
        if proj.conv is not None:
            dense_only = [t for t in proj.rule.transforms if t in ("unit_columns", "unit_rows")]
            if dense_only:
                raise CircuitError(f"{where}: the transform {dense_only[0]!r} rescales the "
                                   "columns or rows of a dense matrix; a convolution's shared "
                                   "kernel has neither (its matrix's rows share entries); "
                                   "remove it (Muon applies to the kernel)")
