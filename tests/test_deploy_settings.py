"""MC_ENV=production passes `manage.py check --deploy`; the embedded default stays plain http."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.test import Client

ROOT = Path(__file__).resolve().parent.parent
STRONG_KEY = "k3Y-" + "x9Qm2vLr7Tz4Wn8Yb1Hc6Jd0Fg5Sa3Pe" * 2


def manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`manage.py args` with exactly `env` (plus PATH), as an operator would start it."""
    base = {"PATH": os.environ["PATH"], "MC_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check_with_no_warnings(tmp_path: Path) -> None:
    result = manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        MC_ENV="production",
        ALLOWED_HOSTS="mc.example.com",
        SECRET_KEY=STRONG_KEY,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/mc_deploy_check",  # not connected to
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_sets_https_hsts_secure_cookies_and_honours_the_proxy_header(tmp_path: Path) -> None:
    result = manage(
        tmp_path,
        "diffsettings",
        MC_ENV="production",
        ALLOWED_HOSTS="mc.example.com",
        SECRET_KEY=STRONG_KEY,
        MC_PROXY_SSL_HEADER="X-Forwarded-Proto",
    )
    assert result.returncode == 0, result.stderr
    for line in (
        "SECURE_SSL_REDIRECT = True",
        "SECURE_HSTS_SECONDS = 31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS = True",
        "SESSION_COOKIE_SECURE = True",
        "CSRF_COOKIE_SECURE = True",
        "SECURE_PROXY_SSL_HEADER = ('HTTP_X_FORWARDED_PROTO', 'https')",
    ):
        assert line in result.stdout, line


def test_production_refuses_a_weak_secret_key_or_debug(tmp_path: Path) -> None:
    weak = manage(tmp_path, "check", MC_ENV="production", ALLOWED_HOSTS="mc.example.com", SECRET_KEY="short")
    assert weak.returncode != 0 and "SECRET_KEY" in weak.stderr and "50" in weak.stderr
    debug = manage(
        tmp_path,
        "check",
        MC_ENV="production",
        ALLOWED_HOSTS="mc.example.com",
        SECRET_KEY=STRONG_KEY,
        DEBUG="true",
    )
    assert debug.returncode != 0 and "DEBUG: must be off when MC_ENV=production" in debug.stderr
    unknown = manage(tmp_path, "check", MC_ENV="prod")
    assert unknown.returncode != 0 and "MC_ENV" in unknown.stderr


def test_the_embedded_default_serves_plain_http(tmp_path: Path, client: Client, db: None) -> None:
    result = manage(tmp_path, "diffsettings")
    assert result.returncode == 0, result.stderr
    assert "SECURE_SSL_REDIRECT" not in result.stdout and "SESSION_COOKIE_SECURE" not in result.stdout
    assert "DEBUG = True" not in result.stdout  # off unless asked for, the embedded default too
    assert client.get("/api/threads").status_code == 200  # not a redirect to https


def test_production_refuses_to_start_without_explicit_allowed_hosts(tmp_path: Path) -> None:
    for hosts in ({}, {"ALLOWED_HOSTS": "*"}, {"ALLOWED_HOSTS": " , "}):
        result = manage(tmp_path, "check", MC_ENV="production", SECRET_KEY=STRONG_KEY, **hosts)
        assert result.returncode != 0
        assert "ALLOWED_HOSTS must be set when MC_ENV=production" in result.stderr, result.stderr
    fine = manage(
        tmp_path, "check", MC_ENV="production", SECRET_KEY=STRONG_KEY, ALLOWED_HOSTS="mc.example.com"
    )
    assert fine.returncode == 0, fine.stderr


def test_debug_is_off_unless_asked_for(tmp_path: Path) -> None:
    show = "from django.conf import settings; print(settings.DEBUG)"
    assert manage(tmp_path, "shell", "-c", show).stdout.split()[-1] == "False"
    assert manage(tmp_path, "shell", "-c", show, DEBUG="true").stdout.split()[-1] == "True"
