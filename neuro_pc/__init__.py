"""neuro_pc: predictive-coding and feedback-alignment circuits, written once as
populations, projections and local rules, compiled to a NumPy reference,
Brian2 and Lava.

    from neuro_pc.models import mlp
    from neuro_pc.backends import compile
"""
__version__ = "0.1.0"
