"""Independent jobs in parallel: joblib on this machine, Dask on a cluster.

:func:`run_jobs` runs ``fn(job)`` for every job and hands each outcome to a callback
in the calling process *as soon as that job finishes* (so a caller writes it to disk
then): ``on_done(job, result)`` or ``on_error(job, failure)``. A job that raises does
not stop the others; its :class:`JobFailure` keeps the exception, its type and its
traceback text.

Where the jobs run (docs/scale-out.md):

* ``workers=1``, no scheduler: one after the other in this process;
* ``workers=N``, no scheduler: ``joblib`` with ``N`` worker processes (loky);
* ``scheduler="local"``: a Dask ``LocalCluster`` of ``N`` single-threaded worker
  processes started for the call (and closed after it);
* ``scheduler="tcp://host:port"``: the Dask scheduler of a running cluster
  (``dask scheduler`` / ``dask worker``, or dask-jobqueue on Slurm/PBS).

``isolate=True`` runs each job in a fresh Python process of its own (``python -m
neuro_pc.experiments.jobs``), whatever executes it: Lava fixes the multiprocessing
start method when it is imported and spawns processes of its own, so a Lava run can
live neither in a joblib or Dask worker nor next to another one.

Every job runs with one BLAS thread (``threadpoolctl``), in every mode: the same
job then computes the same numbers serially, on joblib and on Dask, and ``N``
workers do not fight over the cores with ``N`` thread pools.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterable

#: set in a job's process while a job of a sweep runs: nested run_jobs calls (an
#: experiment that runs jobs of its own, e.g. rank_collapse) then run serially
IN_JOB = "NEURO_PC_IN_JOB"


class JobError(RuntimeError):
    """The executor itself failed (a scheduler that cannot be reached, a killed
    worker); the message says which and what to do."""


@dataclass
class JobFailure:
    """A job that raised: ``error`` (``"Type: message"``), the exception itself (when it
    could be carried back) and the traceback text."""

    error: str
    exception: BaseException | None = None
    traceback: str = ""

    def reraise(self):
        if self.exception is not None:
            raise self.exception
        raise JobError(self.error)


def _guarded(fn: Callable, job) -> tuple[bool, Any]:
    """``(True, fn(job))`` or ``(False, JobFailure)``; never raises an Exception."""
    try:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1), _marked():
            return True, fn(job)
    except Exception as exc:   # noqa: BLE001 - one job's error is that job's result
        tb = traceback.format_exc()
        try:
            pickle.dumps(exc)
            carried = exc
        except Exception:   # noqa: BLE001 - an exception that cannot travel
            carried = None
        return False, JobFailure(f"{type(exc).__name__}: {exc}", carried, tb)


@contextlib.contextmanager
def _marked():
    old = os.environ.get(IN_JOB)
    os.environ[IN_JOB] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(IN_JOB, None)
        else:
            os.environ[IN_JOB] = old


def in_subprocess(fn: Callable, job, timeout: float | None = None):
    """``fn(job)`` computed in a fresh ``python -m neuro_pc.experiments.jobs`` process;
    its exception is raised here. ``fn`` and ``job`` travel by pickle."""
    with tempfile.TemporaryDirectory(prefix="neuro_pc_job_") as tmp:
        src, dst = os.path.join(tmp, "job.pkl"), os.path.join(tmp, "result.pkl")
        with open(src, "wb") as fh:
            pickle.dump((fn, job), fh)
        proc = subprocess.run([sys.executable, "-m", "neuro_pc.experiments.jobs", src, dst],
                              capture_output=True, text=True, timeout=timeout)
        if not os.path.exists(dst):
            tail = " | ".join((proc.stderr or proc.stdout or "").strip().splitlines()[-3:])
            raise JobError(f"the job's own process ended with status {proc.returncode} "
                           f"without a result{': ' + tail if tail else ''}")
        with open(dst, "rb") as fh:
            ok, value = pickle.load(fh)
    if ok:
        return value
    value.reraise()


def _isolated(fn):
    import functools

    return functools.partial(in_subprocess, fn)


def run_jobs(fn: Callable, jobs: Iterable, *, workers: int = 1, scheduler: str | None = None,
             isolate: bool = False, on_done: Callable | None = None,
             on_error: Callable | None = None, stop: Callable[[], bool] | None = None) -> None:
    """Run ``fn(job)`` for every job (see the module docstring for where). Each outcome
    reaches ``on_done(job, result)`` or ``on_error(job, JobFailure)`` in this process as
    the job finishes. ``stop()`` (checked after each job) true: start no more jobs and
    return once the running ones are recorded (joblib and Dask) or at once (serial).
    ``fn`` must be picklable (a module-level function, or a ``functools.partial`` of
    one) unless the jobs run serially in this process."""
    jobs = list(jobs)
    if int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if os.environ.get(IN_JOB):   # a job of a sweep: no pool inside a pool
        workers, scheduler = 1, None
    call = _isolated(fn) if isolate else fn
    done = on_done or (lambda job, result: None)
    failed = on_error or (lambda job, failure: failure.reraise())
    if not jobs:
        return
    if scheduler is None and (workers == 1 or len(jobs) == 1):
        for job in jobs:
            ok, value = _guarded(call, job)
            (done if ok else failed)(job, value)
            if stop is not None and stop():
                return
        return
    if scheduler is None:
        _joblib(call, jobs, int(workers), done, failed, stop)
    else:
        _dask(call, jobs, int(workers), scheduler, done, failed, stop)


def _joblib(call, jobs, workers, done, failed, stop) -> None:
    from joblib import Parallel, delayed

    results = Parallel(n_jobs=min(workers, len(jobs)), backend="loky",
                       return_as="generator_unordered")(
        delayed(_tagged)(call, k, job) for k, job in enumerate(jobs))
    try:
        for k, ok, value in results:
            (done if ok else failed)(jobs[k], value)
            if stop is not None and stop():
                break
    except Exception as exc:   # a worker died (killed, out of memory): not a job's error
        from joblib.externals.loky.process_executor import TerminatedWorkerError

        if isinstance(exc, TerminatedWorkerError):
            raise JobError(f"a joblib worker process died ({exc.__class__.__name__}); the "
                           "jobs finished so far were recorded") from None
        raise


def _tagged(call, k, job):
    ok, value = _guarded(call, job)
    return k, ok, value


def _dask(call, jobs, workers, scheduler, done, failed, stop) -> None:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ImportError("--scheduler needs Dask: pip install 'neuro-pc[dask]' (dask and "
                          "distributed)") from None
    import logging

    cluster = None
    try:
        if scheduler == "local":
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(cluster)
        else:
            try:
                client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise JobError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); start "
                               "one (dask scheduler, then dask worker "
                               f"{scheduler}) or use --scheduler local") from None
        with client:
            futures = {client.submit(_tagged, call, k, job, pure=False): k
                       for k, job in enumerate(jobs)}
            pending = set(futures)
            try:
                for fut in as_completed(list(futures)):
                    pending.discard(fut)
                    k = futures[fut]
                    try:
                        _, ok, value = fut.result()
                    except Exception as exc:   # noqa: BLE001 - e.g. KilledWorker
                        ok, value = False, JobFailure(
                            f"{type(exc).__name__}: {exc} (the Dask worker running it died)")
                    (done if ok else failed)(jobs[k], value)
                    if stop is not None and stop():
                        client.cancel(list(pending))
                        break
            except BaseException:
                client.cancel(list(pending))
                raise
    finally:
        if cluster is not None:
            cluster.close()


def _main(argv=None) -> int:
    """``python -m neuro_pc.experiments.jobs JOB.pkl RESULT.pkl``: one isolated job."""
    src, dst = (argv if argv is not None else sys.argv[1:])
    with open(src, "rb") as fh:
        fn, job = pickle.load(fh)
    result = _guarded(fn, job)
    tmp = dst + ".tmp"
    try:
        with open(tmp, "wb") as fh:
            pickle.dump(result, fh)
    except Exception as exc:   # noqa: BLE001 - a result that cannot be pickled
        with open(tmp, "wb") as fh:
            pickle.dump((False, JobFailure(f"the job's result cannot be sent back: {exc}")), fh)
    os.replace(tmp, dst)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
