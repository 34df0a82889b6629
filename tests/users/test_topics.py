"""A person's topics: chosen on the form in one statement, confirmed by the double opt-in, switched on the manage
page, left one at a time by a signed link, withdrawn with all consent, erased with the person, exported, in the API.
"""

import csv
import io
import json
import re

import pytest
from django.core import mail
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from formdef import published
from formdef.models import Topic
from tests.helpers import login_staff, sample_replicas
from tests.users.mail import link, run_queue, sign_up
from users import tokens, topics
from users.erasure import erase_signup
from users.models import ConsentEvent, Signup, SignupTopic

pytestmark = pytest.mark.usefixtures("live_db")

LANGS = ("en", "de", "fr", "es")
MANAGE = "/my-data/manage/"


def _topic(key: str, position: int = 0, **extra) -> Topic:
    return Topic.objects.create(
        key=key, position=position,
        name={lang: f"{key.capitalize()} [{lang}]" for lang in LANGS},
        description={lang: f"About {key} [{lang}]" for lang in LANGS},
        consent={lang: f"Email me about {key} [{lang}]" for lang in LANGS}, **extra,
    )  # fmt: skip


@pytest.fixture
def offered():
    """Three topics: two public (news, events), one hidden (partners); published."""
    made = {key: _topic(key, i) for i, key in enumerate(("news", "events"))}
    made["partners"] = _topic("partners", 3, public=False)
    published.publish("staff")
    return made


def _row() -> Signup:
    return Signup.objects.using("default").get()


def _memberships() -> dict[str, SignupTopic]:
    return {m.topic.key: m for m in SignupTopic.objects.using("default").select_related("topic")}


def _topic_events(kind: str) -> list[str]:
    rows = ConsentEvent.objects.using("default").filter(kind=kind, topic__isnull=False).select_related("topic")
    return sorted(e.topic.key for e in rows)


def test_the_form_offers_the_public_topics_in_the_visitors_language(client, offered):
    page = client.get("/signup/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "News [de]" in page and "Email me about events [de]" in page and "About news [de]" in page
    assert "Partners" not in page and "News [en]" not in page  # hidden topics are never offered
    assert page.index('value="news"') < page.index('value="events"') < page.index('name="consent"')


def test_chosen_topics_are_stored_with_the_signup_in_one_statement(client, offered):
    with CaptureQueriesContext(connections["default"]) as queries:
        response = sign_up(client, language="fr", topics=["events", "news"])
    assert response.status_code == 302
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "WITH", "UPDATE", "DELETE"))
    ]
    assert len(writes) == 1 and writes[0].startswith("WITH s AS (INSERT INTO users_signup ")  # one statement
    # the form's event and the topics' in one part of it (signup_store._topic_statement), the memberships in another
    assert "INSERT INTO users_signuptopic" in writes[0] and writes[0].count("INSERT INTO users_consentevent") == 1
    held = _memberships()
    assert set(held) == {"news", "events"}
    assert held["news"].wording_version.startswith("news:fr:") and held["news"].confirmed_at is None
    assert _topic_events("given") == ["events", "news"]
    assert ConsentEvent.objects.using("default").filter(kind="given", topic__isnull=True).count() == 1


def test_choosing_no_topic_is_allowed_the_consent_box_is_still_required(client, offered):
    assert sign_up(client, consent=None).status_code == 400
    assert sign_up(client).status_code == 302
    assert _row().consent and not _memberships()


@pytest.mark.parametrize("chosen", [["partners"], ["nonsense"], ["news", "x" * 5000], ["news\x00"]])
def test_a_topic_not_offered_is_refused_and_nothing_is_stored(client, offered, chosen):
    response = sign_up(client, topics=chosen)
    assert response.status_code == 400
    assert "Please choose only from the topics shown." in response.content.decode()
    assert not Signup.objects.using("default").exists() and not SignupTopic.objects.using("default").exists()


def test_a_form_without_published_topics_ignores_a_posted_topic(client):
    assert sign_up(client, topics=["news"]).status_code == 302  # no topics field: nothing to refuse, none stored
    assert not SignupTopic.objects.using("default").exists()


def test_topic_fields_are_built_once_per_version_and_language(offered):
    from django.utils import translation

    from formdef import topicfields

    definition = published.current()
    with translation.override("es"):
        first, again = topicfields.build(definition), topicfields.build(definition)
    with translation.override("de"):
        german = topicfields.build(definition)
    assert first["topics"] is again["topics"] and german["topics"] is not first["topics"]
    assert dict(german["topics"].choices)["events"] == "Events [de]"


