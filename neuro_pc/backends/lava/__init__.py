"""The Lava backend: circuits as Lava processes on Lava's CPU simulator (``Loihi2SimCfg``).

``neuro_pc.backends.compile(circuit, backend="lava", tag="floating_pt" | "fixed_pt")``
returns a :class:`LavaSimulator`. Needs lava-nc 0.10 on Python 3.10: install
with ``pip install neuro-pc[lava]``. See docs/backends/lava.md.
"""
from __future__ import annotations

import importlib.util
import sys

_HINT = ("The Lava backend needs lava-nc 0.10 on Python 3.10: install it with "
         "`pip install neuro-pc[lava]` in a Python 3.10 environment")

if sys.version_info[:2] != (3, 10):
    raise ImportError(f"{_HINT}; this is Python {sys.version_info[0]}.{sys.version_info[1]} "
                      "(lava-nc 0.10 does not support it).")
if importlib.util.find_spec("lava") is None or \
        importlib.util.find_spec("lava.magma") is None:
    raise ImportError(f"{_HINT}; lava-nc is not installed here.")

from neuro_pc.backends.lava.simulator import TAGS, LavaSimulator  # noqa: E402

__all__ = ["LavaSimulator", "TAGS"]
