"""Generate the NumPy source of one presentation window of a circuit.

The generated function is the executable form of the semantics in
:mod:`neuro_pc.ir.circuit`, written out for one circuit so that a step costs a
few NumPy calls and no dictionary look-ups::

    def window(S, W, X, train, learn, rec, TF):
        <load every state variable and weight into a local>
        for tw in range(T):
            # (1) ports from the previous step's outputs (one-step delay)
            h__ff = x__r @ W_W1.T
            # (2) populations: streams, then the update statements in order
            x__r = X_x
            h__a = h__ff
            ...
            # (3) every-step rules, if any
        # (3) window-end rules (if learn): all dW from the settled state, then applied
        <store the locals back into S>

State arrays are ``(batch, n)``; a weight ``(n_target, n_source)``; batched rules
average the per-sample outer products over the batch.
"""
from __future__ import annotations

from neuro_pc.ir import Circuit, translate
from neuro_pc.ir.functions import NUMPY_FUNCTIONS
from neuro_pc.rules import parse_rule


def var_local(pop: str, var: str) -> str:
    return f"{pop}__{var}"


def weight_local(proj: str) -> str:
    return f"W_{proj}"


def _fn(name: str) -> str:
    return f"F_{name}"


def function_globals() -> dict:
    """The globals the generated source needs."""
    return {_fn(k): v for k, v in NUMPY_FUNCTIONS.items()}


def _port_expr(circuit: Circuit, proj) -> str:
    src = var_local(proj.source, circuit.source_variable(proj))
    if proj.tied is None:
        term = f"{src} @ {weight_local(proj.name)}.T"
    else:
        base = weight_local(proj.tied.to)
        if proj.tied.fn == "sign":
            base = f"F_sign({base})"
        # effective matrix M = fn(W_to).T if transpose; port = src @ M.T
        term = f"{src} @ {base}" if proj.tied.transpose else f"{src} @ {base}.T"
        if proj.tied.scale != 1.0:
            term = f"({term}) * {float(proj.tied.scale)!r}"
    if proj.scale != 1.0:
        term = f"({term}) * {float(proj.scale)!r}"
    return term


def rule_lines(circuit: Circuit, proj, indent: str) -> list[str]:
    """Source lines computing ``dW_<proj>`` (the batch-mean update) from the locals."""
    rule = proj.rule
    parsed = parse_rule(rule.text, rule.params, where=f"rule of projection {proj.name!r}",
                        allow_nonlocal=rule.baseline)
    consts = {k: repr(float(v)) for k, v in rule.params.items()}

    def side(text, pop):
        tree = compile_expr(text)
        return "(" + translate(tree, lambda n: consts.get(n, var_local(pop, n))
                               if n not in ("tw", "train", "dt") else n, _fn) + ")"

    def coef(text):
        return "(" + translate(compile_expr(text), lambda n: consts.get(n, n), _fn) + ")"

    def syn(text):
        return "(" + translate(compile_expr(text), lambda n: weight_local(proj.name)
                               if n == "w" else consts.get(n, n), _fn) + ")"

    out = f"dW_{proj.name}"
    lines = []
    full = False
    for k, t in enumerate(parsed.terms):
        full = full or bool((t.post and t.pre) or t.syn)
        post = side(t.post, proj.target) if t.post else None
        pre = side(t.pre, proj.source) if t.pre else None
        if post and pre:  # batch mean of outer products; the 1/B joins the scalar
            expr = f"({coef(t.coef)} / {post}.shape[0]) * ({post}.T @ {pre})"
        elif post:
            expr = f"{coef(t.coef)} * {post}.mean(axis=0)[:, None]"
        elif pre:
            expr = f"{coef(t.coef)} * {pre}.mean(axis=0)[None, :]"
        else:
            expr = coef(t.coef)
        if t.syn:
            expr += f" * {syn(t.syn)}"
        lines.append(f"{indent}{out} = {expr}" if k == 0 else f"{indent}{out} = {out} + {expr}")
    if not full:  # every term broadcasts: give dW the weight's shape
        lines.append(f"{indent}{out} = {out} + 0.0 * {weight_local(proj.name)}")
    return lines


def compile_expr(text: str):
    from neuro_pc.ir import parse_expression

    return parse_expression(text)


def apply_lines(proj, indent: str, masked: bool) -> list[str]:
    """Source lines applying ``dW`` (transforms, mask) to the weight in place."""
    w, dw = weight_local(proj.name), f"dW_{proj.name}"
    lines = []
    for t in proj.rule.transforms:
        if t == "muon":
            lines.append(f"{indent}{dw} = TF[{('muon', proj.name)!r}]({dw})")
    if masked:
        lines.append(f"{indent}{dw} = {dw} * TF[{('mask', proj.name)!r}]")
    lines.append(f"{indent}{w} += {dw}")
    for t in proj.rule.transforms:
        if t in ("unit_columns", "unit_rows"):
            lines.append(f"{indent}TF[{(t, proj.name)!r}]({w})")
    return lines


