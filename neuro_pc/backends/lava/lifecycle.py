"""Every OS process a Lava run starts ends with the run: on success, on failure,
on Ctrl-C, on SIGTERM and when the parent process dies.

Lava 0.10 (``Loihi2SimCfg``) forks one OS process per Lava process, a
runtime service and a ``SharedMemoryManager`` server, all from the thread
that calls ``run()``. Left alone:

* Ctrl-C in a terminal sends SIGINT to the whole process group: every worker
  dies of ``KeyboardInterrupt`` (one traceback each) and the parent's
  ``stop()`` then waits forever for a runtime service that is gone;
* SIGTERM or SIGKILL of the parent leaves every worker (~110 MB each) running
  forever under PID 1.

:func:`supervised` wraps one run:

* children forked during the run (from the thread that entered it) ignore
  SIGINT, so a terminal's Ctrl-C reaches only the parent, which stops them;
  and they get ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (Linux), so the kernel
  kills them if the parent dies, however it dies. (PDEATHSIG fires when the
  *forking thread* ends; Lava forks from the thread inside ``run()``, which
  lives until the run is over.) A child whose parent died between the fork
  and the ``prctl`` exits at once;
* in the main thread, SIGTERM raises :class:`Interrupted` (a
  ``KeyboardInterrupt``) for the duration of the run, so it unwinds like
  Ctrl-C, unless a SIGTERM handler is already installed;
* on the way out the stop is bounded: Lava's own ``stop()`` runs in a thread
  for at most ``timeout`` seconds (and not at all if a child of the run has
  already died or the run never started, since it would then wait forever); if it does not finish,
  the run's shared memory is released and every remaining child of the run
  is killed (SIGKILL) and reaped. SIGINT/SIGTERM arriving during this
  cleanup are held and delivered after it;
* a signal that arrives while Lava forks a worker is held and sent again
  just after the fork (CPython would run the handler inside the at-fork
  hooks and discard its exception: the Ctrl-C would be lost).

Import only through the Lava backend (Linux/Python 3.10); the module itself
imports no Lava code.
"""
from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import warnings

#: seconds Lava's own stop() may take before the run's processes are killed
STOP_TIMEOUT = 5.0
#: seconds to wait for killed processes to be reaped
KILL_TIMEOUT = 5.0

_PR_SET_PDEATHSIG = 1


