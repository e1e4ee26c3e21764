"""Hardening (issue 12), class 7: the CLI always ends with one clear line.

Every bad input gives ``neuro-pc: error: <what, where, what to do>`` on stderr
and exit status 1 (errors) or 2 (usage), never a traceback (unless --debug);
Ctrl-C gives ``neuro-pc: interrupted`` and 130.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neuro_pc.cli as cli
from neuro_pc.backends import compile
from neuro_pc.models import mlp

ROOT = Path(__file__).resolve().parents[2]
FA = str(ROOT / "experiments/fa_digits.toml")
NEURO_PC = Path(sys.executable).parent / "neuro-pc"
TINY = ["--set", "train.epochs=1", "--set", "train.seeds=[0]", "--set", 'train.rules=["bp"]',
        "--set", "angles.samples=16", "--no-progress"]


def run_cli(capsys, *argv, code: int = 1) -> str:
    """Run ``neuro-pc argv`` in-process; check the exit status and that stderr ends
    with ONE error line and holds no traceback; return that line."""
    assert cli.main([str(a) for a in argv]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    if code == 1:
        assert len(lines) == 1, err
    assert lines[-1].startswith("neuro-pc: error: ")
    return lines[-1]


@pytest.fixture
def artifact(tmp_path):
    path = tmp_path / "good.npz"
    compile(mlp([4, 3, 2]), seed=0).save(path)
    return path


# -- files that are not what they should be ------------------------------------------------------

def test_corrupt_npz(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"\x00garbage")
    line = run_cli(capsys, "check", bad)
    assert f"{bad} is not a neuro_pc artifact" in line and "not a zip archive" in line


def test_truncated_npz(tmp_path, artifact, capsys):
    cut = tmp_path / "cut.npz"
    cut.write_bytes(artifact.read_bytes()[:300])
    line = run_cli(capsys, "locality", cut)
    assert f"{cut} is not a neuro_pc artifact" in line and "truncated" in line


def test_npz_that_is_not_an_artifact(tmp_path, capsys):
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros(3))
    line = run_cli(capsys, "locality", other)
    assert "it has no circuit.json or metadata.json entry (entries: weights)" in line


def test_folder_where_a_file_is_expected(tmp_path, capsys):
    (tmp_path / "model.npz").mkdir()
    line = run_cli(capsys, "locality", tmp_path / "model.npz")
    assert f"{tmp_path / 'model.npz'} is a folder" in line
    line = run_cli(capsys, "run", tmp_path, "--out", tmp_path / "runs")
    assert f"{tmp_path}: is a folder, not an experiment config" in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("text, message", [
    ("{bad", "is not valid JSON (Expecting property name enclosed in double quotes at line 1, "
             "column 2)"),
    ("[1, 2]", "holds a JSON list, not a circuit"),
    ('{"name": "x"}', "is not a circuit: field 'populations' is missing"),
    ('{"name": "x", "populations": [{"bogus": 1}], "projections": [], "schedule": {}}',
     "is not a circuit: "),
    (b"\xff\xfe\x00", "is not UTF-8 text"),
])
def test_malformed_circuit_json(tmp_path, capsys, text, message):
    path = tmp_path / "c.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    line = run_cli(capsys, "check", path)
    assert f"{path} {message}" in line


def test_circuit_json_that_does_not_validate(tmp_path, capsys):
    data = json.loads(mlp([4, 3, 2]).to_json())
    data["projections"][0]["target"] = "nowhere"
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))
    assert run_cli(capsys, "locality", path).startswith(f"neuro-pc: error: {path}: ")


def test_toml_syntax_error_and_unknown_kind(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[experiment\nkind = 1\n")
    line = run_cli(capsys, "run", bad)
    assert f"{bad}: not valid TOML: " in line and "line 1" in line
    bad.write_text('[experiment]\nkind = "nope"\n')
    for cmd in ("run", "locality", "check"):
        line = run_cli(capsys, cmd, bad)
        assert ("[experiment] kind = 'nope' is not a known kind; known kinds: cnn_depth, "
                "compare_rules") in line


def test_missing_files(tmp_path, capsys):
    assert "no experiment config at" in run_cli(capsys, "run", tmp_path / "nope.toml")
    assert "nope.npz: no such file" in run_cli(capsys, "check", tmp_path / "nope.npz")
    txt = tmp_path / "x.txt"
    txt.write_text("")
    assert f"{txt}: unknown file type '.txt'" in run_cli(capsys, "locality", txt)


def test_bad_gz_data_file(tmp_path, capsys):
    idx = tmp_path / "mnist"
    idx.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (idx / f"{name}.gz").write_bytes(b"\x1f\x8b\x08\x00truncated")
    line = run_cli(capsys, "run", FA, "--out", tmp_path / "runs", "--set",
                   f"data.name=mnist:{idx}", *TINY)
    assert "train-images-idx3-ubyte.gz is not a readable gzip file" in line
    assert not (tmp_path / "runs").exists()     # found before training: nothing written


def test_config_errors(tmp_path, capsys):
    line = run_cli(capsys, "run", FA, "--set", "train.epochs=-1", "--out", tmp_path)
    assert line.endswith("train.epochs: must be an integer >= 0, got -1")
    line = run_cli(capsys, "run", FA, "--set", "train.epoch=2", "--out", tmp_path)
    assert "train.epoch: unknown key; did you mean 'train.epochs'?" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # numpy's overflow warnings
def test_a_diverging_run_says_where_the_finished_results_are(tmp_path, capsys):
    line = run_cli(capsys, "run", FA, "--out", tmp_path, *TINY, "--set",
                   'train.rules=["bp","fa"]', "--set", "train.eta.fa=1e6")
    (run_dir,) = tmp_path.iterdir()
    assert "training diverged: the weights of projection 'W1'" in line
    assert "learning rate too large? eta=1e+06" in line
    assert line.endswith(f"the finished results are kept in {run_dir}/ (marked INCOMPLETE)")


# -- usage errors (2) -----------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["frob"], "invalid choice: 'frob'"),
    (["run"], "the following arguments are required: config"),
    (["run", FA, "--backend", "loihi"], "argument --backend: invalid choice: 'loihi'"),
    (["run", FA, "--set", "train.epochs"], "--set 'train.epochs': write --set SECTION.KEY=VALUE"),
    (["check", FA, "--target", "truenorth"], "--target: unknown hardware target 'truenorth'"),
])
def test_usage_errors_exit_2(capsys, argv, message):
    assert message in run_cli(capsys, *argv, code=2)


def test_help_documents_the_exit_codes(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "exit status: 0 success; 1 error" in out and "2 usage" in out and "130" in out


# -- unexpected errors, --debug, Ctrl-C ----------------------------------------------------------------

def _boom(exc):
    def cmd(args):
        raise exc
    return cmd


def test_unexpected_exception_is_one_line_with_a_hint(capsys, monkeypatch):
    monkeypatch.setattr(cli, "_cmd_locality", _boom(ZeroDivisionError("boom")))
    line = run_cli(capsys, "locality", FA)
    assert line == ("neuro-pc: error: unexpected ZeroDivisionError: boom (rerun with --debug "
                    "for the traceback)")


def test_a_multi_line_message_keeps_its_first_line(capsys, monkeypatch):
    monkeypatch.setattr(cli, "_cmd_locality", _boom(RuntimeError("the Lava run failed\ndetail")))
    line = run_cli(capsys, "locality", FA)
    assert line == ("neuro-pc: error: the Lava run failed [...; rerun with --debug for the "
                    "whole message]")


@pytest.mark.parametrize("argv", [["--debug", "locality", FA], ["locality", FA, "--debug"]])
def test_debug_shows_the_traceback(capsys, monkeypatch, argv):
    monkeypatch.setattr(cli, "_cmd_locality", _boom(ZeroDivisionError("boom")))
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last)")
    assert err.strip().splitlines()[-1].startswith("neuro-pc: error: unexpected "
                                                   "ZeroDivisionError: boom")


def test_keyboard_interrupt_exits_130(capsys, monkeypatch):
    monkeypatch.setattr(cli, "_cmd_run", _boom(KeyboardInterrupt()))
    assert cli.main(["run", FA]) == 130
    assert capsys.readouterr().err == "neuro-pc: interrupted (SIGINT)\n"


# -- the installed command, in a process of its own ---------------------------------------------------

def test_installed_command_never_prints_a_traceback(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    toml = tmp_path / "bad.toml"
    toml.write_text("[experiment]\nkind = 'compare_rules'\n[train]\nepochs = -3\n")
    for argv, code, message in [
            (["check", str(bad)], 1, f"neuro-pc: error: {bad} is not a neuro_pc artifact"),
            (["run", str(toml), "--out", str(tmp_path / "runs")], 1,
             f"neuro-pc: error: {toml}: train.epochs: must be an integer >= 0, got -3"),
            (["run", FA, "--set", "nokey"], 2, "neuro-pc: error: --set 'nokey'")]:
        proc = subprocess.run([str(NEURO_PC), *argv], capture_output=True, text=True,
                              cwd=ROOT, timeout=120)
        assert proc.returncode == code, proc.stderr
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(message), proc.stderr
    assert not (tmp_path / "runs").exists()
