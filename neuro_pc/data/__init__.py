"""Data sets as fixed train/test splits in a small :class:`Dataset` container.

* :func:`load_digits`  - scikit-learn 8x8 digits (offline), stratified split.
* :func:`load_mnist`   - MNIST from local idx files or a Keras ``mnist.npz``.
* :func:`load_mnist1d` - MNIST-1D generated offline (optional ``mnist1d`` package).
* :func:`load_dataset` (also :func:`load`) - dispatch on ``"digits"``, ``"mnist1d"``,
  ``"mnist"`` (found in ``$NEURO_PC_DATA/mnist`` or the per-user cache, checksums
  verified; :mod:`neuro_pc.data.store`), ``"mnist:<path>"`` or a path.

Every loader returns float64 features ``(n, n_features)`` and int64 labels
``(n,)``; randomness comes only from the explicit ``seed`` argument.
"""
from neuro_pc.data.dataset import Dataset
from neuro_pc.data.digits import load_digits
from neuro_pc.data.mnist import load_mnist, load_named_mnist, read_idx_images, read_idx_labels
from neuro_pc.data.registry import load, load_dataset
from neuro_pc.data.store import ChecksumError, DataNotFoundError, FetchError
from neuro_pc.data.synthetic import load_mnist1d

__all__ = ["ChecksumError", "DataNotFoundError", "Dataset", "FetchError", "load",
           "load_digits", "load_mnist", "load_mnist1d", "load_dataset", "load_named_mnist",
           "read_idx_images", "read_idx_labels"]
