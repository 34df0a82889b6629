"""/ops/ in a real headless Chromium: an on-call engineer logs in and reads the page; others are refused."""

from __future__ import annotations

import re

import pytest

from bench.ops import EC2_INSTANCES, ops_env, seed
from devenv.servers import AppServer
from tests.conftest import OUTPUT
from tests.ops.test_dashboard import PASSWORD, _user
from tests.staff.conftest import axe_violations

pytestmark = [pytest.mark.usefixtures("live_db"), pytest.mark.browser]


@pytest.fixture
def ops_app(moto_server):
    """The app under gunicorn with every AWS resource configured against moto, seeded with an hour of data."""
    from tests.conftest import SERVICES

    moto_server.reset()
    seed(moto_server.url, minutes=60, step=2)
    server = AppServer(env={**SERVICES.environ(), **ops_env(moto_server.url)})
    server.start()
    yield server
    server.stop()


def _log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/admin/login/?next=/ops/%3Frange%3D1h")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def _on_call_page(browser, base_url: str, username: str):
    """A new on-call user, logged in, on /ops/?range=1h, without JavaScript; return (context, page)."""
    _user(username)
    context = browser.new_context(viewport={"width": 1440, "height": 900}, java_script_enabled=False)
    page = context.new_page()
    _log_in(page, base_url, username)
    page.wait_for_url("**/ops/?range=1h")
    return context, page


def test_an_on_call_engineer_sees_alarms_live_panels_and_charts(browser, ops_app):
    context, page = _on_call_page(browser, ops_app.url, "night-owl")
    assert page.get_by_role("heading", level=1).inner_text().startswith("ALARM"), page.locator(".top").inner_text()
    assert "signups-ec2-cpu-high" in page.locator(".firing").inner_text()
    for card in ("#live-ready", "#live-db-default", "#live-db-replica1", "#live-redis", "#live-app"):
        assert page.locator(card).is_visible()
    assert page.locator("#live-ready").inner_text().count("up") >= 3
    charts = page.locator("figure.panel svg.chart")
    assert charts.count() >= 20
    cpu = page.locator("#panel-ec2_cpu")
    assert cpu.locator("path.line").count() == 2 and cpu.locator("line.threshold").count() == 1
    assert (
        "92 %" in cpu.locator(f'[data-series="ec2.CPUUtilization.Average.{EC2_INSTANCES[1]}"]').inner_text()
    )  # the hot host, over 80 %
    assert "over threshold" in cpu.inner_text()
    assert cpu.locator("g.marker-rds").count() == 1 and cpu.locator("g.marker-ecs").count() == 1  # what changed
    assert "DB instance created" in page.locator("section.changes").inner_text()
    assert "Target.InvalidState" in page.locator("section.targets").inner_text()
    assert page.evaluate("document.querySelector('meta[http-equiv=refresh]').content") == "60"
    page.screenshot(path=OUTPUT / "ops-dashboard.png", full_page=True)
    page.screenshot(path=OUTPUT / "ops-dashboard-first-screen.png")  # what one look at 3 a.m. shows
    assert EC2_INSTANCES[1] in cpu.inner_text()
    assert _axe(page) == []  # contrast of every status colour included
    _assert_status_tags_readable(page)
    context.close()


def _axe(page) -> list[str]:
    """axe-core's findings on the page as shown, in a context with JavaScript (axe needs it; the on-call pages
    are read without), served without the meta refresh that would navigate mid-run, at the same address."""
    html = re.sub(r'<meta http-equiv="refresh"[^>]*>', "", page.content())
    context = page.context.browser.new_context(viewport=page.viewport_size)
    try:
        copy = context.new_page()
        copy.route(page.url, lambda route: route.fulfill(body=html, content_type="text/html; charset=utf-8"))
        copy.goto(page.url)
        return axe_violations(copy)
    finally:
        context.close()


def _contrast(page, selector: str) -> float:
    """WCAG contrast ratio of an element's text against its own background colour."""
    return page.locator(selector).first.evaluate(
        """e => { const s = getComputedStyle(e);
          const lum = c => { const [r, g, b] = c.match(/[0-9.]+/g).slice(0, 3).map(v => {
            v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
            return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
          const [a, b] = [lum(s.color), lum(s.backgroundColor)].sort((x, y) => y - x);
          return (a + 0.05) / (b + 0.05); }"""
    )


def _assert_status_tags_readable(page) -> None:
    for selector in (".tag.tag-ok, .tag.tag-degraded, .tag.tag-unavailable, .tag.tag-unknown", ".tag.tag-alarm"):
        if page.locator(selector).count():
            assert _contrast(page, selector) >= 4.5, selector


def test_a_non_staff_user_is_refused(browser, app_server):
    _user("visitor", staff=False)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    _log_in(page, app_server.url, "visitor")
    assert "/admin/login/" in page.url  # the admin login refuses non-staff accounts
    assert page.locator(".errornote").is_visible()
    page.goto(f"{app_server.url}/ops/")
    assert "/admin/login/" in page.url and page.locator("svg.chart").count() == 0
    context.close()


def test_unconfigured_the_verdict_is_unknown_in_grey_and_names_what_was_not_checked(browser, app_server):
    context, page = _on_call_page(browser, app_server.url, "day-owl")
    heading = page.get_by_role("heading", level=1).inner_text()
    assert heading.startswith("UNKNOWN") and not heading.startswith("OK")
    unknown = page.locator(".top .unknown").inner_text()
    assert (
        "Unknown (not checked)" in unknown
        and "CloudWatch alarms, charts, SLO, what changed and target health" in unknown
    )
    assert "no alarm is firing" not in page.locator(".top").inner_text()
    pill = page.locator(".top .pill").evaluate("e => getComputedStyle(e).backgroundColor")
    assert pill == "rgb(145, 152, 161)"  # grey (--muted), not the OK green
    folded = page.locator("section.not-configured summary")
    assert folded.count() == 1 and folded.inner_text().startswith("Not configured (")
    assert page.locator("section.cw").count() == 0  # no empty panel per unconfigured source
    assert "Reads kept on the primary" in page.locator("#live-app").inner_text()
    page.screenshot(path=OUTPUT / "ops-dashboard-unconfigured.png", full_page=True)
    assert _axe(page) == []
    _assert_status_tags_readable(page)
    context.close()
