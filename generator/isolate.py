"""Run one spec's work in a child process with a time and memory budget.

A spec is untrusted: a runaway one must fail with a message while the others
still build. The child is forked, so it starts with everything the parent has
imported, and it is killed when its time is up.
"""

from __future__ import annotations

import multiprocessing
import resource
import traceback
from typing import Any, Callable

from .errors import DeriveError

DEFAULT_TIMEOUT = 10.0  # seconds of derivation per spec; --timeout changes it
MEMORY_LIMIT = 4 * 1024**3  # bytes of heap a child may allocate


class BudgetError(DeriveError):
    """A spec needed more time or memory than it is allowed."""


def _limit_memory() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def _child(conn: Any, fn: Callable[..., Any], args: tuple, label: str) -> None:
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
        where = traceback.extract_tb(e.__traceback__)[-1]
        result = ("error", [f"{label}: internal error ({type(e).__name__}: {e} at {where.name}:{where.lineno}); please report it"])
    try:
        conn.send(result)
    finally:
        conn.close()


def available() -> bool:
    """Tell whether this platform can fork (elsewhere the work runs in-process, without a budget)."""
    return "fork" in multiprocessing.get_all_start_methods()


def isolated(fn: Callable[..., Any], *args: Any, timeout: float, label: str) -> Any:
    """Return fn(*args) computed in a child process; raise DeriveError for its errors or its budget."""
    if not available():
        return fn(*args)
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(send, fn, args, label), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(timeout):
            child.kill()
            raise BudgetError(f"{label}: took longer than {timeout:g} s to derive (allowed: --timeout SECONDS to give it more)")
        try:
            status, value = receive.recv()
        except EOFError:
            child.join()
            raise BudgetError(f"{label}: the derivation was stopped (exit code {child.exitcode}), most likely for lack of memory") from None
    finally:
        receive.close()
        child.join(timeout=5)
    if status == "error":
        raise _Reported(value)
    return value


class _Reported(DeriveError):
    """Errors the child already turned into lines."""

    def __init__(self, lines: list[str]):
        self._lines = list(lines)
        super().__init__("\n".join(lines))

    def lines(self) -> list[str]:
        return self._lines
