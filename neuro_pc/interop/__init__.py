"""Interchange with other neuromorphic tools: NIR export and import
(:mod:`neuro_pc.interop.nirgraph`; docs/interop.md).

The ``nir`` package is the optional extra ``nir`` (``pip install 'neuro-pc[nir]'``);
it is imported only when a graph is written or read.
"""
from neuro_pc.interop.nirgraph import (DEFAULT_DT, NIR_IMPORTS, ExportReport, NIRError,
                                       encode_spikes, export_nir, from_nir, import_nir, to_nir)

__all__ = ["DEFAULT_DT", "NIR_IMPORTS", "ExportReport", "NIRError", "encode_spikes",
           "export_nir", "from_nir", "import_nir", "to_nir"]
