"""The Topic admin: one input per language, a missing language refused, publishing on save, never deleted."""

import pytest

from formdef import published
from formdef.models import FormVersion, Topic

pytestmark = pytest.mark.usefixtures("live_db")

LANGS = ("en", "de", "fr", "es")
ADD = "/admin/formdef/topic/add/"


@pytest.fixture
def staff(client):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("staff", password="a-long-test-password"))
    return client


def _post(key: str = "news", skip: str = "", **changes) -> dict:
    data = {"key": key, "public": "on", "active": "on", "position": "1"}
    for lang in LANGS:
        data[f"name_{lang}"] = f"News {lang}"
        data[f"description_{lang}"] = ""
        data[f"consent_{lang}"] = f"Send me the news ({lang})"
    data.pop(skip, None)
    return {**data, **changes}


def test_a_topic_is_defined_with_one_input_per_language_and_published_on_save(staff):
    form = staff.get(ADD).content.decode()
    assert all(f'name="consent_{lang}"' in form for lang in LANGS) and 'name="name"' not in form
    response = staff.post(ADD, _post(name_de="  Neuigkeiten   heute "))
    assert response.status_code == 302, response.content.decode()[:2000]
    topic = Topic.objects.get()
    assert topic.name == {"en": "News en", "de": "Neuigkeiten heute", "fr": "News fr", "es": "News es"}
    assert topic.description == {}  # every language empty: no description
    version = FormVersion.objects.get()
    assert version.published_by == "staff" and published.current().topic("news")["name"]["de"] == "Neuigkeiten heute"
    assert published.current().topic("news")["id"] == topic.pk


def test_a_missing_language_is_refused_and_nothing_published(staff):
    response = staff.post(ADD, _post(skip="consent_fr"))
    assert response.status_code == 200 and "consent wording: missing in fr" in response.content.decode()
    assert not Topic.objects.exists() and not FormVersion.objects.exists()


def test_an_edit_publishes_again_and_the_key_stays(staff):
    staff.post(ADD, _post())
    topic = Topic.objects.get()
    response = staff.post(f"/admin/formdef/topic/{topic.pk}/change/", _post(key="renamed", consent_en="New words"))
    assert response.status_code == 302
    topic.refresh_from_db()
    assert topic.key == "news" and topic.consent["en"] == "New words"
    assert FormVersion.objects.count() == 2
    wording = published.current().topic("news")["wording_version"]["en"]
    assert wording.startswith("news:en:") and wording == published.wording_version("news", "en", "New words")


def test_a_topic_cannot_be_deleted_only_deactivated(staff):
    staff.post(ADD, _post())
    topic = Topic.objects.get()
    assert staff.get(f"/admin/formdef/topic/{topic.pk}/delete/").status_code == 403
    staff.post(f"/admin/formdef/topic/{topic.pk}/change/", _post(active=""))
    assert Topic.objects.filter(pk=topic.pk).exists() and published.current().topic("news") is None
