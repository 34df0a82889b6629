"""The signups list stays cheap at any size: no full count, indexed search and filters, reads on the replica."""

import datetime as dt
import re

import pytest
from django.contrib.admin.templatetags import admin_list
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.helpers import sample_replicas
from users.admin import SignupPaginator
from users.models import Signup

pytestmark = pytest.mark.usefixtures("live_db")

URL = "/admin/users/signup/"


def _signups(pg, n: int, **fields) -> list[Signup]:
    now = timezone.now()
    rows = Signup.objects.bulk_create(
        Signup(**{"full_name": f"Person {i}", "email": f"p{i}-{fields.get('country', '')}@example.com",
                  "created_at": now - dt.timedelta(minutes=i), **fields})
        for i in range(n)
    )  # fmt: skip
    with connections["default"].cursor() as cursor:
        cursor.execute("ANALYZE users_signup")  # what autovacuum (or seed_signups) does: fresh statistics
    pg.wait_for_replica()
    sample_replicas()
    return rows


def _count_text(response) -> str:
    paginator = re.search(r'<p class="paginator">(.*?)</p>', response.content.decode(), re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", " ", paginator).split())


def _signup_queries(captured) -> list[str]:
    return [q["sql"] for q in captured if "users_signup" in q["sql"] and not _status_count(q["sql"])]


def _status_count(sql: str) -> bool:
    """The status filter's count of one status: capped (LIMIT), read from users_signup_status_idx."""
    return bool(re.search(r'WHERE "users_signup"."status" = \'\w+\' LIMIT \d+\) subquery$', sql))


def test_the_status_counts_are_capped_index_reads(staff_client, pg, monkeypatch):
    monkeypatch.setattr(SignupPaginator, "exact_limit", 3)
    _signups(pg, 7, consent=True)
    with CaptureQueriesContext(connections["replica1"]) as replica:
        staff_client.get(URL)
    counts = [q["sql"] for q in replica.captured_queries if _status_count(q["sql"])]
    assert len(counts) == 6 and all(sql.endswith("LIMIT 4) subquery") for sql in counts)
    plan = _plan(Signup.objects.filter(status="confirmed").order_by()[:4], "enable_seqscan")
    assert "users_signup_status_idx" in plan, plan


def test_unfiltered_list_shows_an_estimate_and_never_counts_the_table(staff_client, pg, monkeypatch):
    monkeypatch.setattr(SignupPaginator, "exact_limit", 3)  # a "big" table without seeding a million rows
    _signups(pg, 7)
    with CaptureQueriesContext(connections["replica1"]) as replica:
        response = staff_client.get(URL)
    assert response.status_code == 200
    assert _count_text(response).endswith("about 7 signups")
    assert len(response.context["cl"].result_list) == 7
    assert not [sql for sql in _signup_queries(replica.captured_queries) if "COUNT(" in sql.upper()]
    assert any("pg_class" in q["sql"] for q in replica.captured_queries)  # the estimate, from statistics


def test_small_and_filtered_lists_are_counted_exactly(staff_client, pg):
    _signups(pg, 3, country="GB")
    _signups(pg, 2, country="FR")
    assert _count_text(staff_client.get(URL)) == "5 signups"  # below the estimate threshold: exact
    assert _count_text(staff_client.get(URL, {"country__exact": "FR"})) == "2 signups"
    assert _count_text(staff_client.get(URL, {"q": "Person 1"})) == "2 signups"


def test_filtered_count_stops_at_the_cap(staff_client, pg, monkeypatch):
    monkeypatch.setattr(SignupPaginator, "exact_limit", 3)
    _signups(pg, 5, country="GB")
    with CaptureQueriesContext(connections["replica1"]) as replica:
        response = staff_client.get(URL, {"country__exact": "GB"})
    assert _count_text(response).endswith("more than 3 signups")
    counts = [sql for sql in _signup_queries(replica.captured_queries) if "COUNT(" in sql.upper()]
    assert len(counts) == 1 and "LIMIT 4" in counts[0]  # one count, which stops reading after the cap


def test_a_search_is_counted_only_to_the_pages_so_far_and_one_row_beyond(staff_client, pg, monkeypatch):
    from users.admin import SignupAdmin

    monkeypatch.setattr(SignupAdmin, "list_per_page", 3)
    _signups(pg, 7)  # "Person 0" … "Person 6"
    with CaptureQueriesContext(connections["replica1"]) as replica:
        first = staff_client.get(URL, {"q": "person"})
    assert _count_text(first).startswith("1 2") and _count_text(first).endswith("more than 3 signups")
    counts = [sql for sql in _signup_queries(replica.captured_queries) if "COUNT(" in sql.upper()]
    assert len(counts) == 1 and "LIMIT 4" in counts[0] and "ORDER BY" in counts[0]  # the page's own index walk
    second = staff_client.get(URL, {"q": "person", "p": "2"})
    assert _count_text(second).endswith("more than 6 signups")
    assert [s.full_name for s in second.context["cl"].result_list] == ["Person 3", "Person 4", "Person 5"]
    last = staff_client.get(URL, {"q": "person", "p": "3"})
    assert _count_text(last) == "1 2 3 7 signups Show all"  # counted exactly: may be shown on one page
    assert [s.full_name for s in last.context["cl"].result_list] == ["Person 6"]
    everything = staff_client.get(URL, {"q": "person", "all": ""}).context["cl"]
    assert len(everything.result_list) == 7 and everything.paginator.count_label == "7"


def test_changelist_reads_only_from_the_replica(staff_client, pg):
    _signups(pg, 3)
    with (
        CaptureQueriesContext(connections["replica1"]) as replica,
        CaptureQueriesContext(connections["default"]) as primary,
    ):
        for params in ({}, {"q": "person"}, {"country__exact": "GB", "consent__exact": "0"}):
            assert staff_client.get(URL, params).status_code == 200
    assert len(_signup_queries(replica.captured_queries)) >= 6  # each page: its count and its rows
    assert _signup_queries(primary.captured_queries) == []


def _plan(queryset, *settings: str) -> str:
    """EXPLAIN a changelist query on the replica with some planner choices switched off."""
    connection = connections["replica1"]
    with connection.cursor() as cursor:
        for setting in settings:
            cursor.execute(f"SET {setting} = off")
    try:
        return queryset.using("replica1").explain()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ALL")


@pytest.mark.parametrize(
    ("params", "indexes"),
    [
        ({}, {"created"}),
        ({"country__exact": "GB"}, {"country"}),
        ({"consent__exact": "1"}, {"consent"}),
        ({"created_at__gte": "2026-01-01 00:00:00+00:00", "created_at__lt": "2026-02-01 00:00:00+00:00"}, {"created"}),
        ({"country__exact": "GB", "consent__exact": "1"}, {"country", "consent"}),
    ],
)
def test_every_page_is_read_in_order_from_its_filters_index(staff_client, pg, params, indexes):
    _signups(pg, 3, country="GB")
    page = staff_client.get(URL, params).context["cl"].result_list  # SELECT ... ORDER BY ... LIMIT 50
    plan = _plan(page, "enable_seqscan")
    # Newest first straight from the index, no sort: the page stops after 50 rows whatever the table size.
    assert "Sort" not in plan, plan
    assert any(f"Index Scan Backward using users_signup_{name}_idx" in plan for name in indexes), plan
    assert ("Index Cond" in plan) == bool(params), plan


def test_search_uses_the_trigram_indexes_on_the_admins_exact_expression(staff_client, pg):
    _signups(pg, 3)
    matches = staff_client.get(URL, {"q": "person 1"}).context["cl"].queryset.order_by()
    plan = _plan(matches, "enable_seqscan", "enable_indexscan")
    assert "users_signup_name_trgm" in plan and "users_signup_email_trgm" in plan, plan


def test_country_filter_is_one_select_that_keeps_the_other_filters(staff_client, pg):
    _signups(pg, 1, country="GB")
    page = staff_client.get(URL, {"consent__exact": "0", "q": "person"}).content.decode()
    assert '<select name="country__exact"' in page
    assert '<input type="hidden" name="consent__exact" value="0">' in page
    assert '<input type="hidden" name="q" value="person">' in page
    assert page.count("<option") > 200  # every country, without 250 links to build
    assert '<option selected value="GB">' in staff_client.get(URL, {"country__exact": "GB"}).content.decode()


def test_facet_counts_cannot_be_switched_on(staff_client, pg):
    _signups(pg, 2)
    with CaptureQueriesContext(connections["replica1"]) as replica:
        staff_client.get(URL, {"_facets": "True"})
    assert not [sql for sql in _signup_queries(replica.captured_queries) if "FILTER (WHERE" in sql]


def test_only_the_indexed_column_is_sortable(staff_client, pg):
    _signups(pg, 2)
    page = staff_client.get(URL).content.decode()
    assert 'class="sortable' in page
    assert page.count('class="sortable') == 1  # created_at; ordering by name would sort a million rows


def test_the_fast_table_is_exactly_what_the_admin_would_render(staff_client, pg):
    _signups(pg, 2, country="GB", consent=True)
    _signups(pg, 1, full_name="", email="erased-1@invalid")  # erased: blank name, no country
    for params, rows in (({}, 3), ({"country__exact": "GB"}, 2), ({"o": "4"}, 3)):  # o=4: oldest first
        cl = staff_client.get(URL, params).context["cl"]
        assert cl.result_table is not None
        stock = [list(row) for row in admin_list.results(cl)]
        assert len(stock) == rows
        assert cl.result_table["results"] == stock
        assert cl.result_table["result_headers"] == list(admin_list.result_headers(cl))


def test_the_list_says_the_time_zone_of_each_signup_time(staff_client, pg):
    _signups(pg, 2)
    page = staff_client.get(URL).content.decode()
    cells = re.findall(r'<td class="field-created_at_shown">([^<]+)</td>', page)
    assert len(cells) == 2 and all(cell.endswith(" UTC") for cell in cells), cells
    assert "Signed up at" in page and page.count('class="sortable') == 1  # still sortable by its index


def test_a_whole_address_is_found_through_the_unique_index_not_a_substring_search(staff_client, pg):
    _signups(pg, 3)
    Signup.objects.create(full_name="Other", email="xp1-@example.com")  # contains "p1-@example.com"
    pg.wait_for_replica()
    cl = staff_client.get(URL, {"q": " P1-@Example.com "}).context["cl"]
    assert [s.email for s in cl.result_list] == ["p1-@example.com"]  # that person only, case ignored
    plan = _plan(cl.queryset.order_by(), "enable_seqscan")
    assert "users_signup_email_ci_unique" in plan and "trgm" not in plan, plan
    assert len(staff_client.get(URL, {"q": "p1-@example"}).context["cl"].result_list) == 2  # a fragment: substring
