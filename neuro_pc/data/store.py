"""Named data sets kept on disk: where they are looked for, how they are fetched.

A named data set (so far ``"mnist"``) is a folder of files, each known by the
SHA-256 of its *decompressed* content, so a copy re-compressed with other
settings (or stored uncompressed) is the same data. The folder is looked for,
in this order, in

1. ``$NEURO_PC_DATA/<name>`` (when the variable is set), then
2. the per-user cache ``$XDG_CACHE_HOME/neuro_pc/<name>`` (``~/.cache/neuro_pc/<name>``
   when ``XDG_CACHE_HOME`` is unset or empty).

:func:`find` returns the first folder holding every file; :func:`fetch`
downloads the files from the usual public mirrors into the cache, verifying
each file's checksum before anything is put in place, atomically (a file
appears whole or not at all). Nothing is bundled with the package.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

ENV_DATA = "NEURO_PC_DATA"


@dataclass(frozen=True)
class FileSet:
    """The files of a named data set: ``files`` maps each file's name (without
    ``.gz``) to the SHA-256 (hex) of its decompressed bytes; ``mirrors`` are base
    URLs, tried in order, under which ``<name>.gz`` is fetched."""
    name: str
    files: dict
    mirrors: tuple


MNIST = FileSet(
    name="mnist",
    files={
        "train-images-idx3-ubyte":
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte":
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte":
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte":
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
             "https://storage.googleapis.com/cvdf-datasets/mnist/",
             "http://yann.lecun.com/exdb/mnist/"),
)

#: the named data sets kept on disk
FILESETS = {"mnist": MNIST}


class DataNotFoundError(FileNotFoundError):
    """A named data set is in none of the places it is looked for (the message
    names them, and how to get the data)."""


class ChecksumError(ValueError):
    """A file's decompressed content is not the expected one (names the file)."""


class FetchError(OSError):
    """No mirror delivered a file (names the file and what each mirror said)."""


def fileset(name: str) -> FileSet:
    """The :class:`FileSet` called ``name``; ValueError naming the known ones."""
    try:
        return FILESETS[name.lower()]
    except KeyError:
        raise ValueError(f"no data set called {name!r} is kept on disk; known: "
                         f"{', '.join(sorted(FILESETS))}") from None


def cache_dir() -> Path:
    """The per-user cache folder of neuro_pc: ``$XDG_CACHE_HOME/neuro_pc``, else
    ``~/.cache/neuro_pc``."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base).expanduser() if base.strip() else Path.home() / ".cache"
    return root / "neuro_pc"


def search_dirs(name: str) -> list[tuple[str, Path]]:
    """``[(how, folder)]`` in lookup order: ``$NEURO_PC_DATA/<name>`` when the
    variable is set, then the cache's ``<name>`` folder."""
    out = []
    env = os.environ.get(ENV_DATA, "")
    if env.strip():
        out.append((f"${ENV_DATA}/{name}", Path(env).expanduser() / name))
    out.append(("the cache", cache_dir() / name))
    return out


