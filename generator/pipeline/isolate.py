"""Run one spec's work in a child process with a time and memory budget.

A spec is untrusted: a runaway one must fail with a message while the others
still build. The child is forked, so it starts with everything the parent has
imported, and it is killed when its time is up.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up

from ..errors import DeriveError

if TYPE_CHECKING:
    from typing import Any, Callable

DEFAULT_TIMEOUT = 10.0  # seconds of derivation per spec; --timeout changes it
MEMORY_LIMIT = 4 * 1024**3  # bytes of heap a child may allocate


class BudgetError(DeriveError):
    """A spec needed more time or memory than it is allowed."""


def _limit_memory() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


CPU_GRACE = 2.0  # seconds (of CPU or of waiting) past the timeout after which a child stops itself, should its parent not
TIMED_OUT = 124  # a child's exit code when it stops itself (as timeout(1) exits)
WATCH_EVERY = 0.2  # seconds between a child's checks that its parent is still there

_phase = None  # in a child: the pipe on which budget_spent() reports
_parent: int | None = None  # in a child: the process id of the parent that started it
_budget = [math.inf]  # in a child: the monotonic time by which the budgeted work must be done
_cpu_limit = (-1, -1)  # in a child: its CPU limit before the budget's, restored once the budgeted work is done


def budget_spent() -> None:
    """Tell the parent that the budgeted work is done (what follows, such as TeX, has its own limits)."""
    if _phase is not None:
        _phase.send(("phase", None))
    if _budget[0] != math.inf:
        import resource

        _budget[0] = math.inf
        resource.setrlimit(resource.RLIMIT_CPU, _cpu_limit)


def orphaned() -> bool:
    """Tell whether this child's parent is gone (a killed build): such a child must write nothing."""
    return _parent is not None and os.getppid() != _parent


def _die_with_parent(timeout: float) -> None:
    """Make this child end when its parent does, or when its budget is spent, whoever enforces it.

    The parent kills a child at its timeout; these guards hold when the parent itself is killed
    (kill -9 leaves a child re-parented to init): a parent-death signal (Linux), a watchdog
    thread that sees the parent gone or the budget spent, and a CPU limit a little above the budget.
    """
    import resource
    import threading

    global _cpu_limit
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if orphaned():  # the parent died before the signal was asked for
        os._exit(TIMED_OUT)
    _cpu_limit = resource.getrlimit(resource.RLIMIT_CPU)
    soft, hard = _cpu_limit
    seconds = math.ceil(timeout + CPU_GRACE)
    if hard == resource.RLIM_INFINITY or hard >= seconds:
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, hard))
    _budget[0] = time.monotonic() + timeout + CPU_GRACE

    def watch() -> None:
        while True:
            time.sleep(WATCH_EVERY)
            if orphaned() or time.monotonic() > _budget[0]:
                os._exit(TIMED_OUT)

    threading.Thread(target=watch, daemon=True).start()


def _one_thread_after_fork() -> None:
    """Keep a forked child off a thread pool its parent started: the pool's threads were not forked with it.

    A parent that already ran torch (a test suite, a notebook calling derive) leaves OpenMP believing its
    workers exist; the child's first parallel loop would wait for them forever.
    """
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(1)


def _child(conn: Any, fn: Callable[..., Any], args: tuple, label: str, parent: int, timeout: float) -> None:
    global _phase, _parent
    _phase = conn
    _parent = parent
    try:
        _one_thread_after_fork()
        _die_with_parent(timeout)
        _limit_memory()
        result: tuple[str, Any] = ("ok", fn(*args))
    except DeriveError as e:
        result = ("error", e.lines())
    except MemoryError:
        result = ("error", [f"{label}: needs more than {MEMORY_LIMIT / 1024**3:g} GiB of memory to derive"
                            " (allowed: smaller tensors or fewer steps)"])
    except RecursionError:
        result = ("error", [f"{label}: is nested too deeply to derive (allowed: fewer nested operations)"])
    except Exception as e:  # a bug of ours: one line, never a traceback
        import traceback

        where = traceback.extract_tb(e.__traceback__)[-1]
        result = ("error", [f"{label}: internal error ({type(e).__name__}: {e} at {where.name}:{where.lineno}); please report it"])
    try:
        conn.send(result)
    finally:
        conn.close()


