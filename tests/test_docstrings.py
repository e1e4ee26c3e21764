"""The public API's docstrings use numpydoc sections (docs/concepts.md, "Docstrings").

Public means: every function in the ``__all__`` of the modules below, and the
public methods of every class there (those the class defines itself), collected
where they are defined, each once. Every parameter of a signature (but ``self`` /
``cls``) needs a ``name : type`` entry in a ``Parameters`` section (``*args`` and
``**kwargs`` with their stars), and a function that returns a value (a return
annotation other than None, or a ``return <value>``) a ``Returns`` section (a
generator: ``Yields``). Sphinx renders these sections (``sphinx.ext.napoleon``,
docs/conf.py).
"""
from __future__ import annotations

import ast
import importlib
import inspect
import textwrap

import pytest
from numpydoc.docscrape import NumpyDocString

MODULES = (
    "neuro_pc.models",
    "neuro_pc.backends",
    "neuro_pc.backends.base",
    "neuro_pc.data",
    "neuro_pc.ir",
    "neuro_pc.analysis",
    "hardware_targets",
    "neuro_pc.experiments",
)

# neuro_pc.backends.base has no __all__; its public API is the simulator interface
# and the helpers every backend calls.
PUBLIC_NAMES = {
    "neuro_pc.backends.base": ("Simulator", "sample_order", "streams_for", "training_arrays",
                               "inference_array", "check_weights", "check_readout"),
}

# Names in an __all__ above exempt from the check, each ``{"module.name": "the reason"}``.
# Empty: every public name is converted. A new exclusion needs a reason (and
# test_exclusions_are_exported keeps the list to names that still exist).
EXCLUDED: dict[str, str] = {}

PROJECT_PACKAGES = ("neuro_pc", "hardware_targets")


# -- the checker ---------------------------------------------------------------------------

def parsed(doc: str | None) -> NumpyDocString:
    """``doc`` parsed by numpydoc's own reader (the project's docstring style)."""
    return NumpyDocString(inspect.cleandoc(doc or ""))


def documented_parameters(doc: str | None) -> set[str]:
    """The names of the entries (``name : type``, ``a, b : type``, ``**kw``) of the
    ``Parameters`` and ``Other Parameters`` sections."""
    d = parsed(doc)
    return {n.strip() for p in d["Parameters"] + d["Other Parameters"]
            for n in p.name.split(",")}


def _own_nodes(fn: ast.AST):
    """The nodes of ``fn``'s body, not descending into nested functions or classes."""
    stack = list(ast.iter_child_nodes(fn))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _function_node(func) -> ast.AST | None:
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return None
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return node
    return None


def returns_value(func) -> tuple[bool, bool]:
    """``(returns a value, is a generator)``: a return annotation other than None,
    or a ``return <value>`` in the body; a ``yield`` makes a generator."""
    node = _function_node(func)
    own = list(_own_nodes(node)) if node is not None else []
    if any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in own):
        return True, True
    ann = inspect.signature(func).return_annotation
    if ann is not inspect.Signature.empty and ann not in (None, "None"):
        return True, False
    return any(isinstance(n, ast.Return) and n.value is not None
               and not (isinstance(n.value, ast.Constant) and n.value.value is None)
               for n in own), False


def docstring_problems(func) -> list[str]:
    """What ``func``'s docstring lacks, one sentence each (empty: nothing)."""
    doc = func.__doc__   # its own: inspect.getdoc would inherit a base class's
    if not doc or not doc.strip():
        return ["has no docstring"]
    problems = []
    documented = documented_parameters(func.__doc__)
    for p in inspect.signature(func).parameters.values():
        if p.name in ("self", "cls"):
            continue
        name = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        if name not in documented:
            problems.append(f"parameter {name!r} has no '{name} :' entry in a Parameters "
                            "section")
    gives, generator = returns_value(func)
    d = parsed(func.__doc__)
    if generator and not d["Yields"]:
        problems.append("is a generator but has no Yields section")
    elif gives and not generator and not d["Returns"]:
        problems.append("returns a value but has no Returns section")
    return problems


