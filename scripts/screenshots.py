"""Screenshots of the running demo for the documentation (docs/img/*.png).

    .venv/bin/python scripts/screenshots.py [--out docs/img] [--rounds 3]

Starts Mission Control as `make run` does, on a free port over a fresh data directory
(migrate, seed_demo, a superuser, then `manage.py serve`, whose demo agent reports a
round every few seconds), waits until the demo has produced threads, then signs in with
Chromium through Playwright (Debian's /usr/bin/chromium; no browser is downloaded) and
saves one PNG per page. Run it again whenever the pages change.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
USER, PASSWORD = "admin", "screenshots-only-password"
CLEARED = ("DATABASE_URL", "REDIS_URL", "MC_CONFIG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "MC_ENV")
# (file name, path, what must be on the page before it is taken)
SHOTS = [
    ("dashboard.png", "/", "#thread-rows tr"),
    ("threads.png", "/threads", "table tbody tr"),
    ("thread.png", None, "#waterfall"),
    ("sessions.png", "/sessions", "table tbody tr"),
    ("logs.png", "/logs", "#log-stream > *"),
    ("servers.png", "/servers", "#server-rows tr"),
    ("graph.png", "/graph", "canvas, svg"),
    ("permissions.png", "/permissions", "table tbody tr"),
    ("directives.png", "/directives", "table tbody tr"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def manage(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if out.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{out.stdout}{out.stderr}")
    return out.stdout


def wait_for_threads(url: str, token: str, count: int, timeout: float = 180) -> None:
    """Until the demo agent has recorded `count` root threads."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(
                f"{url}/api/threads?root=true&limit=50",
                headers={"Authorization": f"Bearer {token}"},
                timeout=5,
            )
            if answer.status_code == 200 and len(answer.json()["results"]) >= count:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"the demo recorded fewer than {count} threads in {timeout:.0f} s")


def take(url: str, out: Path, token: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    thread_id = httpx.get(
        f"{url}/api/threads?root=true&limit=1", headers={"Authorization": f"Bearer {token}"}, timeout=5
    ).json()["results"][0]["id"]
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        context = browser.new_context(viewport={"width": 1366, "height": 860}, color_scheme="light")
        page = context.new_page()
        page.goto(f"{url}/accounts/login/")
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/")
        for name, path, ready in SHOTS:
            page.goto(f"{url}{path or f'/threads/{thread_id}'}")
            page.wait_for_selector(ready, timeout=30_000)
            page.wait_for_timeout(2_500)  # live parts (charts, the log tail) fill in
            target = out / name
            page.screenshot(path=str(target))
            written.append(target)
        browser.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--rounds", type=int, default=3, help="demo rounds to wait for (default 3)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="mc-screenshots-"))
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(
        MC_DATA_DIR=str(data),
        MC_DEMO="1",
        MC_DEMO_INTERVAL="4",
        DJANGO_SUPERUSER_USERNAME=USER,
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        DJANGO_SUPERUSER_EMAIL="admin@example.com",
    )
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "seed_demo", "--if-empty")
    manage(env, "createsuperuser", "--noinput")
    token = manage(env, "create_api_token", "screenshots", "--user", USER).strip().splitlines()[-1]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (data / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_threads(url, token, args.rounds + 1)
        for path in take(url, args.out, token):
            print(path.relative_to(ROOT))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
