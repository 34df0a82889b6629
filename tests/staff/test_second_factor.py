"""The staff second factor (staff/access.py) with STAFF_OTP_REQUIRED on: enrolment by link, codes, backup codes,
break-glass."""

import io
import re

import pytest
from django.core.management import call_command
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.staff.conftest import PASSWORD, invite_path, make_staff, totp_code

pytestmark = [pytest.mark.usefixtures("live_db", "otp_on")]

LIST = "/admin/users/signup/"
SECOND = "/admin/second-factor/"
SETUP = "/admin/second-factor/setup/"
ENROL = "/admin/second-factor/enrol/"


def _password_login(client, username="staff", next_url=LIST):
    return client.post(f"/admin/login/?next={next_url}", {"username": username, "password": PASSWORD,
                                                          "next": next_url})  # fmt: skip


def _enrol(client, user=None) -> tuple[TOTPDevice, list[str]]:
    """Enrol through a fresh enrolment link (the session is signed in with `user`'s password)."""
    from django.contrib.auth.models import User

    user = user or User.objects.get(pk=client.session["_auth_user_id"])
    assert client.get(invite_path(user))["Location"] == ENROL
    assert client.post(ENROL)["Location"] == SETUP
    page = client.get(SETUP)
    key = client.session["staff_otp_setup_key"]
    secret = re.search(r'data-testid="otp-secret">([A-Z2-7 ]+)<', page.content.decode()).group(1)
    done = client.post(SETUP, {"code": totp_code(key), "next": LIST})
    assert done.status_code == 200 and done.context["codes"]
    assert secret.replace(" ", "") and "<svg" in page.content.decode()  # the QR code, inline
    return TOTPDevice.objects.get(user=user, confirmed=True), done.context["codes"]


def test_the_default_is_on_outside_the_local_tools():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "STAFF_OTP_REQUIRED"}
    code = "from django.conf import settings; import django; django.setup(); print(settings.STAFF_OTP_REQUIRED)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "True"


def test_a_password_alone_opens_no_signup_list_and_no_enrolment(client):
    make_staff()
    response = _password_login(client)
    assert response.status_code == 302 and response["Location"].startswith(SECOND)
    listing = client.get(LIST)
    assert listing.status_code == 302 and listing["Location"].startswith("/admin/login/")
    assert client.get(listing["Location"])["Location"].startswith(SECOND)  # the login page sends them on
    page = client.get(SECOND)  # no device yet: ask for an enrolment link
    assert page.status_code == 403 and "Ask an administrator for an enrolment link" in page.content.decode()
    assert client.get(SETUP)["Location"].startswith(SECOND)  # enrolment stays shut without a link
    assert client.post(SETUP, {"code": "123456"})["Location"].startswith(SECOND)
    assert client.get("/admin/").status_code == 302
    assert not TOTPDevice.objects.exists()


def test_enrolment_then_the_list_opens_and_backup_codes_work_once(client):
    make_staff()
    _password_login(client)
    device, codes = _enrol(client)
    assert len(codes) == 10 and StaticToken.objects.filter(device__user=device.user).count() == 10
    assert client.get(LIST).status_code == 200
    # A new session: password, then a backup code, once.
    client.logout()
    _password_login(client)
    assert client.post(SECOND, {"code": codes[0].upper(), "next": LIST})["Location"] == LIST
    assert client.get(LIST).status_code == 200
    client.logout()
    _password_login(client)
    again = client.post(SECOND, {"code": codes[0], "next": LIST})
    assert again.status_code == 200 and "That code did not work" in again.content.decode()
    assert client.get(LIST).status_code == 302


