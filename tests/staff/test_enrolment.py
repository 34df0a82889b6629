"""Enrolment by invitation (staff/enrolment.py): the link works once, for its owner, after the password; the other
superusers hear of every enrolment and backup-code sign-in; a lockout per username; colleagues' keys stay hidden."""

import io
import logging
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from staff import enrolment
from staff.models import EnrolmentInvite
from tests.staff.conftest import PASSWORD, invite_path, make_staff, totp_code
from tests.users.mail import run_queue

pytestmark = [pytest.mark.usefixtures("live_db", "otp_on")]

LIST = "/admin/users/signup/"
SECOND = "/admin/second-factor/"
SETUP = "/admin/second-factor/setup/"
ENROL = "/admin/second-factor/enrol/"


def _login(client, username="staff", ip="198.51.100.7"):
    return client.post("/admin/login/", {"username": username, "password": PASSWORD, "next": LIST}, REMOTE_ADDR=ip)


def _confirm(client) -> list[str]:
    client.get(SETUP)
    done = client.post(SETUP, {"code": totp_code(client.session["staff_otp_setup_key"]), "next": LIST})
    assert done.status_code == 200
    return done.context["codes"]


def test_the_link_opened_before_sign_in_leads_through_the_password_to_enrolment_once(client):
    user = make_staff(email="staff@example.org")
    path = invite_path(user)
    opened = client.get(path)
    assert opened.status_code == 302 and opened["Location"] == ENROL  # the token leaves the address bar
    to_login = client.get(ENROL)
    assert to_login.status_code == 302 and to_login["Location"].startswith("/admin/login/")
    assert _login(client)["Location"].startswith(SECOND)
    assert client.get(SECOND)["Location"] == ENROL  # the pending link, not "ask for a link"
    page = client.get(ENROL)
    assert page.status_code == 200 and "Set up my authenticator" in page.content.decode()
    assert client.post(ENROL)["Location"] == SETUP
    assert EnrolmentInvite.objects.get().used_at is not None
    _confirm(client)
    assert client.get(LIST).status_code == 200
    again = client.get(path)  # the same link, a second time
    assert again.status_code == 410 and "already been used" in again.content.decode()


def test_a_get_spends_nothing_and_two_posts_cannot_both_win(client):
    user = make_staff()
    path = invite_path(user)
    for _ in range(3):  # mail scanners open links
        assert client.get(path).status_code == 302
    assert EnrolmentInvite.objects.get().used_at is None
    _login(client)
    assert client.post(ENROL)["Location"] == SETUP
    other = type(client)()
    other.get(path)
    assert other.get(path).status_code == 410


def test_bad_expired_and_revoked_links_get_a_4xx_page(client):
    user = make_staff()
    first = invite_path(user)
    second = invite_path(user)  # a new link revokes the older one
    assert client.get(first).status_code == 404
    pk, _, signature = second.rstrip("/").rsplit("/", 1)[1].partition("-")
    assert client.get(f"{ENROL}{pk}-{'0' * len(signature)}/").status_code == 404
    for junk in ["9" * 40 + "-ab", "-", "x-y", "\u0663-ab"]:  # no row, not a 500
        assert client.get(f"{ENROL}{junk}/").status_code == 404
    EnrolmentInvite.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = client.get(second)
    assert expired.status_code == 410 and "expired" in expired.content.decode()


def test_a_link_for_another_account_enrols_nobody(client):
    owner, intruder = make_staff("owner"), make_staff("intruder")
    client.get(invite_path(owner))
    _login(client, "intruder")
    assert client.get(ENROL).status_code == 403
    assert client.post(ENROL).status_code == 403
    assert EnrolmentInvite.objects.get(user=owner).used_at is None
    assert client.get(SETUP)["Location"].startswith(SECOND)
    assert not TOTPDevice.objects.filter(user=intruder).exists()


def test_re_enrolment_by_link_replaces_the_devices_and_the_superusers_hear_of_it(client, caplog):
    user = make_staff(email="staff@example.org")
    make_staff("boss", email="boss@example.org")
    make_staff("quiet")  # a superuser without an address
    plain = make_staff("plain", email="plain@example.org")
    plain.is_superuser = False
    plain.save()
    old = TOTPDevice.objects.create(user=user, name="lost phone", confirmed=True)
    client.get(invite_path(user))
    _login(client)
    with caplog.at_level(logging.INFO, logger="staff"):
        client.post(ENROL)
        codes = _confirm(client)
    assert len(codes) == 10 and not TOTPDevice.objects.filter(pk=old.pk).exists()
    assert "staff user staff: authenticator enrolled (enrolment link)" in caplog.text
    assert "example.org" not in caplog.text
    mail.outbox.clear()
    run_queue()
    notices = [m for m in mail.outbox if "enrolled" in m.subject]
    assert [m.to for m in notices] == [["boss@example.org"]]  # not the user, not a plain staff member
    assert "staff" in notices[0].subject and "staff" in notices[0].body


