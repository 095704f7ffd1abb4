"""The reference pages of the documentation are generated from the code (docs/gen_reference.py):
the committed ones must be what the generator writes now, so they never go stale."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.processes import ROOT, clean_env


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "docs/gen_reference.py", "--check", *args],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_committed_reference_pages_match_what_the_code_generates() -> None:
    out = check()
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_reference_check_names_a_page_that_no_longer_matches_the_code(tmp_path: Path) -> None:
    pages = tmp_path / "reference"
    shutil.copytree(ROOT / "docs" / "reference", pages)
    metrics = pages / "metrics.md"
    metrics.write_text(metrics.read_text().replace("mission_control_spool_depth", "mission_control_old_name"))
    out = check("--dir", str(pages))
    assert out.returncode == 1
    assert f"{metrics.as_posix()}" in out.stdout and "commands.md" not in out.stdout
