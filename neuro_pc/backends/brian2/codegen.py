"""IR -> a Brian2 model description: equations and code strings, no Brian2 objects.

The mapping (the executable semantics are :mod:`neuro_pc.backends.reference`):

* a population is a ``NeuronGroup`` of parameters (no differential equations):
  its variables, its ports, and one variable ``in_<projection>`` per incoming
  projection (a Brian2 summed variable may be written by one ``Synapses`` only);
* a projection is a ``Synapses`` object with a weight ``w`` and the summed
  variable ``in_<P>_post = scale * w * <var>_pre``. Brian2 runs summed-variable
  updaters in the ``groups`` slot with order ``target.order - 1`` (-1 here),
  before the population updates (order 0), so a port reads the *previous*
  step's outputs: the IR's one-step delay, exactly;
* a port is a subexpression ``ff = in_W1 + in_b1 : 1`` (inlined where read);
* a population's per-step update is ``run_regularly(code, when='groups')``:
  streamed variables (``r = npc_stream_0(t - npc_tstep, i)``), then the IR
  statements in order;
* a rule is ``Synapses.run_regularly('w += <rule>', dt=T*dt, when='end')``; the
  network starts at step 1, so that clock fires at the end of steps T, 2T, ...:
  the last step of every window, reading the settled state and the weights
  before any of this window's updates (every Synapses updates only its own ``w``).
  Rules with ``every_step=True`` run in the same slot at every step;
* a convolution (``Projection.conv``) is a ``Synapses`` object holding only
  the synapses of its expansion (``neuro_pc.ir.conv.synapse_list``), each with
  its kernel entry as ``w``, fixed. A *plastic* one runs with its kernel as
  given (inference) and learning with it is refused: Brian2 gives every synapse
  its own ``w`` and runs a rule per synapse, while a shared kernel's update sums
  the per-position terms of all the synapses that hold it (weight sharing),
  which synapse code cannot express;
* a tied projection (``Tied``) is one more summed variable of the projection it
  reads: ``in_B1_pre = scale * sign(w) * delta_post`` for ``fn="sign"``,
  transposed by writing to the *pre*-synaptic group, so it uses that
  projection's current weights at every step, with no copy;
* built-in scalars: ``tw`` is ``(t_in_timesteps - 1) % T`` in population code
  and ``T - 1`` in window-end rules; ``train`` a shared variable ``npc_train``
  (1.0 inside rules, which only run while training); ``dt`` a number;
* comparisons and the expression functions map to
  :mod:`neuro_pc.backends.brian2.functions`;
  population-level functions and the ``muon``/``unit_columns``/``unit_rows`` transforms run in
  NumPy (:class:`NumpyUpdate`, :class:`TransformSpec`) as ``network_operation`` s,
  which exist on the runtime targets only.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from neuro_pc.backends.brian2.functions import COMPARISONS, brian_name
from neuro_pc.backends.brian2.names import Namer
from neuro_pc.ir import Circuit, CircuitError, parse_expression
from neuro_pc.ir.expr import POPULATION_FUNCTIONS


class Brian2BackendError(CircuitError):
    """A circuit feature the Brian2 backend (or the chosen target) cannot take."""


# -- expressions ---------------------------------------------------------------
class _ToBrian(ast.NodeTransformer):
    def __init__(self, rename, function):
        self.rename, self.function = rename, function

    def visit_Compare(self, node):
        self.generic_visit(node)
        fn = COMPARISONS[type(node.ops[0]).__name__]
        return ast.Call(func=ast.Name(id=f"npc_{fn}", ctx=ast.Load()),
                        args=[node.left, node.comparators[0]], keywords=[])

    def visit_Call(self, node):
        node.args = [self.visit(a) for a in node.args]
        node.func = ast.Name(id=self.function(node.func.id), ctx=ast.Load())
        return node

    def visit_Name(self, node):
        return ast.parse(f"({self.rename(node.id)})", mode="eval").body

    def visit_Constant(self, node):
        return ast.Constant(value=float(node.value))


def to_brian(expr: ast.Expression, rename, function=brian_name) -> str:
    """Brian2 source of an expression-language expression: names through
    ``rename`` (which may return an expression), numbers as floats,
    comparisons as ``npc_lt(a, b)``... (0.0/1.0 floats, as in NumPy)."""
    tree = ast.parse(ast.unparse(expr), mode="eval")
    tree = _ToBrian(rename, function).visit(tree)
    return ast.unparse(ast.fix_missing_locations(tree))


class _Dotted(ast.NodeTransformer):
    """``post.X`` / ``pre.X`` -> ``X_post`` / ``X_pre`` (marked for renaming)."""

    def visit_Attribute(self, node):
        if isinstance(node.value, ast.Name) and node.value.id in ("post", "pre"):
            return ast.Name(id=f"{node.value.id}.{node.attr}", ctx=ast.Load())
        raise Brian2BackendError(f"cannot read {ast.unparse(node)!r} in a rule")


# -- the description ------------------------------------------------------------
@dataclass
class GroupSpec:
    """One population as a ``NeuronGroup``."""

    pop: str                      # IR name
    name: str                     # Brian2 object name
    size: int
    names: dict[str, str]         # IR variable/port -> Brian2 variable
    equations: list[str]          # "r : 1" ...
    code: str | None              # run_regularly code (per step), None if nothing to do
    init: dict[str, float]        # Brian2 variable -> initial value
    numpy_update: str | None = None   # Python source of a network_operation (population fns)
    uses_train: bool = False

    @property
    def variables(self) -> dict[str, str]:
        return {k: v for k, v in self.names.items() if k in self._vars}

    _vars: tuple[str, ...] = ()


@dataclass
class SynapseSpec:
    """One projection with its own weights as a ``Synapses`` object."""

    proj: str
    name: str
    source: str                   # IR population names
    target: str
    model: list[str]              # "w : 1", summed variables...
    rule_code: str | None = None  # run_regularly code, None if fixed
    every_step: bool = False
    transforms: tuple[str, ...] = ()
    params: dict[str, float] = field(default_factory=dict)
    tied: list[str] = field(default_factory=list)   # tied projections read from here
    conv: object = None           # a fixed convolution: its geometry (neuro_pc.ir.Conv)


@dataclass
class Brian2Model:
    circuit: Circuit
    groups: dict[str, GroupSpec]
    synapses: dict[str, SynapseSpec]
    streams: dict[str, str]       # stream name -> TimedArray name
    #: plastic convolutions, run with their kernel fixed (learning with them is refused)
    shared_kernels: tuple[str, ...] = ()

    def describe(self) -> str:
        """The generated equations and code, for reading."""
        out = [f"# Brian2 model of circuit {self.circuit.name!r} "
               f"(T={self.circuit.schedule.window})"]
        for g in self.groups.values():
            out.append(f"NeuronGroup {g.name} (N={g.size}):")
            out += [f"    {e}" for e in g.equations]
            if g.code:
                out.append("  run_regularly(when='groups'):")
                out += [f"    {line}" for line in g.code.splitlines()]
            if g.numpy_update:
                out.append("  network_operation(when='groups'): population-level update in NumPy")
        for s in self.synapses.values():
            out.append(f"Synapses {s.name} ({s.source} -> {s.target}):")
            out += [f"    {e}" for e in s.model]
            if s.rule_code:
                out.append(f"  run_regularly({'every step' if s.every_step else 'window end'}):")
                out += [f"    {line}" for line in s.rule_code.splitlines()]
        return "\n".join(out)


def tw_expression(T: int) -> str:
    """Step inside the window (0..T-1) in code run at every step; the network
    starts at step 1, so step s belongs to window (s-1)//T."""
    return f"(1.0 * ((t_in_timesteps - 1) % {T}))"


