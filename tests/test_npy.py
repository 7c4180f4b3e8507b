"""Inputs from .npy files beside the spec: read as untrusted, equal to numpy's values, checked against torch."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from .helpers import invoke

SPEC = """\
title: npy inputs
dtype: {dtype}
inputs:
  x:
    file: x.npy
    requires_grad: true
  w:
    file: w.npy
steps:
  y: (x * w).tanh()
  out: y.sum()
backward: out
"""


def _folder(tmp_path: Path, dtype: str = "float32", x=None, w=None) -> Path:
    np.save(tmp_path / "x.npy", np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=np.float32) if x is None else x)
    np.save(tmp_path / "w.npy", np.array([0.1, 0.2, 0.3]) if w is None else w)
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC.format(dtype=dtype))
    return spec


def _header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """Write a .npy version 1.0 header by hand, for files numpy.save would not write."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text


class TestRead:
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_check_agrees_with_torch(self, tmp_path, dtype):
        """derive check runs the document's code, which loads both files beside it, and agrees with torch."""
        result = invoke("check", str(_folder(tmp_path, dtype)))
        assert (result.exit_code, result.stdout, result.stderr) == (0, "1 agree with torch, 0 failed\n", "")

    def test_values_are_numpy_s(self, tmp_path):
        """The JSON's input values are the files' numbers (a Fortran-ordered one in row-major order), and the code loads them."""
        fortran = np.asfortranarray(np.arange(6.0).reshape(2, 3) / 8)
        spec = _folder(tmp_path, "float64", x=fortran)
        assert invoke("build", str(spec), "--out", str(tmp_path / "o"), "--format", "json,md").exit_code == 0
        doc = json.loads((tmp_path / "o" / "s.json").read_text())
        assert doc["values"]["x"] == np.load(tmp_path / "x.npy").tolist()
        assert doc["values"]["w"] == np.load(tmp_path / "w.npy").tolist()
        md = (tmp_path / "o" / "s.md").read_text()
        assert 'x = torch.tensor(numpy.load("x.npy"), dtype=torch.float64, requires_grad=True)' in md

    def test_a_changed_file_rebuilds(self, tmp_path):
        """The build's cache counts the file's bytes: the same spec with a new w.npy is built again."""
        spec = _folder(tmp_path)
        out = str(tmp_path / "o")
        assert invoke("build", str(spec), "--out", out).stdout == "1 built, 0 failed\n"
        assert invoke("build", str(spec), "--out", out).stdout == "0 built, 1 up to date, 0 failed\n"
        np.save(tmp_path / "w.npy", np.array([0.1, 0.2, 0.4]))
        assert invoke("build", str(spec), "--out", out).stdout == "1 built, 0 failed\n"


class TestRefuse:
    def _problem(self, tmp_path: Path) -> str:
        result = invoke("check", str(tmp_path / "s.yaml"))
        assert result.exit_code == 1
        return result.stderr.splitlines()[0]

    def test_an_object_array_is_never_unpickled(self, tmp_path):
        """A pickled object array is refused by its header's dtype; its payload never runs."""
        _folder(tmp_path)
        marker = tmp_path / "unpickled"

        class Payload:
            def __reduce__(self):
                return (os.mkdir, (str(marker),))

        np.save(tmp_path / "x.npy", np.array([Payload()], dtype=object), allow_pickle=True)
        assert self._problem(tmp_path) == (
            f"{tmp_path / 's.yaml'}:5: inputs.x.file: x.npy holds dtype '|O' (allowed: float32 or float64; never"
            " objects, which need pickle)")
        assert not marker.exists()

    def test_size_is_judged_by_the_header_first(self, tmp_path):
        """A header that claims 1000001 elements is refused for that, before any data is read (there is none)."""
        _folder(tmp_path)
        (tmp_path / "x.npy").write_bytes(_header((1000001,)))
        assert self._problem(tmp_path).endswith("inputs.x.file: x.npy holds 1000001 elements (allowed: 1 to 1000000)")

    def test_a_short_file_is_refused(self, tmp_path):
        """Data shorter than the header says is refused, not padded."""
        _folder(tmp_path)
        (tmp_path / "x.npy").write_bytes(_header((3,)) + np.zeros(2).tobytes())
        assert self._problem(tmp_path).endswith(
            "x.npy has 16 bytes of data where its header says 24 (allowed: a whole file as numpy.save writes it)")

    @pytest.mark.parametrize(("name", "message"), [
        ("../x.npy", "inputs.x.file: expected a file name, got '../x.npy' (allowed: the name of a .npy file beside the"
                     " spec, such as x.npy)"),
        ("missing.npy", "inputs.x.file: missing.npy cannot be read: No such file or directory (allowed: a .npy file"
                        " beside the spec)"),
        ("link.npy", "inputs.x.file: link.npy is a symbolic link, not read (allowed: a regular file beside the spec)"),
        ("nan.npy", "inputs.x.file: nan.npy holds inf or nan (allowed: finite numbers, as in a spec's values)"),
        ("ints.npy", "inputs.x.file: ints.npy holds dtype '<i8' (allowed: float32 or float64; never objects, which need"
                     " pickle)"),
    ])
    def test_refused_files(self, tmp_path, name, message):
        """Names with folders, missing files, links, nan and integer arrays are refused with one line each."""
        spec = _folder(tmp_path)
        spec.write_text(SPEC.format(dtype="float32").replace("file: x.npy", f"file: {name}"))
        (tmp_path / "link.npy").symlink_to(tmp_path / "w.npy")
        np.save(tmp_path / "nan.npy", np.array([1.0, np.nan]))
        np.save(tmp_path / "ints.npy", np.array([1, 2], dtype=np.int64))
        assert self._problem(tmp_path) == f"{spec}:5: {message}"
