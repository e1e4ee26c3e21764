"""The import direction of docs/concepts.md ("Module boundaries"), held by parsing
every module's imports (the lazy ones inside functions too): an import that goes up
a layer, or sideways between two units of one layer, fails with the file and line.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: bottom to top; a unit may import its own modules and any unit of a lower layer
LAYERS: list[tuple[str, ...]] = [
    ("neuro_pc",                              # the package itself: __version__ only
     "neuro_pc.numerics", "neuro_pc.ir.expr", "neuro_pc.ir.functions"),   # the language
    ("neuro_pc.rules",),                      # rule parser, locality, Muon (a rule transform)
    ("neuro_pc.ir",),                         # circuit, its validation, artifacts
    ("neuro_pc.models", "neuro_pc.data", "hardware_targets"),
    ("neuro_pc.backends.base",),              # the simulator interface
    ("neuro_pc.backends",),                   # compile(): imports a backend by name
    ("neuro_pc.backends.reference", "neuro_pc.backends.brian2"),
    ("neuro_pc.backends.lava",),   # check's execution records activity on the reference
    ("neuro_pc.analysis",),        # recorders run circuits on a backend
    ("neuro_pc.experiments", "neuro_pc.interop", "neuro_pc.jobs"),
    ("neuro_pc.cli",),
]
#: the most specific unit wins; the package "neuro_pc" is only its own __init__
UNITS = sorted((u for layer in LAYERS for u in layer), key=len, reverse=True)
LAYER_OF = {u: i for i, layer in enumerate(LAYERS) for u in layer}


def unit_of(module: str) -> str | None:
    for u in UNITS:
        if module == u or (u != "neuro_pc" and module.startswith(u + ".")):
            return u
    return None


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _from_module(node: ast.ImportFrom, package: str) -> str:
    """The module a ``from ... import`` statement in ``package`` reads from."""
    if not node.level:
        return node.module or ""
    base = package.split(".")[:len(package.split(".")) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(path: Path, root: Path = ROOT):
    """(line, imported module) for every import in ``path``, relative ones resolved."""
    mod = module_name(path, root)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            name = _from_module(node, package)
            yield node.lineno, name
            for a in node.names:   # "from neuro_pc import models" imports neuro_pc.models
                yield node.lineno, f"{name}.{a.name}"


def sources(root: Path = ROOT):
    for pkg in ("neuro_pc", "hardware_targets"):
        yield from sorted((root / pkg).rglob("*.py"))


def violations(root: Path = ROOT) -> list[str]:
    """Every import from a unit to a unit of the same or a higher layer."""
    bad = []
    for path in sources(root):
        src = unit_of(module_name(path, root))
        if src is None:
            bad.append(f"{path.relative_to(root)}: in no layer; add its package to LAYERS")
            continue
        for line, name in imports(path, root):
            dst = unit_of(name)
            if dst is not None and dst != src and LAYER_OF[dst] >= LAYER_OF[src]:
                bad.append(f"{path.relative_to(root)}:{line}: {src} (layer {LAYER_OF[src]}) "
                           f"imports {dst} (layer {LAYER_OF[dst]})")
    return list(dict.fromkeys(bad))   # one line per import statement and unit


def _type_checking_only(node) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def module_edges(path: Path, modules: set[str], root: Path = ROOT) -> set[str]:
    """The project modules ``path`` imports at run time (``if TYPE_CHECKING:``
    blocks left out); ``from pkg import sub`` is an edge to ``pkg.sub`` only."""
    mod = module_name(path, root)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out: set[str] = set()
    stack = [ast.parse(path.read_text(), str(path))]
    while stack:
        node = stack.pop()
        if _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            name = _from_module(node, package)
            subs = [f"{name}.{a.name}" for a in node.names]
            if all(s in modules for s in subs):
                out.update(subs)
            elif name in modules:
                out.add(name)
    out.discard(mod)
    return out


def import_cycles(root: Path = ROOT) -> list[list[str]]:
    """The strongly connected components (more than one module) of the import graph."""
    paths = {module_name(p, root): p for p in sources(root)}
    graph = {m: module_edges(p, set(paths), root) for m, p in paths.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v):   # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = stack[stack.index(v):]
            del stack[stack.index(v):]
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycle_between_modules():
    """Within a unit too: two modules that import each other (even lazily, inside a
    function) are one concept cut in two, or one that belongs below both."""
    cycles = import_cycles()
    assert not cycles, "modules that import each other:\n" + "\n".join(map(str, cycles))


def test_the_cycle_check_catches_a_lazy_cycle_and_ignores_type_checking(tmp_path):
    pkg = tmp_path / "neuro_pc" / "ir"
    pkg.mkdir(parents=True)
    (tmp_path / "neuro_pc" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from neuro_pc.ir import a\n")
    (pkg / "a.py").write_text("def f():\n    from neuro_pc.ir.b import g\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from neuro_pc.ir.c import C\n")
    (pkg / "c.py").write_text("from neuro_pc.ir import b\n")
    assert import_cycles(tmp_path) == []
    (pkg / "b.py").write_text("import neuro_pc.ir.a\n")
    assert import_cycles(tmp_path) == [["neuro_pc.ir.a", "neuro_pc.ir.b"]]


def test_no_import_goes_up_or_sideways():
    bad = violations()
    assert not bad, "imports against the layering of docs/concepts.md:\n" + "\n".join(bad)


@pytest.mark.parametrize("where, source, caught", [
    ("neuro_pc/ir/circuit.py", "def f():\n    from neuro_pc.backends.reference import X\n",
     "neuro_pc.ir (layer 2) imports neuro_pc.backends.reference"),
    ("neuro_pc/backends/brian2/sim.py", "from ..reference import simulator\n",
     "neuro_pc.backends.brian2 (layer 6) imports neuro_pc.backends.reference"),
    ("neuro_pc/rules/parse.py", "import neuro_pc.ir.circuit\n", "neuro_pc.rules (layer 1)"),
    ("neuro_pc/newthing.py", "x = 1\n", "in no layer"),
    ("neuro_pc/analysis/m.py", "from neuro_pc.backends.reference import R\n", None),
])
def test_the_check_catches_an_upward_or_sideways_edge(tmp_path, where, source, caught):
    path = tmp_path / where
    path.parent.mkdir(parents=True)
    path.write_text(source)
    bad = violations(tmp_path)
    if caught is None:
        assert not bad
    else:
        assert len(bad) == 1 and caught in bad[0], bad


def test_no_backend_or_chip_target_reads_circuit_metadata():
    """docs/semantics.md, "Objects": what runs is the statements and projections;
    ``Circuit.metadata`` is a builder's record that only experiments, reports and
    the analysis read."""
    readers = []
    for pkg in ("neuro_pc/backends", "hardware_targets"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute) and node.attr == "metadata" and \
                        "circuit" in ast.unparse(node.value).lower():
                    readers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not readers, "circuit.metadata read by a backend or chip target: " + ", ".join(readers)
