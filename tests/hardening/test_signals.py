"""Lava never hangs and never leaves processes behind (issue #12, class 2).

Real subprocesses: ``neuro-pc run <tiny config> --backend lava`` in a new
session; once its Lava workers exist it gets Ctrl-C (SIGINT to the whole
process group, as a terminal sends it), SIGTERM, or SIGKILL; then no process
of that session may remain within ``GONE_S`` seconds. In-process: a
``KeyboardInterrupt`` during ``LavaSimulator.train()``, a ``stop()`` that
hangs, a second Ctrl-C during the cleanup, a Ctrl-C while Lava forks.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytestmark = [pytest.mark.lava, pytest.mark.slow]

pytest.importorskip("neuro_pc.backends.lava", exc_type=ImportError,
                    reason="needs lava-nc 0.10 on Python 3.10 (the lava extra)")

GONE_S = 15.0       # every process of the run must be gone within this
START_S = 90.0      # time allowed until the Lava workers exist
N_WORKERS = 10      # a run of the tiny FA circuit has 12 workers + a shared-memory server

TINY = """
[experiment]
kind = "compare_rules"
name = "tiny"
backend = "lava"
[data]
name = "digits"
[model]
hidden = [16]
act = "tanh"
[train]
rules = ["fa"]
epochs = 3
seeds = [0]
[angles]
samples = 16
[backend.lava]
mode = "train"     # trains on Lava: one run per epoch, ~10 s each
"""


def _procs(pred) -> list[tuple[int, int, str]]:
    """(pid, ppid, state) of every live (non-zombie) process matching pred(pid, ppid, pgrp, sid)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        f = stat[stat.rindex(")") + 2:].split()   # state ppid pgrp session ...
        if f[0] not in "ZX" and pred(int(d), int(f[1]), int(f[2]), int(f[3])):
            out.append((int(d), int(f[1]), f[0]))
    return out


def _cmdline(pid) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def _session(sid):
    return _procs(lambda pid, ppid, pgrp, s: s == sid)


