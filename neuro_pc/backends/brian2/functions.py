"""The expression language's functions as Brian2 :class:`~brian2.Function` s.

Every function keeps the meaning of :mod:`neuro_pc.ir.functions`:

* ``tanh exp log sqrt abs sign`` are Brian2's own (same libm / NumPy calls);
* ``sigmoid relu step clip where minimum maximum`` and the comparisons
  (``a < b`` is 1.0 or 0.0, a float, as in the reference) are defined here with
  a NumPy, a Cython and a C++ implementation each, so every target computes
  the same numbers. ``minimum``/``maximum`` propagate NaN like NumPy's and
  ``clip(x, lo, hi) = minimum(maximum(x, lo), hi)`` like ``np.clip``.

Their Brian2 names carry the ``npc_`` prefix, which user names never get
(:mod:`neuro_pc.backends.brian2.names`), so they cannot be shadowed.
"""
from __future__ import annotations

import numpy as np

from neuro_pc.ir.functions import NUMPY_FUNCTIONS

#: expression-language name -> Brian2 name, for functions Brian2 has built in
BUILTIN = {"tanh": "tanh", "exp": "exp", "log": "log", "sqrt": "sqrt", "abs": "abs",
           "sign": "sign"}

# name: (arity, numpy implementation, C expression body over a, b, c)
_CUSTOM = {
    "sigmoid": (1, NUMPY_FUNCTIONS["sigmoid"], "1.0 / (1.0 + exp(-a))"),
    "relu": (1, NUMPY_FUNCTIONS["relu"], "((a != a || a > 0.0) ? a : 0.0)"),
    "step": (1, NUMPY_FUNCTIONS["step"], "(a > 0.0 ? 1.0 : 0.0)"),
    "where": (3, NUMPY_FUNCTIONS["where"], "(a != 0.0 ? b : c)"),
    "minimum": (2, np.minimum, "((a != a || a < b) ? a : b)"),
    "maximum": (2, np.maximum, "((a != a || a > b) ? a : b)"),
    "clip": (3, np.clip, None),
    "lt": (2, lambda a, b: (np.asarray(a) < b).astype(np.float64), "(a < b ? 1.0 : 0.0)"),
    "le": (2, lambda a, b: (np.asarray(a) <= b).astype(np.float64), "(a <= b ? 1.0 : 0.0)"),
    "gt": (2, lambda a, b: (np.asarray(a) > b).astype(np.float64), "(a > b ? 1.0 : 0.0)"),
    "ge": (2, lambda a, b: (np.asarray(a) >= b).astype(np.float64), "(a >= b ? 1.0 : 0.0)"),
    "eq": (2, lambda a, b: (np.asarray(a) == b).astype(np.float64), "(a == b ? 1.0 : 0.0)"),
    "ne": (2, lambda a, b: (np.asarray(a) != b).astype(np.float64), "(a != b ? 1.0 : 0.0)"),
}
_ARGS = ("a", "b", "c")


def brian_name(fn: str) -> str:
    """The Brian2 spelling of expression-language function ``fn``."""
    return BUILTIN.get(fn, f"npc_{fn}")


def _c_body(name: str) -> str:
    if name == "clip":  # minimum(maximum(a, b), c), NaN-propagating like np.clip
        return ("((a != a) ? a : ((b != b || c != c) ? (b != b ? b : c) : "
                "((a < b ? b : a) < c ? (a < b ? b : a) : c)))")
    return _CUSTOM[name][2]


def _cython_code(bname: str, name: str, arity: int) -> str:
    args = ", ".join(f"double {a}" for a in _ARGS[:arity])
    body = _c_body(name)
    # C's ternary in Cython: (x if cond else y); translate the few forms used above
    return f"cdef inline double {bname}({args}):\n    return {_c_to_cython(body)}\n"


def _c_to_cython(expr: str) -> str:
    """Rewrite the small C ternary expressions above as Cython conditional expressions."""
    import re

    expr = expr.replace("||", " or ").replace("!=", "!=")
    # innermost-first rewrite of '(cond ? x : y)'
    pat = re.compile(r"\(([^()?:]+)\?([^()?:]+):([^()?:]+)\)")
    while "?" in expr:
        new = pat.sub(lambda m: f"[{m.group(2).strip()} if {m.group(1).strip()} else "
                                f"{m.group(3).strip()}]", expr)
        if new == expr:  # a parenthesised operand: drop one level of plain parentheses
            new = re.sub(r"\(([^()?:]*)\)", r"[\1]", expr, count=1)
            if new == expr:
                raise AssertionError(f"cannot translate {expr!r}")
        expr = new
    return expr.replace("[", "(").replace("]", ")")


def _cpp_code(bname: str, name: str, arity: int) -> str:
    args = ", ".join(f"const double {a}" for a in _ARGS[:arity])
    return f"static inline double {bname}({args})\n{{\n    return {_c_body(name)};\n}}\n"


_FUNCTIONS = None


def brian2_functions() -> dict:
    """``{brian_name: brian2.Function}`` of every custom function (built once)."""
    global _FUNCTIONS
    if _FUNCTIONS is not None:
        return _FUNCTIONS
    from brian2 import Function
    from brian2.codegen.generators import CPPCodeGenerator, CythonCodeGenerator

    out = {}
    for name, (arity, pyfunc, _) in _CUSTOM.items():
        bname = f"npc_{name}"
        f = Function(pyfunc, arg_units=[1] * arity, return_unit=1,
                     arg_types=["any"] * arity, return_type="float", stateless=True)
        f.implementations.add_implementation(CythonCodeGenerator,
                                             code=_cython_code(bname, name, arity), name=bname)
        f.implementations.add_implementation(CPPCodeGenerator,
                                             code=_cpp_code(bname, name, arity), name=bname)
        out[bname] = f
    _FUNCTIONS = out
    return out


#: comparison operator (ast class name) -> custom function
COMPARISONS = {"Lt": "lt", "LtE": "le", "Gt": "gt", "GtE": "ge", "Eq": "eq", "NotEq": "ne"}
