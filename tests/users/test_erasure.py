"""Erasing a person: confirmed, permission-checked, nothing personal left in the row, the act recorded."""

import logging

import pytest
from django.test import Client
from django.utils import timezone

from tests.helpers import login_staff
from users.models import COLLECTED_FIELDS, Erasure, Signup

pytestmark = pytest.mark.usefixtures("live_db")

PERSON = {
    "full_name": "Ada Lovelace", "email": "Ada.L@example.com", "phone": "+442079460958", "country": "GB",
    "consent": True, "consent_version": "2026-11-v1", "ip_address": "198.51.100.23",
    "user_agent": "Mozilla/5.0 (Analytical Engine)",
}  # fmt: skip


@pytest.fixture
def person(pg):
    row = Signup.objects.create(**PERSON, consent_at=timezone.now())
    pg.wait_for_replica()
    return row


@pytest.fixture
def eraser():
    return login_staff("eraser", "view_signup", "erase_signup")


def _erase(client: Client, pk: int):
    url = f"/admin/users/signup/{pk}/erase/"
    confirm = client.get(url)
    assert confirm.status_code == 200
    return client.post(url, {"csrfmiddlewaretoken": confirm.context["csrf_token"]})


def test_erasure_leaves_no_personal_data_and_records_who_did_it(eraser, person, caplog):
    before = Signup.objects.using("default").get(pk=person.pk)
    with caplog.at_level(logging.INFO, logger="users"):
        response = _erase(eraser, person.pk)
    assert response.status_code == 302 and response["Location"] == f"/admin/users/signup/{person.pk}/change/"
    row = Signup.objects.using("default").get(pk=person.pk)
    assert {field: getattr(row, field) for field in COLLECTED_FIELDS if field != "created_at"} == {
        "full_name": "", "email": f"erased-{person.pk}@invalid", "phone": "", "country": "", "consent": False,
        "consent_at": None, "consent_version": "", "ip_address": None, "user_agent": "",
    }  # fmt: skip
    assert row.created_at == before.created_at  # identifies nobody; keeps the signups-per-day figures true
    stored = " ".join(str(getattr(row, field)) for field in COLLECTED_FIELDS).lower()
    for value in PERSON.values():
        if isinstance(value, str):
            assert value.lower() not in stored
    erasure = Erasure.objects.using("default").get()
    assert (erasure.signup_id, erasure.username) == (person.pk, "eraser")
    assert "ada" not in str(vars(erasure)).lower()  # the proof holds no personal data either
    assert f"signup {person.pk} erased by staff eraser" in caplog.text
    assert "lovelace" not in caplog.text.lower() and "example.com" not in caplog.text.lower()
    page = eraser.get(response["Location"]).content.decode()
    assert "no personal data is left" in page and "Erase person" not in page


def test_erasure_needs_the_erase_permission(person):
    viewer = login_staff("viewer", "view_signup", "export_signup")
    url = f"/admin/users/signup/{person.pk}/erase/"
    assert viewer.get(url).status_code == 403
    assert viewer.post(url).status_code == 403
    assert "Erase person" not in viewer.get(f"/admin/users/signup/{person.pk}/change/").content.decode()
    assert Client().get(url).status_code == 302  # the public: to the login page
    assert Signup.objects.using("default").get(pk=person.pk).email == PERSON["email"]


def test_erasure_is_only_done_by_a_post_with_a_csrf_token(eraser, person):
    url = f"/admin/users/signup/{person.pk}/erase/"
    assert "Yes, erase this person" in eraser.get(url).content.decode()
    assert eraser.post(url).status_code == 403  # no token
    assert Signup.objects.using("default").get(pk=person.pk).full_name == "Ada Lovelace"
    assert not Erasure.objects.using("default").exists()


def test_erasing_twice_changes_nothing_more(eraser, person):
    _erase(eraser, person.pk)
    response = _erase(eraser, person.pk)
    assert response.status_code == 302
    assert Erasure.objects.using("default").count() == 1
    assert "already erased" in eraser.get(response["Location"]).content.decode()


def test_an_erased_person_may_sign_up_again(eraser, person):
    _erase(eraser, person.pk)
    again = Signup.objects.create_unless_duplicate(full_name="Ada Lovelace", email=PERSON["email"])
    assert again is not None and again.pk != person.pk


def test_nobody_deletes_a_signup_in_the_admin(person):
    boss = login_staff("boss", "view_signup", "delete_signup", "erase_signup")
    assert boss.get(f"/admin/users/signup/{person.pk}/delete/").status_code == 403
    assert Signup.objects.using("default").filter(pk=person.pk).exists()
