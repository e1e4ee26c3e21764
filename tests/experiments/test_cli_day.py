"""Issue 15: the CLI covers the day (version, train, evaluate, check with the
trained weights, plot), runs record what made them, files honour the umask,
shipped configs run by name, a missing Lava is one clear line."""
import json
import os
import re
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from neuro_pc import __version__
from neuro_pc.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--no-progress", "--set", "train.epochs=1", "--set", "train.seeds=[0]",
        "--set", 'train.rules=["bp", "fa"]', "--set", "angles.samples=16"]


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny ``neuro-pc train fa_digits`` (by name): its run folder and stdout."""
    out = tmp_path_factory.mktemp("runs")
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["train", "fa_digits", "--out", str(out), *TINY]) == 0
    (run_dir,) = out.iterdir()
    return run_dir, buf.getvalue()


# -- version ----------------------------------------------------------------------------------

def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as info:   # argparse exits; main() turns it into 0
        from neuro_pc.cli import build_parser

        build_parser().parse_args(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith(f"neuro-pc {__version__} (Python ")
    assert main(["--version"]) == 0
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", __version__)
    assert version("neuro-pc") == __version__     # the package metadata reads __version__


# -- train -> evaluate -> check -> plot ----------------------------------------------------------

def test_train_by_name_writes_loadable_artifacts(trained):
    from neuro_pc.ir import load_artifact

    run_dir, stdout = trained
    names = sorted(p.name for p in (run_dir / "artifacts").iterdir())
    assert names == ["bp-seed0.npz", "fa-seed0.npz"]
    assert "2 trained artifact(s)" in stdout and "fa-seed0.npz" in stdout
    assert not list(run_dir.glob("*.png"))          # train draws no figures (plot does)
    res = json.loads((run_dir / "results.json").read_text())
    assert res["meta"]["config_file"] == str(ROOT / "experiments" / "fa_digits.toml")
    for rule in ("bp", "fa"):
        entry = res["rules"][rule]["runs"][0]
        art = load_artifact(run_dir / entry["artifact"])
        assert art.metadata["rule"] == rule and art.metadata["seed"] == 0
        assert art.metadata["test_accuracy"] == entry["test_accuracy"]
        assert art.metadata["data"] == {"name": "digits", "seed": 0, "options": {}}


def test_evaluate_reproduces_the_recorded_accuracy(trained, capsys):
    run_dir, _ = trained
    res = json.loads((run_dir / "results.json").read_text())
    for rule in ("bp", "fa"):
        entry = res["rules"][rule]["runs"][0]
        code, out, _ = _cli(capsys, "evaluate", run_dir / entry["artifact"], "--json")
        assert code == 0
        report = json.loads(out)
        assert report["accuracy"] == entry["test_accuracy"]          # exactly the run's number
        assert report["n_test"] == 450 and report["backend"] == "reference"
        assert set(report["per_class"]) == {str(c) for c in range(10)}
        # per-class accuracies weighted by class size give the accuracy back
        from neuro_pc.data import load_digits

        y = load_digits().y_test
        weighted = sum(report["per_class"][str(c)] * np.sum(y == c) for c in range(10)) / len(y)
        assert weighted == pytest.approx(report["accuracy"])
    code, out, _ = _cli(capsys, "evaluate", run_dir / "artifacts" / "fa-seed0.npz")
    assert code == 0 and "accuracy" in out and "per class" in out


def test_evaluate_a_spiking_artifact(tmp_path, capsys):
    """Spiking runs save their artifacts too, with the seed's own data split."""
    code, _, err = _cli(capsys, "train", "spiking_fa_digits", "--out", tmp_path, "--no-progress",
                        "--set", "train.epochs=1", "--set", "train.seeds=[1]",
                        "--set", "model.hidden=[16]", "--set", "model.window=8",
                        "--set", 'model.rules=["fa"]', "--set", "baseline.enabled=false")
    assert code == 0, err
    (run_dir,) = tmp_path.iterdir()
    res = json.loads((run_dir / "results.json").read_text())
    entry = res["rules"]["fa"]["runs"][0]
    assert entry["artifact"] == "artifacts/spiking_fa-seed1.npz"
    code, out, _ = _cli(capsys, "evaluate", run_dir / entry["artifact"], "--json")
    assert code == 0 and json.loads(out)["accuracy"] == entry["test_accuracy"]


