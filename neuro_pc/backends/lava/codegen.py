"""Python source for the Lava process models, generated from the IR.

Two generators, one per tag:

* :func:`population_step_source` — ``step(V, P, X, tw, train, dt)``: one
  population's streamed variables and update statements for one time step, in
  float64 NumPy (``floating_pt``) with exactly the meaning of
  :mod:`neuro_pc.ir.functions`, or in integer fixed point (``fixed_pt``,
  :mod:`neuro_pc.backends.lava.fixed`).
* :func:`rule_source` — ``rule(POST, PRE, W, tw, train, dt)``: a plastic
  projection's weight update ``dW`` (``floating_pt``; ``PlasticDense``).

State arrays are ``(1, n)`` (the reference's batch-of-one layout), so that
population-level functions (``kwta``, ``layernorm``…) act on the unit axis
exactly as in the reference. The Lava models keep 1-D Vars and reshape.
"""
from __future__ import annotations


from neuro_pc.ir import Circuit, Population, Projection, parse_expression, translate
from neuro_pc.ir.functions import NUMPY_FUNCTIONS
from neuro_pc.rules import parse_rule

BUILTINS = ("tw", "train", "dt")


def _fn(name: str) -> str:
    return f"F_{name}"


def float_globals() -> dict:
    """Globals of the generated floating-point source."""
    import numpy as np

    return {"np": np, **{_fn(k): v for k, v in NUMPY_FUNCTIONS.items()}}


def step_inputs(pop: Population) -> list[str]:
    """The lines of a generated ``step(V, P, X, ...)`` that bind its state
    variables, ports and streamed values to the locals ``v_<name>``."""
    return ([f"    v_{v} = V[{v!r}]" for v in pop.variables]
            + [f"    v_{p} = P[{p!r}]" for p in pop.ports]
            + [f"    v_{var} = X[{var!r}]" for var in pop.streams])


def population_step_source(pop: Population) -> str:
    """``step(V, P, X, tw, train, dt) -> dict`` for one population (float64).

    V: ``{var: (1, n)}`` the state before the step; P: ``{port: (1, n)}`` the
    ports (from the previous step's outputs); X: ``{var: (1, n)}`` streamed
    values. Returns the new ``{var: array}``.
    """
    params = {k: repr(float(v)) for k, v in pop.params.items()}
    lines = ["def step(V, P, X, tw, train, dt):", *step_inputs(pop)]

    def rename(n: str) -> str:
        if n in params:
            return params[n]
        return n if n in BUILTINS else f"v_{n}"

    for st in pop.statements():
        lines.append(f"    v_{st.target} = {translate(st.expr, rename, _fn)}")
    lines.append("    return {" + ", ".join(f"{v!r}: v_{v}" for v in pop.variables) + "}")
    return "\n".join(lines) + "\n"


def rule_source(circuit: Circuit, proj: Projection) -> str:
    """``rule(POST, PRE, W, tw, train, dt) -> dW`` for a plastic projection.

    POST/PRE: ``{var: (1, n)}`` the target/source variables the rule reads, at
    the step the rule fires; W: the weights before this step's update. The
    form is the reference's (sum over the parsed terms of
    ``coef * (post.T @ pre) * syn``), so the numbers agree to rounding.
    """
    rule = proj.rule
    parsed = parse_rule(rule.text, rule.params, where=f"rule of projection {proj.name!r}",
                        allow_nonlocal=rule.baseline)
    consts = {k: repr(float(v)) for k, v in rule.params.items()}

    def side(text, table):
        return "(" + translate(parse_expression(text), lambda n: consts.get(n, (
            n if n in BUILTINS else f"{table}[{n!r}]")), _fn) + ")"

    def coef(text):
        return "(" + translate(parse_expression(text), lambda n: consts.get(n, n), _fn) + ")"

    def syn(text):
        return "(" + translate(parse_expression(text), lambda n: "W" if n == "w"
                               else consts.get(n, n), _fn) + ")"

    lines = ["def rule(POST, PRE, W, tw, train, dt):", "    dW = 0.0"]
    full = False
    for t in parsed.terms:
        full = full or bool((t.post and t.pre) or t.syn)
        post = side(t.post, "POST") if t.post else None
        pre = side(t.pre, "PRE") if t.pre else None
        if post and pre:
            core = f"({post}.T @ {pre}) * (1.0 / {post}.shape[0])"
        elif post:
            core = f"{post}.mean(axis=0)[:, None]"
        elif pre:
            core = f"{pre}.mean(axis=0)[None, :]"
        else:
            core = "1.0"
        expr = f"{coef(t.coef)} * {core}"
        if t.syn:
            expr += f" * {syn(t.syn)}"
        lines.append(f"    dW = dW + {expr}")
    if not full:
        lines.append("    dW = dW + 0.0 * W")
    lines.append("    return dW")
    return "\n".join(lines) + "\n"


def rule_variables(proj: Projection) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(post variables, pre variables) a plastic projection's rule reads."""
    rule = proj.rule
    parsed = parse_rule(rule.text, rule.params, where=f"rule of projection {proj.name!r}",
                        allow_nonlocal=rule.baseline)
    return tuple(sorted(parsed.post_vars)), tuple(sorted(parsed.pre_vars))


def compile_function(source: str, name: str, namespace: dict, filename: str):
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]
