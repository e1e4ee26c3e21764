"""Hardening (issue 12), class 3: no run is lost.

Concurrent runs keep both folders; everything checkable is checked before
training (and then nothing is written); a failure or an interrupt after
training started keeps the folder, marked INCOMPLETE, with what was finished.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from neuro_pc.experiments import Outcome, run_experiment, write_run
from neuro_pc.experiments.config import ConfigError
from neuro_pc.experiments.runs import RunFolder, RunFolderError

ROOT = Path(__file__).resolve().parents[2]
FA = str(ROOT / "experiments/fa_digits.toml")
TINY = {"train.epochs": 1, "train.seeds": [0], "train.rules": ["bp"], "angles.samples": 16}
COMPLETE = ["angles.png", "artifacts", "learning_curves.png", "results.json", "summary.txt"]


def strict_json(path: Path):
    """Parse with a strict parser: NaN / Infinity are not JSON."""
    def reject(token):
        raise ValueError(f"{path}: non-standard JSON constant {token}")

    return json.loads(path.read_text(), parse_constant=reject)


def _only_folder(out: Path) -> Path:
    (run_dir,) = out.iterdir()
    return run_dir


# -- concurrent runs --------------------------------------------------------------------------

RUN_ONE = """
import sys
from neuro_pc.experiments import run_experiment
from neuro_pc.experiments.runs import RunFolder

# both processes ask for the same folder name, so one of them must take the next suffix
reserve = RunFolder.reserve.__func__
RunFolder.reserve = classmethod(lambda cls, out, name, stamp=None:
                                reserve(cls, out, name, "20000101-000000"))
run_dir, _ = run_experiment(sys.argv[1], out_dir=sys.argv[2], progress=False,
                            overrides={"train.epochs": 1, "train.seeds": [0],
                                       "train.rules": ["bp"], "angles.samples": 16})
