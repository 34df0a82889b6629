"""The published form: versions are immutable snapshots, the current one is found without a query per request."""

import pytest
from django.core.cache import cache

from formdef import published
from formdef.models import Field, FormVersion, Topic

pytestmark = pytest.mark.usefixtures("live_db")

WORDS = {"en": "Company", "de": "Firma", "fr": "Entreprise", "es": "Empresa"}


def _field(key: str, **extra) -> Field:
    return Field.objects.create(key=key, kind=Field.TEXT, label={**WORDS}, max_length=80, **extra)


def _topic(key: str, **extra) -> Topic:
    words = {lang: f"{key} ({lang})" for lang in WORDS}
    return Topic.objects.create(key=key, name=words, consent={lang: f"Send me {key} ({lang})" for lang in WORDS},
                                **extra)  # fmt: skip


def test_nothing_published_is_the_bare_form():
    published.forget()
    assert published.current() == published.BARE
    assert published.current().fields == () and published.current().id == 0


def test_a_version_is_a_snapshot_of_the_active_fields_and_topics_in_order():
    _field("role", position=2)
    _field("company", position=1)
    _field("retired", active=False)
    _topic("events", public=False)
    version = published.publish("alice")
    definition = published.get(version.pk)
    assert [f["key"] for f in definition.fields] == ["company", "role"]
    assert definition.field("company")["label"]["de"] == "Firma" and definition.field("retired") is None
    assert definition.topic("events")["public"] is False and definition.public_topics == ()
    wording = definition.topic("events")["wording_version"]
    assert set(wording) == set(WORDS) and wording["fr"].startswith("events:fr:")


def test_a_published_version_never_changes_when_fields_do():
    field = _field("company")
    first = published.publish("alice")
    field.label = {**WORDS, "en": "Organisation"}
    field.save()
    second = published.publish("alice")
    published.forget()  # read both back from the database, not from what publish() kept
    assert published.get(first.pk).field("company")["label"]["en"] == "Company"
    assert published.get(second.pk).field("company")["label"]["en"] == "Organisation"
    assert published.current().id == second.pk


def test_current_costs_no_query_once_held(django_assert_num_queries):
    _field("company")
    version = published.publish("alice")
    assert published.current().id == version.pk
    with django_assert_num_queries(0):
        for _ in range(100):
            assert published.current().id == version.pk


def test_another_process_s_publication_is_seen_within_the_check_interval(monkeypatch):
    _field("company")
    first = published.publish("alice")
    assert published.current().id == first.pk
    # Another process publishes: its row and the cache pointer change, this process's memory does not.
    other = FormVersion.objects.create(published_by="bob", snapshot=published.snapshot())
    cache.set(published.POINTER_KEY, f"{other.pk}:{int(other.published_at.timestamp() * 1_000_000)}", timeout=None)
    assert published.current().id == first.pk  # held for up to CHECK_SECONDS
    monkeypatch.setattr(published, "CHECK_SECONDS", 0.0)
    assert published.current().id == other.pk


def test_without_the_cache_pointer_the_database_says_which_version_is_current(monkeypatch):
    _field("company")
    version = published.publish("alice")
    cache.delete(published.POINTER_KEY)  # evicted, or Redis restarted empty
    published.forget()
    assert published.current().id == version.pk
    assert cache.get(published.POINTER_KEY).startswith(f"{version.pk}:")  # put back for the other processes


def test_an_unknown_version_is_none():
    assert published.get(987654) is None


def test_a_field_needs_its_label_in_every_language():
    from django.core.exceptions import ValidationError

    field = Field(key="company", kind=Field.TEXT, label={"en": "Company"})
    with pytest.raises(ValidationError, match="missing in de, fr, es"):
        field.full_clean()


def test_versions_read_before_their_ids_were_reused_are_dropped(monkeypatch):
    """After a point-in-time restore the ids of versions published since are given again, to other versions."""
    _field("company")
    first, second = published.publish("alice"), published.publish("alice")
    assert published.get(second.pk).field("company") is not None
    # The restore: the second version is gone, its id comes back for a different form (no fields).
    FormVersion.objects.filter(pk=second.pk).delete()
    Field.objects.all().delete()
    again = FormVersion.objects.create(id=second.pk, published_by="bob", snapshot=published.snapshot())
    cache.set(published.POINTER_KEY, f"{again.pk}:{int(again.published_at.timestamp() * 1_000_000)}", timeout=None)
    monkeypatch.setattr(published, "CHECK_SECONDS", 0.0)
    assert published.current().id == second.pk
    assert published.current().fields == ()  # the new version with the reused id, not the one read before
    assert published.get(first.pk).field("company") is not None  # read again from the database
