"""Issue 19: neuro-pc sweep: every (grid point, seed) a job, on joblib, on a Dask
LocalCluster and serially with the same numbers; each job written as it finishes; a
failing job does not take the others with it; an interrupted sweep resumes."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neuro_pc.cli import main
from neuro_pc.experiments import compare_rules
from neuro_pc.experiments.sweep import (JOBS, SweepError, job_id, parse_grid, parse_seeds,
                                        run_sweep)

ROOT = Path(__file__).resolve().parents[2]
#: fa_digits, one rule, one epoch, 16 hidden units: ~0.3 s a job
TINY = {"train.epochs": 1, "train.rules": ["fa"], "model.hidden": [16], "angles.samples": 16}
TINY_ARGS = ["--set", "train.epochs=1", "--set", 'train.rules=["fa"]', "--set",
             "model.hidden=[16]", "--set", "angles.samples=16", "--no-progress"]


def _metrics(folder: Path) -> dict:
    return {p.stem: json.loads(p.read_text())["metrics"]
            for p in sorted((folder / JOBS).glob("*.json"))}


def _sweep(tmp_path, **kw):
    kw = {"grid": {"train.eta": [0.01, 0.03]}, "seeds": [0, 1], "overrides": TINY,
          "out_dir": tmp_path, "progress": False, **kw}
    return run_sweep("fa_digits", **kw)


# ----------------------------------------------------------------------------- parsing
def test_grid_and_seed_specs():
    assert parse_grid(["train.eta=0.005,0.01,0.02", "model.hidden=[64],[32, 32]",
                       "model.act=tanh,relu"]) == {
        "train.eta": [0.005, 0.01, 0.02], "model.hidden": [[64], [32, 32]],
        "model.act": ["tanh", "relu"]}
    assert parse_seeds("0-9") == list(range(10))
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]
    assert job_id({"train.eta": 0.005, "model.hidden": [64]}, 3) == \
        "train.eta=0.005_model.hidden=_64_-seed3"


@pytest.mark.parametrize("items, message", [
    (["train.eta"], "write --grid SECTION.KEY=V1,V2"),
    (["train.eta="], "an empty value"),
    (["train.eta=0.1,,0.2"], "an empty value"),
    (["train.eta=0.1,0.1"], "lists 0.1 more than once"),
    (["train.eta=0.1", "train.eta=0.2"], "is given twice"),
    (["train.seeds=[1],[2]"], "give the seeds with --seeds"),
])
def test_bad_grid_specs_say_the_form(items, message):
    with pytest.raises(ValueError, match=message):
        parse_grid(items)


@pytest.mark.parametrize("text, message", [
    ("a", "'a' is not a seed or a range"), ("-1", "not a seed"), ("5-2", "runs backwards"),
    ("0-3,2", r"lists seed\(s\) \[2\] more than once")])
def test_bad_seed_specs_say_the_form(text, message):
    with pytest.raises(ValueError, match=message):
        parse_seeds(text)


def test_cli_errors_are_one_line_before_anything_runs(tmp_path, capsys):
    def run(*args):
        code = main(["sweep", *map(str, args), "--out", str(tmp_path)])
        return code, capsys.readouterr().err.strip().splitlines()

    code, err = run("fa_digits", "--grid", "train.eta", "--seeds", "0")
    assert code == 2 and err[-1].startswith("neuro-pc: error: --grid 'train.eta': write")
    code, err = run("fa_digits", "--grid", "train.eta=0.01", "--seeds", "0-x")
    assert code == 2 and "--seeds '0-x'" in err[-1]
    code, err = run("fa_digits", "--grid", "train.eta=0.01")
    assert code == 2 and "--seeds is required" in err[-1]
    code, err = run("fa_digits", "--grid", "train.eta=0.01", "--seeds", "0", "--scheduler",
                    "dask://x")
    assert code == 2 and "use local" in err[-1] and "tcp://HOST:PORT" in err[-1]
    code, err = run("fa_digits", "--grid", "train.etta=0.01,0.02", "--seeds", "0")
    assert code == 1 and len(err) == 1
    assert "(with --grid train.etta=0.01): train.etta: unknown key; did you mean " \
           "'train.eta'?" in err[0]
    code, err = run("fa_digits", "--grid", "train.epochs=1,-1", "--seeds", "0")
    assert code == 1 and "(with --grid train.epochs=-1): train.epochs: must be an integer " \
                         ">= 0, got -1" in err[0]
    assert list(tmp_path.iterdir()) == []   # nothing was written


# ----------------------------------------------------------------------------- running
def test_joblib_runs_every_job_and_tabulates(tmp_path):
    folder, outcome = _sweep(tmp_path, jobs=2)
    jobs = _metrics(folder)
    assert sorted(jobs) == ["train.eta=0.01-seed0", "train.eta=0.01-seed1",
                            "train.eta=0.03-seed0", "train.eta=0.03-seed1"]
    res = json.loads((folder / "results.json").read_text())
    assert res["complete"] and res["meta"]["scheduler"] == "joblib"
    (p1, p3) = res["points"]
    acc = p1["metrics"]["rules.fa.test_accuracy"]
    assert acc["n"] == 2 and acc["values"] == [jobs["train.eta=0.01-seed0"][
        "rules.fa.test_accuracy"], jobs["train.eta=0.01-seed1"]["rules.fa.test_accuracy"]]
    assert "0.03" in outcome.summary and "±" in outcome.summary
    assert (folder / "sweep.png").stat().st_size > 1000
    assert not (folder / "INCOMPLETE").exists()
    assert sorted(p.name for p in (folder / "artifacts").iterdir()) == sorted(jobs)
    assert not list(folder.rglob("*.tmp"))
    # each job is the experiment with the grid point and the seed set: eta reached FA
    rec = json.loads((folder / JOBS / "train.eta=0.03-seed1.json").read_text())
    assert rec["results"]["seeds"] == [1] and rec["point"] == {"train.eta": 0.03}
    from neuro_pc.ir import load_artifact

    art = load_artifact(folder / "artifacts/train.eta=0.03-seed1/fa-seed1.npz")
    assert art.circuit.projection("W1").rule.params["eta"] == 0.03


def test_serial_and_joblib_give_the_same_numbers(tmp_path):
    a, _ = _sweep(tmp_path / "serial", jobs=1)
    b, _ = _sweep(tmp_path / "joblib", jobs=2)
    assert _metrics(a) == _metrics(b)


@pytest.mark.slow
def test_a_dask_local_cluster_gives_the_same_numbers(tmp_path):
    pytest.importorskip("dask.distributed", reason="the dask extra is not installed")
    a, _ = _sweep(tmp_path / "joblib", jobs=2)
    b, _ = _sweep(tmp_path / "dask", jobs=2, scheduler="local")
    assert _metrics(a) == _metrics(b)
    res = json.loads((b / "results.json").read_text())
    assert res["meta"]["scheduler"] == "local" and res["complete"]
    hosts_pids = {(json.loads(p.read_text())["host"], json.loads(p.read_text())["pid"])
                  for p in (b / JOBS).glob("*.json")}
    assert len(hosts_pids) == 2 and os.getpid() not in {pid for _, pid in hosts_pids}


def test_a_failing_job_does_not_take_the_others_down(tmp_path, capsys):
    code = main(["sweep", "fa_digits", "--grid", "train.eta=0.01,1e6", "--seeds", "0-1",
                 "--jobs", "2", "--out", str(tmp_path), *TINY_ARGS])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("neuro-pc: error: 2 of 4 jobs failed (first: train.eta=1e+06")
    assert "learning rate too large" in err[-1] and "--resume" in err[-1]
    (folder,) = tmp_path.iterdir()
    assert sorted(_metrics(folder)) == ["train.eta=0.01-seed0", "train.eta=0.01-seed1"]
    assert len(list((folder / JOBS).glob("*.error.txt"))) == 2
    assert (folder / "INCOMPLETE").read_text().startswith("failed: 2 of 4 jobs failed")
    res = json.loads((folder / "results.json").read_text())
    assert not res["complete"] and set(res["failed"]) == {"train.eta=1e+06-seed0",
                                                           "train.eta=1e+06-seed1"}
    assert "failed jobs:" in (folder / "summary.txt").read_text()


def test_an_interrupted_sweep_resumes_with_the_jobs_left(tmp_path, monkeypatch):
    full, _ = _sweep(tmp_path / "full")
    calls = []
    real = compare_rules.run

    def interrupted_at_the_third(cfg, **kw):
        calls.append((cfg.train.eta, cfg.train.seeds))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(cfg, **kw)

    monkeypatch.setattr(compare_rules, "run", interrupted_at_the_third)
    with pytest.raises(KeyboardInterrupt) as exc:
        _sweep(tmp_path / "cut")
    folder = exc.value.run_dir
    assert len(_metrics(folder)) == 2
    assert (folder / "INCOMPLETE").read_text().startswith("interrupted: 2 of 4 jobs finished")
    assert not (folder / "results.json").exists()
    monkeypatch.setattr(compare_rules, "run", real)
    ran = []
    monkeypatch.setattr(compare_rules, "run", lambda cfg, **kw: ran.append(1) or real(cfg, **kw))
    folder2, _ = run_sweep(resume=folder, progress=False)
    assert folder2 == folder and len(ran) == 2          # only the two jobs left
    assert not (folder / "INCOMPLETE").exists()
    assert _metrics(folder) == _metrics(full)
    with pytest.raises(ValueError, match=r"not the sweep's \(seeds: \[0, 1, 2\] here"):
        run_sweep("fa_digits", seeds=[0, 1, 2], resume=folder)


def test_a_resume_reruns_the_failed_jobs(tmp_path, monkeypatch):
    real = compare_rules.run
    state = {"broken": True}

    def flaky(cfg, **kw):
        if state["broken"] and cfg.train.seeds == [1]:
            raise OSError(28, "No space left on device")
        return real(cfg, **kw)

    monkeypatch.setattr(compare_rules, "run", flaky)
    with pytest.raises(SweepError, match="2 of 4 jobs failed") as exc:
        _sweep(tmp_path)
    folder = exc.value.run_dir
    assert len(_metrics(folder)) == 2
    state["broken"] = False
    run_sweep(resume=folder, progress=False)
    assert len(_metrics(folder)) == 4 and not list((folder / JOBS).glob("*.error.txt"))
    assert json.loads((folder / "results.json").read_text())["complete"]


@pytest.mark.slow
def test_ctrl_c_on_a_joblib_sweep_keeps_the_finished_jobs_and_resumes(tmp_path):
    """A real SIGINT to `neuro-pc sweep --jobs 2` once two jobs are written: exit 130,
    the folder marked interrupted; --resume finishes it with the numbers of a sweep
    that was never interrupted."""
    args = ["sweep", "fa_digits", "--grid", "train.eta=0.01,0.02", "--seeds", "0-2",
            "--set", "train.epochs=3", "--set", 'train.rules=["fa"]', "--set",
            "model.hidden=[32]", "--set", "angles.samples=16", "--no-progress", "--jobs", "2"]
    cli = [sys.executable, "-m", "neuro_pc.cli"]
    proc = subprocess.Popen([*cli, *args, "--out", str(tmp_path / "cut")], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    folder = None
    while time.time() < deadline:
        found = list((tmp_path / "cut").glob("*/jobs/*.json"))
        if len(found) >= 2:
            folder = found[0].parents[1]
            break
        time.sleep(0.2)
    assert folder is not None, proc.communicate(timeout=60)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted (SIGINT); the finished results are kept in" in err
    assert f"--resume {folder}" in err
    assert (folder / "INCOMPLETE").read_text().startswith("interrupted:")
    finished = len(_metrics(folder))
    assert 2 <= finished < 6     # 2 written, at most 2 running: 2 never started
    r = subprocess.run([*cli, "sweep", "--resume", str(folder), "--jobs", "2",
                        "--no-progress"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert len(_metrics(folder)) == 6 and not (folder / "INCOMPLETE").exists()
    serial = subprocess.run([*cli, *args[:-2], "--out", str(tmp_path / "serial")], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert serial.returncode == 0, serial.stderr
    (other,) = (tmp_path / "serial").iterdir()
    assert _metrics(other) == _metrics(folder)


@pytest.mark.slow
@pytest.mark.lava
def test_lava_jobs_run_each_in_a_process_of_their_own(tmp_path):
    pytest.importorskip("neuro_pc.backends.lava", exc_type=ImportError,
                        reason="lava-nc (Python 3.10) is not installed")
    folder, _ = _sweep(tmp_path, backend="lava", jobs=2, seeds=[0],
                       overrides={**TINY, "model.hidden": [8],
                                  "backend.lava.tags": ["floating_pt"]})
    recs = [json.loads(p.read_text()) for p in (folder / JOBS).glob("*.json")]
    assert len(recs) == 2
    pids = {r["pid"] for r in recs}
    assert len(pids) == 2 and os.getpid() not in pids
    assert all(r["metrics"]["rules.fa.lava_floating_pt_accuracy"] > 0.3 for r in recs)