def test_confirming_confirms_each_topic_and_the_email_names_them(client, offered):
    sign_up(client, language="de", topics=["news", "events"])
    run_queue()
    body = mail.outbox[0].body
    assert "News [de]" in body and "Events [de]" in body and "Partners" not in body
    client.post(link(mail.outbox[0], "/signup/confirm/"))
    assert all(m.confirmed_at is not None for m in _memberships().values())
    assert _topic_events("confirmed") == ["events", "news"]


@pytest.fixture
def member(client, offered):
    """Ada, confirmed, in news and events; her client holds the manage cookie."""
    sign_up(client, topics=["news", "events"])
    run_queue()
    client.post(link(mail.outbox[0], "/signup/confirm/"))
    return client


def test_the_preference_centre_switches_topics_each_with_a_ledger_event(member, offered):
    page = member.get(MANAGE).content.decode()
    assert "Your topics" in page and "News [en]" in page and "Events [en]" in page
    response = member.post(MANAGE + "topics/", {"topics": ["news"]})
    assert response.status_code == 302 and response["Location"] == MANAGE + "?topics=1"
    held = _memberships()
    assert held["events"].withdrawn_at is not None and held["news"].withdrawn_at is None
    assert _topic_events("withdrawn") == ["events"]
    # Join it again, and try a hidden topic and nonsense: only the offered one is joined.
    member.post(MANAGE + "topics/", {"topics": ["news", "events", "partners", "nope"]})
    held = _memberships()
    assert set(held) == {"news", "events"} and held["events"].withdrawn_at is None
    assert held["events"].confirmed_at is not None  # the address is confirmed: joined at once
    assert _topic_events("given") == ["events", "events", "news"]
    ledger = member.get(MANAGE).content.decode()
    assert ledger.count("Events [en]") >= 3  # the offer and its events in the ledger name the topic


def test_the_preference_centre_needs_the_manage_cookie(offered):
    assert Client().post(MANAGE + "topics/", {"topics": ["news"]}).status_code == 410


def test_withdrawing_all_consent_leaves_every_topic(member):
    member.post(MANAGE + "withdraw/")
    assert all(m.withdrawn_at is not None for m in _memberships().values())
    assert _topic_events("withdrawn") == ["events", "news"]
    member.post(MANAGE + "topics/", {"topics": ["news"]})  # consent withdrawn: nothing can be joined
    assert _memberships()["news"].withdrawn_at is not None


def test_a_topics_unsubscribe_link_leaves_that_topic_only(member, offered):
    signup = _row()
    headers = topics.list_unsubscribe_headers(signup, offered["news"])
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = re.fullmatch(r"<(https?://[^>]+)>", headers["List-Unsubscribe"]).group(1)
    path = "/" + url.split("/", 3)[3]
    page = Client().get(path)  # a mail scanner opening it changes nothing
    assert page.status_code == 200 and page["Referrer-Policy"] == "no-referrer" and "News [en]" in page.content.decode()
    assert _memberships()["news"].withdrawn_at is None
    done = Client(enforce_csrf_checks=True).post(path, {"List-Unsubscribe": "One-Click"})  # RFC 8058, no cookie
    assert done.status_code == 200
    held = _memberships()
    assert held["news"].withdrawn_at is not None and held["events"].withdrawn_at is None
    assert _row().withdrawn_at is None and _row().consent  # the person's other consent stays
    assert Client().post(path).status_code == 200  # again: nothing more to do, same page
    assert _topic_events("withdrawn") == ["news"]


def test_a_bad_or_erased_persons_topic_link_opens_nothing(member, offered):
    signup = _row()
    path = "/" + topics.unsubscribe_url(signup, offered["news"]).split("/", 3)[3]
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA/") else "BBB") + "/"
    assert Client().post(tampered).status_code == 400
    other = tokens._signer(tokens.UNSUBSCRIBE, False).sign_object([signup.pk, "x", offered["news"].pk])
    assert Client().post(f"/my-data/unsubscribe/topic/{other}/").status_code == 400  # another purpose's signer
    erase_signup(signup.pk)
    assert Client().post(path).status_code == 400


def test_erasure_deletes_memberships_and_keeps_the_ledger_without_ips(member):
    erase_signup(_row().pk)
    assert not SignupTopic.objects.using("default").exists()
    events = ConsentEvent.objects.using("default").filter(topic__isnull=False)
    assert events.count() == 4 and not events.exclude(ip=None).exists()


def test_the_json_download_holds_the_topics_and_the_ledgers_topic(member):
    data = json.loads(member.post(MANAGE + "download/").content)
    assert sorted(t["key"] for t in data["topics"]) == ["events", "news"]
    assert all(t["confirmed_at"] and t["withdrawn_at"] is None for t in data["topics"])
    assert sorted(e["topic"] for e in data["consent_ledger"] if e["topic"]) == ["events", "events", "news", "news"]
    assert set(data["consent_ledger"][0]) == {"kind", "at", "wording_version", "ip", "topic"}


