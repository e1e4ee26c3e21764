"""What a rule's factor is: a product of plain variables (:func:`factor_powers`),
and what a population's variable holds (:func:`value_sign`,
:func:`constant_value`), read from the population's update statements."""
from __future__ import annotations

import ast

import sympy

from neuro_pc.rules.parse import expression_sympy

#: element-wise functions whose value is never negative
_NONNEG_FUNCTIONS = {"relu", "sigmoid", "step", "exp", "sqrt", "abs"}


def factor_powers(text: str | None) -> tuple[list[tuple[str, int]], str | None]:
    """``"delta*r**2"`` -> ``[("delta", 1), ("r", 2)]``; second item a reason
    when the factor is not a product of plain variables (a function, a division)."""
    if text is None:
        return [], None
    expr = expression_sympy(text)
    out = []
    for f in sympy.Mul.make_args(expr):
        if isinstance(f, sympy.Symbol):
            out.append((str(f), 1))
        elif (isinstance(f, sympy.Pow) and isinstance(f.base, sympy.Symbol)
              and f.exp.is_Integer and int(f.exp) > 0):
            out.append((str(f.base), int(f.exp)))
        elif isinstance(f, sympy.Pow) and f.exp.is_negative:
            return [], f"divides by {sympy.sstr(f.base)}"
        elif isinstance(f, sympy.sign) and isinstance(f.args[0], sympy.Symbol):
            out.append((f"sign({f.args[0]})", 1))
        else:
            return [], f"is the nonlinear function {sympy.sstr(f)}"
    return out, None


def _names(text: str) -> set[str]:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return set()
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


def value_sign(circuit, pop_name: str, var: str, seen=None) -> tuple[str, str]:
    """``("nonneg" | "signed" | "stream" | "unknown", description)`` of a variable."""
    seen = set() if seen is None else seen
    if (pop_name, var) in seen:
        return "unknown", f"{pop_name}.{var}"
    seen.add((pop_name, var))
    pop = circuit.population(pop_name)
    if var in pop.streams:
        return "stream", f"the data stream {pop.streams[var]!r}"
    if var in pop.ports:
        return "signed", f"the weighted sum {pop_name}.{var}"
    stmts = [s for s in pop.statements() if s.target == var]
    if not stmts:
        v = float(pop.init.get(var, 0.0))
        return ("nonneg" if v >= 0 else "signed"), f"the constant {v:g}"
    st = stmts[-1]
    body = st.expr.body
    text = ast.unparse(body)
    if isinstance(body, ast.Call) and isinstance(body.func, ast.Name):
        if body.func.id in _NONNEG_FUNCTIONS:
            return "nonneg", text
        if body.func.id in ("tanh", "sign"):
            return "signed", text
    if isinstance(body, ast.Constant):
        return ("nonneg" if body.value >= 0 else "signed"), text
    if isinstance(body, ast.BinOp) and isinstance(body.op, ast.Sub):
        return "signed", f"{text} (a difference)"
    if isinstance(body, ast.Name) and (body.id in pop.variables or body.id in pop.ports):
        kind, desc = value_sign(circuit, pop_name, body.id, seen)
        return kind, f"{text} = {desc}"
    return "unknown", text


def constant_value(circuit, pop_name: str, var: str) -> float | None:
    """The value of a variable no statement, port or stream ever changes (else None)."""
    pop = circuit.population(pop_name)
    if var in pop.streams or var in pop.ports or any(st.target == var for st in pop.statements()):
        return None
    return float(pop.init.get(var, 0.0))
