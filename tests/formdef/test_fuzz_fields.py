"""Hostile answers to the fields staff added, over HTTP: no 5xx, nothing undefined or invalid stored.

A form with a field of every kind is published; hypothesis posts signups to the real app under gunicorn with
fuzzed answers (tricky text, numbers out of range or not numbers, choices not offered, dates that are not,
repeated values, questions the form does not ask), fuzzed or forged form versions and several encodings.
Afterwards every stored row's answers are checked against the version it names: only defined keys, and
re-validated by that version they come back unchanged.

FUZZ_EXAMPLES sets the number of requests (default 300; the issue's figure is FUZZ_EXAMPLES=3000).
"""

from __future__ import annotations

import itertools
import os
import urllib.parse

import pytest
from django.utils.datastructures import MultiValueDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devenv.servers import AppServer
from formdef import formfields, published
from tests.conftest import OUTPUT, SERVICES
from tests.formdef.fields import define
from tests.project.test_fuzz import TRICKY, Target
from users.forms import SignupForm
from users.models import Signup

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.slow]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
EMAILS = itertools.count()  # each signup its own address (hypothesis would repeat small numbers)

tricky = st.one_of(
    st.text(max_size=30),
    st.lists(st.sampled_from(TRICKY), max_size=20).map("".join),
    st.builds(lambda ch, n: ch * n, st.sampled_from(["\u0958", "a", " "]), st.integers(30, 60)),
)
NOT_NUMBERS = ["1e3", "1E400", "NaN", "inf", "-0", "12.1234567", "0x10", "\uff11\uff12", "", " 7 ", "1_000"]
numbers = st.one_of(st.integers(-10, 600).map(str), st.sampled_from(NOT_NUMBERS), tricky)
dates = st.one_of(st.dates().map(str), st.sampled_from(["1990-02-30", "0000-01-01", "2026-13-01", "28/02/1990",
                                                        "", "1990-2-3", "99999-01-01"]), tricky)  # fmt: skip
choices = st.one_of(st.sampled_from(["press", "friend", "web", "PRESS", "", "news"]), tricky)
answers = st.fixed_dictionaries(
    {},
    optional={
        "f_company": st.one_of(st.sampled_from(["ACME", "Zoë & Co", "x" * 41]), tricky),
        "f_seats": numbers,
        "f_source": st.one_of(choices, st.lists(choices, max_size=3)),
        "f_interests": st.lists(st.one_of(st.sampled_from(["news", "events", "jobs"]), choices), max_size=5),
        "f_member": st.one_of(st.sampled_from(["yes", "no", "", "true", "on", "1"]), tricky),
        "f_born": dates,
        "f_salary": tricky,  # not on the form
        "f_": tricky,
    },
)


# What a person could send: the right version, answers mostly valid (a typed mistake now and then).
plausible = st.fixed_dictionaries(
    {"f_company": st.one_of(st.sampled_from(["ACME", "Zoë & Co", "李小龙 GmbH", "O'Neil\u200dLtd"]), tricky)},
    optional={
        "f_seats": st.one_of(st.integers(1, 500).map(str), st.decimals(1, 500, places=3).map(str), numbers),
        "f_source": st.sampled_from(["press", "friend", "web"]),
        "f_interests": st.lists(st.sampled_from(["news", "events", "jobs"]), max_size=4),
        "f_member": st.sampled_from(["yes", "no"]),
        "f_born": st.one_of(st.dates().map(str), dates),
    },
)


