"""/api/v1/ (api/v1.py, api/signups.py, api/feed.py): keys and scopes, keyset pages, create, withdraw, erase,
the events feed, problem details, the committed schema and the docs page."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from api import feed, keys
from api.models import ApiAudit, ApiKey, Event, IdempotentRequest
from users.erasure import erase_signup
from users.models import Erasure, Signup
from users.tasks import email_tasks

pytestmark = pytest.mark.usefixtures("live_db")

BASE = "/api/v1"
SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
ALL = ["signups:read", "signups:write", "signups:erase", "events:read"]


def make_key(scopes=ALL, **fields) -> str:
    user = User.objects.get_or_create(username="root", defaults={"is_staff": True, "is_superuser": True})[0]
    token, prefix, hashed = keys.generate()
    ApiKey.objects.create(name="test", prefix=prefix, hashed=hashed, scopes=scopes, created_by=user, **fields)
    return token


@pytest.fixture
def api(client):
    token = make_key()

    def call(method: str, path: str, data=None, **headers):
        headers.setdefault("HTTP_AUTHORIZATION", f"Bearer {token}")
        send = getattr(client, method)
        if method == "post":
            return send(BASE + path, json.dumps(data or {}), content_type="application/json", **headers)
        return send(BASE + path, data or {}, **headers)

    return call


def _people(n: int) -> list[Signup]:
    start = timezone.now() - timedelta(days=1)
    rows = [
        Signup(
            full_name=f"P {i}",
            email=f"p{i}@example.com",
            created_at=start + timedelta(seconds=i // 3),
            language="fr" if i % 5 == 0 else "en",
        )
        for i in range(n)
    ]  # fmt: skip (equal times: ties)
    return Signup.objects.bulk_create(rows)


def _problem(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"]
    return body


@pytest.mark.parametrize("auth", [None, "Bearer nope", "Bearer sgk_" + "x" * 43, "Basic abc"])
def test_without_a_usable_key_every_route_answers_401(client, auth):
    headers = {"HTTP_AUTHORIZATION": auth} if auth else {}
    for path in ("/signups", "/events", "/signups/1"):
        _problem(client.get(BASE + path, **headers), 401)


def test_a_revoked_or_expired_key_is_refused_and_a_missing_scope_is_403(client):
    for fields in ({"revoked_at": timezone.now()}, {"expires_at": timezone.now() - timedelta(seconds=1)}):
        token = make_key(**fields)
        _problem(client.get(BASE + "/signups", HTTP_AUTHORIZATION=f"Bearer {token}"), 401)
    token = make_key(["events:read"])
    body = _problem(client.get(BASE + "/signups", HTTP_AUTHORIZATION=f"Bearer {token}"), 403)
    assert "signups:read" in body["detail"]
    assert ApiKey.objects.get(prefix=token[:12]).last_used_at is not None


def test_keyset_pages_walk_every_row_once_newest_first_without_the_erased(api):
    people = _people(250)
    erase_signup(people[7].pk)
    seen, after = [], None
    while True:
        page = api("get", "/signups", {"limit": 100, **({"after": after} if after else {})}).json()
        seen += [(p["created_at"], p["id"]) for p in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert len(seen) == len(set(seen)) == 249
    assert seen == sorted(seen, reverse=True)
    assert people[7].pk not in {pk for _, pk in seen}
    assert ApiAudit.objects.filter(action="list").count() == 3


def test_filters(api):
    people = _people(20)
    Signup.objects.filter(pk=people[1].pk).update(confirmed_at=timezone.now(), consent=True)
    assert [p["id"] for p in api("get", "/signups", {"confirmed": "true"}).json()["items"]] == [people[1].pk]
    assert [p["id"] for p in api("get", "/signups", {"contactable": "true"}).json()["items"]] == [people[1].pk]
    french = api("get", "/signups", {"language": "fr"}).json()["items"]
    assert {p["language"] for p in french} == {"fr"} and len(french) == 4
    late = api("get", "/signups", {"since": (people[15].created_at).isoformat()}).json()["items"]
    assert min(p["id"] for p in late) >= people[15].pk - 2  # ties share a second


@pytest.mark.parametrize(
    "params",
    [
        {"after": "not a cursor!"},
        {"after": "AAAA"},
        {"limit": 0},
        {"limit": "x"},
        {"since": "yesterday"},
        {"language": "e\x00n"},
        {"confirmed": "maybe"},
    ],
)
def test_malformed_parameters_are_problems_not_errors(api, params):
    response = api("get", "/signups", params)
    assert response.status_code in (400, 422)
    _problem(response, response.status_code)


def test_one_record_and_404_once_erased(api):
    person = _people(1)[0]
    assert api("get", f"/signups/{person.pk}").json()["email"] == "p0@example.com"
    assert ApiAudit.objects.get(action="read").filters == {"id": person.pk}
    assert api("post", f"/signups/{person.pk}/erase").status_code == 204
    _problem(api("get", f"/signups/{person.pk}"), 404)
    _problem(api("post", f"/signups/{person.pk}/erase"), 404)
    _problem(api("get", "/signups/99999999999999999999"), 422)  # beyond bigint: refused, not a database error
    _problem(api("get", "/signups/abc"), 422)
    assert Erasure.objects.get(signup_id=person.pk).username == "root"  # the key's creator
    assert ApiAudit.objects.filter(action="erase").count() == 1


def test_create_goes_through_double_opt_in_and_is_idempotent(api):
    body = {"full_name": "Ada Lovelace", "email": "ada@example.com", "consent": True, "ip": "203.0.113.5"}
    for _ in range(2):
        response = api("post", "/signups", body, HTTP_IDEMPOTENCY_KEY="abc-1")
        assert response.status_code == 202 and response.json()["status"] == "accepted"
    signup = Signup.objects.get()
    assert signup.confirmed_at is None and signup.consent and str(signup.ip_address) == "203.0.113.5"
    assert email_tasks().count() == 1  # one confirmation email, not two
    assert list(Event.objects.values_list("type", flat=True)) == ["signup.created"]
    other = api("post", "/signups", {**body, "full_name": "Someone Else"}, HTTP_IDEMPOTENCY_KEY="abc-1")
    _problem(other, 422)
    assert IdempotentRequest.objects.get().response_status == 202


def test_create_refuses_what_the_form_refuses(api):
    body = _problem(api("post", "/signups", {"full_name": "Ada", "email": "not-an-address", "consent": True}), 422)
    assert body["errors"][0]["loc"] == ["body", "email"]
    _problem(api("post", "/signups", {"full_name": "Ada", "email": "ada@example.com", "consent": False}), 422)
    _problem(api("post", "/signups", {"full_name": "Ada"}), 422)
    assert not Signup.objects.exists()


def test_withdraw_records_its_event(api):
    person = _people(1)[0]
    assert api("post", f"/signups/{person.pk}/withdraw").json()["withdrawn_at"]
    assert list(Event.objects.values_list("type", flat=True)) == ["signup.withdrawn"]


def test_the_events_feed_pages_by_id(api, monkeypatch):
    monkeypatch.setattr(feed, "SETTLE", timedelta(0))
    events = Event.objects.bulk_create([Event(type=Event.CREATED, signup_id=i) for i in range(5)])
    page = api("get", "/events", {"limit": 3}).json()
    assert [e["id"] for e in page["items"]] == [e.pk for e in events[:3]]
    rest = api("get", "/events", {"after": page["next"]}).json()
    assert [e["signup_id"] for e in rest["items"]] == [3, 4] and rest["next"] == events[-1].pk
    assert set(rest["items"][0]) == {"id", "type", "signup_id", "timestamp"}  # nothing personal


def test_each_key_has_a_rate_limit(api, settings):
    settings.API_RATE_LIMIT = (2, 60)
    assert api("get", "/events").status_code == 200
    assert api("get", "/events").status_code == 200
    body = _problem(api("get", "/events"), 429)
    assert body["title"] == "Too many requests"


def test_the_committed_schema_is_the_served_one(client):
    served = client.get(BASE + "/openapi.json").json()
    assert served["openapi"].startswith("3.") and "/api/v1/signups" in served["paths"]
    assert json.loads(SCHEMA.read_text()) == served, "run: manage.py openapi (docs/openapi.json is stale)"


def test_the_docs_page_uses_only_our_own_static_files(client):
    page = client.get(BASE + "/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/ninja/swagger-ui-bundle." in html and "cdn" not in html.lower() and "https://" not in html
    assert "script-src 'self'" in page["Content-Security-Policy"]


ADA = '"full_name": "Ada", "email": "ada@example.com", "consent": true'
ODD = [b"{not json", b"[]", b'{"full_name": "A\\u0000da", "email": "a\\u0000@example.com", "consent": true}',
       ("{" + ADA + ', "user_agent": "x\\u0000y", "ip": "::1%eth0"}').encode(),
       ("{" + ADA + ', "consent_at": "9999-12-31T23:59:59-23:59"}').encode(), "\u00ff".encode("latin-1")]  # fmt: skip


@pytest.mark.parametrize("raw", ODD)
def test_odd_bodies_get_a_4xx_or_are_accepted_never_a_5xx(api, client, raw):
    token = make_key()
    response = client.post(BASE + "/signups", raw, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_IDEMPOTENCY_KEY="k\x00")  # fmt: skip
    assert response.status_code < 500
    response = client.post(
        BASE + "/signups", raw, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code < 500, response.content


def test_a_query_django_refuses_to_read_is_a_problem_too(api, settings):
    """Too many parameters (DATA_UPLOAD_MAX_NUMBER_FIELDS) stop Django before the API: still problem details."""
    response = api("get", "/events", {"after": ["1"] * (settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)})
    _problem(response, 400)


def test_create_takes_answers_to_the_forms_fields_judged_like_the_form(api):
    from tests.formdef.fields import STORED, define

    version = define()
    person = {"full_name": "Ada", "email": "ada@example.com", "consent": True}
    typed = {**STORED, "company": " ACME  Ltd ", "member": False, "interests": ["events", "news"]}
    assert api("post", "/signups", {**person, "answers": typed}).status_code == 202
    row = Signup.objects.get(email="ada@example.com")
    assert (row.answers, row.form_version) == (STORED, version.id)
    unknown = _problem(api("post", "/signups", {**person, "email": "b@example.com", "answers": {"shoe": "42"}}), 422)
    assert unknown["errors"][0]["loc"] == ["body", "answers", "shoe"]
    wrong = _problem(api("post", "/signups", {**person, "email": "c@example.com", "answers": {**STORED, "seats": "x"}}),
                     422)  # fmt: skip
    assert ["body", "answers", "seats"] in [e["loc"] for e in wrong["errors"]]
    assert not Signup.objects.filter(email__in=["b@example.com", "c@example.com"]).exists()
