"""The Field admin: one input per language, a choices editor, publishing on every change, a preview."""

import pytest

from formdef import published
from formdef.models import Field, FormVersion

pytestmark = pytest.mark.usefixtures("live_db")

URL = "/admin/formdef/field/"


@pytest.fixture
def staff(client):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_user("editor", password="a-long-test-password", is_staff=True,
                                                is_superuser=True))  # fmt: skip
    return client


def _form(**changes) -> dict:
    data = {"key": "source", "kind": "choice", "required": "on", "position": "3", "active": "on",
            "label_en": "Source", "label_de": "Quelle", "label_fr": "Source", "label_es": "Fuente",
            "help_en": "", "help_de": "", "help_fr": "", "help_es": "",
            "choices_text": "press | Press | Presse | Presse | Prensa\nweb | The web | Das Netz | Le web | La web",
            "max_length": "", "min_value": "", "max_value": ""}  # fmt: skip
    return {**data, **changes}


def test_adding_a_field_stores_per_language_json_and_publishes(staff):
    response = staff.post(URL + "add/", _form())
    assert response.status_code == 302, response.content.decode()[-3000:]
    field = Field.objects.get()
    assert field.label == {"en": "Source", "de": "Quelle", "fr": "Source", "es": "Fuente"}
    assert field.choices[1] == {"value": "web", "label": {"en": "The web", "de": "Das Netz", "fr": "Le web",
                                                          "es": "La web"}}  # fmt: skip
    version = FormVersion.objects.get()
    assert version.published_by == "editor" and published.current().field("source")["choices"] == field.choices


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"label_fr": ""}, "This field is required"),
        ({"choices_text": "press | Press | Presse"}, "a value and 4 labels expected"),
        ({"choices_text": "bad value | A | B | C | D"}, "the value is letters, digits"),
        ({"choices_text": ""}, "a choice field needs at least one choice"),
        ({"help_en": "Only English"}, "help text: missing in de, fr, es"),
    ],
)
def test_an_incomplete_definition_is_refused_and_nothing_is_published(staff, changes, message):
    response = staff.post(URL + "add/", _form(**changes))
    assert response.status_code == 200 and message in response.content.decode()
    assert not Field.objects.exists() and not FormVersion.objects.exists()


def test_the_edit_page_shows_one_input_per_language_and_the_choices_as_lines(staff):
    staff.post(URL + "add/", _form())
    page = staff.get(URL + f"{Field.objects.get().pk}/change/").content.decode()
    assert 'name="label_de" value="Quelle"' in page and "web|The web|Das Netz|Le web|La web" in page
    assert 'name="key"' not in page  # fixed once saved: answers are stored under it


def test_switching_off_and_reordering_in_the_list_publish(staff):
    staff.post(URL + "add/", _form())
    staff.post(URL + "add/", _form(key="role", kind="text", choices_text="", position="1"))
    assert [f["key"] for f in published.current().fields] == ["role", "source"]
    role = Field.objects.get(key="role")
    staff.post(URL, {"action": "switch_off", "_selected_action": [role.pk]})
    assert [f["key"] for f in published.current().fields] == ["source"]
    assert FormVersion.objects.count() == 3


def test_the_preview_shows_an_unsaved_edit_in_every_language_and_publishes_nothing(staff):
    staff.post(URL + "add/", _form())
    field = Field.objects.get()
    before = FormVersion.objects.count()
    page = staff.post(URL + "preview/", _form(label_de="Woher?", object_id=str(field.pk))).content.decode()
    for code in ("en", "de", "fr", "es"):
        assert f'data-testid="preview-{code}"' in page
    assert "<legend>Woher?</legend>" in page and "<legend>Fuente</legend>" in page and "La web" in page
    assert Field.objects.get().label["de"] == "Quelle" and FormVersion.objects.count() == before
    assert "Woher?" not in staff.get(URL + "preview/").content.decode()
