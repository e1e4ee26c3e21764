"""The expression language of population updates.

A population's per-step update is an ordered list of assignments ``"var = expr"``.
``expr`` is a Python-syntax arithmetic expression over

* the population's own state variables (the value they have at this point of
  the step: statements run in order, so a variable assigned earlier in the list
  holds its new value, one assigned later its previous-step value),
* its input ports (the sums of incoming projections, computed from the previous
  step's outputs),
* its parameters (named constants),
* the built-in scalars ``tw`` (step index inside the presentation window,
  0..T-1), ``train`` (1.0 while learning, 0.0 at inference) and ``dt``,
* numbers, ``+ - * / **``, comparisons (which give 0.0/1.0), and the functions
  below.

Neuron-local functions act element-wise, one unit at a time; population-level
functions read the whole population (a normalisation, a k-winners-take-all):
the locality report calls any rule that depends on one *population-level*.

This module validates and translates expressions; it does not evaluate them.
The NumPy meaning of every function is in :mod:`neuro_pc.ir.functions`.
"""
from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Callable

#: element-wise functions: name -> number of arguments
NEURON_FUNCTIONS: dict[str, int] = {
    "tanh": 1, "exp": 1, "log": 1, "sqrt": 1, "abs": 1, "sign": 1,
    "sigmoid": 1, "relu": 1, "step": 1,
    "clip": 3, "where": 3, "minimum": 2, "maximum": 2,
}
#: functions that read the whole population (per sample): name -> arity
POPULATION_FUNCTIONS: dict[str, int] = {
    "kwta": 2,        # kwta(x, k): keep the k largest units, zero the rest
    "layernorm": 1,   # (x - mean(x)) / sqrt(var(x) + 1e-5) over the units
    "batchnorm": 1,   # the same over the batch axis (batched mode only)
    "batchmean": 1,   # each unit's mean over the batch, broadcast back (batched mode)
    "softmax": 1,
    "popsum": 1,      # sum over the units, broadcast back
    "popmean": 1,
}
#: scalars every update may read
BUILTIN_SCALARS = ("tw", "train", "dt")

#: bounds on what an expression may cost to evaluate
MAX_EXPONENT = 16
MAX_NUMBER = 2 ** 63
MAX_EXPRESSION_CHARS = 4000

_ALLOWED_NODES = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Call, ast.Name,
    ast.Load, ast.Constant, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow,
    ast.USub, ast.UAdd, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq,
)


class ExpressionError(ValueError):
    """An update statement or expression that is not in the language."""


@dataclass(frozen=True)
class Statement:
    """One parsed assignment ``target = expr`` of a population update."""

    text: str
    target: str
    expr: ast.Expression

    @property
    def names(self) -> frozenset[str]:
        """Every variable, port, parameter or scalar the expression reads."""
        return frozenset(n.id for n in ast.walk(self.expr) if isinstance(n, ast.Name)
                         and not _is_function_name(self.expr, n))

    @property
    def functions(self) -> frozenset[str]:
        return frozenset(n.func.id for n in ast.walk(self.expr) if isinstance(n, ast.Call))

    @property
    def population_functions(self) -> frozenset[str]:
        return self.functions & POPULATION_FUNCTIONS.keys()


def _is_function_name(tree: ast.AST, name: ast.Name) -> bool:
    return any(isinstance(n, ast.Call) and n.func is name for n in ast.walk(tree))


def number_literal(node):
    """The value of a number literal, optionally signed (``2``, ``-0.5``), else None
    (the expression language and the rule parser read powers with it)."""
    sign = 1
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -sign if isinstance(node.op, ast.USub) else sign
        node = node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
            and not isinstance(node.value, bool):
        return sign * node.value
    return None


