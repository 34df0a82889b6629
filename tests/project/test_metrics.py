"""App metrics as CloudWatch EMF: the lines the real app writes validate against AWS's published schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from devenv.servers import AppServer
from ops.dashboard import APP_SERIES
from project import metrics
from tests.conftest import SERVICES
from tests.helpers import Browser

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "ops" / "emf_schema.json").read_text())
CHARTED = {row[1] for row in APP_SERIES} | {"RouterReads"}  # what the dashboard queries
EMAIL = "emf.person@example.org"


def _emf(lines: list[dict]) -> list[dict]:
    return [line for line in lines if "_aws" in line]


def _metrics(doc: dict) -> dict[str, dict]:
    """{metric name: {"value": ..., "dimensions": {...}}} for every metric a document declares."""
    out = {}
    for directive in doc["_aws"]["CloudWatchMetrics"]:
        assert directive["Namespace"] == "Signup/App"
        for dims in directive["Dimensions"]:
            for metric in directive["Metrics"]:
                out[metric["Name"]] = {"value": doc[metric["Name"]], "dimensions": {k: doc[k] for k in dims}}
    return out


@pytest.mark.slow
@pytest.mark.usefixtures("live_db")
def test_request_lines_carry_valid_emf_with_the_names_the_dashboard_charts(tmp_path):
    log = tmp_path / "app.log"
    app = AppServer(env={**SERVICES.environ(), "LOG_FORMAT": "json"}, workers=1, threads=2)
    app.start(log=log)
    fields = {"full_name": "Emf Person", "email": EMAIL, "phone": "020 7946 0958", "country": "GB", "consent": "on"}
    try:
        browser = Browser(app.url)
        first = browser.post_form("/signup/", fields)
        again = Browser(app.url).post_form("/signup/", fields)  # a duplicate
        home = Browser(app.url).get("/")
    finally:
        app.stop()
    assert first.status == again.status == home.status == 200
    text = log.read_text()
    assert EMAIL not in text and "emf.person" not in text
    docs = _emf([json.loads(line) for line in text.splitlines() if line.strip()])
    assert docs, "no EMF line at all"
    for doc in docs:
        jsonschema.validate(doc, SCHEMA)  # AWS's published schema (tests/ops/emf_schema.json)
        for name, metric in _metrics(doc).items():
            assert name in CHARTED, f"{name} is emitted but not charted"
            assert set(metric["dimensions"]) <= {"Alias"}  # never a path, an address, an IP: no personal data
            assert isinstance(metric["value"], int | float)
    seen = [_metrics(doc) for doc in docs]
    posts = [doc for doc in docs if doc.get("method") == "POST" and doc.get("path") == "/signup/"]
    assert [_metrics(doc).get("Signups", {}).get("value") for doc in posts] == [1, None]
    assert [_metrics(doc).get("SignupDuplicates", {}).get("value") for doc in posts] == [None, 1]
    reads = [m["RouterReads"] for m in seen if "RouterReads" in m]
    assert reads and all(r["dimensions"]["Alias"] in {"default", "replica1"} for r in reads)


def test_one_metric_under_two_aliases_becomes_two_valid_documents(settings):
    settings.METRICS_NAMESPACE = "Signup/App"
    with metrics.collect() as counted:
        metrics.incr("RouterReads", Alias="replica1")
        metrics.incr("RouterReads", Alias="replica1")
        metrics.incr("RouterReads", Alias="default")
        metrics.incr("Signups")
    docs = metrics.documents(counted, timestamp=1_700_000_000)
    assert len(docs) == 2
    for doc in docs:
        jsonschema.validate(doc, SCHEMA)
        assert doc["_aws"]["Timestamp"] == 1_700_000_000_000
    by_alias = {doc["Alias"]: doc["RouterReads"] for doc in docs}
    assert by_alias == {"default": 1, "replica1": 2}
    assert sum("Signups" in doc for doc in docs) == 1
    plain = next(doc for doc in docs if "Signups" in doc)
    assert [] in [d for directive in plain["_aws"]["CloudWatchMetrics"] for d in directive["Dimensions"]]


def test_outside_a_request_incr_does_nothing_and_unknown_dimensions_are_refused():
    metrics.incr("Signups")  # no unit of work open: nothing to add to, no error
    with pytest.raises(ValueError, match="not allowed"):
        metrics.incr("Signups", Email="someone@example.org")


def test_an_invalid_document_is_refused_by_the_schema():
    with metrics.collect() as counted:
        metrics.incr("Signups")
    doc = metrics.documents(counted)[0]
    doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = "Parsecs"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


@pytest.mark.slow
@pytest.mark.usefixtures("live_db")
def test_the_worker_writes_one_emf_line_per_task_with_emails_sent(moto_server, tmp_path):
    from django.test import Client

    from tests.users.mail import sent_mail, sign_up, start_worker, stop, verify_sender, wait_for, worker_env

    moto_server.reset()
    verify_sender(moto_server.url)
    assert sign_up(Client(), ip="198.51.100.77", email="worker.emf@example.com").status_code == 302
    log = tmp_path / "worker.log"
    worker = start_worker(worker_env(moto_server.url, LOG_FORMAT="json"), log)
    try:
        wait_for(lambda: len(sent_mail(moto_server.url)) >= 1, 60, "the confirmation email")
    finally:
        assert stop(worker) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    docs = [doc for doc in _emf(lines) if doc["name"] == "users.worker"]
    assert len(docs) == 1 and docs[0]["message"].endswith(" run")  # one line for the one task
    jsonschema.validate(docs[0], SCHEMA)
    assert {name: m["value"] for name, m in _metrics(docs[0]).items()} == {"EmailsSent": 1}
    assert "worker.emf@" not in log.read_text()
