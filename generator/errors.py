"""The project's errors: every failure a user can see is a DeriveError."""

from __future__ import annotations

from dataclasses import dataclass


class DeriveError(Exception):
    """Root of every error that the CLI turns into a message and an exit code."""

    exit_code = 1

    def lines(self) -> list[str]:
        """Return the message as the lines the CLI prints."""
        return [str(self)]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec, located in its file."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


class SpecError(DeriveError):
    """A spec is invalid; carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]):
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class TorchMissing(DeriveError):
    """torch is needed (derive check) but not installed."""

    exit_code = 3
