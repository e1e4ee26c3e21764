"""``load_dataset``: one entry point taking a name or a path."""
from __future__ import annotations

from pathlib import Path

from neuro_pc.data.dataset import Dataset
from neuro_pc.data.digits import load_digits
from neuro_pc.data.mnist import load_mnist, load_named_mnist
from neuro_pc.data.synthetic import load_mnist1d

NAMES = ("digits", "mnist1d", "mnist", "mnist:<path>", "<path to idx directory or .npz>")


def load_dataset(name_or_path: str | Path, seed: int = 0, **kw) -> Dataset:
    """Load a data set by name or path.

    * ``"digits"``  -> :func:`load_digits` ``(seed=seed, **kw)``
    * ``"mnist1d"`` -> :func:`load_mnist1d` ``(seed=seed, **kw)``
    * ``"mnist"``   -> :func:`load_named_mnist` ``(**kw)``: the published files
      from ``$NEURO_PC_DATA/mnist`` or the per-user cache, checksums verified
    * ``"mnist:<path>"`` or an existing directory / ``.npz`` path ->
      :func:`load_mnist` ``(path, **kw)``; MNIST has a fixed official split, so
      ``seed`` is not used.

    Parameters
    ----------
    name_or_path : str or pathlib.Path
        A name (case-insensitive), ``"mnist:<path>"``, or a path (a
        :class:`~pathlib.Path` is always a path).
    seed : int, default 0
        The seed of the split (digits, mnist1d).
    **kw
        Extra keyword arguments for the loader (e.g. ``test_size``,
        ``limit_train``).

    Returns
    -------
    Dataset
        The loader's data set.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if isinstance(name_or_path, Path):
        return load_mnist(name_or_path, **kw)
    key = str(name_or_path).strip()
    if key.lower() == "digits":
        return load_digits(seed=seed, **kw)
    if key.lower() == "mnist1d":
        return load_mnist1d(seed=seed, **kw)
    if key.lower() == "mnist":
        return load_named_mnist(**kw)
    if key.lower().startswith("mnist:"):
        return load_mnist(key[len("mnist:"):], **kw)
    path = Path(key).expanduser()
    if path.exists() or path.suffix == ".npz" or "/" in key or "\\" in key:
        return load_mnist(path, **kw)  # a path: load_mnist says what is missing
    raise ValueError(f"unknown data set {name_or_path!r}; expected one of {', '.join(NAMES)}")


def load(name_or_path: str | Path, seed: int = 0, **kw) -> Dataset:
    """``load("mnist")``, ``load("digits")``, ...: the same as :func:`load_dataset`.

    Parameters
    ----------
    name_or_path : str or pathlib.Path
        A name or a path, as for :func:`load_dataset`.
    seed : int, default 0
        The seed of the split.
    **kw
        Extra keyword arguments for the loader.

    Returns
    -------
    Dataset
        The loader's data set.
    """
    return load_dataset(name_or_path, seed=seed, **kw)
