"""Circuit builders: they return IR (:class:`neuro_pc.ir.Circuit`)."""
from neuro_pc.models.conv import CNN_RULES, cnn
from neuro_pc.models.rate import ACTIVATIONS, RULES, mlp

__all__ = ["ACTIVATIONS", "RULES", "CNN_RULES", "cnn", "mlp"]


def shipped_circuits(sizes=(8, 6, 4), **kw) -> dict:
    """One circuit per shipped rate rule, for equivalence tests across backends.

    Parameters
    ----------
    sizes : sequence of int, default (8, 6, 4)
        The layer widths of every circuit (:func:`~neuro_pc.models.mlp`'s
        ``sizes``).
    **kw
        Further options of :func:`~neuro_pc.models.mlp`, passed to every circuit
        (Kolen–Pollack's circuit gets ``lam=1e-3``, the others ``lam=0``).

    Returns
    -------
    dict
        ``{rule: Circuit}`` for every rule of :data:`~neuro_pc.models.rate.RULES`.
    """
    return {r: mlp(list(sizes), rule=r, lam=1e-3 if r == "kp" else 0.0, **kw) for r in RULES}


__all__.append("shipped_circuits")
