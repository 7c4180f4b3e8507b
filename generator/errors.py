"""The project's errors: every failure a user can see is a DeriveError."""

from __future__ import annotations

from collections import namedtuple


class DeriveError(Exception):
    """Root of every error that the CLI turns into a message and an exit code."""

    exit_code = 1

    def lines(self) -> list[str]:
        """Return the message as the lines the CLI prints."""
        return [str(self)]


class Problem(namedtuple("Problem", "path line message")):
    """One thing wrong with a spec, located in its file: path, line (or None) and message.

    (A named tuple rather than a dataclass: the CLI imports this module, and dataclasses costs it more than all else.)
    """

    __slots__ = ()

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


def shown(name: object) -> str:
    """Return a file name as a message prints it: unchanged, or quoted with escapes if it holds control characters.

    A name is untrusted: raw, a newline in it could forge a line such as `::error::` in a CI log.
    """
    text = str(name)
    return text if text.isprintable() else repr(text)


def printable(line: str) -> str:
    """Return one line of output with any control character escaped (the last guard before a terminal or log)."""
    if line.isprintable():
        return line
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in line)
