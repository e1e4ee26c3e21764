"""Named data sets on disk (neuro_pc.data.store, docs/data.md): the lookup order,
checksums of the decompressed content, fetching into the cache, the CLI, and
the CI switch NEURO_PC_REQUIRE_DATA. The tests marked with ``mnist_dir`` read
the published MNIST (skipped without it, failing in CI)."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

import neuro_pc.cli as cli
from neuro_pc.data import ChecksumError, DataNotFoundError, FetchError, load
from neuro_pc.data.store import MNIST, FileSet, cache_dir, fetch, find, search_dirs, verify
from neuro_pc.experiments import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]
STEMS = list(MNIST.files)


@pytest.fixture
def places(tmp_path, monkeypatch):
    """``$NEURO_PC_DATA`` and ``$XDG_CACHE_HOME`` pointing into ``tmp_path`` (both empty)."""
    data, cache = tmp_path / "data", tmp_path / "cache"
    monkeypatch.setenv("NEURO_PC_DATA", str(data))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return data / "mnist", cache / "neuro_pc" / "mnist"


def _touch_all(folder: Path, gz: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for stem in STEMS:
        (folder / (stem + (".gz" if gz else ""))).write_bytes(b"")


# -- where data is looked for --------------------------------------------------------------

def test_lookup_order_env_then_cache(places):
    env_dir, cache = places
    _touch_all(cache)
    assert find("mnist") == cache
    _touch_all(env_dir, gz=False)
    assert find("mnist") == env_dir          # $NEURO_PC_DATA/mnist comes first
    (env_dir / STEMS[2]).unlink()            # incomplete: the cache's full copy is used
    assert find("mnist") == cache


def test_not_found_names_both_places_and_how_to_get_it(places):
    env_dir, cache = places
    _touch_all(env_dir)
    (env_dir / (STEMS[1] + ".gz")).unlink()
    with pytest.raises(DataNotFoundError) as info:
        find("mnist")
    text = str(info.value)
    assert "\n" not in text
    assert f"$NEURO_PC_DATA/mnist {env_dir} (missing {STEMS[1]}[.gz])" in text
    assert f"the cache {cache} (no such folder)" in text
    assert "neuro-pc data fetch mnist" in text


def test_cache_follows_xdg_and_home(monkeypatch, tmp_path):
    monkeypatch.delenv("NEURO_PC_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "neuro_pc"
    assert search_dirs("mnist") == [("the cache", tmp_path / "x" / "neuro_pc" / "mnist")]
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "neuro_pc"


def test_config_and_cli_say_where_they_looked(places, capsys):
    env_dir, cache = places
    with pytest.raises(ConfigError) as info:
        load_config(ROOT / "experiments/fa_digits.toml", overrides={"data.name": "mnist"})
    assert "data.name: MNIST not found" in str(info.value) and str(cache) in str(info.value)
    assert cli.main(["data", "where", "mnist"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neuro-pc: error: MNIST not found: looked in")
    assert str(env_dir) in err[0] and str(cache) in err[0]


# -- checksums of the decompressed content ---------------------------------------------------

def _fileset(folder: Path, mirrors=()) -> tuple[FileSet, dict]:
    """Two small files (as ``.gz`` in ``folder``) and the FileSet that knows their checksums."""
    folder.mkdir(parents=True, exist_ok=True)
    payloads = {"alpha": b"alpha " * 1000, "beta": bytes(range(256)) * 40}
    for stem, data in payloads.items():
        (folder / (stem + ".gz")).write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    files = {s: hashlib.sha256(d).hexdigest() for s, d in payloads.items()}
    return FileSet("toy", files, tuple(mirrors)), payloads


def test_a_corrupted_file_is_rejected_naming_it(tmp_path):
    spec, payloads = _fileset(tmp_path)
    assert verify(tmp_path, spec.files) == payloads
    bad = bytearray(payloads["beta"])
    bad[100] ^= 1
    (tmp_path / "beta.gz").write_bytes(gzip.compress(bytes(bad)))
    with pytest.raises(ChecksumError, match=r"beta\.gz: checksum mismatch"):
        verify(tmp_path, spec.files)
    (tmp_path / "beta.gz").write_bytes(gzip.compress(payloads["beta"])[:-20])   # truncated
    with pytest.raises(ChecksumError, match=r"beta\.gz is not a readable gzip file"):
        verify(tmp_path, spec.files)


def test_a_recompressed_or_uncompressed_copy_verifies(tmp_path):
    spec, payloads = _fileset(tmp_path / "a")
    other = tmp_path / "b"
    other.mkdir()
    for stem, data in payloads.items():
        again = gzip.compress(data, compresslevel=1, mtime=12345)
        assert again != (tmp_path / "a" / (stem + ".gz")).read_bytes()
        (other / (stem + ".gz")).write_bytes(again)
    assert verify(other, spec.files) == payloads
    for stem, data in payloads.items():
        (other / (stem + ".gz")).unlink()
        (other / stem).write_bytes(data)
    assert verify(other, spec.files) == payloads


# -- fetching (file:// mirrors stand in for the network) -------------------------------------

def test_fetch_tries_mirrors_verifies_and_writes_atomically(tmp_path):
    good = tmp_path / "good"
    spec, payloads = _fileset(good)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "alpha.gz").write_bytes(gzip.compress(b"not alpha"))   # beta.gz: missing
    spec = FileSet("toy", spec.files, (corrupt.as_uri() + "/", good.as_uri() + "/"))
    lines = []
    dest = fetch("toy", tmp_path / "cache" / "toy", files=spec, log=lines.append)
    assert sorted(p.name for p in dest.iterdir()) == ["alpha.gz", "beta.gz"]   # no .part left
    assert verify(dest, spec.files) == payloads
    assert lines == [f"alpha: fetched from {good.as_uri()}/ and verified",
                     f"beta: fetched from {good.as_uri()}/ and verified"]
    lines.clear()
    fetch("toy", dest, files=spec, log=lines.append)             # nothing to do the second time
    assert all("present and verified" in line for line in lines)


def test_fetch_without_any_mirror_names_the_file_and_writes_nothing(tmp_path):
    spec, _ = _fileset(tmp_path / "src")
    spec = FileSet("toy", spec.files, ((tmp_path / "nowhere").as_uri() + "/",))
    with pytest.raises(FetchError, match=r"could not fetch alpha\.gz of toy: file://"):
        fetch("toy", tmp_path / "cache", files=spec)
    assert not (tmp_path / "cache").exists()


def test_fetch_replaces_a_copy_that_does_not_verify(tmp_path):
    src = tmp_path / "src"
    spec, payloads = _fileset(src)
    spec = FileSet("toy", spec.files, (src.as_uri(),))
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "alpha").write_bytes(b"stale")            # an uncompressed copy, wrong
    fetch("toy", dest, files=spec)
    assert not (dest / "alpha").exists() and verify(dest, spec.files) == payloads


# -- the CI switch ---------------------------------------------------------------------------

def test_require_data_turns_the_skip_into_a_failure(places, monkeypatch, need_data_fn):
    monkeypatch.delenv("NEURO_PC_REQUIRE_DATA", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs mnist: MNIST not found"):
        need_data_fn("mnist")
    monkeypatch.setenv("NEURO_PC_REQUIRE_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match="NEURO_PC_REQUIRE_DATA is set"):
        need_data_fn("mnist")
    _touch_all(places[1])
    assert need_data_fn("mnist") == places[1]


# -- the published MNIST ---------------------------------------------------------------------

def test_mnist_loads_with_the_official_split_and_first_labels(mnist_dir):
    d = load("mnist")
    assert (len(d.y_train), len(d.y_test), d.n_features) == (60000, 10000, 784)
    assert d.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert d.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert d.x_train.min() == 0.0 and d.x_train.max() == 1.0
    assert np.bincount(d.y_test).tolist()[:3] == [980, 1135, 1032]


def test_mnist_checksums_reject_a_corrupted_copy_and_accept_a_recompressed_one(
        mnist_dir, tmp_path, monkeypatch):
    stem = "t10k-labels-idx1-ubyte"
    src = mnist_dir / (stem + ".gz") if (mnist_dir / (stem + ".gz")).exists() else mnist_dir / stem
    data = gzip.decompress(src.read_bytes()) if src.suffix == ".gz" else src.read_bytes()
    copy = tmp_path / "data" / "mnist"
    copy.mkdir(parents=True)
    for other in STEMS:                              # the other three: links to the real ones
        if other != stem:
            real = mnist_dir / (other + ".gz")
            (copy / real.name).symlink_to(real if real.exists() else mnist_dir / other)
    recompressed = gzip.compress(data, compresslevel=1, mtime=1)
    assert recompressed != src.read_bytes()
    (copy / (stem + ".gz")).write_bytes(recompressed)
    monkeypatch.setenv("NEURO_PC_DATA", str(tmp_path / "data"))
    assert load("mnist", limit_train=10).y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    bad = bytearray(data)
    bad[-1] = (bad[-1] + 1) % 10                       # one label changed
    (copy / (stem + ".gz")).write_bytes(gzip.compress(bytes(bad)))
    with pytest.raises(ChecksumError, match=f"{stem}.gz: checksum mismatch"):
        load("mnist")
