"""Muon lives with the rules (:mod:`neuro_pc.rules.muon`): it is a rule transform.
Re-exported here for the analysis functions that orthogonalise (``newton_schulz``)."""
from neuro_pc.rules.muon import NS_COEFFS, Muon, newton_schulz, orthogonalize_exact

__all__ = ["NS_COEFFS", "Muon", "newton_schulz", "orthogonalize_exact"]
