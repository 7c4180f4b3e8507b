"""Hostile files and names (issue 10, groups 2, 3, 4, 7 and 8): links, orphans, stale outputs, clashing names, places."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generator.pipeline.build import CACHE, build_specs

from .helpers import ROOT, invoke, outputs

SEED = ROOT / "derivations" / "01_scalar_mean.yaml"
SECRET = "root:x:0:0:secret-marker:/root:/bin/bash\n"
PYTHON = sys.executable

# Derived exactly (64 elements a tensor): three chains of 24 products take ten seconds or more of CPU here.
SLOWER = """title: slower
inputs:
  x:
    fill: 0.5
    shape: [8, 8]
    requires_grad: true
steps:
  y: {x}
  a: {y}
  b: {a}
  out: b.sum()
backward: out
""".format(x=" @ ".join(["x"] * 24), y=" @ ".join(["y"] * 24), a=" @ ".join(["a"] * 24))

EMPTY = "file is empty (allowed: a mapping with title, inputs, steps, backward)"
OUT_ALLOWED = "allowed: --out DIR, a folder you can write to"


def seed_text(title: str = "Seed one") -> str:
    """Return the seed spec, with its title replaced (titles of one length give versions of one size)."""
    lines = SEED.read_text().splitlines(keepends=True)
    assert lines[0].startswith("title: ")
    return f"title: {title}\n" + "".join(lines[1:])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class TestSymlinks:
    def test_link_out_of_the_folder_is_refused_and_never_quoted(self, specs_dir, tmp_path):
        """A folder's leak.yaml -> a secret file fails with one line that quotes none of it; the others build."""
        secret = tmp_path / "passwd"
        secret.write_text(SECRET)
        leak = specs_dir / "leak.yaml"
        leak.symlink_to(secret)
        (specs_dir / "good.yaml").write_text(seed_text())
        out = tmp_path / "out"
        result = invoke("build", str(specs_dir), "--out", str(out))
        assert result.exit_code == 1
        assert result.stderr == f"{leak}: is a symbolic link, not read (allowed: regular files, not links)\n1 built, 1 failed\n"
        assert "secret-marker" not in result.output
        assert [p.name for p in outputs(out)] == ["good.md"]

    def test_check_refuses_the_link_too(self, specs_dir, tmp_path):
        """derive check on the same folder prints the same refusal, never the target's bytes."""
        secret = tmp_path / "passwd"
        secret.write_text(SECRET)
        leak = specs_dir / "leak.yaml"
        leak.symlink_to(secret)
        result = invoke("check", str(specs_dir))
        assert result.exit_code == 1
        assert result.stderr == (
            f"{leak}: is a symbolic link, not read (allowed: regular files, not links)\n0 agree with torch, 1 failed\n"
        )

    def test_link_named_directly_is_refused(self, tmp_path):
        """A link named on the command line is refused as well: CI names specs by shell globs."""
        secret = tmp_path / "passwd"
        secret.write_text(SECRET)
        leak = tmp_path / "leak.yaml"
        leak.symlink_to(secret)
        result = invoke("build", str(leak), "--out", str(tmp_path / "out"))
        assert result.exit_code == 1
        assert result.stderr == f"{leak}: is a symbolic link, not read (allowed: regular files, not links)\n0 built, 1 failed\n"

    def test_a_file_that_is_text_is_named_by_kind(self, tmp_path):
        """A file whose whole content is one line of text (like /etc/passwd read as YAML) is not quoted."""
        spec = tmp_path / "notes.yaml"
        spec.write_text(SECRET)
        result = invoke("build", str(spec), "--out", str(tmp_path / "out"))
        assert result.exit_code == 1
        assert result.stderr == (
            f"{spec}:1: expected a mapping, got text (allowed keys: title, summary, inputs, steps, backward, code, dtype,"
            " lang, flavor, seed)\n0 built, 1 failed\n"
        )

    def test_a_mapping_with_no_spec_key_quotes_none_of_its_keys(self, tmp_path):
        """A secrets file (a mapping, none of whose keys a spec has) names none of its keys."""
        spec = tmp_path / "env.yaml"
        spec.write_text("AWS_SECRET_ACCESS_KEY: abc123\nDB_PASSWORD: hunter2\n")
        result = invoke("build", str(spec), "--out", str(tmp_path / "out"))
        assert result.exit_code == 1
        assert result.stderr == (
            f"{spec}:1: not a derive spec: none of its keys is a spec key (allowed keys: title, summary, inputs, steps,"
            " backward, code, dtype, lang, flavor, seed)\n0 built, 1 failed\n"
        )


