"""Parse a plasticity rule string into its sum-of-products form.

A rule reads::

    dw = eta * post.delta * pre.r - lam * w

and means, for every synapse ``(i, j)`` of a projection (``i`` the post-synaptic
unit, ``j`` the pre-synaptic one)::

    dW[i, j] = sum_k  c_k * post_k[i] * pre_k[j] * syn_k[i, j]

Names a rule may use:

* ``post.X`` / ``pre.X``: state variable ``X`` of the target / source population;
* ``w``: the synapse's own weight (the only synaptic variable of rate circuits);
* the rule's parameters (``eta``, ``lam``… given with the rule) and the
  built-in broadcast scalars ``tw``, ``train``, ``dt``: constants;
* numbers and the neuron-local functions of :mod:`neuro_pc.ir.expr`.

The rule is expanded with sympy into a sum of terms; each term must split into
a constant × one factor that reads only the post unit × one that reads only the
pre unit × one that reads only the synapse. A factor that mixes them, or reads
any other name (another projection's weights, a third population, a sum over
units), is **non-local** and rejected with an error naming it.

**Safety.** Rule strings arrive from files other people wrote (circuit JSON,
artifacts), so nothing of the text is ever evaluated as Python: the text is
parsed with :mod:`ast`, every node is checked against a whitelist (numbers,
names, ``pre.X``/``post.X``/``syn.X``, ``+ - * / **``, unary minus and calls of
the language's functions by bare name with positional arguments) and the sympy
expression is built from the checked tree node by node. Everything else
(attributes other than ``pre.X``…, ``and``/``or``/``not``, conditionals,
``lambda``, subscripts, comprehensions, strings, keyword arguments) is a
:class:`RuleError` naming the construct. Costs are bounded: the text's length
(:data:`MAX_RULE_CHARS`), exponents (a number, ``|k| <= MAX_EXPONENT``), the
size of the expanded sum (:data:`MAX_TERMS`); non-finite numbers and division
by a literal zero are errors. A parameter may not shadow a name of the
language (``w``, ``pre``, ``post``, ``syn``, ``tw``, ``train``, ``dt``, a
function); :func:`check_rule_params` checks the parameter *values*.
"""
from __future__ import annotations

import ast
import functools
import math
import re
from dataclasses import dataclass

import sympy

from neuro_pc.ir.expr import (BUILTIN_SCALARS, NEURON_FUNCTIONS, POPULATION_FUNCTIONS,
                              number_literal)

__all__ = ["RuleError", "NonLocalRuleError", "Term", "ParsedRule", "parse_rule",
           "check_rule_params", "expression_sympy"]


class RuleError(ValueError):
    """A rule string that cannot be parsed or does not have the rule form."""


class NonLocalRuleError(RuleError):
    """A rule that reads something that is not local to the synapse."""


_SIDES = ("post", "pre", "syn")
_SIDE_WORDS = {"post": "post-synaptic unit", "pre": "pre-synaptic unit", "syn": "synapse"}
#: limits that bound what parsing a rule may cost
MAX_RULE_CHARS = 4000
MAX_EXPONENT = 16
MAX_INTEGER = 2 ** 63
MAX_TERMS = 256
#: names a rule parameter may not take
_RESERVED = frozenset({"w", *_SIDES, *BUILTIN_SCALARS, *NEURON_FUNCTIONS, *POPULATION_FUNCTIONS})
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_CONSTRUCT_NAMES = {
    ast.BoolOp: "'and'/'or'", ast.Compare: "a comparison", ast.IfExp: "a conditional expression "
    "('x if c else y')", ast.Lambda: "'lambda'", ast.Subscript: "a subscript ('x[...]')",
    ast.ListComp: "a comprehension", ast.SetComp: "a comprehension", ast.DictComp:
    "a comprehension", ast.GeneratorExp: "a comprehension", ast.List: "a list", ast.Tuple:
    "a tuple", ast.Dict: "a dict", ast.Set: "a set", ast.JoinedStr: "a string",
    ast.NamedExpr: "':='", ast.Starred: "'*'", ast.Await: "'await'", ast.Yield: "'yield'",
    ast.YieldFrom: "'yield'", ast.Slice: "a slice", ast.FormattedValue: "a string",
    ast.Not: "'not'", ast.Invert: "'~'", ast.MatMult: "'@'", ast.Mod: "'%'",
    ast.FloorDiv: "'//'", ast.LShift: "'<<'", ast.RShift: "'>>'", ast.BitAnd: "'&'",
    ast.BitOr: "'|'", ast.BitXor: "'^'",
}
_SYMPY_FUNCS = {
    "tanh": sympy.tanh, "exp": sympy.exp, "log": sympy.log, "sqrt": sympy.sqrt,
    "abs": sympy.Abs, "sign": sympy.sign,
}