def test_evaluate_needs_a_recorded_data_set_or_data(tmp_path, capsys):
    from neuro_pc.backends import compile
    from neuro_pc.models import mlp

    path = tmp_path / "bare.npz"
    compile(mlp([64, 8, 10], rule="fa"), "reference", seed=0).save(path)
    code, _, err = _cli(capsys, "evaluate", path)
    assert code == 1 and "pass --data NAME" in err
    code, out, _ = _cli(capsys, "evaluate", path, "--data", "digits", "--json")
    assert code == 0 and json.loads(out)["data"] == "digits"


def test_check_an_artifact_uses_its_trained_weights(tmp_path, capsys):
    """Weights 16x the initial ones need a weight exponent 4 higher: the report must
    show the artifact's exponents, not the initial weights'."""
    from neuro_pc.backends import compile
    from neuro_pc.models import mlp

    circuit = mlp([64, 32, 10], rule="fa")
    sim = compile(circuit, "reference", seed=3)
    init = {k: v.copy() for k, v in sim.weights.items()}
    for k in sim.weights:
        sim.weights[k] = 16 * sim.weights[k]
    art = tmp_path / "trained.npz"
    sim.save(art)
    (tmp_path / "c.json").write_text(circuit.to_json())

    code, out, _ = _cli(capsys, "check", art, "--json")
    assert code == 0
    (report,) = json.loads(out).values()
    code, out, _ = _cli(capsys, "check", tmp_path / "c.json", "--json")
    (initial,) = json.loads(out).values()
    assert report["weights"].startswith("trained") and initial["weights"].startswith("initial")
    exp = {q["projection"]: q["exp"] for q in report["quantization"]}
    exp0 = {q["projection"]: q["exp"] for q in initial["quantization"]}
    assert exp["W1"] == exp0["W1"] + 4 and exp["W2"] == exp0["W2"] + 4
    # and check_report with the initial weights agrees with the circuit's report
    from hardware_targets.check import check_report

    again = check_report(circuit, weights=init, seed=3)
    assert {q["projection"]: q["exp"] for q in again["quantization"]}["W1"] == exp0["W1"]
    code, out, _ = _cli(capsys, "check", art)
    assert code == 0 and "weights: trained" in out


def test_plot_redraws_the_figures(trained, tmp_path, capsys):
    run_dir, _ = trained
    pytest.importorskip("matplotlib")
    code, out, _ = _cli(capsys, "plot", run_dir, "--out", tmp_path)
    assert code == 0
    written = sorted(Path(p).name for p in out.split())
    assert written == ["angles.png", "learning_curves.png"]
    for name in written:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_a_folder_without_results_is_an_error(tmp_path, capsys):
    (tmp_path / "INCOMPLETE").write_text("failed")
    code, _, err = _cli(capsys, "plot", tmp_path)
    assert code == 1 and "no results.json" in err and "INCOMPLETE" in err


# -- provenance -----------------------------------------------------------------------------

