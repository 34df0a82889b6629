"""`manage.py seed_signups`: fast realistic fake data, and it refuses anything that looks like production."""

import io
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from users.management.commands.seed_signups import EXAMPLE_DOMAINS
from users.models import Signup

pytestmark = pytest.mark.usefixtures("live_db")


def _seed(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_signups", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_seeds_realistic_rows_with_a_progress_bar_and_a_summary():
    out, err = _seed("--count", "1200", "--batch", "500", "--seed", "1")
    rows = Signup.objects.using("default")
    assert rows.count() == 1200
    assert "[" in err and "1,200/1,200 rows" in err  # the progress bar, on stderr
    assert out.startswith("Seeded 1,200 signups in ") and out.count("\n") == 1  # one summary line
    emails = list(rows.values_list("email", flat=True))
    assert len({e.lower() for e in emails}) == 1200
    assert all(e.endswith(EXAMPLE_DOMAINS) for e in emails)  # nobody real can ever be mailed
    assert rows.filter(consent=True).exists() and rows.filter(consent=False).exists()
    assert rows.exclude(country="").values("country").distinct().count() > 5
    assert not rows.filter(consent=True, consent_at__isnull=True).exists()
    assert rows.filter(ip_address__contains=":").exists()  # some IPv6 clients too
    newest = rows.order_by("-created_at").values_list("id", flat=True)[:10]
    assert list(newest) == sorted(newest, reverse=True)  # inserted in time order, like real traffic


def test_runs_analyze_so_the_estimate_is_right_at_once():
    _seed("--count", "300")
    assert Signup.objects.using("default").estimated_count() == 300


def test_a_second_run_adds_more_without_clashing():
    _seed("--count", "200", "--seed", "3")
    _seed("--count", "200", "--seed", "3")  # same names and domains: the numbering keeps addresses unique
    assert Signup.objects.using("default").count() == 400


def test_refuses_a_database_holding_real_signups_unless_forced():
    Signup.objects.create(full_name="Real Person", email="someone@gmail.com")
    with pytest.raises(CommandError, match="looks like production"):
        _seed("--count", "10")
    assert Signup.objects.using("default").count() == 1
    _seed("--count", "10", "--force")
    assert Signup.objects.using("default").count() == 11


def test_refuses_a_database_on_another_host_unless_forced():
    remote = "signups.abc123.eu-west-1.rds.amazonaws.com"
    with mock.patch.dict(connections["default"].settings_dict, HOST=remote), pytest.raises(CommandError) as err:
        _seed("--count", "10")
    assert "not this machine" in str(err.value) and remote in str(err.value)
    assert not Signup.objects.using("default").exists()