def _children(pid: int) -> list[int]:
    """Return the process ids whose parent is pid (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Tell whether pid still runs (a zombie waiting for init to reap it has stopped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


class TestNoOrphans:
    def _start(self, tmp_path: Path, timeout: str, *, settle: float = 1.0) -> tuple[subprocess.Popen, int]:
        """Start a build of SLOWER in its own session; return it and its deriving child, settle seconds on."""
        spec = tmp_path / "slower.yaml"
        spec.write_text(SLOWER)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        parent = subprocess.Popen([PYTHON, "-m", "generator", "build", str(spec), "--out", str(tmp_path / "out"),
                                   "--timeout", timeout], env=env, start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not (children := _children(parent.pid)):
            assert time.monotonic() < deadline and parent.poll() is None, "the build started no child"
            time.sleep(0.05)
        time.sleep(settle)
        return parent, children[0]

    def _stop(self, parent: subprocess.Popen, child: int) -> None:
        for pid in (child, parent.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        parent.wait(timeout=10)

    def test_child_dies_with_a_killed_parent(self, tmp_path):
        """kill -9 of the build: its child stops at once instead of deriving on for seconds, re-parented to init."""
        parent, child = self._start(tmp_path, "60")
        try:
            os.kill(parent.pid, signal.SIGKILL)
            parent.wait(timeout=10)
            assert _gone_within(child, 3.0)
        finally:
            self._stop(parent, child)
        assert not (tmp_path / "out" / "slower.md").exists()

    def test_child_keeps_its_budget_when_the_parent_cannot(self, tmp_path):
        """With its parent stopped (SIGSTOP: no one to kill it), a child ends itself soon after --timeout."""
        parent, child = self._start(tmp_path, "2", settle=0)
        seen = time.monotonic()
        try:
            os.kill(parent.pid, signal.SIGSTOP)
            assert _gone_within(child, 2 + 2 + 2 - (time.monotonic() - seen))  # timeout, CPU_GRACE, slack
        finally:
            os.kill(parent.pid, signal.SIGCONT)
            self._stop(parent, child)


class TestCacheKnowsItsBytes:
    def test_an_output_changed_behind_the_cache_is_rebuilt(self, specs_dir, tmp_path):
        """A file of the recorded size but other bytes (what an orphaned child writes) is not called up to date."""
        spec = specs_dir / "s.yaml"
        spec.write_text(seed_text("Version 1"))
        out = tmp_path / "out"
        assert invoke("build", str(spec), "--out", str(out)).stdout == "1 built, 0 failed\n"
        v1 = (out / "s.md").read_bytes()
        spec.write_text(seed_text("Version 2"))
        assert invoke("build", str(spec), "--out", str(out)).stdout == "1 built, 0 failed\n"
        v2 = (out / "s.md").read_bytes()
        assert len(v1) == len(v2) and v1 != v2
        spec.write_text(seed_text("Version 1"))  # the record is v2's build; back to v1, whose build ...
        assert invoke("build", str(spec), "--out", str(out)).stdout == "1 built, 0 failed\n"
        (out / "s.md").write_bytes(v2)  # ... a killed build of v2 then overwrote, its record not saved
        result = invoke("build", str(spec), "--out", str(out))
        assert result.stdout == "1 built, 0 failed\n"
        assert (out / "s.md").read_bytes() == v1

    def test_the_record_is_saved_after_each_spec(self, specs_dir, tmp_path):
        """A build stopped after its first spec has recorded it: the next build finds it up to date."""
        first, second = specs_dir / "a.yaml", specs_dir / "b.yaml"
        first.write_text(seed_text())
        second.write_text(seed_text())
        out = tmp_path / "out"

        def stop(outcome) -> None:
            raise KeyboardInterrupt  # as Ctrl-C, or a kill, would stop the build

        with pytest.raises(KeyboardInterrupt):
            build_specs([first, second], out=out, formats=("md",), jobs=1, done=stop)
        record = json.loads((out / CACHE).read_text())
        assert record["a"]["files"] == {"a.md": sha256(out / "a.md")}
        assert invoke("build", str(first), "--out", str(out)).stdout == "0 built, 1 up to date, 0 failed\n"

    def test_builds_into_one_folder_keep_each_others_entries(self, specs_dir, tmp_path):
        """A second build that saves while the first runs loses nothing, and neither does the first."""
        a, b, c = (specs_dir / f"{n}.yaml" for n in "abc")
        for path in (a, b, c):
            path.write_text(seed_text())
        out = tmp_path / "out"
        inner: list[int] = []

        def meanwhile(outcome) -> None:
            if not inner:
                inner.append(1)
                build_specs([c], out=out, formats=("md",), jobs=1)

        build_specs([a, b], out=out, formats=("md",), jobs=1, done=meanwhile)
        assert sorted(json.loads((out / CACHE).read_text())) == ["a", "b", "c"]
        result = invoke("build", str(specs_dir), "--out", str(out))
        assert result.stdout == "0 built, 3 up to date, 0 failed\n"

    @pytest.mark.parametrize("edit", [
        lambda r: r["s"].update(files=["s.md"]),
        lambda r: r["s"].update(files="s.md"),
        lambda r: r["s"].update(files=None),
        lambda r: r["s"].update(files={"s.md": 12}),
        lambda r: r["s"].update(key=["not", "a", "key"]),
    ], ids=["files-a-list", "files-text", "files-null", "hash-a-number", "key-a-list"])
    def test_an_entry_of_the_wrong_shape_counts_as_absent(self, edit, specs_dir, tmp_path):
        """A hand-edited record entry never stops the build with an internal error: the spec is built again."""
        spec = specs_dir / "s.yaml"
        spec.write_text(seed_text())
        out = tmp_path / "out"
        assert invoke("build", str(spec), "--out", str(out)).exit_code == 0
        record = json.loads((out / CACHE).read_text())
        edit(record)
        (out / CACHE).write_text(json.dumps(record))
        result = invoke("build", str(spec), "--out", str(out))
        assert (result.exit_code, result.stdout, result.stderr) == (0, "1 built, 0 failed\n", "")

    def test_a_record_that_is_not_a_mapping_counts_as_absent(self, specs_dir, tmp_path):
        """A record file holding a list is ignored and replaced."""
        spec = specs_dir / "s.yaml"
        spec.write_text(seed_text())
        out = tmp_path / "out"
        out.mkdir()
        (out / CACHE).write_text("[1, 2]\n")
        result = invoke("build", str(spec), "--out", str(out))
        assert (result.exit_code, result.stdout) == (0, "1 built, 0 failed\n")
        assert sorted(json.loads((out / CACHE).read_text())) == ["s"]


class TestNames:
    def test_same_stem_in_two_folders_is_refused_naming_both(self, tmp_path):
        """a/s.yaml and b/s.yaml would both write s.md: both fail naming each other, the others build."""
        for folder in ("a", "b"):
            (tmp_path / folder).mkdir()
            (tmp_path / folder / "s.yaml").write_text(seed_text(f"From {folder}"))
        (tmp_path / "a" / "t.yaml").write_text(seed_text())
        first, second = tmp_path / "a" / "s.yaml", tmp_path / "b" / "s.yaml"
        out = tmp_path / "out"
        result = invoke("build", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out))
        assert result.exit_code == 1
        allowed = "(allowed: one spec per name in a build; rename one)"
        assert result.stderr == (
            f"{first}: writes the same files as {second} {allowed}\n"
            f"{second}: writes the same files as {first} {allowed}\n"
            "1 built, 2 failed\n"
        )
        assert [p.name for p in outputs(out)] == ["t.md"]

    def test_yaml_and_yml_of_one_stem_are_refused(self, specs_dir, tmp_path):
        """s.yaml and s.yml in one folder clash the same way."""
        (specs_dir / "s.yaml").write_text(seed_text())
        (specs_dir / "s.yml").write_text(seed_text("Other"))
        result = invoke("build", str(specs_dir), "--out", str(tmp_path / "out"))
        assert result.exit_code == 1
        assert result.stderr.splitlines()[-1] == "0 built, 2 failed"
        assert result.stderr.splitlines()[0] == (
            f"{specs_dir / 's.yaml'}: writes the same files as {specs_dir / 's.yml'}"
            " (allowed: one spec per name in a build; rename one)"
        )

    def test_the_cache_files_name_is_reserved(self, specs_dir, tmp_path):
        """A spec named .derive-cache.yaml is refused, and the record stays a valid record."""
        (specs_dir / "good.yaml").write_text(seed_text())
        reserved = specs_dir / ".derive-cache.yaml"
        reserved.write_text(seed_text())
        out = tmp_path / "out"
        result = invoke("build", str(specs_dir), "--out", str(out), "--format", "md,json")
        assert result.exit_code == 1
        assert result.stderr == (
            f"{reserved}: a spec's name may not start with a dot, kept for derive's own files such as"
            " .derive-cache.json (allowed: a name starting with a letter or digit)\n1 built, 1 failed\n"
        )
        assert sorted(json.loads((out / CACHE).read_text())) == ["good"]

    def test_a_name_with_a_newline_cannot_forge_a_log_line(self, specs_dir, tmp_path):
        """A spec named 'x\\n::error::...' is printed escaped, as Python's repr escapes it: one line, no forged one."""
        spec = specs_dir / "x\n::error file=a::forged\x1b[2K.yaml"
        spec.write_text("")
        result = invoke("build", str(spec), "--out", str(tmp_path / "out"))
        assert result.exit_code == 1
        assert result.stderr == f"{repr(str(spec))}: {EMPTY}\n0 built, 1 failed\n"
        assert not any(line.startswith("::") for line in result.stderr.splitlines())

    def test_ordinary_names_print_unchanged(self, specs_dir, tmp_path):
        """Escaping happens only when needed: a name with spaces and non-ASCII letters prints as it is."""
        spec = specs_dir / "mean of squares é.yaml"
        spec.write_text("")
        result = invoke("build", str(spec), "--out", str(tmp_path / "out"))
        assert result.stderr == f"{spec}: {EMPTY}\n0 built, 1 failed\n"


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


