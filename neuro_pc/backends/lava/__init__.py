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



def _import_lava_runtime() -> None:
    """Import Lava's message infrastructure now.

    It calls ``multiprocessing.set_start_method("fork")`` when first imported,
    which raises ``RuntimeError: context has already been set`` if anything in
    the process (another backend, a test, a pool) has already fixed the start
    method. Importing it with the backend does it early; if the method is
    already ``"fork"`` (Linux's default) Lava's requirement holds and the
    redundant call is skipped; any other method is an error that says so.
    """
    import multiprocessing as mp

    try:
        import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401
    except RuntimeError as exc:
        if "context has already been set" not in str(exc):
            raise
        method = mp.get_start_method(allow_none=True)
        if method != "fork":
            raise RuntimeError(
                f"Lava needs the multiprocessing start method 'fork', but this process has "
                f"already set {method!r}; import neuro_pc.backends.lava before anything "
                "else starts a multiprocessing context") from None
        real = mp.set_start_method
        mp.set_start_method = lambda *a, **k: None   # already 'fork': skip Lava's call
        try:
            import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401,F811
        finally:
            mp.set_start_method = real


_import_lava_runtime()

from neuro_pc.backends.lava.simulator import TAGS, LavaSimulator  # noqa: E402

__all__ = ["LavaSimulator", "TAGS"]
