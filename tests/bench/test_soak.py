"""A short `make soak` (bench/soak.py) in CI: mixed load through worker restarts loses and fails nothing."""

import pytest

from bench import soak
from bench.env import services

pytestmark = pytest.mark.slow


def test_a_short_soak_through_worker_restarts_has_no_errors_and_stores_every_acknowledged_signup(monkeypatch):
    monkeypatch.setenv("SOAK_SECONDS", "20")
    monkeypatch.setenv("SOAK_SAMPLE", "0.5")
    monkeypatch.setenv("SOAK_SIGNUP_EVERY", "10")
    with services(production=True) as bench:
        # Recycle often (production does not), so restarts happen under load in 20 s.
        bench.env["GUNICORN_CMD_ARGS"] = "--max-requests 600 --max-requests-jitter 60"
        figures = soak.run(bench)
    assert figures["errors"] == 0
    acknowledged = figures["wrk"]["acknowledged"]
    assert acknowledged > 0 and figures["acknowledged_checked"] == acknowledged  # every answer's email read
    assert figures["acknowledged_missing"] == 0  # each acknowledged signup is in the database
    # Only those whose answer wrk never read (in flight when it stopped, one per connection at most) are extra.
    assert figures["stored"] - acknowledged == figures["unanswered_stored"] <= 32
    assert figures["restarts"]["restarts"] >= 1 and figures["restarts"]["recycled"] >= 1
    assert len(figures["rss_mb"]) >= figures["workers"] + 1  # the recycled workers' successors were sampled too
    assert all(0 < max(mbs) < 400 for mbs in figures["rss_mb"].values())
    assert figures["pg_connections_max"] > 0 and figures["redis_mb_max"] > 0
    assert not figures["failed"]
