"""One file per trained circuit: the IR, its weights, masks and metadata.

Format (documented in docs/artifacts.md): a NumPy ``.npz`` archive with

* ``circuit.json``: the circuit IR (:meth:`Circuit.to_json`) as UTF-8 bytes;
* ``metadata.json``: free metadata (backend, seed, accuracy, versions...);
* ``W/<projection>``: one ``float64`` array ``(n_target, n_source)`` per
  projection that owns weights (fixed feedback matrices included);
* ``M/<projection>``: the 0/1 mask of each sparse projection.

Every backend saves and loads this one format, so weights trained on one load
into another. Saving is atomic: the file appears complete or not at all.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neuro_pc.ir.circuit import Circuit, CircuitError

FORMAT_VERSION = 1


@dataclass
class Artifact:
    circuit: Circuit
    weights: dict[str, np.ndarray]
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def check(self) -> "Artifact":
        """Every weight-owning projection has a matrix of the right shape."""
        sizes = {p.name: p.size for p in self.circuit.populations}
        for proj in self.circuit.stored:
            if proj.name not in self.weights:
                raise CircuitError(f"artifact: no weights for projection {proj.name!r}")
            want = (sizes[proj.target], sizes[proj.source])
            if self.weights[proj.name].shape != want:
                raise CircuitError(f"artifact: weights of {proj.name!r} have shape "
                                   f"{self.weights[proj.name].shape}, the circuit needs {want}")
        return self


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save_artifact(path: str | os.PathLike, artifact: Artifact) -> Path:
    artifact.check()
    arrays = {"circuit.json": np.frombuffer(artifact.circuit.to_json().encode(), dtype=np.uint8),
              "metadata.json": np.frombuffer(
                  json.dumps({"format_version": FORMAT_VERSION, **artifact.metadata},
                             default=str).encode(), dtype=np.uint8)}
    arrays.update({f"W/{k}": np.asarray(v, dtype=np.float64) for k, v in artifact.weights.items()})
    arrays.update({f"M/{k}": np.asarray(v, dtype=np.float64) for k, v in artifact.masks.items()})
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def load_artifact(path: str | os.PathLike) -> Artifact:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no artifact at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            circuit = Circuit.from_json(bytes(z["circuit.json"]).decode())
            meta = json.loads(bytes(z["metadata.json"]).decode())
            weights = {k[2:]: z[k] for k in z.files if k.startswith("W/")}
            masks = {k[2:]: z[k] for k in z.files if k.startswith("M/")}
    except (KeyError, ValueError, OSError) as exc:
        raise CircuitError(f"{path} is not a neuro_pc artifact (an .npz with circuit.json, "
                           f"metadata.json and W/<projection> arrays): {exc}") from None
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CircuitError(f"{path} has artifact format {meta['format_version']}; this neuro_pc "
                           f"reads up to {FORMAT_VERSION}: upgrade neuro_pc")
    return Artifact(circuit=circuit.validate(), weights=weights, masks=masks,
                    metadata=meta).check()
