"""No stranger's text in our emails: anyone can type someone else's address, so nothing typed is echoed.

Names shaped like URLs, spreadsheet formulas, HTML and right-to-left overrides: none of it appears in the
subject, the text part or the HTML part of any email, and every link in them is one of ours.
"""

import re

import pytest
from django.conf import settings
from django.utils import timezone

from users import emails
from users.models import Signup

pytestmark = pytest.mark.usefixtures("live_db")

HOSTILE = [
    "http://evil.example/claim-your-prize",
    "www.evil.example",
    '=HYPERLINK("http://evil.example/","Click")',
    '<a href="http://evil.example/">Bank</a>',
    "Mallory \u202egnp.exe",  # a right-to-left override (stored directly: the form refuses it)
]
LINKS = re.compile(r"(?:https?://|www\.)[^\s\"'<>)]+")


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("kind", emails.KINDS)
def test_no_email_part_carries_what_a_stranger_typed(name, kind):
    signup = Signup.objects.create(full_name=name, email="victim@example.com", consent=True,
                                   consent_at=timezone.now(), user_agent=name)  # fmt: skip
    message = emails.build(signup, kind)
    html = message.alternatives[0][0]
    for part in (message.subject, message.body, html):
        assert "evil" not in part and "\u202e" not in part and "HYPERLINK" not in part and "Mallory" not in part
    for url in LINKS.findall(message.body) + LINKS.findall(html):
        assert url.startswith(settings.PUBLIC_BASE_URL), url  # only our own links
    assert message.body.startswith("Hello,\n")
