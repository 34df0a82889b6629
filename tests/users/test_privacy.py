"""Say who and why: /privacy/ from settings, the tagline and the link on the public pages and in every email.
(No personal data in PostgreSQL's own log: tests/users/test_no_enumeration.py.)"""

from __future__ import annotations

import pytest

from users import emails
from users.models import Signup

pytestmark = pytest.mark.usefixtures("live_db")


@pytest.fixture
def site(settings):
    settings.SITE_NAME = "Birdwatch News"
    settings.SITE_TAGLINE = "Sightings and walks, once a month."
    settings.DATA_CONTROLLER = "Birdwatch Club, 5 Heron Lane, York"
    settings.PRIVACY_CONTACT = "dpo@birdwatch.example"
    settings.RETENTION_UNCONFIRMED_DAYS, settings.RETENTION_NETWORK_DAYS = 17, 61
    settings.RETENTION_WITHDRAWN_DAYS, settings.LOG_RETENTION_DAYS = 23, 45
    settings.AWS_REGION = "eu-west-2"
    return settings


def test_the_privacy_page_says_who_why_what_where_and_how_long_from_settings(client, site):
    page = client.get("/privacy/")
    assert page.status_code == 200
    html = page.content.decode()
    for text in ("Birdwatch News", "Sightings and walks, once a month.", "Birdwatch Club, 5 Heron Lane, York",
                 'href="mailto:dpo@birdwatch.example"', "eu-west-2"):  # fmt: skip
        assert text in html
    for testid, days in (("unconfirmed-days", 17), ("network-days", 61), ("withdrawn-days", 23), ("log-days", 45)):
        assert f'data-testid="{testid}">{days}</strong>' in html
    assert "name, email address" in html and "IP address" in html  # what is collected


@pytest.mark.parametrize("path", ["/", "/signup/"])
def test_home_and_form_say_what_the_list_is_and_link_the_privacy_page(client, site, path):
    html = client.get(path).content.decode()
    assert "Sightings and walks, once a month." in html
    assert html.count('href="/privacy/"') >= 2  # beside the tagline and in the footer
    assert ">Birdwatch News</a>" in html  # the header says whose site it is


@pytest.mark.parametrize("kind", emails.KINDS)
def test_every_email_links_the_privacy_page(site, kind):
    signup = Signup.objects.create(full_name="Ada Lovelace", email="ada@example.com", consent=True)
    message = emails.build(signup, kind)
    privacy = site.PUBLIC_BASE_URL + "/privacy/"
    assert privacy in message.body
    assert f'href="{privacy}"' in message.alternatives[0][0]