def generate_window(circuit: Circuit, masked: frozenset[str] = frozenset(),
                    record: tuple[tuple[str, str], ...] = ()) -> str:
    """Source of ``window(S, W, X, train, rec, TF)`` for ``circuit``.

    ``record``: ``(population, variable)`` pairs appended to ``rec`` after every
    step (as tuples of arrays; arrays are never modified in place, so no copies).
    """
    T = circuit.schedule.window
    lines = ["def window(S, W, X, train, learn, rec, TF):"]
    I1, I2 = "    ", "        "
    for pop in circuit.populations:
        for v in pop.variables:
            lines.append(f"{I1}{var_local(pop.name, v)} = S[{pop.name + '.' + v!r}]")
    for proj in circuit.stored:
        lines.append(f"{I1}{weight_local(proj.name)} = W[{proj.name!r}]")
    for s in circuit.streams:
        lines.append(f"{I1}X_{s} = X[{s!r}]")
    lines.append(f"{I1}dt = {float(circuit.schedule.dt)!r}")
    step_rules = [p for p in circuit.plastic if p.rule.every_step]
    end_rules = [p for p in circuit.plastic if not p.rule.every_step]
    # Loop-invariant port terms (an optimisation that keeps the arithmetic):
    # while no rule changes weights inside the window, a term whose source is
    # streamed (held for the whole window from step 0 on) or static (never
    # assigned) has the same value at every step but step 0 (which still sees
    # the previous window's source); compute it once instead of T times.
    hoisted: dict[str, tuple[str, bool]] = {}   # projection -> (local, refresh at tw 0)
    if not step_rules:
        for proj in circuit.projections:
            src = circuit.population(proj.source)
            var = circuit.source_variable(proj)
            assigned = {st.target for st in src.statements()}
            if var in src.streams or var not in assigned:
                hoisted[proj.name] = (f"H_{proj.name}", var in src.streams)
                lines.append(f"{I1}H_{proj.name} = {_port_expr(circuit, proj)}")
    lines.append(f"{I1}for tw in range({T}):")
    # (1) ports
    for pop in circuit.populations:
        for port in pop.ports:
            projs = circuit.projections_into(pop.name, port)
            rhs = " + ".join(hoisted[p.name][0] if p.name in hoisted else
                             _port_expr(circuit, p) for p in projs) if projs else "0.0"
            lines.append(f"{I2}{var_local(pop.name, port)} = {rhs}")
    # (2) populations
    for pop in circuit.populations:
        for var, stream in pop.streams.items():
            lines.append(f"{I2}{var_local(pop.name, var)} = X_{stream}")
        params = {k: repr(float(v)) for k, v in pop.params.items()}
        for st in pop.statements():
            rhs = translate(st.expr, lambda n: params.get(n) or (
                n if n in ("tw", "train", "dt") else var_local(pop.name, n)), _fn)
            lines.append(f"{I2}{var_local(pop.name, st.target)} = {rhs}")
    refresh = [name for name, (_, again) in hoisted.items() if again]
    if refresh:
        lines.append(f"{I2}if tw == 0:")
        lines += [f"{I2}{I1}H_{name} = {_port_expr(circuit, circuit.projection(name))}"
                  for name in refresh]
    # (3) every-step plasticity (training only)
    if step_rules:
        lines.append(f"{I2}if learn:")
        for p in step_rules:
            lines += rule_lines(circuit, p, I2 + I1)
        for p in step_rules:
            lines += apply_lines(p, I2 + I1, p.name in masked)
    if record:
        lines.append(f"{I2}if rec is not None:")
        lines.append(f"{I2}{I1}rec.append(({', '.join(var_local(a, b) for a, b in record)},))")
    # (3) window-end plasticity (training only)
    if end_rules:
        lines.append(f"{I1}if learn:")
        for p in end_rules:
            lines += rule_lines(circuit, p, I1 + I1)
        for p in end_rules:
            lines += apply_lines(p, I1 + I1, p.name in masked)
    for pop in circuit.populations:
        for v in pop.variables:
            lines.append(f"{I1}S[{pop.name + '.' + v!r}] = {var_local(pop.name, v)}")
    return "\n".join(lines) + "\n"


def generate_updates(circuit: Circuit) -> str:
    """Source of ``updates(S, W) -> {projection: dW}``: every rule's update from
    the current state, not applied (for alignment analysis)."""
    lines = ["def updates(S, W):"]
    I1 = "    "
    for pop in circuit.populations:
        for v in pop.variables:
            lines.append(f"{I1}{var_local(pop.name, v)} = S[{pop.name + '.' + v!r}]")
    for proj in circuit.stored:
        lines.append(f"{I1}{weight_local(proj.name)} = W[{proj.name!r}]")
    lines.append(f"{I1}tw, train, dt = {circuit.schedule.window - 1}, 1.0, "
                 f"{float(circuit.schedule.dt)!r}")
    for p in circuit.plastic:
        lines += rule_lines(circuit, p, I1)
    lines.append(f"{I1}return {{{', '.join(f'{p.name!r}: dW_{p.name}' for p in circuit.plastic)}}}")
    return "\n".join(lines) + "\n"