print(run_dir)
"""


def test_two_concurrent_runs_keep_both_folders(tmp_path):
    out = tmp_path / "runs"
    procs = [subprocess.Popen([sys.executable, "-c", RUN_ONE, FA, str(out)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (stdout, stderr) in zip(procs, outputs):
        assert p.returncode == 0, stderr
    dirs = sorted(p.name for p in out.iterdir())
    assert dirs == ["fa_digits-20000101-000000", "fa_digits-20000101-000000-1"]
    assert sorted(Path(o[0].strip()).name for o in outputs) == dirs
    for d in dirs:
        assert sorted(p.name for p in (out / d).iterdir()) == COMPLETE
        res = strict_json(out / d / "results.json")
        assert res["rules"]["bp"]["test_accuracy_mean"] > 0.5


def test_reserving_takes_the_next_free_suffix(tmp_path):
    paths = [RunFolder.reserve(tmp_path, "x", stamp="s").path.name for _ in range(3)]
    assert paths == ["x-s", "x-s-1", "x-s-2"]
    for p in paths:
        assert (tmp_path / p / "INCOMPLETE").read_text().startswith("running: started")


# -- a complete run ---------------------------------------------------------------------------

def test_a_complete_run_has_results_and_no_marker(tmp_path):
    run_dir, outcome = run_experiment(FA, out_dir=tmp_path, progress=False, overrides=TINY)
    assert sorted(p.name for p in run_dir.iterdir()) == COMPLETE     # no temp files, no marker
    res = strict_json(run_dir / "results.json")
    assert res["meta"]["config"]["train"]["epochs"] == 1             # the resolved config
    assert res["meta"]["config"]["experiment"]["name"] == "fa_digits"
    assert (run_dir / "summary.txt").read_text() == outcome.summary + "\n"


def test_zero_epochs_reports_the_untrained_circuit(tmp_path):
    run_dir, outcome = run_experiment(FA, out_dir=tmp_path, progress=False,
                                      overrides={**TINY, "train.epochs": 0})
    bp = strict_json(run_dir / "results.json")["rules"]["bp"]["runs"][0]
    assert bp["curve"] == [] and 0 <= bp["test_accuracy"] < 0.5       # chance-level, untrained


def test_write_run_still_writes_a_whole_folder(tmp_path):
    path = write_run(tmp_path, "x", Outcome(results={"a": 1}, summary="s"))
    assert sorted(p.name for p in path.iterdir()) == ["results.json", "summary.txt"]


# -- checked before training: nothing is written ----------------------------------------------

def test_out_dir_that_is_a_file(tmp_path):
    (tmp_path / "runs").write_text("")
    with pytest.raises(RunFolderError, match="it is a file, not a folder; pass --out"):
        run_experiment(FA, out_dir=tmp_path / "runs", progress=False, overrides=TINY)
    with pytest.raises(RunFolderError, match="cannot create the output folder"):
        run_experiment(FA, out_dir=tmp_path / "runs" / "sub", progress=False, overrides=TINY)
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]


def test_unavailable_backend_is_one_error_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "neuro_pc.backends.lava", None)   # as if lava were absent
    with pytest.raises(ImportError, match="backend 'lava' is not available here"):
        run_experiment(FA, backend="lava", out_dir=tmp_path / "runs", progress=False,
                       overrides=TINY)
    assert not (tmp_path / "runs").exists()


def test_data_dependent_checks_run_before_training(tmp_path):
    spiking = str(ROOT / "experiments/spiking_fa_digits.toml")
    with pytest.raises(ConfigError, match=r"raster.sample: must be a test-set index < 450, "
                                          r"got 10000"):
        run_experiment(spiking, out_dir=tmp_path, progress=False,
                       overrides={"raster.sample": 10000, "train.epochs": 1})
    with pytest.raises(ConfigError, match="data.name: no MNIST data at"):
        run_experiment(FA, out_dir=tmp_path, progress=False,
                       overrides={**TINY, "data.name": f"mnist:{tmp_path}/missing"})
    assert list(tmp_path.iterdir()) == []


# -- failures after training started keep what was computed -----------------------------------

@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # numpy's overflow warnings
def test_a_diverging_rule_keeps_the_finished_rules(tmp_path):
    from neuro_pc.numerics import NonFiniteError

    with pytest.raises(NonFiniteError) as info:
        run_experiment(FA, out_dir=tmp_path, progress=False,
                       overrides={**TINY, "train.rules": ["bp", "fa"], "train.eta.fa": 1e6})
    run_dir = _only_folder(tmp_path)
    assert info.value.run_dir == run_dir
    assert sorted(p.name for p in run_dir.iterdir()) == ["INCOMPLETE", "artifacts", "partial.json"]
    # the finished rule's trained circuit is kept; the diverged one was never saved
    assert [p.name for p in (run_dir / "artifacts").iterdir()] == ["bp-seed0.npz"]
    marker = (run_dir / "INCOMPLETE").read_text()
    assert marker.startswith("failed: started") and "1 entry finished" in marker
    assert "NonFiniteError: training diverged: the weights of projection 'W1'" in marker
    partial = strict_json(run_dir / "partial.json")
    assert (partial["complete"], partial["status"]) == (False, "failed")
    assert "eta=1e+06" in partial["error"]
    (bp,) = partial["finished"]
    assert (bp["rule"], bp["seed"]) == ("bp", 0) and bp["test_accuracy"] > 0.5
    assert bp["artifact"] == "artifacts/bp-seed0.npz"


def test_an_interrupted_run_is_marked_interrupted(tmp_path, monkeypatch):
    import neuro_pc.experiments.compare_rules as cr

    real = cr.bp_angle

    def interrupt_in_fa(circuit, *a):
        if circuit.metadata["rule"] == "fa":
            raise KeyboardInterrupt
        return real(circuit, *a)

    monkeypatch.setattr(cr, "bp_angle", interrupt_in_fa)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(FA, out_dir=tmp_path, progress=False,
                       overrides={**TINY, "train.rules": ["bp", "fa"]})
    run_dir = _only_folder(tmp_path)
    assert (run_dir / "INCOMPLETE").read_text().startswith("interrupted: started")
    partial = strict_json(run_dir / "partial.json")
    assert partial["status"] == "interrupted"
    assert [e["rule"] for e in partial["finished"]] == ["bp"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_rank_collapse_keeps_finished_jobs_when_one_fails(tmp_path):
    from neuro_pc.numerics import NonFiniteError

    with pytest.raises(NonFiniteError, match="learning rate too large"):
        run_experiment(ROOT / "experiments/rank_collapse.toml", out_dir=tmp_path,
                       progress=False,
                       overrides={"data.names": ["digits"], "model.depths": [1],
                                  "train.variants": ["bp", "fa"], "train.seeds": [0],
                                  "train.epochs": {"digits": 1}, "train.eta": {"fa": 1e6},
                                  "record.samples": 32, "run.workers": 2})
    partial = strict_json(_only_folder(tmp_path) / "partial.json")
    assert [(e["variant"], e["dataset"]) for e in partial["finished"]] == [("bp", "digits")]
    assert partial["finished"][0]["test_accuracy"] > 0.5


def test_a_figure_is_written_whole_or_not_at_all(tmp_path):
    """``save_figure`` renders in memory and writes atomically: a figure matplotlib
    cannot render leaves no file and no temporary behind."""
    plt = pytest.importorskip("matplotlib.pyplot")
    from neuro_pc.experiments.runs import save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    out = save_figure(tmp_path / "a.png", fig)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        save_figure(tmp_path / "b.nosuchformat", fig)
    plt.close(fig)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
