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
"""
from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass

import sympy

from neuro_pc.ir.expr import BUILTIN_SCALARS, NEURON_FUNCTIONS, POPULATION_FUNCTIONS

__all__ = ["RuleError", "NonLocalRuleError", "Term", "ParsedRule", "parse_rule"]


class RuleError(ValueError):
    """A rule string that cannot be parsed or does not have the rule form."""


class NonLocalRuleError(RuleError):
    """A rule that reads something that is not local to the synapse."""


_SIDES = ("post", "pre", "syn")
_DOTTED = re.compile(r"\b(post|pre|syn)\s*\.\s*([A-Za-z_]\w*)")
_SYMPY_FUNCS = {
    "tanh": sympy.tanh, "exp": sympy.exp, "log": sympy.log, "sqrt": sympy.sqrt,
    "abs": sympy.Abs, "sign": sympy.sign,
}


def _opaque(name: str):
    return sympy.Function(name)


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


@functools.lru_cache(maxsize=1024)
def _parse_cached(text: str, names: tuple[str, ...], allow_nonlocal: bool) -> ParsedRule:
    return _parse_rule(text, dict.fromkeys(names, 0.0), "rule", allow_nonlocal)


def _parse_rule(text: str, params: dict[str, float] | None = None,
                where: str = "rule", allow_nonlocal: bool = False) -> ParsedRule:
    """Parse ``text`` into a :class:`ParsedRule`.

    ``params`` names the rule's constants. ``allow_nonlocal`` accepts names that
    are not local (a marked non-local baseline) as constants instead of failing.
    Raises :class:`RuleError` (malformed) or :class:`NonLocalRuleError`.
    """
    params = dict(params or {})
    if not isinstance(text, str) or "=" not in text:
        raise RuleError(f"{where}: {text!r} must read 'dw = <expression>'")
    lhs, rhs = text.split("=", 1)
    if lhs.strip() != "dw":
        raise RuleError(f"{where}: the left side of {text!r} must be 'dw' (the weight change), "
                        f"got {lhs.strip()!r}")
    if not rhs.strip():
        raise RuleError(f"{where}: {text!r} has nothing right of '='")

    symbols: dict[str, sympy.Symbol] = {}
    side_of: dict[sympy.Symbol, str] = {}

    def dotted(match: re.Match) -> str:
        side, var = match.group(1), match.group(2)
        name = f"{side}__{var}"
        sym = symbols.setdefault(name, sympy.Symbol(name, real=True))
        side_of[sym] = side
        return name

    src = _DOTTED.sub(dotted, rhs)
    w = sympy.Symbol("w", real=True)
    symbols["w"] = w
    side_of[w] = "syn"
    for p in list(params) + list(BUILTIN_SCALARS):
        symbols[p] = sympy.Symbol(p, real=True)
        side_of[symbols[p]] = "const"
    namespace = dict(symbols)
    namespace.update(_SYMPY_FUNCS)
    for f in NEURON_FUNCTIONS:
        namespace.setdefault(f, _opaque(f))
    for f in POPULATION_FUNCTIONS:
        namespace[f] = _opaque(f)
    try:
        tree = ast.parse(src.strip(), mode="eval")
    except SyntaxError as exc:
        raise RuleError(f"{where}: cannot parse {text!r}: {exc.msg}") from None
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    unknown_fns = sorted({n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)
                          and isinstance(n.func, ast.Name) and n.func.id not in namespace})
    if unknown_fns:
        raise RuleError(f"{where}: unknown function(s) {unknown_fns} in {text!r}; known: "
                        f"{sorted(NEURON_FUNCTIONS)}")
    unknown = sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                      and id(n) not in called} - set(namespace))
    if unknown and not allow_nonlocal:
        raise NonLocalRuleError(
            f"{where}: {text!r} reads {', '.join(map(repr, unknown))}, which is neither the "
            "pre- nor the post-synaptic unit ('pre.X', 'post.X'), this synapse ('w'), nor a "
            "parameter of the rule: a non-local factor (another projection's weights or a third "
            "population). Pass it as a rule parameter if it is a constant, route it into the post "
            "population through a projection, or mark the rule as a non-local baseline.")
    for u in unknown:
        namespace[u] = sympy.Symbol(u, real=True)
        side_of[namespace[u]] = "const"
    try:
        expr = sympy.sympify(src, locals=namespace)
    except (sympy.SympifyError, SyntaxError, TypeError) as exc:
        raise RuleError(f"{where}: cannot parse {text!r}: {exc}") from None
    if not isinstance(expr, sympy.Expr):
        raise RuleError(f"{where}: {text!r} is not an arithmetic expression")

    for fn in expr.atoms(sympy.Function):
        name = type(fn).__name__
        if name in POPULATION_FUNCTIONS:
            raise NonLocalRuleError(
                f"{where}: {name}(...) in {text!r} reads the whole population (population-level); "
                "a rule term may read one unit on each side. Compute it in the population's "
                "update (the locality report will call the rule population-level) instead.")

    terms = []
    for term in sympy.Add.make_args(sympy.expand(expr)):
        terms.append(_split_term(term, side_of, text, where))
    post = {str(s)[6:] for s in expr.free_symbols if side_of.get(s) == "post"}
    pre = {str(s)[5:] for s in expr.free_symbols if side_of.get(s) == "pre"}
    syn = {("w" if s == w else str(s)[5:]) for s in expr.free_symbols if side_of.get(s) == "syn"}
    return ParsedRule(text=text, terms=tuple(terms), post_vars=frozenset(post),
                      pre_vars=frozenset(pre), syn_vars=frozenset(syn),
                      params=frozenset(params))


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
