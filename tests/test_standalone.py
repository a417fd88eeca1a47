"""The repository stands alone: a clone with nothing beside it collects and runs its tests.

Nothing tracked may point at a folder beside the repository (tests, benchmarks and docs once read a
``shared`` folder there that users do not have). A copy of the tracked files, alone in a temporary
folder, must collect exactly the tests this checkout collects and pass the tests that read data files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHILD = "COUNCILFLOW_STANDALONE_CHILD"  # set in the copies' runs: they must not start copies themselves

pytestmark = pytest.mark.skipif(bool(os.environ.get(CHILD)), reason="already inside a standalone copy")

# A path to a folder named "shared" beside the repository, as code and prose spell it: dot-dot, slash or
# backslash (once or more), then the name; ROOT.parent joined with the name; Path("..", name); and the
# name followed by a slash at the start of a path (as in a comment saying the clone has that folder
# beside it). The word in prose ("shared fixtures", "a shared job store") has no slash after it and does
# not match. Written so that this file does not match itself.
BESIDE = re.compile(
    r"\.\.[/\\]+(?:\.\.[/\\]+)*shared\b"
    r"|parent\s*/\s*[\"']shared[\"']"
    r"|[\"']\.\.[\"']\s*,\s*[\"']shared[\"']"
    r"|(?<![\w./\\-])shared[/]"
)


def _tracked() -> list[str]:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [name for name in out.decode().split("\0") if name]


def test_no_tracked_file_points_beside_the_repository() -> None:
    """No tracked file names the folder beside the repository, relatively or by its absolute path."""
    beside = str(ROOT.with_name("shared"))  # its absolute path on this machine
    found = []
    for name in _tracked():
        path = ROOT / name
        if not path.is_file():
            continue  # deleted in the work tree, not yet in the index
        text = path.read_bytes().decode("utf-8", errors="replace")
        for n, line in enumerate(text.splitlines(), 1):
            if BESIDE.search(line) or beside in line:
                found.append(f"{name}:{n}: {line.strip()[:120]}")
    assert not found, "references to a folder beside the repository:\n" + "\n".join(found)


def _pytest(where: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTHONPATH")}
    env.update({"PYTHONPATH": str(where), CHILD: "1"})
    return subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=where, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen[str]) -> str:
    try:
        return process.communicate(timeout=300)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise


def _collected(output: str) -> list[str]:
    return sorted(line for line in output.splitlines() if "::" in line)


def test_a_lone_copy_collects_the_same_tests_and_reads_its_data(tmp_path: Path) -> None:
    """A copy of the tracked files with nothing beside it imports its own package, collects the same tests
    as this checkout without an error, and passes the tests that read OParl data and schemas (SQLite)."""
    copy = tmp_path / "alone" / "councilflow"
    for name in _tracked():
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    alone, here = _pytest(copy, "--collect-only", "-q"), _pytest(ROOT, "--collect-only", "-q")
    alone_out, here_out = _finish(alone), _finish(here)
    assert alone.returncode == 0, alone_out[-3000:]
    assert here.returncode == 0, here_out[-3000:]
    assert _collected(alone_out) == _collected(here_out) and _collected(alone_out)

    env = {**os.environ, "PYTHONPATH": str(copy)}
    imported = subprocess.run([sys.executable, "-c", "import workflow; print(workflow.__file__)"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(imported) == copy / "workflow" / "__init__.py"
    data = _pytest(copy, "-q", "-k", "not postgres", "tests/test_karlsruhe.py", "tests/test_oparl.py",
                   "tests/test_oparl_import.py::test_karlsruhe_files_are_read_completely")
    data_out = _finish(data)
    assert data.returncode == 0, data_out[-3000:]