def generate(circuit: Circuit) -> Brian2Model:
    """The Brian2 description of ``circuit`` (validated)."""
    circuit = circuit.validate()
    T = circuit.schedule.window
    dt = repr(float(circuit.schedule.dt))
    streams = {s: f"npc_stream_{k}" for k, s in enumerate(circuit.streams)}
    groups: dict[str, GroupSpec] = {}
    for k, pop in enumerate(circuit.populations):
        incoming = [p for p in circuit.projections if p.target == pop.name]
        namer = Namer()
        names = {}
        for v in list(pop.variables) + list(pop.ports):
            names[v] = namer(v)
        # one summed target per incoming projection (tied ones are summed by the
        # Synapses of the projection they read, into this group's in_<P> all the same)
        in_names = {p.name: _in_name(namer, p.name) for p in incoming}
        eqs = [f"{names[v]} : 1" for v in pop.variables]
        eqs += [f"{n} : 1" for n in in_names.values()]
        # ports are subexpressions: Brian2 inlines them where they are read
        for port in pop.ports:
            projs = circuit.projections_into(pop.name, port)
            rhs = " + ".join(in_names[p.name] for p in projs) if projs else "0.0"
            eqs.append(f"{names[port]} = {rhs} : 1")
        params = {k2: repr(float(v)) for k2, v in pop.params.items()}
        statements = pop.statements()
        uses_train = any("train" in st.names for st in statements)
        if uses_train:
            eqs.append("npc_train : 1 (shared)")

        def rename(n, params=params, names=names):
            if n in params:
                return params[n]
            if n == "tw":
                return tw_expression(T)
            if n == "train":
                return "npc_train"
            if n == "dt":
                return dt
            return names[n]

        lines = []
        for var, stream in pop.streams.items():
            lines.append(f"{names[var]} = {streams[stream]}(t - npc_tstep, i)")
        numpy_update = None
        if any(st.population_functions for st in statements):
            ports = {port: [in_names[p.name] for p in circuit.projections_into(pop.name, port)]
                     for port in pop.ports}
            numpy_update = _numpy_update(pop, names, ports, params, dt)
        else:
            for st in statements:
                lines.append(f"{names[st.target]} = {to_brian(st.expr, rename)}")
        g = GroupSpec(pop=pop.name, name=f"npc_{k}_{_ident(pop.name)}", size=pop.size,
                      names={**names, **{f"in:{p}": n for p, n in in_names.items()}},
                      equations=eqs, code="\n".join(lines) if lines else None,
                      init={names[v]: float(pop.init.get(v, 0.0)) for v in pop.variables},
                      numpy_update=numpy_update, uses_train=uses_train)
        g._vars = tuple(pop.variables)
        groups[pop.name] = g

    synapses: dict[str, SynapseSpec] = {}
    shared: list[str] = []
    for k, proj in enumerate(circuit.projections):
        if proj.tied is not None:
            continue
        src = groups[proj.source]
        tgt = groups[proj.target]
        var = src.names[circuit.source_variable(proj)]
        scale = "" if proj.scale == 1.0 else f"{float(proj.scale)!r} * "
        model = ["w : 1", f"{tgt.names['in:' + proj.name]}_post = {scale}w * {var}_pre : 1 (summed)"]
        spec = SynapseSpec(proj=proj.name, name=f"npc_s{k}_{_ident(proj.name)}",
                           source=proj.source, target=proj.target, model=model, conv=proj.conv)
        if proj.conv is not None and proj.rule is not None:
            shared.append(proj.name)   # runs with its kernel fixed; learning is refused
        elif proj.rule is not None:
            spec.rule_code = rule_code(circuit, proj, src, tgt)
            spec.every_step = proj.rule.every_step
            spec.transforms = tuple(proj.rule.transforms)
            spec.params = dict(proj.rule.params)
            if spec.transforms:
                spec.model.append("dw : 1")
        synapses[proj.name] = spec
    for proj in circuit.projections:
        if proj.tied is None:
            continue
        tie = proj.tied
        to = circuit.projection(tie.to)
        spec = synapses[to.name]
        if tie.transpose:
            ok = proj.source == to.target and proj.target == to.source
            side, other = "pre", "post"
        else:
            ok = proj.source == to.source and proj.target == to.target
            side, other = "post", "pre"
        if not ok:
            raise Brian2BackendError(
                f"tied projection {proj.name!r} reads {tie.to!r} ({to.source} -> {to.target}) "
                f"{'transposed ' if tie.transpose else ''}but connects {proj.source} -> "
                f"{proj.target}: the Brian2 backend computes a tied projection inside the "
                f"Synapses of {tie.to!r}, so it must connect {to.target} -> {to.source} "
                f"(transposed) or {to.source} -> {to.target}. Use the reference backend "
                "for other weight-transport layouts.")
        src = groups[proj.source]
        tgt = groups[proj.target]
        var = src.names[circuit.source_variable(proj)]
        w = "sign(w)" if tie.fn == "sign" else "w"
        factor = float(tie.scale) * float(proj.scale)
        scale = "" if factor == 1.0 else f"{factor!r} * "
        spec.model.append(f"{tgt.names['in:' + proj.name]}_{side} = {scale}{w} * {var}_{other} "
                          ": 1 (summed)")
        spec.tied.append(proj.name)
    return Brian2Model(circuit=circuit, groups=groups, synapses=synapses, streams=streams,
                       shared_kernels=tuple(shared))


