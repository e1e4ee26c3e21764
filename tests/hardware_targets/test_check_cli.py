"""``neuro-pc check``: three tables, JSON, the cpu target, a circuit that does not fit."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardware_targets.check import check_report, format_check
from neuro_pc.cli import main
from neuro_pc.ir import Circuit, Init, Population, Projection, Rule, Schedule

FA_DIGITS = str(Path(__file__).resolve().parents[2] / "experiments" / "fa_digits.toml")


@pytest.fixture(scope="module")
def loihi_json(tmp_path_factory):
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        # --no-execute: the tables without running each rule on Lava (~45 s);
        # tests/experiments/test_onchip_experiment.py checks the execution
        assert main(["check", FA_DIGITS, "--target", "loihi2", "--json", "--no-execute"]) == 0
    return json.loads(buf.getvalue())


def test_check_prints_three_tables(capsys):
    assert main(["check", FA_DIGITS, "--target", "loihi2", "--no-execute"]) == 0
    out = capsys.readouterr().out
    for rule in ("bp", "fa", "dfa", "pc"):
        assert f"== {rule}  (target loihi2)" in out
    assert out.count("-- locality") == 4
    assert out.count("-- expressibility on loihi2") == 4
    assert out.count("-- resources on loihi2\n") == 4
    assert out.count("-- resources on loihi2 with the learning blocks") == 4
    assert "no: weight transport" in out
    assert "Loihi3FLearningRule(dw='" in out
    assert "4 core(s) on 1 chip(s)" in out


def test_check_json(loihi_json):
    assert set(loihi_json) == {"bp", "fa", "dfa", "pc"}
    for name, rep in loihi_json.items():
        assert {"locality", "expressibility", "resources"} <= set(rep)
        for e in rep["expressibility"]:     # --no-execute: compiled, not run
            assert not e["expressible"] or (e["executed"] is None
                                            and e["executed_note"] == "--no-execute")
        assert rep["resources"]["fits"] is True
    for family in ("fa", "dfa"):
        # the shipped tanh MLP: W2's pre activity is signed; the others compile
        got = {e["projection"]: e for e in loihi_json[family]["expressibility"]}
        assert not got["W2"]["expressible"] and "can be negative" in got["W2"]["reasons"][0]
        for name in ("W1", "b1", "b2"):
            e = got[name]
            assert e["expressible"] and e["kind"] == "three-factor"
            assert e["traces"]["post.delta"].startswith("y2 = relu(delta) x ")
    bp = {e["projection"]: e for e in loihi_json["bp"]["expressibility"]}
    assert not bp["W1"]["expressible"]
    assert bp["W1"]["reasons"][0].startswith("weight transport")
    # 64-128-10: h1 has 64 + 1 + 10 synapses per neuron, out 128 + 1
    res = loihi_json["fa"]["resources"]
    assert res["n_synapses"] == 128 * 75 + 10 * 129 and res["n_chips"] == 1


def test_check_cpu(capsys):
    assert main(["check", FA_DIGITS, "--target", "cpu", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    for r in rep.values():
        assert all(e["expressible"] for e in r["expressibility"])
        assert r["resources"]["n_cores"] is None


def test_unknown_target_is_a_clear_error(capsys):
    assert main(["check", FA_DIGITS, "--target", "truenorth"]) == 2
    assert "unknown hardware target 'truenorth'" in capsys.readouterr().err


def test_population_that_does_not_fit():
    # one neuron with fan-in 131073 > 131072 8-bit synapses in 128 KB
    pops = (Population("x", 131073, ("r",), streams={"r": "x"}, model="input"),
            Population("h", 1, ("r", "e"), ports=("ff",), update=("r = ff", "e = r")))
    projs = (Projection("W", "x", "h", "ff", init=Init("uniform", 0.01),
                        rule=Rule("dw = eta * post.e * pre.r", {"eta": 0.01})),)
    c = Circuit("wide", pops, projs, Schedule(window=3), streams={"x": 131073})
    rep = check_report(c, "loihi2")
    assert rep["resources"]["fits"] is False
    assert rep["resources"]["population"] == "h"
    text = format_check(rep)
    assert "does not fit: population 'h' cannot be mapped" in text
    assert "does NOT fit" in text
    json.dumps(rep)