class Interrupted(KeyboardInterrupt):
    """A Lava run was interrupted by a signal (SIGTERM during a run; see
    :func:`supervised`). ``signum`` is the signal number; a plain Ctrl-C is
    Python's own ``KeyboardInterrupt``."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


# -- children forked during a run --------------------------------------------------------
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") \
        else None
except (OSError, AttributeError):   # pragma: no cover - no libc prctl
    _prctl = None

_armed_thread: int | None = None   # ident of the thread running a supervised run
_supervisor: int | None = None     # pid of the process running it
_fork_parent: int | None = None    # set just before a fork from that thread
_forking = False                   # inside os.fork() and its hooks, in that thread
_deferred: set[int] = set()        # signals held meanwhile (see _deferring)
_held: list[int] | None = None     # signals held while the run's processes are stopped


def _before_fork() -> None:
    global _fork_parent, _forking
    if _armed_thread == threading.get_ident():
        _forking = True
        _fork_parent = os.getpid()
    else:
        _fork_parent = None


def _after_fork_in_parent() -> None:
    global _forking
    _forking = False


def _after_fork_in_child() -> None:
    global _forking
    if _fork_parent is not None:   # a worker of a supervised run
        # the parent stops its workers itself: a terminal's Ctrl-C is for it alone,
        # and the parent's SIGTERM handler is not for them
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != _fork_parent:   # the parent died before prctl took effect
            os._exit(1)
    _forking = False
    _deferred.clear()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                    after_in_child=_after_fork_in_child)


# -- signals in the parent ------------------------------------------------------------------
def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def _redeliver(stop: threading.Event) -> None:
    """Until ``stop``: every 50 ms, send the signals held during a fork again
    (a thread: nothing in the fork hooks may wait or lock)."""
    while not stop.wait(0.05):
        if _deferred and not _forking:
            for s in list(_deferred):
                _deferred.discard(s)
                os.kill(os.getpid(), s)


def _deferring(handler):
    """``handler`` (installed for SIGINT/SIGTERM during a run), except:

    * inside os.fork() from the run's thread: a signal that arrives while Lava
      forks a worker would run its Python handler inside the at-fork hooks,
      where CPython discards the exception (the Ctrl-C would be lost and
      ``logging``'s lock left held): it is held and sent again (by
      :func:`_redeliver`) just after;
    * while the run's processes are being stopped: held until they are gone
      (a second Ctrl-C must not abandon the cleanup)."""
    def on_signal(signum, frame):
        if _forking:
            _deferred.add(signum)
            return None
        if _held is not None:
            _held.append(signum)
            return None
        return handler(signum, frame)

    return on_signal


def _unraisable_hook(previous):
    """A safety net for the first and last instructions of the fork hooks above,
    where the flag cannot protect: an interrupt discarded there is sent again."""
    def hook(unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and os.getpid() == _supervisor:
            _deferred.add(getattr(unraisable.exc_value, "signum", signal.SIGINT))
            return
        previous(unraisable)

    return hook


# -- the run's child processes -------------------------------------------------------------
def _children() -> dict[int, mp.process.BaseProcess]:
    return {p.pid: p for p in mp.active_children()}


def _alive(p) -> bool:
    try:
        return p.is_alive()
    except ValueError:   # closed by Lava after it joined it
        return False


def _dead(p) -> bool:
    """Started, and has exited (``is_alive`` is False for a process never started)."""
    try:
        return p.exitcode is not None
    except ValueError:   # closed by Lava after it joined it
        return False


def _lava_processes(runtime) -> list:
    """The worker processes of a Lava 0.10 runtime (actors and the shared-memory
    server), including any that have already died."""
    infra = getattr(runtime, "_messaging_infrastructure", None)
    procs = list(getattr(infra, "actors", None) or ())
    manager = getattr(getattr(getattr(infra, "smm", None), "_manager", None), "_process", None)
    if manager is not None:
        procs.append(manager)
    return procs


def _release_shared_memory(runtime) -> None:
    """Ask the run's SharedMemoryManager server to unlink its segments and exit
    (Lava 0.10 internals; bounded: Python's manager shutdown waits 1 s, then
    terminates the server)."""
    smm = getattr(getattr(runtime, "_messaging_infrastructure", None), "smm", None)
    if smm is not None:
        with contextlib.suppress(Exception):
            smm.shutdown()


def _kill(procs, timeout: float) -> None:
    for p in procs:
        if _alive(p):
            with contextlib.suppress(Exception):
                p.kill()
    deadline = time.monotonic() + timeout
    for p in procs:
        with contextlib.suppress(Exception):
            # Process.join: Lava's SystemProcess.join() takes no timeout
            mp.process.BaseProcess.join(p, max(0.0, deadline - time.monotonic()))


def bounded_stop(stop, runtime=None, run_children=(), timeout: float | None = None) -> str:
    """Stop a run and make sure none of its processes survives.

    ``stop()`` (Lava's) runs in a daemon thread for at most ``timeout``
    seconds; it is skipped if one of the runtime's processes has already died
    or the runtime was never started (Lava would wait forever). If it did not
    finish, the shared memory of ``runtime`` is released. Finally every
    process of the run still alive (``run_children`` and the runtime's) is killed (SIGKILL) and reaped.
    Returns ``"stopped"`` (Lava's stop finished), ``"killed"`` (it did not
    within ``timeout``) or ``"skipped"`` (not tried). An exception
    raised by ``stop()`` is re-raised after the cleanup. ``timeout`` defaults
    to :data:`STOP_TIMEOUT`."""
    timeout = STOP_TIMEOUT if timeout is None else timeout
    procs = list({p.pid: p for p in [*_lava_processes(runtime), *run_children]}.values())
    error: list[BaseException] = []
    started = runtime is None or getattr(runtime, "_is_started", True)
    if not started and not any(_alive(p) for p in procs):
        outcome = "stopped"   # Lava stopped the run itself: nothing is left
    elif not started or any(_dead(p) for p in procs):
        # interrupted during start-up, or a process is gone: Lava's stop would wait
        # forever for the workers
        outcome = "skipped"
    else:
        done = threading.Event()

        def target():
            try:
                stop()
            except BaseException as exc:   # re-raised below, after the cleanup
                error.append(exc)
            finally:
                done.set()

        threading.Thread(target=target, name="neuro_pc-lava-stop", daemon=True).start()
        outcome = "stopped" if done.wait(timeout) else "killed"
    if outcome != "stopped":
        _release_shared_memory(runtime)
    _kill(procs, KILL_TIMEOUT)
    if error:
        raise error[0]
    return outcome


@contextlib.contextmanager
def supervised(stop, runtime=lambda: None, timeout: float | None = None):
    """Wrap one Lava run (``run()`` and reading results back) so that it ends
    with every process it started, whatever happens (see the module doc).

    stop: Lava's stop (e.g. ``process.stop``); runtime: a callable returning
    the run's Lava ``Runtime`` (or None), whose processes are checked and,
    if Lava's stop has to be abandoned, whose shared memory is released.
    Exceptions (including ``KeyboardInterrupt`` and :class:`Interrupted`)
    propagate after the cleanup; an error of Lava's stop is raised only if
    nothing else is propagating, and a stop that had to kill processes after a
    successful run is a ``RuntimeWarning``."""
    global _armed_thread, _supervisor, _held
    main = threading.current_thread() is threading.main_thread()
    before = set(_children())
    previous, old, pending = (_armed_thread, _supervisor, sys.unraisablehook), {}, None
    stop_redelivery, redeliverer = threading.Event(), None
    try:
        if main:
            for s in (signal.SIGINT, signal.SIGTERM):
                h = signal.getsignal(s)
                if s == signal.SIGINT and h is not signal.SIG_IGN:
                    # Python's own KeyboardInterrupt, whatever a library installed: Brian2's
                    # handler (imported in the same process) calls a previous handler that
                    # may be SIG_DFL and fails with a TypeError instead of interrupting
                    h = signal.default_int_handler
                if s == signal.SIGTERM and h is signal.SIG_DFL:
                    h = _raise_interrupted
                if callable(h):
                    old[s] = signal.signal(s, _deferring(h))
            sys.unraisablehook = _unraisable_hook(previous[2])
            redeliverer = threading.Thread(target=_redeliver, args=(stop_redelivery,),
                                           name="neuro_pc-lava-signals", daemon=True)
            redeliverer.start()
        _armed_thread, _supervisor = threading.get_ident(), os.getpid()
        yield
    except BaseException as exc:
        pending = exc
        raise
    finally:
        _held = []   # first: from here on a Ctrl-C/SIGTERM waits for the cleanup
        _armed_thread, _supervisor = previous[:2]
        if main:
            sys.unraisablehook = previous[2]
        stop_redelivery.set()
        if redeliverer is not None:
            redeliverer.join(1.0)
        _held.extend(_deferred)   # not yet sent again: delivered with the held ones
        _deferred.clear()
        try:
            run_children = [p for pid, p in _children().items() if pid not in before]
            try:
                outcome = bounded_stop(stop, runtime(), run_children, timeout)
            except Exception:
                if pending is None:
                    raise
            else:
                if outcome != "stopped" and pending is None:
                    warnings.warn(f"Lava's stop() did not finish ({outcome}): the run's "
                                  "processes were killed", RuntimeWarning, stacklevel=3)
        finally:
            held, _held = _held, None
            try:
                # deliver what was held (once each), unless an interrupt is already on its way
                if not isinstance(pending, KeyboardInterrupt):
                    for s in dict.fromkeys(held):
                        signal.raise_signal(s)
            finally:
                for s, h in old.items():
                    signal.signal(s, h)


__all__ = ["Interrupted", "STOP_TIMEOUT", "bounded_stop", "supervised"]
