"""Moves this process's wall clock by MC_TEST_CLOCK_SHIFT_DAYS (see `make test-clock`).

On PYTHONPATH only for the clock-shifted test runs: Python starts `sitecustomize` in
every interpreter, so the pytest process and each server it spawns (serve, daphne,
run_gateway, the demo agent) see the same moved "now". time-machine moves what reads
the wall clock (time.time, datetime.now, ...) and leaves the monotonic clock alone,
so timeouts and sleeps behave as usual.
"""

from __future__ import annotations

import os

_days = os.environ.get("MC_TEST_CLOCK_SHIFT_DAYS")
if _days:
    from datetime import UTC, datetime, timedelta

    import time_machine

    _traveller = time_machine.travel(datetime.now(UTC) + timedelta(days=float(_days)), tick=True)
    _traveller.start()