def _wait_until(cond, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


@pytest.fixture
def lava_cli(tmp_path):
    """Start the CLI on a Lava run in a new session; yield (Popen, workers before the
    signal); afterwards kill whatever is left of the session (so a regression fails,
    never hangs or leaks)."""
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    proc = subprocess.Popen(
        [sys.executable, "-m", "neuro_pc.cli", "run", str(cfg), "--backend", "lava",
         "--out", str(tmp_path / "runs"), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        counts = []

        def running():   # the workers exist and have stopped multiplying
            counts.append(len(_session(proc.pid)))
            return proc.poll() is None and counts[-1] > N_WORKERS and counts[-5:] == [counts[-1]] * 5

        assert _wait_until(running, START_S, 0.2), \
            f"the Lava workers never appeared: {proc.communicate(timeout=30)}"
        yield proc, counts[-1] - 1
    finally:
        for pid, _, _ in _session(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def _assert_all_gone(proc):
    assert _wait_until(lambda: not _session(proc.pid), GONE_S), \
        f"still running {GONE_S} s after the signal: {_session(proc.pid)}"


def _assert_interrupted(proc, signame, code):
    out, err = proc.communicate(timeout=GONE_S)
    assert proc.returncode == code, (proc.returncode, err)
    # one line: what happened, then where the finished results are
    lines = err.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(
        rf"neuro-pc: interrupted \({signame}\)(; the finished results are kept in \S+)?",
        lines[0]), err


def test_ctrl_c_to_the_process_group_stops_every_worker(lava_cli):
    proc, workers = lava_cli
    assert workers >= N_WORKERS
    os.killpg(proc.pid, signal.SIGINT)
    _assert_interrupted(proc, "SIGINT", 130)
    _assert_all_gone(proc)


def test_sigterm_to_the_parent_stops_every_worker(lava_cli):
    proc, _ = lava_cli
    os.kill(proc.pid, signal.SIGTERM)
    _assert_interrupted(proc, "SIGTERM", 143)
    _assert_all_gone(proc)


def test_sigkill_of_the_parent_kills_every_worker(lava_cli):
    proc, _ = lava_cli
    workers = _procs(lambda pid, ppid, pgrp, s: ppid == proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=GONE_S)
    _assert_all_gone(proc)
    # none of them lives on re-parented (to PID 1 or anywhere else)
    assert not _procs(lambda pid, ppid, pgrp, s: pid in {w[0] for w in workers})


def test_a_dead_worker_does_not_hang_the_stop(lava_cli):
    """Lava's stop() waits forever for a dead worker: it is skipped, the rest killed."""
    proc, _ = lava_cli
    workers = sorted(pid for pid, _, _ in _procs(lambda pid, ppid, pgrp, s: ppid == proc.pid)
                     if _cmdline(pid) == _cmdline(proc.pid))   # forked, not the resource tracker
    os.kill(workers[-1], signal.SIGKILL)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    _assert_interrupted(proc, "SIGINT", 130)
    _assert_all_gone(proc)


# -- in-process -------------------------------------------------------------------------------
def _my_children():
    """This process's children but multiprocessing's resource tracker (started once per
    process, by the first run that uses shared memory, and meant to outlive it)."""
    me = os.getpid()
    return {pid for pid, _, _ in _procs(lambda pid, ppid, pgrp, s: ppid == me)
            if b"resource_tracker" not in _cmdline(pid)}


def _small_sim():
    from neuro_pc.backends import compile
    from neuro_pc.models import shipped_circuits

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2000, 8))
    return compile(shipped_circuits()["fa"], "lava", seed=0), x, np.eye(4)[rng.integers(0, 4, 2000)]


def test_keyboard_interrupt_in_train_stops_workers_and_keeps_weights():
    assert threading.current_thread() is threading.main_thread()
    sim, x, y = _small_sim()
    w0 = {k: v.copy() for k, v in sim.weights.items()}
    s0 = {k: v.copy() for k, v in sim.state.items()}
    before = _my_children()
    seen = []

    def interrupt():
        if _wait_until(lambda: len(_my_children() - before) > N_WORKERS, START_S, 0.1):
            seen.append(len(_my_children() - before))
            time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=interrupt, daemon=True)
    t.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        sim.train(x, y)          # ~25 s if it were not interrupted
    t.join(timeout=5)
    assert seen and seen[0] > N_WORKERS
    assert time.monotonic() - t0 < 20
    assert _wait_until(lambda: not (_my_children() - before), GONE_S)
    for k in w0:                 # the interrupted run changed nothing
        np.testing.assert_array_equal(sim.weights[k], w0[k])
    for k in s0:
        np.testing.assert_array_equal(sim.state[k], s0[k])
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL   # handlers restored
    sim.train(x[:4], y[:4])      # the simulator still works
    assert not (_my_children() - before)


def _hanging_stop(monkeypatch):
    """Make Lava's stop hang (as it does when a worker is gone); returns (release event,
    names of the run's shared-memory segments, filled when stop is called)."""
    from neuro_pc.backends.lava import lifecycle, simulator

    release, segments = threading.Event(), []

    def stop(net):
        smm = net.anchor.runtime._messaging_infrastructure.smm
        segments.extend(h.name for h in smm._shared_memory_handles)
        release.wait(60)

    monkeypatch.setattr(simulator._Network, "stop", stop)
    monkeypatch.setattr(lifecycle, "STOP_TIMEOUT", 1.0)
    return release, segments


def test_a_hanging_stop_is_abandoned_and_the_workers_killed(monkeypatch):
    release, segments = _hanging_stop(monkeypatch)
    sim, x, y = _small_sim()
    before = _my_children()
    try:
        t0 = time.monotonic()
        with pytest.warns(RuntimeWarning, match="did not finish"):
            out = sim.readouts(x[:4])
        assert out.shape == (4, 4)
        assert time.monotonic() - t0 < 1.0 + GONE_S
        assert not (_my_children() - before)          # killed and reaped before returning
        assert segments and not [n for n in segments if os.path.exists(f"/dev/shm/{n}")]
    finally:
        release.set()


@pytest.mark.filterwarnings("ignore:Lava's stop:RuntimeWarning")
def test_a_second_ctrl_c_waits_for_the_cleanup(monkeypatch):
    """Ctrl-C while the processes are being stopped is held until they are gone."""
    release, segments = _hanging_stop(monkeypatch)
    sim, x, y = _small_sim()
    w0 = {k: v.copy() for k, v in sim.weights.items()}
    before = _my_children()
    t = threading.Thread(daemon=True, target=lambda: _wait_until(lambda: segments, START_S)
                         and os.kill(os.getpid(), signal.SIGINT))
    try:
        t.start()
        with pytest.raises(KeyboardInterrupt):
            sim.train(x[:4], y[:4])
        assert not (_my_children() - before)
        for k in w0:                 # an interrupted read-back/stop changes nothing
            np.testing.assert_array_equal(sim.weights[k], w0[k])
    finally:
        release.set()


def test_a_ctrl_c_during_a_fork_is_not_lost():
    """CPython runs a signal's handler inside os.fork()'s hooks if the signal arrives
    while forking and discards its exception ("Exception ignored in ..."): a Ctrl-C
    while Lava starts its workers was lost. It is sent again after the fork."""
    import multiprocessing as mp

    from neuro_pc.backends.lava.lifecycle import supervised

    fire = []

    def signal_during_fork():
        if fire:
            fire.clear()
            os.kill(os.getpid(), signal.SIGINT)

    os.register_at_fork(after_in_parent=signal_during_fork)   # runs after lifecycle's hooks
    child = mp.get_context("fork").Process(target=time.sleep, args=(30,))
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with supervised(lambda: None):
            fire.append(True)
            child.start()
            time.sleep(5)
    assert time.monotonic() - t0 < 3
    assert child.exitcode is not None         # and the child was killed with the run
