"""Issue 19: run_jobs, the engine under neuro-pc sweep and rank_collapse: every outcome
reaches the caller, a failing job does not stop the others, isolate runs each job in a
process of its own, stop() stops. The functions are the standard library's, so that
every executor can pickle them by reference."""
import math
import os

import pytest

from neuro_pc.experiments.jobs import IN_JOB, run_jobs

JOBS = [4.0, -1.0, 9.0, 16.0]


def _collect(**kw):
    done, failed = {}, {}
    run_jobs(math.sqrt, JOBS, on_done=done.__setitem__, on_error=failed.__setitem__, **kw)
    return done, failed


@pytest.mark.parametrize("workers", [1, 2])
def test_every_outcome_reaches_the_caller_and_a_failure_stops_nothing(workers):
    done, failed = _collect(workers=workers)
    assert done == {4.0: 2.0, 9.0: 3.0, 16.0: 4.0}
    assert list(failed) == [-1.0]
    f = failed[-1.0]
    assert f.error == "ValueError: math domain error"
    assert isinstance(f.exception, ValueError) and "Traceback" in f.traceback
    with pytest.raises(ValueError, match="math domain"):
        f.reraise()


def test_without_on_error_a_failure_is_raised():
    with pytest.raises(ValueError, match="math domain"):
        run_jobs(math.sqrt, [-1.0])


def test_stop_starts_no_more_jobs():
    seen = []
    run_jobs(math.sqrt, JOBS, on_done=lambda j, r: seen.append(j),
             on_error=lambda j, f: seen.append(j), stop=lambda: len(seen) >= 2)
    assert seen == [4.0, -1.0]


def test_isolate_runs_each_job_in_a_process_of_its_own():
    pids = []
    run_jobs(os.readlink, ["/proc/self", "/proc/self"], isolate=True,
             on_done=lambda j, r: pids.append(int(r)))
    assert len(set(pids)) == 2 and os.getpid() not in pids


def test_a_job_is_marked_while_it_runs():
    """The marker nested run_jobs calls read (a sweep's job of rank_collapse then runs
    its own jobs serially), set during the job only."""
    got = []
    run_jobs(os.environ.get, [IN_JOB], on_done=lambda j, r: got.append(r))
    assert got == ["1"] and IN_JOB not in os.environ


def test_workers_below_one_is_an_error():
    with pytest.raises(ValueError, match="workers must be >= 1"):
        run_jobs(math.sqrt, JOBS, workers=0)
