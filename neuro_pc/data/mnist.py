"""MNIST from local files: the four idx files (optionally gzipped) or a Keras ``mnist.npz``.

:func:`load_mnist` reads a path it is given; :func:`load_named_mnist` finds
the published files where :mod:`neuro_pc.data.store` looks (``$NEURO_PC_DATA``,
the per-user cache) and verifies their checksums. Nothing is downloaded here
(``neuro-pc data fetch mnist`` does that). The idx format (http://yann.lecun.com/exdb/mnist/) is a
big-endian header - a 4-byte magic number (``0x00000803`` for a 3-D uint8 image
array, ``0x00000801`` for a 1-D uint8 label array), then one 4-byte size per
dimension - followed by the raw bytes.
"""
from __future__ import annotations

import gzip
import zipfile
import zlib
from pathlib import Path

import numpy as np

from neuro_pc.data.dataset import Dataset
from neuro_pc.numerics import require_finite

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
N_CLASSES = 10

# stem -> accepted file names, in lookup order (each also tried with ".gz").
IDX_FILES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_mnist(path: str | Path, limit_train: int | None = None,
               limit_test: int | None = None) -> Dataset:
    """Load MNIST from a local directory of idx files or a ``.npz`` file.

    The official train/test split is kept; ``limit_train`` / ``limit_test``
    keep only the first that many samples of each part (deterministic).

    Parameters
    ----------
    path : str or pathlib.Path
        Either a directory holding ``train-images-idx3-ubyte``,
        ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
        ``t10k-labels-idx1-ubyte``, each optionally ending in ``.gz`` (the
        ``train-images.idx3-ubyte`` spelling is accepted too), or a ``.npz`` with
        arrays ``x_train, y_train, x_test, y_test`` (Keras ``mnist.npz`` layout:
        uint8 images ``(n, 28, 28)``, labels ``(n,)``).
    limit_train : int, optional
        Keep only the first that many training samples (a positive int).
    limit_test : int, optional
        Keep only the first that many test samples (a positive int).

    Returns
    -------
    Dataset
        ``x_*`` float64 of shape ``(n, 784)`` in ``[0, 1]`` (uint8 pixels / 255),
        ``y_*`` int64 ``(n,)``, ``n_classes=10``, named ``"mnist"``.

    Raises
    ------
    FileNotFoundError
        When files are missing (listing the names looked for).
    ValueError
        On a bad magic number, truncated data, mismatched image/label counts or
        missing npz keys, and for a bad ``limit_*``.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        parts = _read_idx_dir(path)
    elif path.is_file() and path.suffix == ".npz":
        parts = _read_npz(path)
    elif path.exists():
        raise ValueError(f"MNIST path {path} is neither a directory of idx files nor a "
                         f".npz file; pass the directory holding the four idx files or "
                         f"a mnist.npz")
    else:
        raise FileNotFoundError(f"MNIST path {path} does not exist; pass a directory with "
                                f"the four idx files ({_all_names()}) or a mnist.npz file")
    x_tr, y_tr, x_te, y_te = parts
    x_tr, y_tr = _limit(x_tr, y_tr, limit_train, "limit_train")
    x_te, y_te = _limit(x_te, y_te, limit_test, "limit_test")
    return Dataset(_to_features(x_tr, "x_train"), y_tr, _to_features(x_te, "x_test"), y_te,
                   n_classes=N_CLASSES, name="mnist")


def load_named_mnist(limit_train: int | None = None, limit_test: int | None = None) -> Dataset:
    """The published MNIST, found where :func:`~neuro_pc.data.store.find` looks, verified.

    The folder is ``$NEURO_PC_DATA/mnist``, then the per-user cache; every
    file's decompressed SHA-256 must be the published one. The official split:
    60000 train / 10000 test before ``limit_*``; otherwise as :func:`load_mnist`.

    Parameters
    ----------
    limit_train : int, optional
        Keep only the first that many training samples.
    limit_test : int, optional
        Keep only the first that many test samples.

    Returns
    -------
    Dataset
        As :func:`load_mnist`'s.

    Raises
    ------
    DataNotFoundError
        Saying where it looked and how to get the data.
    ChecksumError
        Naming the file whose content is not the published one.
    """
    from neuro_pc.data.store import MNIST, find, verify

    folder = find("mnist")
    raw = verify(folder, MNIST.files)
    names = list(MNIST.files)   # train images, train labels, test images, test labels
    x_tr = parse_idx_images(raw[names[0]], folder / names[0])
    y_tr = parse_idx_labels(raw[names[1]], folder / names[1])
    x_te = parse_idx_images(raw[names[2]], folder / names[2])
    y_te = parse_idx_labels(raw[names[3]], folder / names[3])
    x_tr, y_tr = _limit(x_tr, y_tr, limit_train, "limit_train")
    x_te, y_te = _limit(x_te, y_te, limit_test, "limit_test")
    return Dataset(_to_features(x_tr, "x_train"), y_tr, _to_features(x_te, "x_test"), y_te,
                   n_classes=N_CLASSES, name="mnist")


def read_idx_images(file: str | Path) -> np.ndarray:
    """Parse an idx3 image file (plain or ``.gz``).

    Parameters
    ----------
    file : str or pathlib.Path
        The file.

    Returns
    -------
    numpy.ndarray
        uint8 ``(n, rows, cols)``.

    Raises
    ------
    ValueError
        On a bad magic number, truncated data or an unreadable gzip file.
    """
    return parse_idx_images(*_read_bytes(file))


def parse_idx_images(data: bytes, file) -> np.ndarray:
    """Parse the (decompressed) bytes of an idx3 image file named ``file``."""
    _check_magic(data, IMAGES_MAGIC, file, "idx3 image")
    n, rows, cols = (int(v) for v in np.frombuffer(data, dtype=">u4", count=3, offset=4))
    return _payload(data, 16, (n, rows, cols), file)


def read_idx_labels(file: str | Path) -> np.ndarray:
    """Parse an idx1 label file (plain or ``.gz``).

    Parameters
    ----------
    file : str or pathlib.Path
        The file.

    Returns
    -------
    numpy.ndarray
        uint8 ``(n,)``.

    Raises
    ------
    ValueError
        On a bad magic number, truncated data or an unreadable gzip file.
    """
    return parse_idx_labels(*_read_bytes(file))


def parse_idx_labels(data: bytes, file) -> np.ndarray:
    """Parse the (decompressed) bytes of an idx1 label file named ``file``."""
    _check_magic(data, LABELS_MAGIC, file, "idx1 label")
    n = int(np.frombuffer(data, dtype=">u4", count=1, offset=4)[0])
    return _payload(data, 8, (n,), file)


def _read_bytes(file: str | Path) -> tuple[bytes, Path]:
    """Return the (decompressed if ``.gz``) bytes of ``file`` and its Path."""
    file = Path(file)
    if file.suffix != ".gz":
        with open(file, "rb") as fh:
            return fh.read(), file
    try:
        with gzip.open(file, "rb") as fh:
            return fh.read(), file
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ValueError(f"{file} is not a readable gzip file ({exc}); it is truncated or "
                         f"corrupt: download it again, or store it uncompressed without "
                         f"the .gz suffix") from None


def _check_magic(data: bytes, expected: int, file: Path, kind: str) -> None:
    """Raise ValueError unless ``data`` starts with the ``expected`` idx magic number."""
    if len(data) < 8:
        raise ValueError(f"{file} is too short ({len(data)} bytes) to be an {kind} file; "
                         f"it is truncated or not an idx file")
    magic = int.from_bytes(data[:4], "big")
    if magic == expected:
        return
    hint = "check that the right file is in the right place"
    if data[:2] == b"\x1f\x8b":
        hint = "the file is gzip-compressed: give it a .gz suffix or decompress it"
    elif magic in (IMAGES_MAGIC, LABELS_MAGIC):
        hint = "images and labels files seem swapped"
    raise ValueError(f"bad magic number 0x{magic:08x} in {file}: expected 0x{expected:08x} "
                     f"for an {kind} file; {hint}")


def _payload(data: bytes, offset: int, shape: tuple[int, ...], file: Path) -> np.ndarray:
    """View the uint8 payload after the header, checking its length against ``shape``."""
    expected = int(np.prod(shape))
    if len(data) - offset != expected:
        raise ValueError(f"{file}: header declares shape {shape} ({expected} bytes) but "
                         f"{len(data) - offset} bytes follow; the file is truncated or corrupt")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape).copy()


def _find(directory: Path, names: tuple[str, ...]) -> Path:
    """Return the first existing ``name`` or ``name.gz`` in ``directory``."""
    for name in names:
        for candidate in (name, name + ".gz"):
            if (directory / candidate).is_file():
                return directory / candidate
    raise FileNotFoundError(
        f"MNIST file missing in {directory}: looked for "
        f"{', '.join(n + '[.gz]' for n in names)}; put the four idx files there "
        f"({_all_names()}) or pass a mnist.npz instead")


def _all_names() -> str:
    return ", ".join(names[0] + "[.gz]" for names in IDX_FILES.values())


def _read_idx_dir(directory: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read the four idx files; returns uint8 (x_train, y_train, x_test, y_test)."""
    files = {key: _find(directory, names) for key, names in IDX_FILES.items()}
    out = []
    for part in ("train", "test"):
        x = read_idx_images(files[f"{part}_images"])
        y = read_idx_labels(files[f"{part}_labels"])
        _check_counts(x, y, files[f"{part}_images"], files[f"{part}_labels"])
        out += [x, y]
    return tuple(out)