def test_results_record_what_made_the_run(trained):
    import platform

    run_dir, _ = trained
    meta = json.loads((run_dir / "results.json").read_text())["meta"]
    assert meta["neuro_pc"] == __version__
    assert meta["python"] == platform.python_version()
    assert meta["packages"]["numpy"] == np.__version__
    assert set(meta["packages"]) >= {"numpy", "brian2", "lava-nc"}
    assert meta["machine"]["cpu_count"] == os.cpu_count() and meta["machine"]["platform"]
    assert meta["backend"] == "reference" and isinstance(meta["backend_options"], dict)
    assert meta["seeds"] == [0]
    assert set(meta["phases"]) == {"check", "run"} and meta["seconds"] >= meta["phases"]["run"]
    if (ROOT / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{40}", meta["git"]["commit"])
        assert isinstance(meta["git"]["dirty"], bool)


def test_provenance_imports_no_backend():
    """Versions come from package metadata: importing Lava would fix the
    multiprocessing start method, importing Brian2 costs seconds."""
    code = ("import sys, json; from neuro_pc.experiments.provenance import provenance; "
            "p = provenance(); print(json.dumps([m for m in ('lava', 'brian2') "
            "if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert json.loads(out) == []


# -- file modes -------------------------------------------------------------------------------

@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_run_files_honour_the_umask(tmp_path, mask):
    pytest.importorskip("matplotlib")
    from neuro_pc.backends import compile
    from neuro_pc.experiments import pyplot
    from neuro_pc.experiments.runs import RunFolder
    from neuro_pc.models import mlp

    old = os.umask(mask)
    try:
        run = RunFolder.reserve(tmp_path, "x")
        run.artifacts.save("fa-seed0", compile(mlp([4, 3, 2], rule="fa"), "reference"))
        fig = pyplot().figure()
        run.finish({"a": 1}, "s", {"f.png": fig})
    finally:
        os.umask(old)
    files = [p for p in run.path.rglob("*") if p.is_file()]
    assert sorted(p.name for p in files) == ["f.png", "fa-seed0.npz", "results.json",
                                             "summary.txt"]
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask, p
    for d in (run.path, run.path / "artifacts"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o777 & ~mask, d


# -- configs by name --------------------------------------------------------------------------

def test_shipped_configs_resolve_by_name():
    from neuro_pc.experiments import resolve_config, shipped_configs

    shipped = shipped_configs()
    assert {"fa_digits", "spiking_fa_digits", "rank_collapse", "mpc_digits"} <= set(shipped)
    assert resolve_config("fa_digits") == ROOT / "experiments" / "fa_digits.toml"
    assert resolve_config("fa_digits.toml") == resolve_config("fa_digits")
    with pytest.raises(FileNotFoundError, match="did you mean 'fa_digits'"):
        resolve_config("fa_digit")


@pytest.mark.slow
def test_the_wheel_ships_the_configs(tmp_path):
    """setup.py's build step copies experiments/*.toml into the wheel (an installed
    neuro-pc finds them by name); the copy exists only in the wheel."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path),
                    str(ROOT)], check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("neuro_pc-*.whl")
    with zipfile.ZipFile(wheel) as z:
        for src in (ROOT / "experiments").glob("*.toml"):
            assert z.read(f"neuro_pc/experiments/configs/{src.name}") == src.read_bytes()
        assert any(n.endswith("/licenses/LICENSE") or n.endswith("/LICENSE") for n in z.namelist())
    assert not (ROOT / "neuro_pc" / "experiments" / "configs").exists()


# -- a missing Lava ---------------------------------------------------------------------------

HIDE_LAVA = """
import sys, importlib.abc
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "lava" or name.startswith("lava."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None
sys.meta_path.insert(0, Hide())
import importlib.util
real = importlib.util.find_spec
importlib.util.find_spec = lambda n, *a: None if n.split(".")[0] == "lava" else real(n, *a)
from neuro_pc.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_asking_for_lava_without_it_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-c", HIDE_LAVA, "run", "fa_digits", "--backend",
                           "lava", "--out", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("neuro-pc: error: backend 'lava' is not available here")
    assert "Python 3.10" in lines[0] and "neuro-pc[lava]" in lines[0]
    assert list(tmp_path.iterdir()) == []                # nothing written


# -- progress ------------------------------------------------------------------------------------

def test_progress_counts_samples():
    from neuro_pc.backends.base import _progress

    bar = _progress(10, True, "x")
    try:
        assert bar.unit == "sample"
    finally:
        bar.close()


def test_brian2_says_it_is_compiling():
    pytest.importorskip("brian2")
    from neuro_pc.backends.brian2 import Brian2Simulator
    from neuro_pc.models import mlp

    said = []
    sim = Brian2Simulator(mlp([4, 3, 2], rule="fa"), target="cython")
    sim._announce_build(lambda text, file=None: said.append(text))
    sim._announce_build(lambda text, file=None: said.append(text))   # once per simulator
    assert len(said) == 1 and said[0].startswith("brian2: ") and "compiling" in said[0]