# -- the public API ---------------------------------------------------------------------------

def _defined_in_project(obj) -> bool:
    return (getattr(obj, "__module__", "") or "").split(".")[0] in PROJECT_PACKAGES


def _methods(cls):
    """The public methods ``cls`` defines itself (properties are attributes)."""
    for name, attr in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(attr, (staticmethod, classmethod)):
            attr = attr.__func__
        if inspect.isfunction(attr):
            yield name, attr


def public_api() -> list[tuple[str, object]]:
    """``(qualified name where defined, function)`` of every public function and
    method, each once, without the excluded names."""
    seen: dict[str, object] = {}
    for modname in MODULES:
        module = importlib.import_module(modname)
        names = PUBLIC_NAMES.get(modname) or module.__all__
        for name in names:
            if f"{modname}.{name}" in EXCLUDED:
                continue
            obj = getattr(module, name)
            if not _defined_in_project(obj):
                continue
            if inspect.isfunction(obj):
                seen.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
            elif inspect.isclass(obj):
                for _, meth in _methods(obj):
                    seen.setdefault(f"{obj.__module__}.{meth.__qualname__}", meth)
    return sorted(seen.items())


PUBLIC = public_api()


def test_public_api_found():
    names = {q for q, _ in PUBLIC}
    for expected in ("neuro_pc.models.rate.mlp", "neuro_pc.backends.base.Simulator.train",
                     "neuro_pc.data.registry.load_dataset", "neuro_pc.ir.expr.translate",
                     "neuro_pc.rules.muon.newton_schulz", "hardware_targets.base.get_target",
                     "neuro_pc.experiments.run_experiment",
                     "hardware_targets.expressibility.report.expressibility_report",
                     "neuro_pc.analysis.recorder.AlignmentRecorder.record",
                     "neuro_pc.ir.circuit.Circuit.from_json"):
        assert expected in names


@pytest.mark.parametrize("func", [f for _, f in PUBLIC], ids=[q for q, _ in PUBLIC])
def test_numpydoc_sections(func):
    problems = docstring_problems(func)
    where = f"{func.__module__}.{func.__qualname__}"
    assert not problems, f"{where}: " + "; ".join(problems)


def test_exclusions_are_exported():
    """Every excluded name is still in its module's ``__all__`` (drop stale entries)."""
    for qualified in EXCLUDED:
        modname, name = qualified.rsplit(".", 1)
        assert name in importlib.import_module(modname).__all__, qualified


# -- the checker checks ---------------------------------------------------------------------

def _undocumented_parameter(a, b=1):
    """Add.

    Parameters
    ----------
    a : int
        The first.

    Returns
    -------
    int
        The sum.
    """
    return a + b


def _no_returns(x, *rest, **options):
    """Something.

    Parameters
    ----------
    x : int
        A number.
    *rest
        More.
    **options
        Options.
    """
    return [x, rest, options]


def _complete(x, y, *, flag: bool = False) -> None:
    """Nothing returned.

    Parameters
    ----------
    x, y : float
        Two numbers.
    flag : bool, default False
        A flag.
    """


def _generator(n):
    """Count.

    Parameters
    ----------
    n : int
        How far.

    Returns
    -------
    int
        Not what a generator has.
    """
    yield from range(n)


def test_checker_names_the_undocumented_parameter():
    problems = docstring_problems(_undocumented_parameter)
    assert problems == ["parameter 'b' has no 'b :' entry in a Parameters section"]


def test_checker_wants_returns_and_starred_names():
    assert docstring_problems(_no_returns) == ["returns a value but has no Returns section"]
    assert docstring_problems(_complete) == []
    assert docstring_problems(_generator) == ["is a generator but has no Yields section"]

    def star_without_stars(*rest):
        """Something.

        Parameters
        ----------
        rest
            Written without its star.
        """

    assert docstring_problems(star_without_stars) == [
        "parameter '*rest' has no '*rest :' entry in a Parameters section"]
    assert docstring_problems(lambda: None) == ["has no docstring"]
