"""Brian2 spellings of the IR's names.

The IR lets a population call a variable ``e``, ``t``, ``N``, ``i`` or ``ms``;
in Brian2 those are a constant, the time, the group size, the unit index and
a unit. :class:`Namer` gives every IR name a Brian2 name that collides with
nothing Brian2 (or the C++/Cython code it generates) reserves, and with no
name the code generator uses itself (``in_<projection>``, ``npc_*``). Names
that are safe are kept as they are, so the generated equations stay readable.
"""
from __future__ import annotations

import keyword

#: Names Brian2 gives a meaning in equations, code and the generated sources.
_BRIAN2_SPECIAL = frozenset({
    "t", "dt", "t_in_timesteps", "xi", "i", "j", "N", "N_pre", "N_post", "N_incoming",
    "N_outgoing", "lastspike", "not_refractory", "lastupdate", "delay", "w", "dw",
    "True", "False", "and", "or", "not", "int", "float", "rand", "randn", "poisson",
    "timestep", "pre", "post", "syn",
})
#: C, C++ and Cython keywords and common type names (variables become C/Cython locals).
_C_KEYWORDS = frozenset("""
auto bool break case catch char class const constexpr continue default delete do double else
enum explicit extern float for friend goto if inline int long mutable namespace new operator
private protected public register return short signed sizeof static struct switch template this
throw try typedef typename union unsigned using virtual void volatile while cdef cpdef cimport
ctypedef DEF IF ELIF ELSE include nogil gil size_t NULL nan inf INFINITY NAN std
""".split())


def _brian2_reserved() -> frozenset[str]:
    from brian2.core.functions import DEFAULT_CONSTANTS, DEFAULT_FUNCTIONS
    from brian2.equations.equations import DEFAULT_UNITS

    units = set(DEFAULT_UNITS)
    return frozenset(set(DEFAULT_FUNCTIONS) | set(DEFAULT_CONSTANTS) | units)


_RESERVED_CACHE: frozenset[str] | None = None


def reserved_names() -> frozenset[str]:
    """Every name a user variable must not take in Brian2 code."""
    global _RESERVED_CACHE
    if _RESERVED_CACHE is None:
        _RESERVED_CACHE = _brian2_reserved() | _BRIAN2_SPECIAL | _C_KEYWORDS
    return _RESERVED_CACHE


def is_safe(name: str) -> bool:
    """``name`` can be used verbatim as a Brian2 variable of a group."""
    return (name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_")
            and "__" not in name
            and name not in reserved_names()
            and not name.startswith(("xi_", "npc_", "in_"))
            and not name.endswith(("_pre", "_post")))


class Namer:
    """IR name -> Brian2 name, unique within one group.

    ``taken``: names already used in the group (generated ones). Safe names are
    kept; others become ``<name>_v`` (``e`` -> ``e_v``), or ``u<name>_v`` when
    they start with an underscore or a reserved prefix, with more ``_v`` until unique.
    """

    def __init__(self, taken=()):
        self.taken: set[str] = set(taken)
        self.map: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        if name in self.map:
            return self.map[name]
        new = name
        if not is_safe(new) or new in self.taken:
            base = name.lstrip("_")
            base = ("u" + base) if (name.startswith("_") or not base) else base
            base = base.replace("__", "_u_")
            if base.startswith(("xi_", "npc_", "in_")) or base == "xi":
                base = "u" + base
            new = base + "_v"
            while not is_safe(new) or new in self.taken:
                new += "v"
        self.taken.add(new)
        self.map[name] = new
        return new
