"""Run folders: reserved when a run starts, filled file by file, never deleted.

Layout (docs/runs.md)::

    runs/<name>-<YYYYmmdd-HHMMSS>[-<k>]/
        INCOMPLETE      while running, and forever if the run failed (the error)
        partial.json    the entries finished so far (while running / after a failure)
        results.json    the whole results (a complete run), with ``meta``: the
                        config, versions, git commit, machine, seeds, timings
        summary.txt     the printed summary (a complete run)
        *.png           figures (a complete run)
        artifacts/      the trained circuits, one ``.npz`` per rule and seed
                        (written as each finishes, kept after a failure)

The folder name is reserved with ``os.mkdir`` when the run starts (a name taken
by a concurrent run gets the next ``-<k>`` suffix), so two runs never collide.
Every file appears atomically (written to a temporary file in the folder, then
``os.replace``) with the mode a plain ``open()`` would give it (``0o666`` less
the umask: readable by collaborators under the usual ``022``). A complete run
has no ``INCOMPLETE`` and no ``partial.json``: they are removed last, after
every results file was written.

JSON is strict (``allow_nan=False``): NaN and inf are written as ``null``.
"""
from __future__ import annotations

import io
import json
import math
import os
import re
import socket
import time
import traceback
from pathlib import Path

from neuro_pc.ir.artifact import atomic_write_bytes

INCOMPLETE = "INCOMPLETE"
PARTIAL = "partial.json"
RESULTS = "results.json"


class RunFolderError(RuntimeError):
    """The run folder cannot be created or written (the message names it)."""


def to_jsonable(obj):
    """``obj`` as plain JSON data: NumPy scalars and arrays as numbers and lists,
    NaN / inf as None, tuples as lists, other objects as ``str``."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return str(obj)


def dumps(obj, indent: int | None = 1) -> str:
    """Strict JSON text of ``obj`` (see :func:`to_jsonable`; never a bare NaN).

    Parameters
    ----------
    obj : object
        The data; NumPy scalars and arrays become numbers and lists, NaN / inf
        ``null``, other objects their ``str``.
    indent : int or None, default 1
        ``json.dumps``'s indent.

    Returns
    -------
    str
        The JSON text.
    """
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)


def save_figure(path: str | os.PathLike, fig, dpi: int = 120) -> Path:
    """Save a matplotlib figure to ``path`` atomically, with the umask's file mode
    (rendered in memory, then :func:`~neuro_pc.ir.artifact.atomic_write_bytes`)."""
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, bbox_inches="tight", format=path.suffix[1:] or "png")
    return atomic_write_bytes(path, buf.getvalue())


ARTIFACTS = "artifacts"


class ArtifactStore:
    """Saves trained circuits into a run folder's ``artifacts/``: ``save(name, sim,
    **metadata)`` writes ``artifacts/<name>.npz`` (``Simulator.save``) and returns
    its path relative to the run folder. Holds only the folder's path, so it can be
    handed to worker processes."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)

    def save(self, name: str, sim, **metadata) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.=-]+", "_", name).strip("._") or "circuit"
        rel = f"{ARTIFACTS}/{safe}.npz"
        path = self.run_dir / rel
        path.parent.mkdir(exist_ok=True)
        sim.save(path, **metadata)
        return rel