def parse_expression(text: str, where: str = "expression") -> ast.Expression:
    """Parse ``text`` and check that it uses only the language above.

    Nothing is evaluated: the tree is checked against a whitelist of node
    types; exponents must be numbers of magnitude <= :data:`MAX_EXPONENT`.

    Parameters
    ----------
    text : str
        The expression (at most :data:`MAX_EXPRESSION_CHARS` characters).
    where : str, default "expression"
        Where the expression comes from, for the messages.

    Returns
    -------
    ast.Expression
        The checked tree.

    Raises
    ------
    ExpressionError
        For text that is not a string, too long, does not parse, or uses a node,
        constant, exponent, function or chained comparison outside the language.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"{where}: expected an expression string, got {text!r}")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"{where}: the expression is {len(text)} characters long; the "
                              f"limit is {MAX_EXPRESSION_CHARS}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"{where}: cannot parse {text!r}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"{where}: {text[:60]!r}... is nested too deeply") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ExpressionError(
                f"{where}: {type(node).__name__} is not allowed in {text!r}; use arithmetic, "
                f"comparisons and the functions {sorted(NEURON_FUNCTIONS | POPULATION_FUNCTIONS)}")
        if isinstance(node, ast.Constant) and (isinstance(node.value, bool) or not isinstance(
                node.value, (int, float)) or not math.isfinite(node.value)
                or abs(node.value) > MAX_NUMBER):
            raise ExpressionError(f"{where}: only finite numbers (|x| <= 2**63) are allowed as "
                                  f"constants in {text!r}; got {node.value!r}")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            k = number_literal(node.right)
            if k is None or abs(k) > MAX_EXPONENT:
                raise ExpressionError(
                    f"{where}: the exponent of {ast.unparse(node)!r} must be a number of "
                    f"magnitude <= {MAX_EXPONENT} in {text!r}")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise ExpressionError(f"{where}: {ast.unparse(node.func)!r} is not a function of "
                                      f"the language; call a function by its plain name in "
                                      f"{text!r}")
            fname = node.func.id
            arity = NEURON_FUNCTIONS.get(fname, POPULATION_FUNCTIONS.get(fname))
            if arity is None:
                raise ExpressionError(
                    f"{where}: unknown function {fname!r} in {text!r}; known: "
                    f"{sorted(NEURON_FUNCTIONS | POPULATION_FUNCTIONS)}")
            if node.keywords or len(node.args) != arity:
                raise ExpressionError(
                    f"{where}: {fname}() takes {arity} positional argument(s) in {text!r}")
        if isinstance(node, ast.Compare) and len(node.ops) != 1:
            raise ExpressionError(f"{where}: chained comparisons are not allowed in {text!r}")
    return tree


def parse_statement(text: str, where: str = "update") -> Statement:
    """Parse one assignment ``"var = expr"``.

    Parameters
    ----------
    text : str
        The assignment (at most :data:`MAX_EXPRESSION_CHARS` characters).
    where : str, default "update"
        Where the statement comes from, for the messages.

    Returns
    -------
    Statement
        The parsed statement; its expression is checked by
        :func:`parse_expression`.

    Raises
    ------
    ExpressionError
        For text that is not one assignment to a plain name, or whose expression
        is not in the language.
    """
    if not isinstance(text, str) or len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"{where}: expected one assignment 'var = expr' of at most "
                              f"{MAX_EXPRESSION_CHARS} characters, got {str(text)[:80]!r}")
    try:
        module = ast.parse(text.strip(), mode="exec")
    except (RecursionError, MemoryError):
        raise ExpressionError(f"{where}: {text[:60]!r}... is nested too deeply") from None
    except SyntaxError as exc:
        raise ExpressionError(f"{where}: cannot parse {text!r}: {exc.msg}") from None
    body = module.body
    if (len(body) != 1 or not isinstance(body[0], ast.Assign) or len(body[0].targets) != 1
            or not isinstance(body[0].targets[0], ast.Name)):
        raise ExpressionError(f"{where}: {text!r} must be one assignment 'var = expr'")
    try:
        rhs = ast.unparse(body[0].value)
    except RecursionError:
        raise ExpressionError(f"{where}: {text[:60]!r}... is nested too deeply") from None
    return Statement(text=text, target=body[0].targets[0].id, expr=parse_expression(rhs, where))


def translate(expr: ast.Expression, rename: Callable[[str], str],
              function: Callable[[str], str] = lambda f: f) -> str:
    """Source text of ``expr`` with names and function names rewritten.

    Parameters
    ----------
    expr : ast.Expression
        The expression (as :func:`parse_expression` returns it); it is not
        modified.
    rename : callable
        ``rename(name) -> str``: applied to every name.
    function : callable, optional
        ``function(name) -> str``: applied to every function name (a backend's
        spelling); default unchanged.

    Returns
    -------
    str
        The rewritten source text.
    """
    tree = ast.parse(ast.unparse(expr), mode="eval")  # a private copy to rewrite
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            node.func = ast.Name(id=function(node.func.id), ctx=ast.Load())
            node.func._neuro_pc_fn = True
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not getattr(node, "_neuro_pc_fn", False):
            node.id = rename(node.id)
    return ast.unparse(tree)
