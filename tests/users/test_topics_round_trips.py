"""A signup POST choosing two topics is still one statement on the primary (pg_stat_statements counts it).

The app server is test_round_trips.py's (its own database role, so only its statements are counted).
"""

import time
import urllib.parse
import urllib.request

import pytest

from formdef import published
from tests.formdef.fields import fresh_version_ids
from tests.helpers import statement_counts
from tests.users.test_round_trips import COUNTED_ROLE, TOKEN, _monitor_settled, _NoRedirect, counted_app  # noqa: F401
from tests.users.test_topics import _topic
from users.models import ConsentEvent, SignupTopic

pytestmark = pytest.mark.usefixtures("live_db")
POSTS = 20


def _post(app, n: int, prefix: str, version: int) -> int:
    body = urllib.parse.urlencode([("csrfmiddlewaretoken", TOKEN), ("full_name", f"Person {n}"), ("consent", "on"),
                                   ("form_version", version),
                                   ("email", f"{prefix}-{n}@example.com"), ("topics", "news"),
                                   ("topics", "events")]).encode()  # fmt: skip
    headers = {"Cookie": f"csrftoken={TOKEN}", "Connection": "close", "X-Forwarded-For": f"203.0.113.{n + 1}"}
    req = urllib.request.Request(app.url + "/signup/", data=body, headers=headers)
    try:
        urllib.request.build_opener(_NoRedirect()).open(req, timeout=10)
    except urllib.error.HTTPError as reply:
        reply.close()
        return reply.status
    return 200


def test_a_signup_post_with_two_topics_is_one_statement_on_the_primary(counted_app, pg):  # noqa: F811
    # The session's app servers keep versions they read by id, and each test's flush restarts the ids.
    fresh_version_ids()
    _topic("news", 0), _topic("events", 1)
    version = published.publish("staff")
    deadline = time.monotonic() + 15  # the app looks at the current version at most once a second
    while 'value="events"' not in urllib.request.urlopen(counted_app.url + "/signup/", timeout=10).read().decode():
        assert time.monotonic() < deadline, "the app never served the published topics"
        time.sleep(0.3)
    for n in range(3):  # warm up: connections made, the version read, statements prepared
        assert _post(counted_app, n, "warm-topics", version.id) == 302
    _monitor_settled(pg)
    statement_counts(pg, reset=True)
    statuses = [_post(counted_app, n, "topics", version.id) for n in range(POSTS)]
    per_post = statement_counts(pg, role=COUNTED_ROLE)
    print(f"\nprimary statements for {POSTS} POSTs with two topics: {list(per_post.values())}")
    assert statuses == [302] * POSTS
    assert list(per_post.values()) == [POSTS]
    statement = next(iter(per_post))
    assert statement.startswith("WITH s AS (INSERT INTO users_signup") and "INSERT INTO users_signuptopic" in statement
    assert SignupTopic.objects.filter(signup__email__startswith="topics-").count() == 2 * POSTS
    assert ConsentEvent.objects.filter(signup__email__startswith="topics-", topic__isnull=False).count() == 2 * POSTS
