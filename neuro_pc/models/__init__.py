"""Circuit builders: they return IR (:class:`neuro_pc.ir.Circuit`)."""
from neuro_pc.models.conv import CNN_RULES, cnn
from neuro_pc.models.rate import ACTIVATIONS, RULES, mlp

__all__ = ["ACTIVATIONS", "RULES", "CNN_RULES", "cnn", "mlp"]


def shipped_circuits(sizes=(8, 6, 4), **kw) -> dict:
    """One circuit per shipped rate rule, for equivalence tests across backends."""
    return {r: mlp(list(sizes), rule=r, lam=1e-3 if r == "kp" else 0.0, **kw) for r in RULES}


__all__.append("shipped_circuits")