def test_a_topic_filtered_export_holds_its_members_with_their_unsubscribe_url(member, offered, pg):
    Signup.objects.create(full_name="Not In", email="out@example.com", consent=True, confirmed_at=_row().confirmed_at)
    member.post(MANAGE + "topics/", {"topics": ["news"]})
    pg.wait_for_replica()
    sample_replicas()
    staff = login_staff("exporter", "view_signup", "export_signup", client=Client())
    listed = staff.get("/admin/users/signup/?topic=news").content.decode()
    assert "ada@example.com" in listed and "out@example.com" not in listed
    assert "ada@example.com" not in staff.get("/admin/users/signup/?topic=events").content.decode()
    response = staff.post("/admin/users/signup/export-csv/?topic=news", {"scope": "contactable"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert [r["email"] for r in rows] == ["ada@example.com"]
    path = "/" + rows[0]["unsubscribe_url"].split("/", 3)[3]
    assert Client().post(path).status_code == 200
    assert _memberships()["news"].withdrawn_at is not None


def test_the_topic_list_counts_members_by_state(member, offered, staff_client):
    staff = staff_client
    member.post(MANAGE + "topics/", {"topics": ["news"]})
    Signup.objects.create(full_name="Pending", email="p@example.com", consent=True)
    SignupTopic.objects.create(signup=Signup.objects.get(email="p@example.com"), topic=offered["news"])
    page = staff.get("/admin/formdef/topic/").content.decode()
    news = re.search(r"<tr[^>]*>(?:(?!</tr>).)*>news<(?:(?!</tr>).)*</tr>", page, re.S).group(0)
    cells = re.findall(r'class="field-(confirmed|unconfirmed|withdrawn)">(\d+)<', news)
    assert dict(cells) == {"confirmed": "1", "unconfirmed": "1", "withdrawn": "0"}
    events = re.search(r"<tr[^>]*>(?:(?!</tr>).)*>events<(?:(?!</tr>).)*</tr>", page, re.S).group(0)
    assert dict(re.findall(r'class="field-(confirmed|unconfirmed|withdrawn)">(\d+)<', events))["withdrawn"] == "1"


def test_the_api_lists_a_topics_members_and_shows_each_persons_topics(member, offered, pg):
    from tests.api.test_api import make_key

    auth = {"HTTP_AUTHORIZATION": f"Bearer {make_key()}"}
    member.post(MANAGE + "topics/", {"topics": ["news"]})
    Signup.objects.create(full_name="Not In", email="out@example.com")
    pg.wait_for_replica()
    sample_replicas()
    api = Client()
    everyone = api.get("/api/v1/signups", **auth).json()["items"]
    assert len(everyone) == 2
    ada = next(p for p in everyone if p["email"] == "ada@example.com")
    assert {t["key"]: bool(t["withdrawn_at"]) for t in ada["topics"]} == {"news": False, "events": True}
    assert [p["email"] for p in api.get("/api/v1/signups", {"topic": "news"}, **auth).json()["items"]] == [
        "ada@example.com"
    ]
    assert api.get("/api/v1/signups", {"topic": "events"}, **auth).json()["items"] == []
    assert api.get("/api/v1/signups", {"topic": "<b>"}, **auth).status_code == 422


def test_the_landing_page_counts_a_topics_members(member, offered, pg):
    pg.wait_for_replica()
    sample_replicas()
    page = Client().get("/?topic=news", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "1 personne a rejoint « News [fr] »." in page
    assert 'data-testid="topic-count"' not in Client().get("/?topic=partners").content.decode()  # hidden
    assert Client().get("/?topic=" + "x" * 500).status_code == 200


def test_switching_language_keeps_the_ticked_topics(client, offered):
    typed = {"language": "de", "next": "/signup/", "email": "a@example.com", "full_name": "A", "topics": ["events"]}
    page = client.post("/language/", typed).content.decode()
    assert "Events [de]" in page
    assert re.search(r'value="events"[^>]*checked', page) and not re.search(r'value="news"[^>]*checked', page)


def test_the_orm_path_of_local_mode_stores_the_same_topics(offered):
    from datetime import timedelta

    from users.signup_store import _orm

    chosen = [(offered["news"].pk, "news:en:1234abcd"), (10**12, "gone:en:00000000")]  # a topic gone: skipped
    signup = Signup(full_name="Ada", email="ada@example.com", consent=True, consent_version="v1")
    assert _orm(signup, ip="192.0.2.7", notice_after=timedelta(hours=1), using="default", topics=chosen)
    assert {k: m.wording_version for k, m in _memberships().items()} == {"news": "news:en:1234abcd"}
    assert _topic_events("given") == ["news"]


def test_the_statement_skips_a_topic_gone_since_the_form_was_shown(offered):
    from datetime import timedelta

    from users import signup_store

    chosen = [(offered["events"].pk, "events:de:1234abcd"), (10**12, "gone:de:00000000")]
    signup = Signup(full_name="Ada", email="ada@example.com", consent=True, consent_version="v1")
    assert signup_store.store(signup, ip="192.0.2.7", notice_after=timedelta(hours=1), topics=chosen)
    assert set(_memberships()) == {"events"} and _topic_events("given") == ["events"]


def test_a_topic_filtered_xlsx_ends_with_the_unsubscribe_url(member, offered, pg):
    from tests.users.test_xlsx import NS, _cells

    pg.wait_for_replica()
    sample_replicas()
    staff = login_staff("exporter", "view_signup", "export_signup", client=Client())
    response = staff.post("/admin/users/signup/export-csv/?topic=events", {"scope": "contactable", "format": "xlsx"})
    header, row = _cells(b"".join(response.streaming_content))
    assert header[-1].find("m:is/m:t", NS).text == "unsubscribe_url"
    url = row[-1].find("m:is/m:t", NS).text
    assert "/my-data/unsubscribe/topic/" in url
    assert Client().post("/" + url.split("/", 3)[3]).status_code == 200
    assert _memberships()["events"].withdrawn_at is not None and _memberships()["news"].withdrawn_at is None


def test_a_full_webhook_payload_carries_the_topics_a_thin_one_does_not(member):
    from api import payloads
    from api.models import Event

    event = Event.objects.using("default").filter(type=Event.CONFIRMED).get()
    full = json.loads(payloads.body(event, full=True, using="default"))
    assert sorted(t["key"] for t in full["data"]["topics"]) == ["events", "news"]
    assert all(t["confirmed_at"] for t in full["data"]["topics"])
    assert "topics" not in json.loads(payloads.body(event, full=False, using="default"))["data"]


def test_staff_see_the_persons_topics_and_the_ledgers_topic_on_the_record(member, staff_client):
    page = staff_client.get(f"/admin/users/signup/{_row().pk}/change/").content.decode()
    assert "news:en:" in page and "events:en:" in page  # the memberships' wording versions
    ledger = page[page.index("Consent ledger") :]
    assert ledger.count(">news<") >= 2 and ledger.count(">events<") >= 2  # given + confirmed, each naming its topic


def test_the_purge_of_unconfirmed_signups_deletes_their_memberships_too(client, offered):
    from users import retention

    sign_up(client, topics=["news", "events"])
    assert retention._delete("default", [_row().pk]) == 1  # rule 1's deletion (CASCADE, ORM-collected)
    assert not SignupTopic.objects.using("default").exists() and not ConsentEvent.objects.using("default").exists()


def test_the_api_signs_up_into_public_and_hidden_topics_and_refuses_unknown_ones(offered):
    from tests.api.test_api import make_key

    auth = {"HTTP_AUTHORIZATION": f"Bearer {make_key()}"}
    person = {"full_name": "Ada", "email": "ada@example.com", "consent": True, "language": "de"}
    bad = Client().post("/api/v1/signups", json.dumps({**person, "topics": ["news", "nope"]}),
                        content_type="application/json", **auth)  # fmt: skip
    assert bad.status_code == 422 and "not a topic: nope" in bad.content.decode()
    assert not Signup.objects.using("default").exists()
    ok = Client().post("/api/v1/signups", json.dumps({**person, "topics": ["partners", "news", "news"]}),
                       content_type="application/json", **auth)  # fmt: skip
    assert ok.status_code == 202
    held = _memberships()
    assert set(held) == {"partners", "news"} and held["partners"].wording_version.startswith("partners:de:")


ODD_TOKENS = ["", "a", "x:y:z", "..", "%00", "%ff%fe", "eyJ9" * 200, "\u202e", "W10:1a:" + "A" * 43, ".eJwLdXH1",
              "[1,2,3]", "%2F%2F", "1:2:3:4:5"]  # fmt: skip


@pytest.mark.parametrize("token", ODD_TOKENS)
def test_any_topic_link_is_a_4xx_never_a_5xx(offered, token):
    for method in ("get", "post", "put"):
        response = getattr(Client(), method)(f"/my-data/unsubscribe/topic/{token}/")
        assert 400 <= response.status_code < 500, (method, token, response.status_code)


def test_odd_preference_posts_change_nothing_and_are_never_a_5xx(member):
    for body in ({"topics": ["\x00", "x" * 10000, "news\u202e"]}, {"topics": []}, {"other": "1"}):
        assert member.post(MANAGE + "topics/", body).status_code == 302
    assert all(m.withdrawn_at is not None for m in _memberships().values())  # the last post left both topics
    assert sorted(_memberships()) == ["events", "news"]