def prepare_out_dir(out_dir) -> Path:
    """``out_dir`` created if needed, or :class:`RunFolderError` saying why it cannot hold
    run folders (a file in the way, no permission)."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RunFolderError(f"cannot write runs into {out}: it is a file, not a folder; "
                             "pass --out <folder>") from None
    except OSError as exc:
        raise RunFolderError(f"cannot create the output folder {out}: {exc.strerror or exc}; "
                             "pass --out <a writable folder>") from None
    if not out.is_dir():
        raise RunFolderError(f"cannot write runs into {out}: it is not a folder; "
                             "pass --out <folder>")
    if not os.access(out, os.W_OK | os.X_OK):
        raise RunFolderError(f"cannot write runs into {out}: no write permission; "
                             "pass --out <a writable folder>")
    return out


class RunFolder:
    """One run's folder (see the module docstring).

    Parameters
    ----------
    path : pathlib.Path
        The folder (made by :meth:`reserve`).

    Attributes
    ----------
    path : pathlib.Path
        The folder.
    finished : list
        The entries recorded by :meth:`checkpoint`.
    started : str
        When the object was made (``%Y-%m-%dT%H:%M:%S``).
    artifacts : ArtifactStore
        Saves trained circuits into the folder's ``artifacts/``.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.finished: list = []
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.artifacts = ArtifactStore(self.path)

    # -- creating ------------------------------------------------------------------------------
    @classmethod
    def reserve(cls, out_dir, name: str, stamp: str | None = None) -> "RunFolder":
        """Create ``out_dir/<name>-<stamp>``, or the first free ``…-<k>``, atomically.

        ``os.mkdir`` fails on a name another run took, so two runs never collide.
        The new folder holds an ``INCOMPLETE`` marker saying who is running.

        Parameters
        ----------
        out_dir : str or os.PathLike
            The folder of runs (created if needed).
        name : str
            The run's name.
        stamp : str, optional
            The time stamp (default now, ``%Y%m%d-%H%M%S``).

        Returns
        -------
        RunFolder
            The reserved folder.

        Raises
        ------
        RunFolderError
            When ``out_dir`` cannot hold run folders (a file in the way, no
            permission) or the run folder cannot be created.
        """
        out = prepare_out_dir(out_dir)
        base = f"{name}-{stamp or time.strftime('%Y%m%d-%H%M%S')}"
        for k in range(10000):
            path = out / (base if k == 0 else f"{base}-{k}")
            try:
                os.mkdir(path)
            except FileExistsError:
                continue
            except OSError as exc:
                raise RunFolderError(f"cannot create the run folder {path}: "
                                     f"{exc.strerror or exc}") from None
            run = cls(path)
            run.write_text(INCOMPLETE, f"running: started {run.started} by process "
                                       f"{os.getpid()} on {socket.gethostname()}\n")
            return run
        raise RunFolderError(f"no free run folder name {base}-<k> in {out}")

    # -- writing (each file atomically) -----------------------------------------------------
    def write_bytes(self, name: str, data: bytes) -> Path:
        """Write ``data`` to the file ``name`` in the folder, atomically.

        Parameters
        ----------
        name : str
            The file's name, relative to the folder.
        data : bytes
            Its content.

        Returns
        -------
        pathlib.Path
            The file's path.
        """
        return atomic_write_bytes(self.path / name, data)

    def write_text(self, name: str, text: str) -> Path:
        """Write ``text`` (UTF-8) to the file ``name`` in the folder, atomically.

        Parameters
        ----------
        name : str
            The file's name, relative to the folder.
        text : str
            Its content.

        Returns
        -------
        pathlib.Path
            The file's path.
        """
        return self.write_bytes(name, text.encode())

    def write_json(self, name: str, obj) -> Path:
        """Write ``obj`` as strict JSON (:func:`dumps`) to the file ``name``, atomically.

        Parameters
        ----------
        name : str
            The file's name, relative to the folder.
        obj : object
            The data.

        Returns
        -------
        pathlib.Path
            The file's path.
        """
        return self.write_text(name, dumps(obj) + "\n")

    def save_figure(self, name: str, fig) -> Path:
        """Save a matplotlib figure as the file ``name`` in the folder, atomically.

        Parameters
        ----------
        name : str
            The file's name (its suffix is the format, e.g. ``.png``).
        fig : matplotlib.figure.Figure
            The figure.

        Returns
        -------
        pathlib.Path
            The file's path.
        """
        return save_figure(self.path / name, fig)

    # -- the run's life ------------------------------------------------------------------------
    def checkpoint(self, entry: dict) -> None:
        """Record one finished entry (a seed, a rule...) in ``partial.json``.

        Parameters
        ----------
        entry : dict
            The entry (JSON-able).
        """
        self.finished.append(entry)
        self._partial("running", None)

    def _partial(self, status: str, error: str | None) -> None:
        self.write_json(PARTIAL, {"complete": False, "status": status, "started": self.started,
                                  "error": error, "finished": self.finished})

    def finish(self, results: dict, summary: str, figures: dict | None = None) -> Path:
        """Write the complete results, then drop the INCOMPLETE marker and partial.json.

        Parameters
        ----------
        results : dict
            Written to ``results.json``.
        summary : str
            Written to ``summary.txt``.
        figures : dict, optional
            ``{file name: matplotlib Figure}``, each saved in the folder.

        Returns
        -------
        pathlib.Path
            The run folder.
        """
        self.write_json(RESULTS, results)
        self.write_text("summary.txt", summary + "\n")
        for fname, fig in (figures or {}).items():
            self.save_figure(fname, fig)
        for name in (PARTIAL, INCOMPLETE):
            try:
                os.unlink(self.path / name)
            except FileNotFoundError:
                pass
        return self.path

    def fail(self, exc: BaseException) -> None:
        """Mark the run failed (or interrupted), keeping every finished entry.

        ``partial.json`` and ``INCOMPLETE`` record the status and the error (with
        its traceback); an ``OSError`` while writing them is ignored, so that the
        original error is kept.

        Parameters
        ----------
        exc : BaseException
            The error (a ``KeyboardInterrupt`` means interrupted).
        """
        interrupted = isinstance(exc, KeyboardInterrupt)
        status = "interrupted" if interrupted else "failed"
        error = "interrupted (KeyboardInterrupt)" if interrupted else \
            f"{type(exc).__name__}: {exc}"
        try:
            self._partial(status, error)
            self.write_text(INCOMPLETE, f"{status}: started {self.started}, stopped "
                            f"{time.strftime('%Y-%m-%dT%H:%M:%S')}, {len(self.finished)} "
                            f"entr{'y' if len(self.finished) == 1 else 'ies'} finished "
                            f"(partial.json)\n{error}\n\n"
                            + "".join(traceback.format_exception(type(exc), exc,
                                                                 exc.__traceback__)))
        except OSError:   # the disk is the problem: keep the original error
            pass
