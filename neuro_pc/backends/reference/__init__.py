"""NumPy reference backend (the executable specification)."""
from neuro_pc.backends.reference.simulator import ReferenceSimulator

__all__ = ["ReferenceSimulator"]
