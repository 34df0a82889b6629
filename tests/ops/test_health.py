import pytest

pytestmark = pytest.mark.usefixtures("live_db")


def test_ready_reports_every_dependency_with_timings(client, pg):
    response = client.get("/ready")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    doc = response.json()
    assert doc["status"] == "ok"
    assert set(doc["checks"]) == {"default", "replica1", "redis"}
    for check in doc["checks"].values():
        assert check["status"] == "up" and check["ms"] > 0
    assert doc["checks"]["default"]["critical"] is True
    assert doc["checks"]["replica1"]["detail"]["lag_bytes"] == 0


def test_ready_shows_replica_lag_in_bytes_and_seconds_while_replay_is_paused(client, paused_replica):
    client.post("/signup/", {"full_name": "Lag Test", "email": "lag@example.com"})
    replica = client.get("/ready").json()["checks"]["replica1"]
    assert replica["status"] == "up"
    assert replica["detail"]["lag_bytes"] > 0


def test_health_touches_no_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/health")
    assert response.status_code == 200 and response.content == b"ok\n"


def test_ready_is_not_cacheable_and_answers_head(client):
    assert client.head("/ready").status_code == 200
    assert "max-age=0" in client.get("/ready")["Cache-Control"]
