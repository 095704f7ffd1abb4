"""The ASGI application served by uvicorn on a real port, in a thread of the test process.

Clients under test (the OpenTelemetry exporters, the SDK) talk real HTTP to it, and the
test reads the same test database they wrote to. Import the fixture into a test module.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from tests.processes import free_port


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """The base URL of the application served for this module's tests."""
    from missioncontrol.asgi import application

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(application, port=port, log_level="warning", lifespan="off"))
    runner = threading.Thread(target=server.run, daemon=True)
    runner.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    runner.join(timeout=10)
