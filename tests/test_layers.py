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


def imports(path: Path, root: Path = ROOT):
    """(line, imported module) for every import in ``path``, relative ones resolved."""
    mod = module_name(path, root)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
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