def shared_kernel_error(circuit: Circuit, name: str) -> Brian2BackendError:
    """The error for learning with a plastic convolution on Brian2."""
    conv = circuit.projection(name).conv
    return Brian2BackendError(
        f"projection {name!r} is a convolution with a plastic shared kernel "
        f"({conv.describe()}): Brian2 gives every synapse its own weight and runs the rule "
        "per synapse, but the kernel's update is the sum of the per-position terms of all "
        f"{conv.positions} positions (weight sharing), which Brian2's synapse code cannot "
        "express. Train it on the reference backend and run the trained circuit here "
        "(inference), or fix the convolutions (neuro_pc.models.conv.fixed_convs) to learn the "
        "rest on Brian2")


def rule_code(circuit: Circuit, proj, src: GroupSpec, tgt: GroupSpec) -> str:
    """``w += <rule>`` (or ``dw = <rule>`` when transforms follow in NumPy)."""
    rule = proj.rule
    T = circuit.schedule.window
    text = rule.text.split("=", 1)[1]
    tree = parse_rule_rhs(text, proj.name)
    params = {k: repr(float(v)) for k, v in rule.params.items()}

    def rename(n):
        if n.startswith("post__"):
            return tgt.names[n[6:]] + "_post"
        if n.startswith("pre__"):
            return src.names[n[5:]] + "_pre"
        if n == "w":
            return "w"
        if n in params:
            return params[n]
        if n == "tw":
            return tw_expression(T) if rule.every_step else repr(float(T - 1))
        if n == "train":
            return "1.0"
        if n == "dt":
            return repr(float(circuit.schedule.dt))
        raise Brian2BackendError(
            f"rule of projection {proj.name!r} reads {n!r}, which is neither pre.X, post.X, w, "
            "a rule parameter nor a built-in scalar; the Brian2 backend cannot generate "
            "code for it (a non-local baseline factor). Use the reference backend.")

    rhs = to_brian(tree, rename)
    return f"dw = {rhs}" if rule.transforms else f"w += {rhs}"


