"""Sphinx configuration: the Markdown pages of docs/ (MyST) and an API reference
generated from the docstrings of neuro_pc and hardware_targets.

Build (warnings are errors, as in CI):

    .venv/bin/sphinx-build -W --keep-going -b html docs docs/_build/html
"""
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neuro_pc import __version__  # noqa: E402

project = "neuro_pc"
author = "the neuro_pc authors"
copyright = "2026, the neuro_pc authors"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}   # .rst: autosummary stubs
root_doc = "index"
exclude_patterns = ["_build", "_templates"]
templates_path = ["_templates"]

# -- MyST: the pages are plain Markdown; `page.md#heading` links need anchors
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

# -- API reference: one page per module (docs/_templates/autosummary/module.rst),
#    each object documented once, in the module that defines it
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": True,
                           "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "none"          # signatures as written; no unresolvable type links
autodoc_inherit_docstrings = False
napoleon_numpy_docstring = True
napoleon_google_docstring = False

# Lava 0.10 exists for Python 3.10 only: elsewhere its backend cannot be imported, so
# its modules are left out of the API pages (CI builds the docs on 3.10, with Lava).
LAVA = importlib.util.find_spec("lava") is not None and sys.version_info[:2] == (3, 10)
autosummary_context = {"skip_modules": [] if LAVA else ["neuro_pc.backends.lava"]}

html_theme = "alabaster"
html_title = f"neuro_pc {release}"
html_static_path = []


# -- the docstrings' house style ------------------------------------------------------------
# Many docstrings describe attributes and arguments as a block of
#     name: what it is, continued on
#         an indented line.
# lines, which reads well in help() but is not reStructuredText. A block (lines between
# blank lines) made only of such entries and their indented continuations becomes a
# field list (":name: ..."), so the same docstrings render in the API reference.
# Likewise an indented block after a paragraph ending in ":" (formulas, pseudo-code)
# is shown as written (a literal block, "::").
import re  # noqa: E402

_ENTRY = re.compile(r"^(\s*)([A-Za-z_][\w.]*(?:, ?[A-Za-z_][\w.]*)*): (\S.*)$")


def _house_style(app, what, name, obj, options, lines):
    out, block = [], []

    def flush():
        if block:
            base = len(block[0]) - len(block[0].lstrip())
            first = _ENTRY.match(block[0])
            ok = first is not None and len(block) > 1 and all(
                (_ENTRY.match(ln) and len(ln) - len(ln.lstrip()) == base)
                or len(ln) - len(ln.lstrip()) > base for ln in block)
            hanging = any(len(ln) - len(ln.lstrip()) > base for ln in block)
            if ok and (hanging or all(_ENTRY.match(ln) for ln in block)):
                block[:] = [(f"{m.group(1)}:{m.group(2)}: {m.group(3)}"
                             if (m := _ENTRY.match(ln)) and len(ln) - len(ln.lstrip()) == base
                             else ln) for ln in block]
            out.extend(block)
            block.clear()

    for line in lines:
        if line.strip():
            block.append(line)
        else:
            flush()
            out.append(line)
    flush()
    lines[:] = _literal_blocks(out)


def _indent(line):
    return len(line) - len(line.lstrip())


def _literal_blocks(lines):
    out = list(lines)
    for i, line in enumerate(out[:-2]):
        text = line.rstrip()
        if not text.endswith(":") or text.endswith("::") or text.lstrip().startswith(":"):
            continue
        if out[i + 1].strip() or not out[i + 2].strip():
            continue
        nxt = out[i + 2]
        if _indent(nxt) > _indent(line) and not re.match(r"\s*([*-]|\d+\.) ", nxt):
            out[i] = text + ":"
    return out


def setup(app):
    app.connect("autodoc-process-docstring", _house_style)