class TestPermissions:
    def test_new_outputs_get_the_umasks_mode(self, umask_022, specs_dir, tmp_path):
        """Under umask 022, new outputs (and the record) are 0644, readable by a web server, not 0600."""
        spec = specs_dir / "s.yaml"
        spec.write_text(seed_text())
        out = tmp_path / "out"
        assert invoke("build", str(spec), "--out", str(out), "--format", "md,json").exit_code == 0
        assert {p.name: oct(p.stat().st_mode & 0o777) for p in out.iterdir()} == {
            "s.md": "0o644", "s.json": "0o644", CACHE: "0o644"
        }

    def test_an_existing_output_keeps_its_mode(self, umask_022, specs_dir, tmp_path):
        """A rebuilt output keeps the mode it had (0640 stays 0640, 0664 stays 0664)."""
        spec = specs_dir / "s.yaml"
        spec.write_text(seed_text())
        out = tmp_path / "out"
        assert invoke("build", str(spec), "--out", str(out), "--format", "md,json").exit_code == 0
        os.chmod(out / "s.md", 0o640)
        os.chmod(out / "s.json", 0o664)
        assert invoke("build", str(spec), "--out", str(out), "--format", "md,json", "--force").exit_code == 0
        assert oct((out / "s.md").stat().st_mode & 0o777) == "0o640"
        assert oct((out / "s.json").stat().st_mode & 0o777) == "0o664"

    def test_new_spec_gets_the_umasks_mode(self, umask_022, tmp_path):
        """derive new writes its starter spec 0644 under umask 022."""
        result = invoke("new", "first", "--dir", str(tmp_path))
        assert result.exit_code == 0
        assert oct((tmp_path / "first.yaml").stat().st_mode & 0o777) == "0o644"


