"""One file per trained circuit: the IR, its weights, masks and metadata.

Format (documented in docs/artifacts.md): a NumPy ``.npz`` archive with

* ``circuit.json``: the circuit IR (:meth:`Circuit.to_json`) as UTF-8 bytes;
* ``metadata.json``: free metadata (backend, seed, accuracy, versions...);
* ``W/<projection>``: one ``float64`` array ``(n_target, n_source)`` per
  projection that owns weights (fixed feedback matrices included); a
  convolution's is its kernel ``(O, C*kh*kw)``;
* ``M/<projection>``: the 0/1 mask of each sparse projection.

Every backend saves and loads this one format, so weights trained on one load
into another. Saving is atomic: the file appears complete or not at all.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import threading
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuro_pc.ir.circuit import Circuit, CircuitError

FORMAT_VERSION = 1


@dataclass
class Artifact:
    """A trained circuit: the IR, its weights, masks and metadata (one ``.npz`` file).

    Attributes
    ----------
    circuit : Circuit
        The circuit IR.
    weights : dict of str to numpy.ndarray
        One ``float64`` array ``(n_target, n_source)`` per projection that owns
        weights (fixed feedback matrices included); a convolution's is its
        kernel ``(O, C*kh*kw)``.
    masks : dict of str to numpy.ndarray
        The 0/1 mask of each sparse projection.
    metadata : dict
        Free metadata (backend, seed, accuracy, versions...).
    """
    circuit: Circuit
    weights: dict[str, np.ndarray]
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def check(self) -> "Artifact":
        """Every weight-owning projection has a matrix of the right shape.

        Returns
        -------
        Artifact
            ``self``.

        Raises
        ------
        CircuitError
            For a missing matrix, or one of the wrong shape (naming the projection).
        """
        sizes = {p.name: p.size for p in self.circuit.populations}
        for proj in self.circuit.stored:
            if proj.name not in self.weights:
                raise CircuitError(f"artifact: no weights for projection {proj.name!r}")
            want = proj.conv.weight_shape if proj.conv is not None else \
                (sizes[proj.target], sizes[proj.source])
            if self.weights[proj.name].shape != want:
                raise CircuitError(f"artifact: weights of {proj.name!r} have shape "
                                   f"{self.weights[proj.name].shape}, the circuit needs {want}")
        return self


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows
    (``/proc/self/status``), else by setting and restoring it under a lock."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file: ``0o666`` less the umask. Temporary
    files (``tempfile.mkstemp``) are ``0o600`` whatever the umask, so every file
    written through one gets this mode before it is renamed into place."""
    return 0o666 & ~current_umask()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``.

    The file gets the mode a plain ``open(path, "wb")`` would (the umask's); the
    parent folders are created.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    data : bytes
        Its content.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, new_file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save_artifact(path: str | os.PathLike, artifact: Artifact) -> Path:
    """Write ``artifact`` to ``path`` atomically (:func:`artifact_bytes`).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file to write.
    artifact : Artifact
        The artifact; it is checked first (:meth:`Artifact.check`).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    CircuitError
        For an artifact that does not pass :meth:`Artifact.check`.
    """
    return atomic_write_bytes(path, artifact_bytes(artifact))


def artifact_bytes(artifact: Artifact) -> bytes:
    """The ``.npz`` file of ``artifact`` as bytes (what :func:`save_artifact` writes)."""
    artifact.check()
    arrays = {"circuit.json": np.frombuffer(artifact.circuit.to_json().encode(), dtype=np.uint8),
              "metadata.json": np.frombuffer(
                  json.dumps({"format_version": FORMAT_VERSION, **artifact.metadata},
                             default=str).encode(), dtype=np.uint8)}
    arrays.update({f"W/{k}": np.asarray(v, dtype=np.float64) for k, v in artifact.weights.items()})
    arrays.update({f"M/{k}": np.asarray(v, dtype=np.float64) for k, v in artifact.masks.items()})
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def read_circuit(text: str | bytes, source: str = "circuit JSON") -> Circuit:
    """The validated circuit in ``text`` (:meth:`Circuit.to_json` output).

    Parameters
    ----------
    text : str or bytes
        The circuit JSON (bytes are UTF-8).
    source : str, default "circuit JSON"
        What ``text`` is, for the messages (e.g. a file name).

    Returns
    -------
    Circuit
        The circuit, validated.

    Raises
    ------
    CircuitError
        Naming ``source``, for text that is not JSON, JSON that is not a circuit
        (missing or mistyped fields), and circuits that do not validate.
    """
    try:
        data = json.loads(text)
    except UnicodeDecodeError as exc:
        raise CircuitError(f"{source} is not UTF-8 text ({exc.reason}); give a circuit JSON "
                           "written by Circuit.to_json") from None
    except json.JSONDecodeError as exc:
        raise CircuitError(f"{source} is not valid JSON ({exc.msg} at line {exc.lineno}, "
                           f"column {exc.colno}); give a circuit JSON written by "
                           "Circuit.to_json") from None
    if not isinstance(data, dict):
        raise CircuitError(f"{source} holds a JSON {type(data).__name__}, not a circuit (an "
                           "object with name, populations, projections, schedule)")
    try:
        circuit = Circuit.from_dict(data)
    except CircuitError as exc:   # "not a circuit: <what>"
        raise CircuitError(f"{source} is {exc}; give a circuit JSON written by "
                           "Circuit.to_json") from None
    try:
        return circuit.validate()
    except CircuitError as exc:
        raise CircuitError(f"{source}: {exc}") from None
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        raise CircuitError(f"{source} is not a valid circuit ({type(exc).__name__}: {exc}); "
                           "give a circuit JSON written by Circuit.to_json") from None


def load_artifact(path: str | os.PathLike) -> Artifact:
    """Read the artifact written to ``path`` (by :func:`save_artifact`).

    The circuit is read with :func:`read_circuit` (validated), and the artifact
    is checked (:meth:`Artifact.check`).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file.

    Returns
    -------
    Artifact
        The artifact.

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.
    CircuitError
        For a folder, a file that is not a neuro_pc artifact (not a zip archive,
        no ``circuit.json`` or ``metadata.json`` entry, truncated or corrupt), a
        circuit or metadata that cannot be read, an artifact format newer than
        this neuro_pc reads, and weights that do not fit the circuit.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no artifact at {path}")
    if path.is_dir():
        raise CircuitError(f"{path} is a folder, not an artifact (an .npz file written by "
                           "Simulator.save)")
    what = ("is not a neuro_pc artifact (an .npz with circuit.json, metadata.json and "
            "W/<projection> arrays, written by Simulator.save)")
    if not zipfile.is_zipfile(path):
        raise CircuitError(f"{path} {what}: it is not a zip archive (an .npz is one), so it "
                           "is truncated or another kind of file")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("circuit.json", "metadata.json") if k not in z.files]
            if missing:
                raise CircuitError(f"{path} {what}: it has no {' or '.join(missing)} entry "
                                   f"(entries: {', '.join(sorted(z.files)) or 'none'})")
            circuit_text = bytes(z["circuit.json"])
            meta_text = bytes(z["metadata.json"])
            weights = {k[2:]: z[k] for k in z.files if k.startswith("W/")}
            masks = {k[2:]: z[k] for k in z.files if k.startswith("M/")}
    except CircuitError:
        raise
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise CircuitError(f"{path} {what}: it is truncated or corrupt ({exc})") from None
    circuit = read_circuit(circuit_text, f"{path}[circuit.json]")
    try:
        meta = json.loads(meta_text)
    except ValueError as exc:
        raise CircuitError(f"{path}[metadata.json] is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise CircuitError(f"{path}[metadata.json] is not a JSON object")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CircuitError(f"{path} has artifact format {meta['format_version']}; this neuro_pc "
                           f"reads up to {FORMAT_VERSION}: upgrade neuro_pc")
    try:
        return Artifact(circuit=circuit, weights=weights, masks=masks, metadata=meta).check()
    except CircuitError as exc:
        raise CircuitError(f"{path}: {exc}") from None
