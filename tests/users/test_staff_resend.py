"""Staff resend a confirmation email: a POST after a confirmation page, in the person's language, never twice queued."""

import pytest
from django.test import Client

from tests.users.mail import mail_to, sent_mail, sign_up, text_of, wait_for
from users import emails
from users.models import Signup
from users.tasks import email_tasks

pytestmark = pytest.mark.usefixtures("live_db")

GERMAN_SUBJECT = "Bitte bestätigen Sie Ihre Adresse"


def _url(signup: Signup) -> str:
    return f"/admin/users/signup/{signup.pk}/resend-confirmation/"


def _confirmations(ses, address: str) -> list:
    return [m for m in sent_mail(ses.url) if address in str(m["To"]) and GERMAN_SUBJECT in str(m["Subject"])]


def test_staff_resend_goes_out_in_the_persons_language_through_the_real_worker(staff_client, ses, worker):
    sign_up(Client(), language="de", email="lotte@example.com", full_name="Lieselotte Bräuer")
    mail_to(ses, "lotte@example.com", GERMAN_SUBJECT)
    signup = Signup.objects.using("default").get(email="lotte@example.com")
    record = staff_client.get(f"/admin/users/signup/{signup.pk}/change/").content.decode()
    assert _url(signup) in record  # offered on an unconfirmed record

    page = staff_client.get(_url(signup))  # a GET only asks
    assert page.status_code == 200 and "Resend the confirmation email?" in page.content.decode()
    assert "German" in page.content.decode()
    assert not email_tasks(signup.pk).filter(status="READY").exists()

    done = staff_client.post(_url(signup), follow=True)  # the admin (staff, English) asks for it
    assert "is queued" in done.content.decode()
    wait_for(lambda: len(_confirmations(ses, "lotte@example.com")) == 2, 60, "the second confirmation email")
    again = _confirmations(ses, "lotte@example.com")[-1]
    assert text_of(again).startswith("Guten Tag,\n")  # German, though staff use English


def test_no_resend_to_a_confirmed_person_and_none_queued_twice(staff_client):
    sign_up(Client(), email="ada@example.com")  # its confirmation waits in the queue: nobody runs it here
    signup = Signup.objects.using("default").get(email="ada@example.com")
    refused = staff_client.post(_url(signup), follow=True).content.decode()
    assert "already waiting in the queue" in refused
    assert email_tasks(signup.pk).filter(args_kwargs__kwargs__kind=emails.CONFIRM).count() == 1

    email_tasks(signup.pk).delete()
    Signup.objects.filter(pk=signup.pk).update(confirmed_at="2026-11-30T00:00:00Z")
    refused = staff_client.post(_url(signup), follow=True).content.decode()
    assert "already confirmed or withdrawn" in refused
    assert not email_tasks(signup.pk).exists()
    assert _url(signup) not in staff_client.get(f"/admin/users/signup/{signup.pk}/change/").content.decode()


def test_a_cross_site_post_queues_nothing():
    user_client = Client(enforce_csrf_checks=True)
    from django.contrib.auth.models import User

    user = User.objects.create_user("s2", password="a-long-test-password", is_staff=True, is_superuser=True)
    user_client.force_login(user)
    sign_up(Client(), email="bob@example.com")
    signup = Signup.objects.using("default").get(email="bob@example.com")
    email_tasks(signup.pk).delete()
    assert user_client.post(_url(signup)).status_code == 403
    assert not email_tasks(signup.pk).exists()
