"""The clock-moved runs (make test-clock) really move the clock, in every process."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import pytest

from tests.processes import ROOT, clean_env

pytestmark = pytest.mark.clock

SHIFT_DAYS = float(os.environ.get("MC_TEST_CLOCK_SHIFT_DAYS") or 0)


def kernel_time() -> float:
    """The machine's own wall clock, which no Python patch reaches: a new file's mtime."""
    with tempfile.NamedTemporaryFile() as probe:
        return os.stat(probe.name).st_mtime


def test_this_process_reads_the_clock_of_the_run() -> None:
    assert abs(time.time() - kernel_time() - SHIFT_DAYS * 86400) < 60


def test_a_python_process_it_starts_reads_the_same_clock() -> None:
    seen = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time())"],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert abs(float(seen.stdout) - kernel_time() - SHIFT_DAYS * 86400) < 60