class TestLimitsAndPlaces:
    def test_a_huge_sparse_spec_is_refused_by_its_size(self, tmp_path):
        """A 3 GB sparse spec fails by stat, in a process allowed 1 GB of memory, in seconds."""
        import resource

        big = tmp_path / "big.yaml"
        with big.open("wb") as f:
            f.truncate(3 * 1024**3)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        limit = 1024**3

        def cap() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        started = time.monotonic()
        result = subprocess.run([PYTHON, "-m", "generator", "build", str(big), "--out", str(tmp_path / "out")],
                                env=env, preexec_fn=cap, capture_output=True, text=True, timeout=120)
        assert time.monotonic() - started < 10
        assert (result.returncode, result.stderr) == (
            1, f"{big}: file too large: more than 65536 bytes (allowed: at most 65536 bytes)\n0 built, 1 failed\n"
        )

    def test_out_naming_a_file(self, tmp_path):
        """--out naming a file is one line naming it, exit 1 (the command line is well formed; the place is not usable)."""
        spec = tmp_path / "s.yaml"
        spec.write_text(seed_text())
        taken = tmp_path / "taken"
        taken.write_text("a file")
        result = invoke("build", str(spec), "--out", str(taken))
        assert (result.exit_code, result.stdout) == (1, "")
        assert result.stderr == f"{taken}: cannot write files there: {taken} is not a folder ({OUT_ALLOWED})\n"

    def test_out_inside_a_file(self, tmp_path):
        """--out /proc/version/x (a folder inside a file) is one line naming the file, exit 1."""
        spec = tmp_path / "s.yaml"
        spec.write_text(seed_text())
        result = invoke("build", str(spec), "--out", "/proc/version/x")
        assert (result.exit_code, result.stdout) == (1, "")
        assert result.stderr == f"/proc/version/x: cannot write files there: /proc/version is not a folder ({OUT_ALLOWED})\n"

    def test_a_full_disk_is_one_line_per_spec(self, monkeypatch, tmp_path):
        """ENOSPC while writing fails each spec with one line naming the folder and the file, exit 1."""
        spec = tmp_path / "s.yaml"
        spec.write_text(seed_text())
        out = tmp_path / "out"

        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "replace", full)  # the build's children are forked: they inherit it
        result = invoke("build", str(spec), "--out", str(out))
        assert result.exit_code == 1
        assert result.stderr == (
            f"{out}: cannot write s.md: {os.strerror(errno.ENOSPC)} (allowed: --out DIR, a folder with room that you"
            " can write to)\n0 built, 1 failed\n"
        )

    def test_new_into_a_file_is_one_line(self, tmp_path):
        """derive new --dir naming a file is one line naming it, exit 1."""
        taken = tmp_path / "taken"
        taken.write_text("a file")
        result = invoke("new", "first", "--dir", str(taken))
        assert result.exit_code == 1
        assert result.stderr == (
            f"{taken}: cannot write files there: {taken} is not a folder (allowed: --dir DIR, a folder you can write to)\n"
        )