def parse_rule_rhs(text: str, proj: str) -> ast.Expression:
    """The right side of a rule, ``post.X``/``pre.X`` spelled ``post__X``/``pre__X``."""
    tree = _Dotted().visit(ast.parse(text.strip(), mode="eval"))
    src = ast.unparse(tree).replace("post.", "post__").replace("pre.", "pre__")
    return parse_expression(src, where=f"rule of projection {proj!r}")


def _in_name(namer: Namer, proj: str) -> str:
    name = "in_" + _ident(proj)
    if name in namer.taken:
        k = 1
        while f"{name}_{k}" in namer.taken:
            k += 1
        name = f"{name}_{k}"
    namer.taken.add(name)
    return name


def _ident(name: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in name)
    while "__" in out:
        out = out.replace("__", "_")
    return out.strip("_") or "p"


def _numpy_update(pop, names, ports, params, dt) -> str:
    """Python source of ``update(V, tw, train)`` for a population with
    population-level functions: ``V`` maps Brian2 variable names (state and
    ``in_<P>``) to the live arrays (shape (n,)); it computes the ports and the
    statements in NumPy, in order, and writes the state back in place."""
    from neuro_pc.ir import translate

    lines = ["def update(V, tw, train):"]
    for v in pop.variables:
        lines.append(f"    L_{names[v]} = V[{names[v]!r}][None, :]")
    for port, ins in ports.items():
        rhs = " + ".join(f"V[{n!r}][None, :]" for n in ins) if ins else "0.0"
        lines.append(f"    L_{names[port]} = {rhs}")
    lines.append(f"    dt = {dt}")
    for st in pop.statements():
        rhs = translate(st.expr, lambda n: params.get(n) or (
            n if n in ("tw", "train", "dt") else "L_" + names[n]), lambda f: f"F_{f}")
        lines.append(f"    L_{names[st.target]} = F_asrow({rhs})")
    for v in pop.variables:
        lines.append(f"    V[{names[v]!r}][:] = L_{names[v]}[0]")
    return "\n".join(lines) + "\n"


__all__ = ["Brian2BackendError", "Brian2Model", "GroupSpec", "SynapseSpec", "generate",
           "to_brian", "POPULATION_FUNCTIONS"]
