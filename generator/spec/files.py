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


NPY_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.npy"  # an input's file: a plain name beside the spec
NPY_DTYPES = ("<f4", "<f8")  # float32 and float64, little-endian, as numpy writes them here


class NpyError(ValueError):
    """An input's .npy file cannot be read as it is."""


def read_npy(path: str | os.PathLike, *, max_elements: int) -> "np.ndarray":
    """Return a .npy file's array as float64 (C order), checked before its data is read.

    Only the header is parsed (numpy's own reader of it, which evaluates no code); a file whose dtype is not
    float32 or float64 (an object array would need pickle), whose size is too large or does not match
    the header, or a link or a non-file, is refused.
    """
    import numpy as np
    from numpy.lib import format as npy

    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        if os.path.islink(path):
            raise NpyError("is a symbolic link, not read (allowed: a regular file beside the spec)")
        fd = os.open(path, flags)
    except OSError as error:
        raise NpyError(f"cannot be read: {error.strerror or error} (allowed: a .npy file beside the spec)") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise NpyError("is not a regular file (allowed: a regular file beside the spec)")
        try:
            version = npy.read_magic(file)
            read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, fortran, dtype = read_header(file, max_header_size=1024)
        except (ValueError, SyntaxError, OSError) as error:
            raise NpyError(f"is not a .npy file numpy wrote ({str(error)[:80]}) (allowed: numpy.save of a float array)")\
                from None
        if dtype.str not in NPY_DTYPES:
            raise NpyError(f"holds dtype {dtype.str!r} (allowed: float32 or float64; never objects, which need pickle)")
        count = 1
        for n in shape:
            count *= n
        if count > max_elements or count == 0:
            raise NpyError(f"holds {count} elements (allowed: 1 to {max_elements})")
        data = count * dtype.itemsize
        if info.st_size - file.tell() != data:
            raise NpyError(f"has {info.st_size - file.tell()} bytes of data where its header says {data}"
                           " (allowed: a whole file as numpy.save writes it)")
        values = np.frombuffer(file.read(data), dtype=dtype).astype(np.float64)
    if not np.isfinite(values).all():
        raise NpyError("holds inf or nan (allowed: finite numbers, as in a spec's values)")
    return values.reshape(shape, order="F" if fortran else "C").reshape(-1).reshape(shape)
