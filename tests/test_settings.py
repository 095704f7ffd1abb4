"""Configuration: mission_control.yml sections, environment overrides, loud failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from missioncontrol.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent


def start(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run `manage.py check` with exactly `env` (plus PATH), as a user starting it would."""
    base = {"PATH": os.environ["PATH"], "MC_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_it_reads_the_seed_sections_with_durations() -> None:
    config = parse_config(
        {
            "server": {"host": "0.0.0.0", "port": 9000, "workers": 4},
            "websocket": {
                "ping_interval": 30,
                "ping_timeout": 10,
                "max_connections": 1000,
                "log_history": 50,
            },
            "database": {"url": "postgresql://u:p@localhost/mc", "pool_size": 20},
            "log_retention": {"hot": "7 days", "warm": "30 days", "cold": "365 days"},
            "auth": {"jwt_secret": "s", "require_auth": True},
            "mcps": {
                "discovery_interval": 30,
                "health_check_interval": 60,
                "reconnect_backoff": "exponential",
            },
        }
    )
    assert config.server.port == 9000
    assert config.websocket.log_history == 50
    assert config.log_retention.hot == 7 * 86400 and config.log_retention.cold == 365 * 86400
    assert config.database.url == "postgresql://u:p@localhost/mc"


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"server": {"port": "eighty"}}, "server.port"),
        ({"log_retention": {"hot": "a week"}}, "log_retention.hot"),
        ({"auth": {"require_auth": "yes"}}, "auth.require_auth"),
        ({"websocket": []}, "websocket"),
        ({"servers": {}}, "unknown section"),
        ({"mcps": {"registry": {"url": "ftp://r"}}}, "mcps.registry.url"),
        ({"mcps": {"registry": {"url": "http://r", "include": [1]}}}, "mcps.registry.include"),
        ({"mcps": {"registry": {"url": "http://r", "search": "x"}}}, "mcps.registry.search"),
        ({"mcps": {"reconnect_backoff": "fibonacci"}}, "mcps.reconnect_backoff"),
    ],
)
def test_it_names_the_setting_that_is_malformed(raw: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        parse_config(raw)


def test_auth_require_auth_false_is_refused_naming_the_key_and_why() -> None:
    # Every surface but /health requires a credential: a switch that pretends otherwise
    # must not be accepted and then ignored.
    with pytest.raises(
        ConfigError,
        match=r"^auth\.require_auth: false is not supported: every surface but /health requires "
        "authentication",
    ):
        parse_config({"auth": {"require_auth": False}})
    assert parse_config({"auth": {"require_auth": True}}).auth.require_auth is True
    assert parse_config({"auth": {}}).auth.require_auth is True


def test_it_refuses_to_start_with_require_auth_false(tmp_path: Path) -> None:
    config = tmp_path / "mc.yml"
    config.write_text("auth:\n  require_auth: false\n")
    result = start({"MC_CONFIG": str(config)}, tmp_path)
    assert result.returncode != 0
    assert "auth.require_auth: false is not supported" in result.stderr
    config.write_text("auth:\n  require_auth: true\n")
    assert start({"MC_CONFIG": str(config)}, tmp_path).returncode == 0


def test_a_registry_is_a_url_or_a_url_with_name_patterns() -> None:
    assert parse_config({"mcps": {"registry": "https://reg.example"}}).mcps.registry.include == ("*",)
    registry = parse_config(
        {"mcps": {"registry": {"url": "http://r", "include": "io.github.me/*"}}}
    ).mcps.registry
    assert (registry.url, registry.include) == ("http://r", ("io.github.me/*",))


def test_it_expands_environment_variables_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWT_SECRET", "from-env")
    path = tmp_path / "mc.yml"
    path.write_text("auth:\n  jwt_secret: ${JWT_SECRET}\n")
    assert load_config(str(path)).auth.jwt_secret == "from-env"


def test_it_refuses_to_start_without_secret_key_outside_the_embedded_default(tmp_path: Path) -> None:
    result = start({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/mc_unused"}, tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY must be set with DATABASE_URL" in result.stderr


def test_it_refuses_to_start_with_a_missing_config_file(tmp_path: Path) -> None:
    result = start({"MC_CONFIG": str(tmp_path / "absent.yml")}, tmp_path)
    assert result.returncode != 0 and "MC_CONFIG: no file at" in result.stderr


def test_it_refuses_to_start_with_a_bad_redis_url(tmp_path: Path) -> None:
    result = start({"REDIS_URL": "localhost:6379", "SECRET_KEY": "k"}, tmp_path)
    assert result.returncode != 0 and "REDIS_URL" in result.stderr


def test_it_lets_the_environment_override_the_file(tmp_path: Path) -> None:
    config = tmp_path / "mc.yml"
    config.write_text("database:\n  url: postgresql://nobody@127.0.0.1:1/none\n")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django,os;os.environ['DJANGO_SETTINGS_MODULE']='missioncontrol.settings';"
            "django.setup();from django.conf import settings;print(settings.DATABASES['default']['ENGINE'])",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": os.environ["PATH"],
            "MC_CONFIG": str(config),
            "SECRET_KEY": "k",
            "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3",
            "MC_DATA_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.sqlite3"


def test_it_generates_and_keeps_a_secret_key_for_the_embedded_default(tmp_path: Path) -> None:
    assert start({}, tmp_path).returncode == 0
    key_file = tmp_path / "data" / "secret_key"
    first = key_file.read_text()
    assert len(first) > 40 and oct(key_file.stat().st_mode)[-3:] == "600"
    assert start({}, tmp_path).returncode == 0
    assert key_file.read_text() == first


def test_a_linear_reconnect_backoff_grows_linearly_and_an_exponential_one_doubles() -> None:
    from mcps.gateway.connection import Backoff

    assert parse_config({"mcps": {"reconnect_backoff": "linear"}}).mcps.reconnect_backoff == "linear"
    linear, exponential = Backoff(2.0, 100.0, "linear"), Backoff(2.0, 100.0)
    # Each delay is drawn below its attempt's ceiling; 400 draws come within 10 % of it.
    for backoff, ceilings in ((linear, [2, 8, 12]), (exponential, [2, 16, 64])):
        for attempt, ceiling in zip((0, 3, 5), ceilings, strict=True):
            drawn = [backoff.delay(attempt) for _ in range(400)]
            assert 0.9 * ceiling < max(drawn) <= ceiling and min(drawn) >= 1.0