def available() -> bool:
    """Tell whether this platform can fork (elsewhere the work runs in-process, without a budget)."""
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


class _Job:
    """One call running in a forked child, with the time it may take."""

    def __init__(self, fn: Callable[..., Any], args: tuple, *, timeout: float, label: str):
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self.receive, send = ctx.Pipe(duplex=False)
        self.child = ctx.Process(target=_child, args=(send, fn, args, label, os.getpid(), timeout), daemon=True)
        self.child.start()
        send.close()
        self.label = label
        self.timeout = timeout
        self.deadline: float | None = time.monotonic() + timeout

    def step(self) -> tuple[bool, Any]:
        """Read what the child sent: (True, result or DeriveError) once it is done, else (False, None)."""
        try:
            status, value = self.receive.recv()
        except EOFError:
            self.child.join()
            late = self.deadline is not None and time.monotonic() >= self.deadline
            if late or self.child.exitcode in (-signal.SIGXCPU, TIMED_OUT):  # it stopped itself: see _die_with_parent
                return True, self.timed_out()
            return True, BudgetError(
                f"{self.label}: the derivation was stopped (exit code {self.child.exitcode}), most likely for lack of memory"
            )
        if status == "phase":
            self.deadline = None
            return False, None
        return True, (_Reported(value) if status == "error" else value)

    def expire(self) -> BudgetError:
        self.child.kill()
        return self.timed_out()

    def timed_out(self) -> BudgetError:
        return BudgetError(
            f"{self.label}: took longer than {self.timeout:g} s to derive (allowed: --timeout SECONDS to give it more)"
        )

    def close(self) -> None:
        self.receive.close()
        self.child.join(timeout=5)


def run_many(
    calls: list[tuple[Callable[..., Any], tuple, str]], *, jobs: int, timeout: float,
    done: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """Run each (fn, args, label) in its own child, at most `jobs` at once; return results in order.

    A result is what fn returned, or the DeriveError that stands for its failure. done(i, result)
    is called in the parent as each one finishes, in whatever order they finish.
    """
    results: list[Any] = [None] * len(calls)
    if not available():
        for i, (fn, args, _) in enumerate(calls):
            try:
                results[i] = fn(*args)
            except DeriveError as e:
                results[i] = e
            if done:
                done(i, results[i])
        return results
    from multiprocessing import connection

    waiting = list(range(len(calls)))
    running: dict[int, _Job] = {}
    while waiting or running:
        while waiting and len(running) < max(jobs, 1):
            i = waiting.pop(0)
            fn, args, label = calls[i]
            running[i] = _Job(fn, args, timeout=timeout, label=label)
        deadlines = [j.deadline for j in running.values() if j.deadline is not None]
        wait_for = max(min(deadlines) - time.monotonic(), 0) if deadlines else None
        ready = set(connection.wait([j.receive for j in running.values()], timeout=wait_for))
        for i, job in list(running.items()):
            finished, value = False, None
            if job.receive in ready:
                finished, value = job.step()
            elif job.deadline is not None and time.monotonic() >= job.deadline:
                finished, value = True, job.expire()
            if finished:
                job.close()
                del running[i]
                results[i] = value
                if done:
                    done(i, value)
    return results


def isolated(fn: Callable[..., Any], *args: Any, timeout: float, label: str) -> Any:
    """Return fn(*args) computed in a child process; raise DeriveError for its errors or its budget."""
    (result,) = run_many([(fn, args, label)], jobs=1, timeout=timeout)
    if isinstance(result, DeriveError):
        raise result
    return result


class _Reported(DeriveError):
    """Errors the child already turned into lines."""

    def __init__(self, lines: list[str]):
        self._lines = list(lines)
        super().__init__("\n".join(lines))

    def lines(self) -> list[str]:
        return self._lines
