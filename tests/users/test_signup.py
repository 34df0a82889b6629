import logging

import pytest
from django.core.cache import cache
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.helpers import shown_count
from users import consent
from users.models import Signup
from users.stats import COUNT_KEY

pytestmark = pytest.mark.usefixtures("live_db")

VALID = {"full_name": "  Ada   Lovelace ", "email": " Ada.L@Example.COM ", "phone": "020 7946 0958",
         "country": "GB", "consent": "on"}  # fmt: skip


def _post(client, **changes):
    data = {**VALID, **changes}
    return client.post("/signup/", {k: v for k, v in data.items() if v is not None}, REMOTE_ADDR="198.51.100.23")


def test_happy_path_stores_normalised_record_and_thanks_by_name(client):
    response = _post(client, HTTP_USER_AGENT="ignored")
    assert response.status_code == 302 and response["Location"] == "/signup/thanks/"
    row = Signup.objects.using("default").get()
    assert row.full_name == "Ada Lovelace"
    assert row.email == "Ada.L@example.com"  # domain lower-cased, local part kept
    assert row.phone == "+442079460958"
    assert row.country.code == "GB"
    assert row.consent and row.consent_version == consent.version("en") and row.consent_at is not None
    assert row.ip_address == "198.51.100.23"
    thanks = client.get("/signup/thanks/")
    assert thanks.status_code == 200
    assert "Thank you, Ada Lovelace" in thanks.content.decode()
    assert "Ada.L@example.com" in thanks.content.decode()
    assert "no-store" in thanks["Cache-Control"]


def test_user_agent_is_stored_printable_and_bounded(client):
    client.post("/signup/", VALID, HTTP_USER_AGENT="Mozilla/5.0 " + "x" * 2000)
    assert Signup.objects.using("default").get().user_agent.startswith("Mozilla/5.0 ")
    assert len(Signup.objects.using("default").get().user_agent) == 512


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"full_name": ""}, "full_name", "Please tell us your name."),
        ({"full_name": "   "}, "full_name", "Please tell us your name."),
        ({"full_name": "12345"}, "full_name", "using letters"),
        ({"email": ""}, "email", "Please give an email address."),
        ({"email": "not-an-email"}, "email", "Enter a valid email address"),
        ({"email": "a@b"}, "email", "Enter a valid email address"),
        ({"phone": "12"}, "phone", "Enter a valid phone number"),
        ({"phone": "020 7946 0958", "country": ""}, "phone", "Include the country code"),
        ({"country": "XX"}, "country", "Select a valid choice"),
    ],
)
def test_each_validation_error_is_shown_on_its_field_and_nothing_is_stored(client, changes, field, message):
    response = _post(client, **changes)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert f'id="id_{field}_error"' in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()
    assert not Signup.objects.using("default").exists()


def test_form_errors_keep_what_the_person_typed(client):
    response = _post(client, email="broken")
    assert 'value="Ada Lovelace"' in response.content.decode() or "Ada   Lovelace" in response.content.decode()


def test_duplicate_email_keeps_first_row_and_shows_only_what_was_typed(client, caplog):
    assert _post(client).status_code == 302
    other = client.__class__()
    with caplog.at_level(logging.INFO, logger="users"):
        response = _post(other, full_name="Mallory Imposter", email="ADA.l@EXAMPLE.com", phone="")
    assert response.status_code == 302 and response["Location"] == "/signup/thanks/"
    page = other.get("/signup/thanks/").content.decode()
    assert "Mallory Imposter" in page and "ADA.l@example.com" in page
    assert "Ada Lovelace" not in page and "+442079460958" not in page
    rows = list(Signup.objects.using("default").all())
    assert len(rows) == 1 and rows[0].full_name == "Ada Lovelace" and rows[0].consent
    assert any("duplicate email" in r.getMessage() for r in caplog.records)
    assert not any("ADA.l@" in r.getMessage() for r in caplog.records)  # no full addresses in logs


