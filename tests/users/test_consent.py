"""Consent means what it says: the form requires it, and the pages, emails, count and exports agree.

A signup is a consent to hear from us (the box must be ticked). Rows from before that rule with no consent
("never consented") get no confirmation email, are not counted, are not exported by default, and their
manage page says so without offering to withdraw what was never given.
"""

import re

import pytest
from django.core import mail
from django.test import Client

from tests.helpers import shown_count
from tests.users.mail import link, run_queue, sign_up
from users import emails
from users.models import Signup

pytestmark = pytest.mark.usefixtures("live_db")

CONSENT_ERROR = {
    "en": "Please tick the box: we can only sign you up if we may email you.",
    "de": "Bitte setzen Sie das Häkchen: Wir können Sie nur anmelden, wenn wir Ihnen E-Mails schreiben dürfen.",
    "fr": "Veuillez cocher la case\u00a0: nous ne pouvons vous inscrire que si nous pouvons vous écrire par e-mail.",
    "es": "Marque la casilla: solo podemos inscribirle si podemos escribirle por correo electrónico.",
}


@pytest.mark.parametrize("language", ["en", "de", "fr", "es"])
def test_the_form_refuses_a_signup_without_consent_in_every_language(client, language):
    response = sign_up(client, language=language, consent=None)
    assert response.status_code == 400
    errors = re.findall(r'<p class="error" id="id_consent_error">(.*?)</p>', response.content.decode())
    assert errors == [CONSENT_ERROR[language]]
    assert not Signup.objects.using("default").exists()
    assert sign_up(client, language=language).status_code == 302  # ticked: signed up, consent recorded
    row = Signup.objects.using("default").get()
    assert row.consent and row.consent_at is not None and row.status == "unconfirmed"


def _legacy(**extra) -> Signup:
    """A row from before consent was required: signed up without ticking the box."""
    fields = {"full_name": "Old Timer", "email": "old@example.com", "consent": False, **extra}
    return Signup.objects.using("default").create(**fields)


def test_a_row_that_never_consented_gets_no_confirmation_email():
    row = _legacy()
    assert row.status == "no_consent"
    assert emails.skip_reason(row, emails.CONFIRM) == "never consented"
    assert emails.send(row.pk, emails.CONFIRM) == "skipped: never consented"
    assert mail.outbox == []


def test_the_manage_page_of_a_row_that_never_consented_offers_no_withdrawal(client):
    from users import tokens

    row = _legacy()
    page = client.get(f"/my-data/{tokens.for_signup(tokens.MANAGE, row)}/", follow=True)  # exchanged for a cookie
    body = page.content.decode()
    assert page.status_code == 200
    assert "never given: we do not contact you" in body
    assert 'data-testid="withdraw"' not in body and 'data-testid="wording"' not in body


def test_the_manage_page_says_when_consent_was_given_not_an_internal_wording_id(client):
    sign_up(client)
    run_queue()
    body = Client().get(link(mail.outbox[0], "/my-data/"), follow=True).content.decode()
    row = Signup.objects.using("default").get()
    assert row.consent_version not in body and "wording 2026" not in body
    assert re.search(r'data-testid="consent">given \w{3}\.? \d{1,2}, \d{4}, ', body), body


def test_the_landing_count_holds_only_contactable_people(client, pg):
    from django.utils import timezone

    now = timezone.now()
    _legacy(confirmed_at=now)  # confirmed without consent: not counted
    _legacy(email="bounced@example.com", consent=True, confirmed_at=now, email_blocked_at=now)
    _legacy(email="yes@example.com", consent=True, confirmed_at=now)
    pg.wait_for_replica()
    assert shown_count(client) == 1


def test_the_erase_answer_is_a_redirect_so_a_reload_does_not_post_again(client):
    sign_up(client)
    run_queue()
    assert client.get(link(mail.outbox[0], "/my-data/"), follow=True).status_code == 200  # the cookie
    erased = client.post("/my-data/manage/erase/")
    assert erased.status_code == 302 and erased["Location"] == "/my-data/erased/"
    assert client.get("/my-data/erased/").status_code == 200
    assert Signup.objects.using("default").get().is_erased