def test_a_backup_code_sign_in_is_logged_and_mailed_to_the_other_superusers(client, caplog):
    user = make_staff(email="staff@example.org")
    make_staff("boss", email="boss@example.org")
    TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    out = io.StringIO()
    call_command("addstatictoken", "staff", stdout=out)
    _login(client)
    with caplog.at_level(logging.INFO, logger="staff"):
        assert client.post(SECOND, {"code": out.getvalue().strip(), "next": LIST})["Location"] == LIST
    assert "staff user staff: signed in with a backup code (0 left)" in caplog.text
    mail.outbox.clear()
    run_queue()
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["boss@example.org"], "Staff sign-in: staff used a backup code")
    ]


def test_invite_staff_prints_a_working_link_and_refuses_unknown_accounts(client, settings):
    settings.STAFF_BASE_URL = "https://staff.example.org"
    make_staff()
    out = io.StringIO()
    call_command("invite_staff", "staff", stdout=out, stderr=io.StringIO())
    url = out.getvalue().strip()
    assert url.startswith("https://staff.example.org/admin/second-factor/enrol/")
    assert client.get(url.removeprefix("https://staff.example.org"))["Location"] == ENROL
    with pytest.raises(CommandError):
        call_command("invite_staff", "nobody", stdout=io.StringIO())


def _verified_superuser(client, username="boss", **extra):
    boss = make_staff(username, **extra)
    TOTPDevice.objects.create(user=boss, name="phone", confirmed=True, key="00" * 20)
    StaticToken.objects.create(device=StaticDevice.objects.create(user=boss, name="b"), token="bosscode")
    _login(client, username)
    assert client.post(SECOND, {"code": "bosscode", "next": LIST})["Location"] == LIST
    return boss


def test_a_verified_superuser_emails_an_enrolment_link_from_the_admin(client):
    newcomer = make_staff("newcomer", email="new@example.org")
    _verified_superuser(client, email="boss@example.org")
    reply = client.post("/admin/auth/user/", {"action": "send_enrolment_link", "_selected_action": [newcomer.pk]})
    assert reply.status_code == 302
    invite = EnrolmentInvite.objects.get(user=newcomer)
    assert invite.created_by == "boss"
    mail.outbox.clear()
    run_queue()
    (message,) = [m for m in mail.outbox if m.subject == "Set up your sign-in to the staff pages"]
    assert message.to == ["new@example.org"]
    assert invite.path() in message.body
    newcomer_client = type(client)()
    newcomer_client.get(invite.path())
    _login(newcomer_client, "newcomer")
    assert newcomer_client.post(ENROL)["Location"] == SETUP


def test_the_action_is_for_verified_superusers_only(client):
    staff = make_staff("desk")
    staff.is_superuser = False
    staff.save()
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "change_user"]))
    TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    StaticToken.objects.create(device=StaticDevice.objects.create(user=staff, name="b"), token="deskcode")
    _login(client, "desk")
    client.post(SECOND, {"code": "deskcode"})
    page = client.get("/admin/auth/user/")
    assert page.status_code == 200 and "send_enrolment_link" not in page.content.decode()
    client.post("/admin/auth/user/", {"action": "send_enrolment_link", "_selected_action": [staff.pk]})
    assert not EnrolmentInvite.objects.exists()


def test_colleagues_keys_and_codes_stay_hidden_and_devices_cannot_be_added(client):
    victim = make_staff("victim")
    device = TOTPDevice.objects.create(user=victim, name="phone", confirmed=True)
    static = StaticDevice.objects.create(user=victim, name="backup codes")
    StaticToken.objects.create(device=static, token="victimcode")
    _verified_superuser(client)
    page = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/")
    assert page.status_code == 200 and device.key not in page.content.decode()
    assert client.get(f"/admin/otp_totp/totpdevice/{device.pk}/config/").status_code == 403
    codes = client.get(f"/admin/otp_static/staticdevice/{static.pk}/change/")
    assert codes.status_code == 200 and "victimcode" not in codes.content.decode()
    assert client.get("/admin/otp_totp/totpdevice/add/").status_code == 403
    assert client.get("/admin/otp_static/staticdevice/add/").status_code == 403


def test_a_username_is_locked_after_failures_from_many_addresses(client, settings):
    settings.STAFF_USERNAME_FAILURE_LIMIT = 6  # axes' own limit (5 per address) never trips below
    make_staff()
    for n in range(6):
        bad = client.post("/admin/login/", {"username": "staff", "password": "wrong"}, REMOTE_ADDR=f"203.0.113.{n}")
        assert bad.status_code == 200
    locked = _login(client, ip="192.0.2.99")  # the right password, from a new address
    assert locked.status_code == 429 and "Retry-After" in locked
    assert "_auth_user_id" not in client.session
    assert _login(client, "other", ip="192.0.2.99").status_code == 200  # another username is not affected


def test_enrolment_link_state_is_kept_on_the_primary():
    from django.db import router

    assert router.db_for_read(EnrolmentInvite) == "default"
    assert enrolment.ENROL_MINUTES <= 60