def _read_npz(file: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read the Keras ``mnist.npz`` layout; returns (x_train, y_train, x_test, y_test)."""
    if not zipfile.is_zipfile(file):
        raise ValueError(f"{file} is not a readable .npz archive (not a zip archive: truncated "
                         f"or another kind of file); write it again (numpy.savez) or use the "
                         f"idx files")
    try:
        with np.load(file, allow_pickle=False) as npz:
            found = list(npz.files)
            arrays = {k: npz[k] for k in NPZ_KEYS if k in found}
    except (zipfile.BadZipFile, ValueError, EOFError, zlib.error) as exc:
        raise ValueError(f"{file} is not a readable .npz archive ({exc}); it is truncated or "
                         f"corrupt: write it again (numpy.savez) or use the idx files") from None
    missing = [k for k in NPZ_KEYS if k not in found]
    if missing:
        raise ValueError(f"{file} lacks keys {missing} (found {sorted(found)}); "
                         f"expected the Keras mnist.npz layout with keys "
                         f"{', '.join(NPZ_KEYS)}")
    x_tr, y_tr, x_te, y_te = (arrays[k] for k in NPZ_KEYS)
    for key, arr in zip(NPZ_KEYS, (x_tr, y_tr, x_te, y_te)):
        require_finite(arr, f"{file}[{key}]")
    _check_counts(x_tr, y_tr, f"{file}[x_train]", f"{file}[y_train]")
    _check_counts(x_te, y_te, f"{file}[x_test]", f"{file}[y_test]")
    return x_tr, y_tr.reshape(-1), x_te, y_te.reshape(-1)


def _check_counts(x: np.ndarray, y: np.ndarray, x_src, y_src) -> None:
    """Raise ValueError unless there are as many labels as images."""
    if len(x) != len(y):
        raise ValueError(f"count mismatch: {len(x)} images in {x_src} but {len(y)} labels "
                         f"in {y_src}; the files come from different sets or one is "
                         f"truncated")


def _limit(x: np.ndarray, y: np.ndarray, limit: int | None, what: str):
    """Keep the first ``limit`` samples (all if ``limit`` is None)."""
    if limit is None:
        return x, y
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise ValueError(f"{what} must be a positive int or None, got {limit!r}")
    return x[:limit], y[:limit]


def _to_features(x: np.ndarray, what: str) -> np.ndarray:
    """Flatten images to float64 ``(n, rows*cols)`` in [0, 1] (uint8 / 255)."""
    x = np.asarray(x)
    flat = x.reshape(len(x), -1)
    if np.issubdtype(x.dtype, np.integer):
        if flat.size and (flat.min() < 0 or flat.max() > 255):
            raise ValueError(f"{what}: integer pixels outside 0..255")
        return flat.astype(np.float64) / 255.0
    flat = flat.astype(np.float64)
    if flat.size and (flat.min() < 0.0 or flat.max() > 1.0):
        raise ValueError(f"{what}: float pixels must already lie in [0, 1], got range "
                         f"[{flat.min()}, {flat.max()}]; store uint8 0..255 instead")
    return flat
