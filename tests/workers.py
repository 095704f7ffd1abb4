"""Each pytest-xdist worker gets its own Redis database, key prefix and data directory.

Loaded with `-p tests.workers` (pyproject's addopts) so it runs before pytest-django reads
the settings. The workers share one PostgreSQL server (pytest-django gives each its own
test database) and one Redis: without this, the server processes two workers start would
answer each other's gateway requests and take each other's Celery tasks.
"""

from __future__ import annotations

import os
import re

worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if worker.startswith("gw"):
    number = int(worker[2:])
    os.environ["MC_CHANNEL_PREFIX"] = f"{os.environ.get('MC_CHANNEL_PREFIX', 'mc')}{worker}"
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        match = re.fullmatch(r"(.*?)(?:/(\d+))?", redis_url)
        assert match, redis_url
        base = int(match.group(2) or 0)
        os.environ["REDIS_URL"] = f"{match.group(1)}/{(base + number) % 16}"
    data_dir = os.environ.get("MC_DATA_DIR")
    if data_dir:
        os.environ["MC_DATA_DIR"] = os.path.join(data_dir, worker)
        os.makedirs(os.environ["MC_DATA_DIR"], exist_ok=True)
