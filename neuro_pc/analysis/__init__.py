"""Analysis: pure-NumPy metrics of learning rules (alignment, effective rank, PC energy) and Muon,
plus :class:`AlignmentRecorder`, the training callback that records them per layer over training
(it runs the reference backend on a probe batch; the metrics themselves take plain arrays).
"""
from neuro_pc.analysis.metrics import (angle, entropy_effective_rank, norm_ratio,
                                       participation_ratio, pc_energy, rank_measures,
                                       singular_values, stable_rank, weight_alignment)
from neuro_pc.rules.muon import NS_COEFFS, Muon, newton_schulz, orthogonalize_exact
from neuro_pc.analysis.recorder import RANK_MEASURES, AlignmentRecorder, bp_counterpart

__all__ = ["angle", "norm_ratio", "weight_alignment", "singular_values",
           "entropy_effective_rank", "participation_ratio", "stable_rank", "rank_measures",
           "pc_energy", "NS_COEFFS", "newton_schulz", "orthogonalize_exact", "Muon",
           "AlignmentRecorder", "bp_counterpart", "RANK_MEASURES"]
