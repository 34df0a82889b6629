"""Topics in a real Chromium, in each language: staff define two topics in the admin; a visitor ticks both; the
confirmation email (through moto's SES and a real worker) names both; confirming confirms both; the preference
centre switches one off; the JSON download shows where each stands; erasure removes the memberships.
"""

import json
import time
from pathlib import Path

import pytest

from formdef.models import Topic
from tests.conftest import OUTPUT
from tests.formdef.fields import fresh_version_ids
from tests.users.mail import link_in, mail_to
from users.models import ConsentEvent, Signup, SignupTopic

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.browser, pytest.mark.slow]

LANGS = ("en", "de", "fr", "es")
NAMES = {
    "news": {"en": "Newsletter", "de": "Rundbrief", "fr": "Lettre d'information", "es": "Boletín"},
    "events": {"en": "Events", "de": "Veranstaltungen", "fr": "Événements", "es": "Eventos"},
}
CONSENT = {"en": "Email me about {}", "de": "Schreiben Sie mir zu {}", "fr": "Écrivez-moi à propos de {}",
           "es": "Escríbanme sobre {}"}  # fmt: skip


def _shot(page, name: str) -> None:
    page.screenshot(path=OUTPUT / f"topics-{name}.png", full_page=True)


def _define_topics(browser, app_server) -> None:
    staff = browser.new_context(viewport={"width": 1200, "height": 1400}).new_page()
    staff.goto(f"{app_server.url}/admin/login/?next=/admin/formdef/topic/add/")
    staff.get_by_label("Username").fill("staff")
    staff.get_by_label("Password").fill("a-long-test-password")
    staff.get_by_role("button", name="Log in").click()
    for position, key in enumerate(NAMES):
        staff.goto(f"{app_server.url}/admin/formdef/topic/add/")
        staff.fill("input[name=key]", key)
        staff.fill("input[name=position]", str(position))
        for lang in LANGS:
            staff.fill(f"input[name=name_{lang}]", NAMES[key][lang])
            staff.fill(f"textarea[name=consent_{lang}]", CONSENT[lang].format(NAMES[key][lang]))
        if key == "news":
            _shot(staff, "admin-add")
        staff.locator("input[name=_save]").click()
        staff.wait_for_url("**/admin/formdef/topic/")
    assert "Rundbrief" not in staff.inner_text("#result_list")  # the list names topics in English
    _shot(staff, "admin-list")
    staff.context.close()


def _wait_for_topics(page, url: str) -> None:
    """Reload until the app server serves the new version (each process looks at most once a second)."""
    deadline = time.monotonic() + 15
    while True:
        page.goto(url)
        if page.locator("input[name=topics]").count() == 2 or time.monotonic() > deadline:
            return
        time.sleep(0.5)


def test_topics_from_the_admin_to_erasure_in_every_language(browser, app_server, ses, worker):
    from django.contrib.auth.models import User

    OUTPUT.mkdir(exist_ok=True)
    User.objects.create_superuser("staff", password="a-long-test-password")
    fresh_version_ids()
    _define_topics(browser, app_server)
    assert sorted(Topic.objects.values_list("key", flat=True)) == ["events", "news"]
    for lang in LANGS:
        address = f"topics-{lang}@example.com"
        context = browser.new_context(viewport={"width": 420, "height": 1000}, locale=lang, accept_downloads=True)
        page = context.new_page()
        _wait_for_topics(page, f"{app_server.url}/signup/")
        form = page.locator("[data-testid=topics]").inner_text()
        assert NAMES["news"][lang] in form and CONSENT[lang].format(NAMES["events"][lang]) in form
        page.fill("input[name=full_name]", f"Person {lang}")
        page.fill("input[name=email]", address)
        page.check("input[name=topics][value=news]")
        page.check("input[name=topics][value=events]")
        page.check("input[name=consent]")
        _shot(page, f"signup-{lang}")
        page.locator("#signup-form button[type=submit]").click()
        page.wait_for_url("**/signup/thanks/")
        row = Signup.objects.using("default").get(email=address)
        assert row.language == lang
        held = SignupTopic.objects.using("default").filter(signup=row)
        assert sorted(m.wording_version.split(":")[1] for m in held) == [lang, lang]
        # The confirmation email names both topics, in the person's language; confirming confirms both.
        message = mail_to(ses, address, "")
        text = message.get_body(preferencelist=("plain",)).get_content()
        assert NAMES["news"][lang] in text and NAMES["events"][lang] in text
        page.goto(link_in(message, "/signup/confirm/"))
        page.get_by_test_id("confirm").click()
        page.wait_for_url("**/my-data/manage/**")
        assert all(m.confirmed_at for m in SignupTopic.objects.using("default").filter(signup=row))
        # The preference centre: switch "events" off.
        centre = page.get_by_test_id("preferences")
        assert NAMES["events"][lang] in centre.inner_text()
        page.uncheck("input[name=topics][value=events]")
        page.get_by_test_id("save-topics").click()
        page.wait_for_url("**?topics=1")
        _shot(page, f"preferences-{lang}")
        states = {m.topic.key: m.withdrawn_at for m in SignupTopic.objects.using("default").filter(signup=row)}
        assert states["events"] is not None and states["news"] is None
        assert not page.locator("input[name=topics][value=events]").is_checked()
        # The JSON download shows where each topic stands, typed (times as ISO text, null when not left).
        with page.expect_download() as download:
            page.get_by_test_id("download").click()
        data = json.loads(Path(download.value.path()).read_text())
        topics = {t["key"]: t for t in data["topics"]}
        assert topics["news"]["withdrawn_at"] is None and topics["events"]["withdrawn_at"].startswith("20")
        assert topics["news"]["wording_version"].startswith(f"news:{lang}:")
        # Erase: the memberships go; the ledger keeps per-topic events without IPs.
        page.get_by_test_id("erase").click()
        page.get_by_test_id("erase-confirm").click()
        page.wait_for_url("**/my-data/erased/")
        assert not SignupTopic.objects.using("default").filter(signup=row).exists()
        events = ConsentEvent.objects.using("default").filter(signup=row, topic__isnull=False)
        assert sorted(e.kind for e in events) == ["confirmed", "confirmed", "given", "given", "withdrawn"]
        assert not events.exclude(ip=None).exists()
        context.close()