def file_in(directory: Path, stem: str) -> Path | None:
    """``directory/stem`` or ``directory/stem.gz``, whichever exists (plain first)."""
    for candidate in (directory / stem, directory / (stem + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def find(name: str) -> Path:
    """The first folder of :func:`search_dirs` holding every file of data set
    ``name`` (each plain or ``.gz``); :class:`DataNotFoundError` otherwise, in
    one line naming every place looked in and how to get the data."""
    files = fileset(name).files
    looked = []
    for how, folder in search_dirs(name):
        missing = [stem for stem in files if file_in(folder, stem) is None]
        if not missing:
            return folder
        state = "no such folder" if not folder.is_dir() else \
            f"missing {', '.join(m + '[.gz]' for m in missing)}"
        looked.append(f"{how} {folder} ({state})")
    hint = "" if os.environ.get(ENV_DATA, "").strip() else f" (${ENV_DATA} is not set)"
    raise DataNotFoundError(
        f"{name.upper() if name == 'mnist' else name} not found: looked in "
        f"{'; '.join(looked)}{hint}; get it with `neuro-pc data fetch {name}` (needs a "
        f"network), or put the files {', '.join(s + '[.gz]' for s in files)} in "
        f"$NEURO_PC_DATA/{name} or {cache_dir() / name}")


def decompressed(path: Path) -> bytes:
    """The bytes of ``path``, gunzipped if its name ends in ``.gz``."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ChecksumError(f"{path} is not a readable gzip file ({exc}): truncated or "
                            f"corrupt; fetch it again (`neuro-pc data fetch`)") from None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_bytes(data: bytes, expected: str, where) -> None:
    """Raise :class:`ChecksumError` naming ``where`` unless ``sha256(data) == expected``."""
    got = sha256(data)
    if got != expected:
        raise ChecksumError(
            f"{where}: checksum mismatch (SHA-256 of the decompressed content is "
            f"{got[:16]}..., expected {expected[:16]}...): the file is corrupt or not the "
            f"published one; delete it and fetch it again (`neuro-pc data fetch`)")


def verify(folder: Path, files: dict) -> dict[str, bytes]:
    """Read every file of ``files`` (stem -> SHA-256) from ``folder`` (plain or
    ``.gz``), check its decompressed content, and return ``{stem: bytes}``.
    :class:`ChecksumError` names the first file that does not match."""
    out = {}
    for stem, expected in files.items():
        path = file_in(folder, stem)
        if path is None:
            raise DataNotFoundError(f"{folder / stem}[.gz]: no such file")
        data = decompressed(path)
        verify_bytes(data, expected, path)
        out[stem] = data
    return out


def fetch(name: str, dest: str | os.PathLike | None = None, *, files: FileSet | None = None,
          timeout: float = 60.0, log=None) -> Path:
    """Download data set ``name`` into ``dest`` (default: the cache's ``<name>``
    folder) and return that folder.

    Every file is fetched as ``<mirror><stem>.gz`` from the mirrors in order
    until one delivers bytes whose decompressed SHA-256 is the expected one; it
    is written to a temporary file in ``dest`` and renamed into place
    (``os.replace``), so a file appears whole or not at all. Files already in
    ``dest`` that verify are kept. ``files`` replaces the data set's
    :class:`FileSet` (tests use local ``file://`` mirrors). ``log(text)``
    gets one line per file. Raises :class:`FetchError` (naming the file and
    what every mirror answered) when no mirror delivers a file."""
    spec = files or fileset(name)
    dest = Path(dest).expanduser() if dest is not None else cache_dir() / spec.name
    log = log or (lambda text: None)
    for stem, expected in spec.files.items():
        present = file_in(dest, stem) if dest.is_dir() else None
        if present is not None:
            try:
                verify_bytes(decompressed(present), expected, present)
                log(f"{stem}: present and verified in {dest}")
                continue
            except ChecksumError:
                log(f"{stem}: {present} does not verify; fetching it again")
        failures = []
        for mirror in spec.mirrors:
            url = mirror.rstrip("/") + "/" + stem + ".gz"
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    raw = resp.read()
                data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
                verify_bytes(data, expected, url)
            except (urllib.error.URLError, OSError, ValueError, EOFError, zlib.error) as exc:
                failures.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
                continue
            _write_atomic(dest, stem + ".gz", raw if raw[:2] == b"\x1f\x8b"
                          else gzip.compress(data))
            if (dest / stem).is_file():   # an uncompressed copy that did not verify
                (dest / stem).unlink()
            log(f"{stem}: fetched from {mirror} and verified")
            break
        else:
            raise FetchError(f"could not fetch {stem}.gz of {spec.name}: "
                             f"{'; '.join(failures)}; without a network, copy the files "
                             f"into {dest} by hand")
    return dest


def _write_atomic(folder: Path, filename: str, data: bytes) -> None:
    """Write ``folder/filename`` via a temporary file in ``folder`` and ``os.replace``."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / filename)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


__all__ = ["ChecksumError", "DataNotFoundError", "ENV_DATA", "FILESETS", "FetchError",
           "FileSet", "MNIST", "cache_dir", "fetch", "file_in", "fileset", "find",
           "search_dirs", "verify"]
