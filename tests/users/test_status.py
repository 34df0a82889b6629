"""One status per person, computed by the database: the admin's column, filter and counts, and the exports.

Contactable (confirmed, consenting, not withdrawn, bounced or erased) is every export's default; "all records"
is an explicit choice; erased rows are never exported.
"""

import csv
import io
import re

import pytest
from django.utils import timezone

from tests.helpers import login_staff, sample_replicas
from users.erasure import erase_signup
from users.models import Signup

pytestmark = pytest.mark.usefixtures("live_db")

LIST = "/admin/users/signup/"
EXPORT = "/admin/users/signup/export/"


@pytest.fixture
def people(pg):
    """One person in each status; returns {status: row}."""
    now = timezone.now()

    def make(name: str, **fields) -> Signup:
        fields = {"consent": True, "consent_at": now, **fields}
        return Signup.objects.create(full_name=name, email=f"{name.lower()}@example.com", **fields)

    rows = {
        "confirmed": make("Confirmed", confirmed_at=now),
        "unconfirmed": make("Unconfirmed"),
        "withdrawn": make("Withdrawn", confirmed_at=now, withdrawn_at=now, consent=False),
        "blocked": make("Bounced", confirmed_at=now, email_blocked_at=now, email_blocked_reason="bounce"),
        "no_consent": make("Legacy", consent=False, consent_at=None, confirmed_at=now),
        "erased": make("Erased", confirmed_at=now),
    }
    erase_signup(rows["erased"].pk)
    pg.wait_for_replica()
    sample_replicas()
    return rows


def test_each_person_has_exactly_one_status_computed_by_the_database(people):
    stored = dict(Signup.objects.using("default").values_list("full_name", "status"))
    assert stored == {"Confirmed": "confirmed", "Unconfirmed": "unconfirmed", "Withdrawn": "withdrawn",
                      "Bounced": "blocked", "Legacy": "no_consent", "": "erased"}  # fmt: skip
    assert list(Signup.objects.using("default").contactable().values_list("full_name", flat=True)) == ["Confirmed"]
    assert Signup.objects.using("default").not_erased().count() == 5


def test_a_status_follows_the_row_when_it_changes(people):
    row = people["unconfirmed"]
    Signup.objects.filter(pk=row.pk).update(confirmed_at=timezone.now())
    assert Signup.objects.using("default").get(pk=row.pk).status == "confirmed"
    Signup.objects.filter(pk=row.pk).update(email_blocked_at=timezone.now())
    assert Signup.objects.using("default").get(pk=row.pk).status == "blocked"


def test_the_list_shows_a_status_column_and_a_filter_with_counts(client, people):
    staff = login_staff("viewer", "view_signup", client=client)
    page = staff.get(LIST).content.decode()
    cells = dict(re.findall(r'<a href="[^"]+">([^<]*)</a></th><td class="field-email">[^<]*</td>'
                            r'<td class="field-status">([^<]+)</td>', page))  # fmt: skip
    assert cells["Confirmed"] == "confirmed" and cells["Bounced"] == "bounced or complained"
    assert cells["Legacy"] == "never consented" and cells["-"] == "erased"
    for label in ("confirmed (1)", "unconfirmed (1)", "withdrawn (1)", "bounced or complained (1)",
                  "never consented (1)", "erased (1)"):  # fmt: skip
        assert label in page, label
    filtered = staff.get(LIST, {"status": "withdrawn"}).context["cl"].result_list
    assert [s.full_name for s in filtered] == ["Withdrawn"]


def test_the_status_counts_are_capped_like_the_lists_count(client, people, monkeypatch):
    from users.admin import SignupPaginator

    monkeypatch.setattr(SignupPaginator, "exact_limit", 0)
    page = login_staff("viewer", "view_signup", client=client).get(LIST).content.decode()
    assert "confirmed (0+)" in page and "erased (0+)" in page


def _rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_the_default_export_holds_exactly_the_contactable_people(client, people):
    staff = login_staff("exporter", "view_signup", "export_signup", client=client)
    rows = _rows(staff.post(EXPORT))  # no choice made: contactable
    assert [(r["full_name"], r["status"]) for r in rows] == [("Confirmed", "confirmed")]
    everyone = _rows(staff.post(EXPORT, {"scope": "all"}))
    assert {r["status"] for r in everyone} == {"confirmed", "unconfirmed", "withdrawn", "blocked", "no_consent"}
    assert not [r for r in everyone if r["email"].endswith("@invalid")]  # erased: never exported
    assert _rows(staff.post(EXPORT + "?status=erased", {"scope": "all"})) == []


def test_the_record_names_the_language_states_time_zones_and_has_no_typing_hints(client, people):
    row = people["confirmed"]
    Signup.objects.filter(pk=row.pk).update(language="de", phone="+442079460958")
    page = login_staff("viewer", "view_signup", client=client).get(f"{LIST}{row.pk}/change/").content.decode()
    assert "German (de)" in page
    assert "E.164" not in page  # the phone's help text is for typing, and nothing is typed here
    assert re.search(r"Signed up at:</label>\s*<div class=\"readonly\">[^<]+ UTC</div>", page)
    assert '<div class="readonly">confirmed</div>' in page  # the status, first
