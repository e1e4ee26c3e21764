"""Session set-up shared by every test directory."""
import importlib.util


def pytest_configure(config):
    # Lava calls multiprocessing.set_start_method("fork") when its runtime is first
    # imported, which fails once anything else (sklearn, brian2, a pool) has fixed the
    # start method. Tests import Lava modules directly in any order, so import it
    # through the backend's guarded import before any test runs.
    if importlib.util.find_spec("lava") is not None:
        import neuro_pc.backends.lava  # noqa: F401


# -- data sets kept on disk (docs/data.md) ----------------------------------------------------
import os  # noqa: E402

import pytest  # noqa: E402

REQUIRE_DATA = "NEURO_PC_REQUIRE_DATA"


def need_data(name: str):
    """The folder holding data set ``name`` (``neuro_pc.data.store.find``). When it
    cannot be found the test is skipped with the reason, or fails with it when
    ``$NEURO_PC_REQUIRE_DATA`` is set (to anything but ``0``): CI sets it, so a
    test that needs the data never passes there by skipping."""
    from neuro_pc.data.store import DataNotFoundError, find

    try:
        return find(name)
    except DataNotFoundError as exc:
        if os.environ.get(REQUIRE_DATA, "").strip() not in ("", "0"):
            pytest.fail(f"${REQUIRE_DATA} is set and this test needs {name}: {exc}",
                        pytrace=False)
        pytest.skip(f"needs {name}: {exc}")


@pytest.fixture
def need_data_fn():
    """:func:`need_data` itself (to test its skip / fail decision)."""
    return need_data


@pytest.fixture(scope="session")
def mnist_dir():
    """The folder of the published MNIST files (skip, or fail in CI, without them)."""
    return need_data("mnist")
