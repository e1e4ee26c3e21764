"""What made a run: versions, the git commit, the machine (``results.json`` ``meta``).

:func:`provenance` gathers it without side effects: package versions come from
the installed metadata (:mod:`importlib.metadata`), never from importing the
package (importing Lava fixes the process's multiprocessing start method), and
the git commit is read only when neuro_pc runs from a source checkout.
"""
from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

#: distributions whose versions a run records (None: not installed)
PACKAGES = ("numpy", "brian2", "lava-nc", "scikit-learn", "sympy", "matplotlib", "mnist1d")


def package_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or None; never imports it."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def neuro_pc_version() -> str:
    """neuro_pc's version (``neuro_pc.__version__``, which the package metadata uses)."""
    from neuro_pc import __version__

    return __version__


def checkout_root() -> Path | None:
    """The git checkout neuro_pc is imported from (an editable install), or None."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / ".git").exists() and (root / "pyproject.toml").is_file() else None


def git_state(root: Path | None = None, timeout: float = 5.0) -> dict | None:
    """``{"commit": sha, "dirty": bool}`` of the checkout (dirty: tracked files differ
    from the commit), or None outside a checkout or without a working ``git``."""
    root = checkout_root() if root is None else root
    if root is None:
        return None

    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=timeout, check=True, stdin=subprocess.DEVNULL).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def machine() -> dict:
    """The platform, processor and CPU count (and the host's name)."""
    return {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or None, "cpu_count": os.cpu_count(),
            "hostname": socket.gethostname()}


def provenance() -> dict:
    """Everything above as one JSON-able dict (``neuro_pc``, ``python``, ``git``,
    ``packages``, ``machine``, ``argv``)."""
    return {"neuro_pc": neuro_pc_version(), "python": sys.version.split()[0],
            "git": git_state(), "packages": {p: package_version(p) for p in PACKAGES},
            "machine": machine(), "argv": list(sys.argv)}


__all__ = ["PACKAGES", "checkout_root", "git_state", "machine", "neuro_pc_version",
           "package_version", "provenance"]
