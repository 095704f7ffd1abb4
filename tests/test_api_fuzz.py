"""Schemathesis over /api/schema/ against the running server: no answer is a 5xx, and the
answers conform to the schema (their status codes, content types, headers and bodies).

One daphne on a free port over a fresh data directory (the embedded default), signed
in as a superuser with a JWT (an API token would be revoked by the fuzzing of
`DELETE /api/tokens/{id}`). Bounded: FUZZ_MAX_EXAMPLES cases per operation, a fixed
seed (so a failure is reproduced by running it again), and the API rate limit off (the
fuzzer is one busy client; the limits have their own tests). The figures (operations,
cases, failures per check) are printed, and kept in var/api-fuzz.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import ROOT, Server, jwt_for, superuser_server

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "6"))
SEED = os.environ.get("FUZZ_SEED", "1")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "unsupported_method",
)
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    server, env = superuser_server(
        tmp_path_factory.mktemp("fuzz-data"),
        "fuzz",
        "fuzz-pw-8761",
        MC_RATE_LIMIT_API="off",
        MC_JWT_ACCESS_MINUTES="60",
    )
    try:
        server.wait_healthy()
        yield server, jwt_for(env, "fuzz")
    finally:
        server.stop()


def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(
    served: tuple[Server, str], tmp_path: Path
) -> None:
    server, token = served
    report = tmp_path / "report.json"
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{server.url}/api/schema/?format=json",
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            SEED,
            "--workers",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--checks",
            ",".join(CHECKS),
            "--request-timeout",
            "30",
            "--report",
            "json",
            "--report-json-path",
            str(report),
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = json.loads(report.read_text())
    failures = {f["code"] + " " + f["title"]: f["operations"] for f in summary["failures"]}
    figures = {
        "operations": summary["operations"]["tested"],
        "cases": summary["test_cases"]["generated"],
        "failures": {name: len(operations) for name, operations in failures.items()},
        "seconds": round(summary["running_time"], 1),
    }
    print(f"schemathesis: {figures}")
    (ROOT / "var").mkdir(exist_ok=True)
    (ROOT / "var" / "api-fuzz.json").write_text(json.dumps({**figures, "detail": failures}, indent=2))
    assert figures["operations"] >= 60, run.stdout[-3000:]
    assert not any(code.startswith("ST101") for code in failures), run.stdout[-20000:]
    assert failures == {}, run.stdout[-20000:]
    assert run.returncode == 0, run.stdout[-5000:]
