"""schemathesis (from PyPI) against the served OpenAPI schema of the real app under gunicorn: every check,
0 server errors, 0 schema violations (the issue's acceptance). Marked slow: a few hundred requests per run, one
run for the signups and events, one for the webhooks' management (each with its own key and rate limit)."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from api.models import Delivery, Endpoint, Event
from tests.api.test_api import _people, make_key

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.slow]

ST = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "schemathesis"


def _run(app_server, tmp_path, token: str, selection: list[str]) -> str:
    run = subprocess.run(
        [
            str(ST),
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            f"{app_server.url}/api/v1/openapi.json",
            "-H",
            f"Authorization: Bearer {token}",
            *selection,
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "25",
            "--request-timeout",
            "10",
            "--phases",
            "examples,coverage,fuzzing",
            "--report",
            "junit",
            "--report-junit-path",
            str(tmp_path / f"junit-{selection[-1]}.xml"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_COLOR": "1"},
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    assert not re.search(r"Server error|Response violates schema", out), out[-6000:]
    return out


def test_schemathesis_finds_no_server_error_and_no_schema_violation(app_server, tmp_path):
    _people(30)
    # One key per run, few enough requests each to stay under API_RATE_LIMIT. positive_data_acceptance is left
    # out: rules beyond the schema refuse some schema-valid input on purpose (an address Django's validator
    # refuses, consent false, a cursor we never issued, a phone number that is not one, an endpoint URL the
    # SSRF guard refuses): a 400/422 problem, not a 5xx.
    token = make_key(["signups:read", "signups:write", "signups:erase", "events:read"])
    out = _run(app_server, tmp_path, token, ["--exclude-tag", "webhooks"])
    print(out[-900:])  # the summary: operations, phases, test cases
    endpoint = Endpoint.objects.create(url="https://example.com/hook")  # so that some ids exist
    event = Event.objects.create(type=Event.CREATED, signup_id=1, fanned_out=True)
    Delivery.objects.create(endpoint=endpoint, event=event)
    token = make_key(["webhooks:manage", "signups:read"])
    out = _run(app_server, tmp_path, token, ["--include-tag", "webhooks"])
    print(out[-900:])


def test_a_request_line_over_the_limit_is_the_documented_414(app_server):
    import json
    import urllib.error
    import urllib.request

    token = make_key(["signups:read"])
    request = urllib.request.Request(f"{app_server.url}/api/v1/signups?since={'x' * 5000}",
                                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 414
    with urllib.request.urlopen(f"{app_server.url}/api/v1/openapi.json", timeout=10) as answer:
        schema = json.load(answer)
    assert "414" in schema["paths"]["/api/v1/signups"]["get"]["responses"]
