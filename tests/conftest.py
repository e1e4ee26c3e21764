"""Session set-up shared by every test directory."""
import importlib.util


def pytest_configure(config):
    # Lava calls multiprocessing.set_start_method("fork") when its runtime is first
    # imported, which fails once anything else (sklearn, brian2, a pool) has fixed the
    # start method. Tests import Lava modules directly in any order, so import it
    # through the backend's guarded import before any test runs.
    if importlib.util.find_spec("lava") is not None:
        import neuro_pc.backends.lava  # noqa: F401