def test_a_code_from_the_app_verifies_the_session_and_a_wrong_one_does_not(client):
    make_staff()
    _password_login(client)
    device, _ = _enrol(client)
    client.logout()
    _password_login(client)
    wrong = client.post(SECOND, {"code": "000000" if totp_code(device.key, 1) != "000000" else "111111"})
    assert "That code did not work" in wrong.content.decode()
    device.refresh_from_db()
    assert device.throttling_failure_count == 1  # django-otp's throttle: the next try must wait
    device.throttle_reset()
    ok = client.post(SECOND, {"code": totp_code(device.key, drift=1), "next": LIST})  # the next step's code
    assert ok.status_code == 302 and ok["Location"] == LIST
    assert client.get(LIST).status_code == 200


def test_addstatictoken_is_the_break_glass_path_and_works_once(client):
    user = make_staff()
    _password_login(client)
    _enrol(client)
    client.logout()
    out = io.StringIO()
    call_command("addstatictoken", user.username, stdout=out)
    token = out.getvalue().strip()
    _password_login(client)
    assert client.post(SECOND, {"code": token, "next": LIST})["Location"] == LIST
    assert client.get(LIST).status_code == 200
    client.logout()
    _password_login(client)
    assert "That code did not work" in client.post(SECOND, {"code": token}).content.decode()


def test_a_backup_code_without_an_app_leads_to_enrolment_from_the_verified_session(client):
    user = make_staff()
    out = io.StringIO()
    call_command("addstatictoken", user.username, stdout=out)  # an account never enrolled, given a code
    _password_login(client)
    response = client.post(SECOND, {"code": out.getvalue().strip(), "next": LIST})
    assert response["Location"].startswith(SETUP)


def test_another_users_device_in_the_session_verifies_nothing(client):
    other = make_staff("other")
    device = TOTPDevice.objects.create(user=other, name="x", confirmed=True)
    make_staff()
    _password_login(client)
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    assert client.get(LIST).status_code == 302


def test_ops_dashboard_needs_the_second_factor_too(client):
    from django.contrib.auth.models import Permission

    user = make_staff()
    user.is_superuser = False
    user.save()
    user.user_permissions.add(Permission.objects.get(codename="view_ops_dashboard"))
    _password_login(client)
    response = client.get("/ops/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    _enrol(client)
    assert client.get("/ops/").status_code == 200


def test_ready_detail_needs_a_verified_staff_session(client, settings):
    settings.READY_TOKEN = ""
    make_staff()
    _password_login(client)
    assert "checks" not in client.get("/ready").json()
    _enrol(client)
    assert "checks" in client.get("/ready").json()


def test_setup_refuses_to_replace_a_device_without_the_old_factor_or_a_link(client):
    make_staff()
    _password_login(client)
    _enrol(client)
    client.logout()
    _password_login(client)
    assert client.get(SETUP)["Location"].startswith(SECOND)


def test_a_verified_session_may_enrol_again_without_a_link(client):
    make_staff()
    _password_login(client)
    device, _ = _enrol(client)
    assert client.get(SETUP).status_code == 200  # still verified by the device just enrolled
    key = client.session["staff_otp_setup_key"]
    assert client.post(SETUP, {"code": totp_code(key), "next": LIST}).status_code == 200
    assert TOTPDevice.objects.get(confirmed=True).key == key != device.key


def test_forms_need_csrf(csrf_client):
    make_staff()
    page = csrf_client.get("/admin/login/")
    token = page.context["csrf_token"]
    csrf_client.post("/admin/login/", {"username": "staff", "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert csrf_client.post(SECOND, {"code": "123456"}).status_code == 403


def test_a_person_without_the_second_factor_can_log_out(csrf_client):
    make_staff()
    token = csrf_client.get("/admin/login/").context["csrf_token"]
    csrf_client.post("/admin/login/", {"username": "staff", "password": PASSWORD, "csrfmiddlewaretoken": token})
    page = csrf_client.get(SECOND)
    assert 'action="/admin/second-factor/logout/"' in page.content.decode()
    response = csrf_client.post("/admin/second-factor/logout/", {"csrfmiddlewaretoken": page.context["csrf_token"]})
    assert response.status_code == 302 and "_auth_user_id" not in csrf_client.session
