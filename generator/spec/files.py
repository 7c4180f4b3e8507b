"""Read a spec file as untrusted input: its size by stat first, never through a symbolic link, only a regular file.

A spec named on the command line is treated like one found in a folder: CI scripts name specs
with shell globs, so a name given directly is no more trusted than a folder's contents.
"""

from __future__ import annotations

import errno
import os
import stat

from ..errors import Problem, SpecError, shown

MAX_BYTES = 64 * 1024  # largest spec file accepted


def _refuse(path: object, what: str, allowed: str = "") -> SpecError:
    return SpecError([Problem(shown(path), None, f"{what} ({allowed})" if allowed else what)])


def too_large(path: object) -> SpecError:
    """Return the error for a file over MAX_BYTES."""
    return _refuse(path, f"file too large: more than {MAX_BYTES} bytes", f"allowed: at most {MAX_BYTES} bytes")


def read_spec(path: str | os.PathLike) -> bytes:
    """Return a spec file's bytes (at most MAX_BYTES + 1); raise SpecError for a link, a non-file or a large file."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        if os.path.islink(path):  # O_NOFOLLOW's own answer (ELOOP) is not portable
            raise OSError(errno.ELOOP, "symbolic link")
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _refuse(path, "is a symbolic link, not read", "allowed: regular files, not links") from None
        raise _refuse(path, f"cannot read file: {error.strerror or error}") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _refuse(path, "not a regular file", "allowed: regular files")
        if info.st_size > MAX_BYTES:
            raise too_large(path)
        try:
            return file.read(MAX_BYTES + 1)
        except OSError as error:
            raise _refuse(path, f"cannot read file: {error.strerror or error}") from None