@dataclass(frozen=True)
class Term:
    """One product ``coef * post * pre * syn``; a missing factor is ``None`` (=1).

    Each factor is kept as source text in the expression language, with
    ``post.X``/``pre.X`` spelled ``X`` (the side is the field) and ``w`` the weight.
    """

    coef: str
    post: str | None
    pre: str | None
    syn: str | None

    @property
    def sides(self) -> tuple[str, ...]:
        return tuple(s for s in _SIDES if getattr(self, s) is not None)


@dataclass(frozen=True)
class ParsedRule:
    text: str
    terms: tuple[Term, ...]
    post_vars: frozenset[str]
    pre_vars: frozenset[str]
    syn_vars: frozenset[str]
    params: frozenset[str]
    divisors: frozenset[str] = frozenset()   # parameters the rule divides by

    @property
    def level(self) -> str:
        """``synapse-local`` if no term reads a neuron, else ``neuron-local``."""
        return "neuron-local" if (self.post_vars or self.pre_vars) else "synapse-local"


def parse_rule(text: str, params: dict[str, float] | None = None,
               where: str = "rule", allow_nonlocal: bool = False) -> ParsedRule:
    """Parse ``text`` into a :class:`ParsedRule` (see :func:`_parse_rule`).

    The parse depends on the text and the parameter *names* only, so it is
    cached: a circuit with a hundred projections sharing a few rules parses
    each rule once. Errors are raised again with ``where`` in the message.
    """
    try:
        return _parse_cached(text, tuple(sorted(params or {})), bool(allow_nonlocal))
    except RuleError:
        pass
    return _parse_rule(text, params, where, allow_nonlocal)  # raises with ``where``


def check_rule_params(text: str, params: dict, where: str = "rule") -> None:
    """Check a rule's parameter values: finite real numbers, and no parameter the
    rule divides by is zero. Raises :class:`RuleError` naming the parameter."""
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RuleError(f"{where}: parameter {name!r} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise RuleError(f"{where}: parameter {name!r} is {value!r}; parameters must be "
                            "finite numbers")
    parsed = parse_rule(text, params, where, allow_nonlocal=True)
    for name in sorted(parsed.divisors):
        if params.get(name) == 0:
            raise RuleError(f"{where}: the rule divides by parameter {name!r}, which is 0")


@functools.lru_cache(maxsize=1024)
def _parse_cached(text: str, names: tuple[str, ...], allow_nonlocal: bool) -> ParsedRule:
    return _parse_rule(text, dict.fromkeys(names, 0.0), "rule", allow_nonlocal)