def test_honeypot_filled_stores_nothing_but_looks_like_success(client):
    response = _post(client, website="http://spam.example")
    assert response.status_code == 302
    assert not Signup.objects.using("default").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("full_name", "Ada\x00Lovelace"),
        ("email", "ada\x00@example.com"),
        ("phone", "+44\x0020 7946 0958"),
        ("full_name", "A" * 10_000),
        ("email", "a" * 10_000 + "@example.com"),
        ("phone", "1" * 10_000),
        ("country", "G" * 10_000),
        ("full_name", "Ada \u202eecalevoL"),  # right-to-left override
        ("full_name", "Ada \u200b Lovelace"),  # zero-width space
        ("full_name", "Ada \ufffd"),  # what an undecodable byte becomes
        ("full_name", "Ada \U000f0000"),  # private use
        ("full_name", "Ada \x07\x1b[31m"),  # control characters / terminal escapes
        ("email", "ädä@exämple.com"),  # non-ASCII local part
        ("email", "ada@ex\u202eample.com"),
    ],
)
def test_hostile_input_gets_a_form_error_never_a_500_and_stores_nothing(client, field, value):
    response = _post(client, **{field: value})
    assert response.status_code == 400
    assert response.context["form"].errors
    assert not Signup.objects.using("default").exists()


def test_invalid_utf8_body_is_refused_cleanly(client):
    body = b"full_name=Ada+%ED%A0%80&email=ada%40example.com&csrfmiddlewaretoken=x"
    response = client.post("/signup/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code in {400, 403}
    assert not Signup.objects.using("default").exists()


def test_oversized_body_is_refused_with_400_not_500(client):
    response = client.post("/signup/", {"full_name": "x" * 100_000, "email": "a@example.com"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "name", ["Zoë Ñandú-Pérez", "李小龍", "محمد\u200cعلی", "Siobhán Ó Súilleabháin", "Dvořák O'Neil"]
)
def test_real_names_in_any_script_are_accepted_exactly(client, name):
    assert _post(client, full_name=name, phone="").status_code == 302
    assert Signup.objects.using("default").get().full_name == name


def test_thanks_page_without_or_with_a_forged_cookie_sends_back_to_the_form(client):
    assert client.get("/signup/thanks/")["Location"] == "/signup/"
    client.cookies["signup_thanks"] = "eyJpZCI6MX0:forged:signature"
    assert client.get("/signup/thanks/")["Location"] == "/signup/"


def test_thanks_page_shows_the_signup_while_the_replica_lags(client, paused_replica):
    assert _post(client).status_code == 302
    # The replica really is behind: it does not have the row yet.
    assert not Signup.objects.using("replica1").filter(email="Ada.L@example.com").exists()
    page = client.get("/signup/thanks/")
    assert page.status_code == 200 and "Ada Lovelace" in page.content.decode()


def test_no_write_ever_reaches_the_replica(client, pg):
    replica = connections["replica1"]
    with CaptureQueriesContext(replica) as queries:
        client.get("/")
        _post(client)
        client.get("/signup/thanks/")
        _post(client)  # duplicate
        pg.wait_for_replica()
        client.get("/")
    writes = [q["sql"] for q in queries if q["sql"].lstrip().split()[0].upper() in {"INSERT", "UPDATE", "DELETE"}]
    assert writes == []
    assert any("users_signup" in q["sql"] for q in queries)  # reads did go to the replica


def test_signup_count_is_cached_and_counts_only_confirmed_people(client, pg):
    assert shown_count(client) == 0
    assert cache.get(COUNT_KEY) == 0
    _post(client)
    pg.wait_for_replica()
    cache.delete(COUNT_KEY)
    assert shown_count(client) == 0  # not confirmed yet (double opt-in)
    Signup.objects.using("default").update(confirmed_at=timezone.now())
    pg.wait_for_replica()
    cache.delete(COUNT_KEY)
    assert shown_count(client) == 1
    assert cache.get(COUNT_KEY) == 1


def test_signup_count_is_served_from_the_cache_without_a_query(client, django_assert_num_queries):
    client.get("/")
    with django_assert_num_queries(0, connection=connections["replica1"]), django_assert_num_queries(0):
        assert client.get("/").status_code == 200


def test_a_form_with_errors_marks_only_its_own_fields(client):
    from users.forms import SignupForm

    assert 'aria-describedby="id_email_error"' in _post(client, email="broken").content.decode()
    assert SignupForm().fields["email"] is SignupForm.base_fields["email"]  # shared until errors: no deep copy
    assert "aria-describedby" not in SignupForm.base_fields["email"].widget.attrs
    assert "aria-describedby" not in client.get("/signup/").content.decode()