@st.composite
def requests(draw, version: int) -> dict:
    """Half are signups a person could send (with tricky values now and then), half anything at all."""
    pairs = [("full_name", draw(st.sampled_from(["Ada Lovelace", "Zoë Ó Briain", "محمد"]))),
             ("email", f"p{next(EMAILS)}@example.com"), ("consent", "on")]  # fmt: skip
    person = draw(st.booleans())
    form_version = str(version) if person else draw(st.one_of(
        st.just(str(version)), st.sampled_from(["", "0", "-1", "999999", "1" * 30, "\u0661"]), tricky))  # fmt: skip
    pairs.append(("form_version", form_version))
    for name, value in draw(plausible if person else answers).items():
        pairs += [(name, v) for v in value] if isinstance(value, list) else [(name, value)]
    multipart = draw(st.integers(0, 4)) == 0
    encoding = "utf-8" if person else draw(st.sampled_from(["utf-8"] * 4 + ["latin-1", "utf-16"]))
    errors = "replace" if encoding == "latin-1" else "surrogatepass"
    if multipart:
        body = "".join(f'--fuzzboundary\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n' for n, v in pairs)
        body = (body + "--fuzzboundary--\r\n").encode(encoding, errors=errors)
        content_type = "multipart/form-data; boundary=fuzzboundary"
    else:
        body = urllib.parse.urlencode(pairs, encoding=encoding, errors=errors).encode("ascii")
        content_type = "application/x-www-form-urlencoded"
    return {"method": "POST", "path": "/signup/", "body": body, "headers": {"Content-Type": content_type},
            "extra": {"X-Forwarded-For": f"192.0.2.{draw(st.integers(1, 254))}"}, "keep_csrf": True}  # fmt: skip


@pytest.fixture(scope="module")
def fields_app(django_db_setup):
    OUTPUT.mkdir(exist_ok=True)
    env = {**SERVICES.environ(), "SIGNUP_RATE_LIMIT": "100000/600", "LOG_LEVEL": "WARNING",
           "TRUSTED_PROXY_COUNT": "1"}  # fmt: skip
    app = AppServer(env=env, workers=2, threads=4)
    app.start(log=OUTPUT / "fuzz-fields-gunicorn.log")
    yield app
    app.stop()


def test_fuzzed_answers_never_get_a_5xx_and_nothing_undefined_or_invalid_is_stored(fields_app):
    version = define()
    target = Target(fields_app)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              phases=["generate"])  # fmt: skip
    @given(requests(version.id))
    def one_request(req):
        target.send(req)

    one_request()
    rows = list(Signup.objects.using("default").values("id", "answers", "form_version"))
    invalid = [(row, problems) for row in rows if (problems := _violations(row))]
    total = sum(target.statuses.values())
    summary = (
        f"fuzz (fields): {total} requests, 5xx {sum(n for s, n in target.statuses.items() if s >= 500)}, "
        f"statuses {dict(sorted(target.statuses.items()))}, rows stored {len(rows)}, "
        f"with answers {sum(1 for r in rows if r['answers'])}, invalid rows {len(invalid)}"
    )
    print("\n" + summary)
    (OUTPUT / "fuzz-fields-summary.txt").write_text(summary + "\n" + "\n".join(map(repr, target.failures[:20])))
    assert total == EXAMPLES
    assert not target.failures, f"{len(target.failures)} requests got a 5xx, first: {target.failures[:3]}"
    assert not invalid, f"stored answers the form would refuse: {invalid[:3]}"
    assert sum(1 for r in rows if len(r["answers"]) >= 3), "the fuzzer never stored a signup with answers"


def _violations(row: dict) -> list[str]:
    """Return how a row's answers break the version it names: re-validated, they must come back unchanged."""
    definition = published.get(row["form_version"]) if row["form_version"] is not None else None
    if definition is None:
        return [f"unknown form version {row['form_version']}"]
    undefined = [key for key in row["answers"] if definition.field(key) is None]
    if undefined:
        return [f"undefined answers {undefined}"]
    data = MultiValueDict({"full_name": ["Ada"], "email": ["ada@example.com"], "consent": ["on"]})
    for key, value in row["answers"].items():
        posted = ("yes" if value else "no") if isinstance(value, bool) else value
        data.setlist(formfields.PREFIX + key, [str(v) for v in posted] if isinstance(posted, list) else [str(posted)])
    form = SignupForm(data, definition=definition)
    if not form.is_valid():
        return [f"{name}: {errors}" for name, errors in form.errors.items()]
    again = formfields.answers(definition, form.cleaned_data)
    return [] if again == row["answers"] else [f"changes when cleaned again: {again}"]