def _parse_rule(text: str, params: dict[str, float] | None = None,
                where: str = "rule", allow_nonlocal: bool = False) -> ParsedRule:
    """Parse ``text`` into a :class:`ParsedRule`.

    ``params`` names the rule's constants. ``allow_nonlocal`` accepts names that
    are not local (a marked non-local baseline) as constants instead of failing.
    Raises :class:`RuleError` (malformed) or :class:`NonLocalRuleError`.

    The text is parsed with :mod:`ast` and checked against a whitelist of node
    types; the sympy expression is built from the checked tree node by node
    (:class:`_Builder`). Nothing of the text is ever evaluated as Python.
    """
    params = dict(params or {})
    if not isinstance(text, str) or "=" not in text:
        raise RuleError(f"{where}: {text!r} must read 'dw = <expression>'")
    if len(text) > MAX_RULE_CHARS:
        raise RuleError(f"{where}: the rule is {len(text)} characters long; the limit is "
                        f"{MAX_RULE_CHARS}")
    lhs, rhs = text.split("=", 1)
    if lhs.strip() != "dw":
        raise RuleError(f"{where}: the left side of {text!r} must be 'dw' (the weight change), "
                        f"got {lhs.strip()!r}")
    if not rhs.strip():
        raise RuleError(f"{where}: {text!r} has nothing right of '='")
    bad = sorted(set(params) & _RESERVED)
    if bad:
        raise RuleError(f"{where}: parameter {bad[0]!r} shadows a name of the rule language "
                        f"(reserved: w, pre, post, syn, {', '.join(BUILTIN_SCALARS)} and the "
                        "functions); rename the parameter")
    try:
        tree = ast.parse(rhs.strip(), mode="eval")
    except SyntaxError as exc:
        raise RuleError(f"{where}: cannot parse {text!r}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise RuleError(f"{where}: {text[:60]!r}... is nested too deeply to parse") from None
    builder = _Builder(text, where, params, allow_nonlocal)
    try:
        expr = builder.build(tree.body)
    except RecursionError:
        raise RuleError(f"{where}: {text[:60]!r}... is nested too deeply") from None
    side_of = builder.side_of

    terms = []
    for term in sympy.Add.make_args(sympy.expand(expr)):
        terms.append(_split_term(term, side_of, text, where))
    post = {str(s)[6:] for s in expr.free_symbols if side_of.get(s) == "post"}
    pre = {str(s)[5:] for s in expr.free_symbols if side_of.get(s) == "pre"}
    syn = {("w" if str(s) == "w" else str(s)[5:]) for s in expr.free_symbols
           if side_of.get(s) == "syn"}
    return ParsedRule(text=text, terms=tuple(terms), post_vars=frozenset(post),
                      pre_vars=frozenset(pre), syn_vars=frozenset(syn),
                      params=frozenset(params), divisors=frozenset(builder.divisors))


class _Builder:
    """The sympy expression of a checked rule tree, built node by node.

    Allowed: numbers (finite int/float), names, ``pre.X`` / ``post.X`` /
    ``syn.X``, ``+ - * / **``, unary ``-``/``+`` and calls of the language's
    functions by bare name with positional arguments. Every other node is a
    :class:`RuleError` that names the construct. Costs are bounded: an exponent
    must be a number of magnitude at most :data:`MAX_EXPONENT`, and the
    expanded rule at most :data:`MAX_TERMS` terms.
    """

    def __init__(self, text, where, params, allow_nonlocal):
        self.text, self.where, self.params = text, where, params
        self.allow_nonlocal = allow_nonlocal
        self.side_of: dict[sympy.Symbol, str] = {}
        self.divisors: set[str] = set()
        self._in_divisor = 0

    # -- errors ------------------------------------------------------------------
    def _fail(self, what: str, exc=RuleError):
        raise exc(f"{self.where}: {what} in {self.text!r}")

    def _construct(self, node) -> str:
        return _CONSTRUCT_NAMES.get(type(node), type(node).__name__)

    # -- symbols -------------------------------------------------------------------
    def _symbol(self, name: str, side: str) -> sympy.Symbol:
        sym = sympy.Symbol(name, real=True)
        self.side_of[sym] = side
        return sym

    def _name(self, node: ast.Name):
        name = node.id
        if self._in_divisor and name in self.params:
            self.divisors.add(name)
        if name == "w":
            return self._symbol("w", "syn"), 1
        if name in self.params or name in BUILTIN_SCALARS:
            return self._symbol(name, "const"), 1
        if name in _SIDES:
            self._fail(f"{name!r} alone is not a value; write {name}.X for variable X of the "
                       f"{_SIDE_WORDS[name]}")
        if name in NEURON_FUNCTIONS or name in POPULATION_FUNCTIONS:
            self._fail(f"the function {name!r} is used without calling it")
        if not self.allow_nonlocal:
            self._fail(f"the rule reads {name!r}, which is neither the pre- nor the "
                       "post-synaptic unit ('pre.X', 'post.X'), this synapse ('w'), nor a "
                       "parameter of the rule: a non-local factor (another projection's weights "
                       "or a third population). Pass it as a rule parameter if it is a constant, "
                       "route it into the post population through a projection, or mark the "
                       "rule as a non-local baseline", NonLocalRuleError)
        return self._symbol(name, "const"), 1

    def _attribute(self, node: ast.Attribute):
        if not isinstance(node.value, ast.Name):
            self._fail(f"the attribute access '.{node.attr}' on {ast.unparse(node.value)!r} is "
                       "not allowed; only pre.X, post.X and syn.X name a variable")
        side, var = node.value.id, node.attr
        if var.startswith("__"):
            self._fail(f"the attribute {side}.{var} is not allowed (names starting with '__' "
                       "are not variables)")
        if side not in _SIDES:
            if side in self.params or side in BUILTIN_SCALARS or side == "w" or \
                    side in NEURON_FUNCTIONS or side in POPULATION_FUNCTIONS:
                self._fail(f"the attribute access {side}.{var} is not allowed; only pre.X, "
                           "post.X and syn.X name a variable")
            self._fail(f"the rule reads {side}.{var} ({side!r}), which is neither the pre- nor "
                       "the post-synaptic unit ('pre.X', 'post.X') nor this synapse: a "
                       "non-local factor (a third population). Route it into the post "
                       "population through a projection", NonLocalRuleError)
        return self._symbol(f"{side}__{var}", side), 1

    # -- the tree ----------------------------------------------------------------------
    def build(self, node) -> sympy.Expr:
        expr, n_terms = self._node(node)
        if n_terms > MAX_TERMS:
            self._fail(f"the rule expands to more than {MAX_TERMS} terms")
        return expr

    def _node(self, node):
        """(sympy expression, an upper bound on its number of terms once expanded)."""
        if isinstance(node, ast.Constant):
            return self._constant(node.value), 1
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Attribute):
            return self._attribute(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            e, n = self._node(node.operand)
            return (-e if isinstance(node.op, ast.USub) else e), n
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return self._binop(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.BinOp):
            self._fail(f"the operator {self._construct(node.op)} is not allowed (use + - * / **)")
        if isinstance(node, ast.UnaryOp):
            self._fail(f"the operator {self._construct(node.op)} is not allowed (use unary -)")
        self._fail(f"{self._construct(node)} is not allowed: a rule is arithmetic (+ - * / **) "
                   "on numbers, parameters, pre.X, post.X, w and the functions "
                   f"{sorted(NEURON_FUNCTIONS)}")

    def _constant(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self._fail(f"the constant {value!r} is not allowed (only numbers)")
        if isinstance(value, float) and not math.isfinite(value):
            self._fail(f"the number {value!r} is not finite")
        if isinstance(value, int):
            if abs(value) > MAX_INTEGER:
                self._fail(f"the integer {value} is too large (at most {MAX_INTEGER})")
            return sympy.Integer(value)
        return sympy.Float(value)

    def _binop(self, node: ast.BinOp):
        if isinstance(node.op, ast.Pow):
            return self._power(node)
        left, nl = self._node(node.left)
        nl = min(nl, MAX_TERMS + 1)
        if isinstance(node.op, ast.Div):
            self._in_divisor += 1
            try:
                right, nr = self._node(node.right)
            finally:
                self._in_divisor -= 1
            if right.is_zero:
                self._fail(f"division by zero ({ast.unparse(node)})")
            return left / right, nl * nr
        right, nr = self._node(node.right)
        if isinstance(node.op, ast.Add):
            return left + right, nl + nr
        if isinstance(node.op, ast.Sub):
            return left - right, nl + nr
        return left * right, nl * nr

    def _power(self, node: ast.BinOp):
        k = number_literal(node.right)
        if k is None:
            self._fail(f"the exponent of {ast.unparse(node)!r} must be a number "
                       f"(at most {MAX_EXPONENT} in magnitude)")
        if isinstance(k, bool) or not math.isfinite(k) or abs(k) > MAX_EXPONENT:
            self._fail(f"the exponent {k!r} of {ast.unparse(node)!r} is out of range "
                       f"(|exponent| <= {MAX_EXPONENT})")
        base, n = self._node(node.left)
        if base.is_number:
            b = float(base)
            if b == 0 and k < 0:
                self._fail(f"division by zero ({ast.unparse(node)})")
            try:
                value = b ** k
            except OverflowError:
                value = math.inf
            if isinstance(value, complex) or not math.isfinite(value):
                self._fail(f"{ast.unparse(node)!r} is not a finite real number")
        exponent = sympy.Integer(k) if float(k).is_integer() else sympy.Float(k)
        # monomials of a sum of n terms to the power k: C(n + k - 1, k)
        terms = math.comb(n + int(k) - 1, int(k)) if float(k).is_integer() and k > 0 else 1
        return base ** exponent, min(terms, MAX_TERMS + 1)

    def _call(self, node: ast.Call):
        if not isinstance(node.func, ast.Name):
            self._fail(f"{ast.unparse(node.func)!r} is not callable in a rule; call a function "
                       "of the language by its plain name")
        name = node.func.id
        if node.keywords:
            self._fail(f"keyword arguments are not allowed ({name}(..., "
                       f"{node.keywords[0].arg}=...))")
        if any(isinstance(a, ast.Starred) for a in node.args):
            self._fail(f"*-arguments are not allowed in {name}(...)")
        if name in POPULATION_FUNCTIONS:
            raise NonLocalRuleError(
                f"{self.where}: {name}(...) in {self.text!r} reads the whole population "
                "(population-level); a rule term may read one unit on each side. Compute it in "
                "the population's update (the locality report will call the rule "
                "population-level) instead.")
        if name not in NEURON_FUNCTIONS:
            self._fail(f"unknown function(s) [{name!r}]; known: {sorted(NEURON_FUNCTIONS)}")
        arity = NEURON_FUNCTIONS[name]
        if len(node.args) != arity:
            self._fail(f"{name}() takes {arity} argument(s), got {len(node.args)}")
        args = [self._node(a)[0] for a in node.args]
        fn = _SYMPY_FUNCS.get(name) or sympy.Function(name)
        return fn(*args), 1


def _split_term(term: sympy.Expr, side_of: dict, text: str, where: str) -> Term:
    parts: dict[str, list[sympy.Expr]] = {"const": [], "post": [], "pre": [], "syn": []}
    for factor in sympy.Mul.make_args(term):
        sides = {side_of.get(s, "const") for s in factor.free_symbols} - {"const"}
        if len(sides) > 1:
            raise NonLocalRuleError(
                f"{where}: the factor {_display(factor)} of {text!r} mixes "
                f"{' and '.join(sorted(sides))}: each term must be a product of separate "
                "post, pre and synapse factors (dW[i,j] = c * post[i] * pre[j] * syn[i,j]). "
                "Compute the combined quantity inside one population's update instead.")
        parts[sides.pop() if sides else "const"].append(factor)

    def joined(side):
        return _show(sympy.Mul(*parts[side])) if parts[side] else None

    return Term(coef=joined("const") or "1", post=joined("post"), pre=joined("pre"),
                syn=joined("syn"))


def _show(expr: sympy.Expr) -> str:
    """Expression-language source of a sympy factor (``post__x`` → ``x``)."""
    s = str(expr)
    s = re.sub(r"\b(?:post|pre|syn)__(\w+)", r"\1", s)
    return s.replace("Abs(", "abs(")


def _display(expr: sympy.Expr) -> str:
    """The factor as the user wrote it (``post__x`` → ``post.x``)."""
    return re.sub(r"\b(post|pre|syn)__(\w+)", r"\1.\2", str(expr))


_SYMPY_COMPARE = {ast.Lt: sympy.StrictLessThan, ast.LtE: sympy.LessThan,
                  ast.Gt: sympy.StrictGreaterThan, ast.GtE: sympy.GreaterThan,
                  ast.Eq: sympy.Eq, ast.NotEq: sympy.Ne}


def expression_sympy(text: str, symbols: dict[str, sympy.Symbol] | None = None) -> sympy.Expr:
    """The sympy form of an expression of the language (a statement's right side,
    a term's factor), built from its checked tree: nothing is evaluated.

    Names become ``symbols[name]`` (a plain ``sympy.Symbol(name)`` if absent);
    functions the sympy form of the language's function (an opaque
    ``sympy.Function`` for those sympy lacks). Raises ``ExpressionError`` for
    text outside the language (:func:`neuro_pc.ir.parse_expression`).
    """
    from neuro_pc.ir.expr import parse_expression

    symbols = dict(symbols or {})

    def build(node):
        if isinstance(node, ast.Expression):
            return build(node.body)
        if isinstance(node, ast.Constant):
            return sympy.Integer(node.value) if isinstance(node.value, int) \
                else sympy.Float(node.value)
        if isinstance(node, ast.Name):
            return symbols.setdefault(node.id, sympy.Symbol(node.id))
        if isinstance(node, ast.UnaryOp):
            v = build(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp):
            a, b = build(node.left), build(node.right)
            op = type(node.op)
            return (a + b if op is ast.Add else a - b if op is ast.Sub else a * b
                    if op is ast.Mult else a / b if op is ast.Div else a ** b)
        if isinstance(node, ast.Compare):
            return _SYMPY_COMPARE[type(node.ops[0])](build(node.left),
                                                     build(node.comparators[0]))
        if isinstance(node, ast.Call):
            fn = _SYMPY_FUNCS.get(node.func.id) or sympy.Function(node.func.id)
            return fn(*[build(a) for a in node.args])
        raise RuleError(f"{type(node).__name__} in {text!r}")   # unreachable: parse_expression

    return build(parse_expression(text))
