"""Run one spec's work in a child process with a time and memory budget.

A spec is untrusted: a runaway one must fail with a message while the others
still build. The child is forked, so it starts with everything the parent has
imported, and it is killed when its time is up.
"""

from __future__ import annotations

import time
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing at start-up

from .errors import DeriveError

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


_phase = None  # in a child: the pipe on which budget_spent() reports


def budget_spent() -> None:
    """Tell the parent that the budgeted work is done (what follows, such as TeX, has its own limits)."""
    if _phase is not None:
        _phase.send(("phase", None))


def _child(conn: Any, fn: Callable[..., Any], args: tuple, label: str) -> None:
    global _phase
    _phase = conn
    try:
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
        self.child = ctx.Process(target=_child, args=(send, fn, args, label), daemon=True)
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
            return True, BudgetError(
                f"{self.label}: the derivation was stopped (exit code {self.child.exitcode}), most likely for lack of memory"
            )
        if status == "phase":
            self.deadline = None
            return False, None
        return True, (_Reported(value) if status == "error" else value)

    def expire(self) -> BudgetError:
        self.child.kill()
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
