"""`celery beat` with Redis: one beat sends the periodic jobs however many run, and its
schedule lives in Redis, so a restarted or replacing beat carries on from the last run."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import pytest
import redis
import yaml

from tests.faults import PrivateRedis
from tests.processes import Server, clean_env

pytestmark = pytest.mark.slow

SENT = "Sending due task mcps.check-health"


def beat(env: dict[str, str], log: Path) -> Server:
    command = [sys.executable, "-m", "celery", "-A", "missioncontrol", "beat", "-l", "INFO"]
    return Server(command, 0, env, log)


def sends(log: Path) -> int:
    return log.read_text().count(SENT) if log.exists() else 0


def test_two_beats_send_each_job_once_and_the_second_takes_over_from_the_schedule_in_redis(
    tmp_path: Path,
) -> None:
    private = PrivateRedis(tmp_path, persistent=False)
    private.start()
    config = tmp_path / "mission_control.yml"
    config.write_text(yaml.safe_dump({"mcps": {"health_check_interval": 1}}))
    env = clean_env(
        REDIS_URL=f"redis://127.0.0.1:{private.port}/0",
        MC_DATA_DIR=str(tmp_path / "data"),
        MC_CONFIG=str(config),
        MC_CHANNEL_PREFIX="beattest",
        SECRET_KEY="beat-test",
    )
    first = beat(env, tmp_path / "first.log")
    second = beat(env, tmp_path / "second.log")
    try:
        deadline = time.monotonic() + 60
        while sends(first.log) + sends(second.log) < 4:
            assert time.monotonic() < deadline, (first.log.read_text(), second.log.read_text())
            time.sleep(0.5)
        leader, follower = (first, second) if sends(first.log) else (second, first)
        assert sends(follower.log) == 0  # it waits for the lock

        stored = redis.Redis(port=private.port).hget("beattest:redbeat:mcps.check-health", "meta")
        assert stored is not None and json.loads(stored)["last_run_at"]

        leader.proc.send_signal(signal.SIGTERM)  # a redeploy: the lock is released on the way out
        leader.proc.wait(timeout=30)
        deadline = time.monotonic() + 60
        while sends(follower.log) < 2:
            assert time.monotonic() < deadline, follower.log.read_text()
            time.sleep(0.5)
    finally:
        first.stop()
        second.stop()
        private.kill()
    assert "Traceback" not in first.log.read_text() + second.log.read_text()
