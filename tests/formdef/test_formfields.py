"""The form fields of a published version: one per kind, in the visitor's language, typed answers."""

import pytest
from django.utils import translation

from formdef import formfields
from formdef.published import Definition
from tests.formdef.fields import EVERY_KIND, POSTED, STORED, define
from users.forms import SignupForm

pytestmark = pytest.mark.usefixtures("live_db")

PERSON = {"full_name": "Ada Lovelace", "email": "ada@example.com", "consent": "on"}


def _form(definition, **answers):
    return SignupForm({**PERSON, **POSTED, **answers}, definition=definition)


def test_every_kind_is_validated_and_stored_typed():
    form = _form(define())
    assert form.is_valid(), form.errors
    assert formfields.answers(form.definition, form.cleaned_data) == STORED


@pytest.mark.parametrize(
    ("answers", "field", "message"),
    [
        ({"f_company": ""}, "f_company", "This field is required."),
        ({"f_company": "x" * 41}, "f_company", "at most 40 characters"),
        ({"f_company": "A\u0000B"}, "f_company", "Null characters are not allowed."),
        ({"f_company": "A\u202eB"}, "f_company", "cannot store (U+202E)"),
        ({"f_seats": "0"}, "f_seats", "greater than or equal to 1"),
        ({"f_seats": "501"}, "f_seats", "less than or equal to 500"),
        ({"f_seats": "NaN"}, "f_seats", "Enter a number."),
        ({"f_seats": "1e400"}, "f_seats", "no more than"),
        ({"f_source": "radio"}, "f_source", "Select a valid choice"),
        ({"f_interests": ["news", "cooking"]}, "f_interests", "Select a valid choice"),
        ({"f_member": "maybe"}, "f_member", "Select a valid choice"),
        ({"f_born": "28/02/1990"}, "f_born", "Enter a valid date."),
        ({"f_born": "1990-02-30"}, "f_born", "Enter a valid date."),
    ],
)
def test_anything_not_defined_is_refused_on_its_field(answers, field, message):
    form = _form(define(), **answers)
    assert not form.is_valid()
    assert message in " ".join(form.errors[field])


def test_an_answer_to_a_question_not_asked_is_refused():
    form = _form(define(), f_salary="100000")
    assert not form.is_valid()
    assert "does not ask some of what was sent" in " ".join(form.non_field_errors())


def test_optional_fields_left_empty_are_absent_from_the_answers():
    form = _form(define(), f_seats="", f_source="", f_interests=[], f_member="", f_born="")
    assert form.is_valid(), form.errors
    assert formfields.answers(form.definition, form.cleaned_data) == {"company": "ACME Ltd"}


def test_a_fraction_is_a_json_number_and_keeps_its_digits():
    form = SignupForm({**PERSON, "f_seats": "12.125"}, definition=define(["seats"]))
    assert form.is_valid(), form.errors
    assert formfields.answers(form.definition, form.cleaned_data) == {"seats": 12.125}


def test_labels_help_and_choices_are_in_the_active_language():
    definition = define()
    with translation.override("de"):
        fields = formfields.build(definition)
        assert fields["f_company"].label == "Company [de]" and fields["f_company"].help_text == "Where you work [de]"
        assert dict(fields["f_source"].choices)["friend"] == "A friend [de]"
        assert [str(label) for _value, label in fields["f_member"].choices] == ["Ja", "Nein"]
    with translation.override("fr"):
        assert formfields.build(definition)["f_company"].label == "Company [fr]"


def test_fields_are_built_once_per_version_and_language_and_shared_until_errors():
    definition = define()
    with translation.override("es"):
        first, second = SignupForm(definition=definition), SignupForm(definition=definition)
        assert first.fields["f_seats"] is second.fields["f_seats"]  # no copy per request
        broken = SignupForm({**PERSON, "f_seats": "x"}, definition=definition)
        assert not broken.is_valid()
        assert broken.fields["f_seats"] is not first.fields["f_seats"]  # errors: the form's own copies
        assert SignupForm(definition=definition).fields["f_seats"] is first.fields["f_seats"]


def test_the_bare_form_has_no_extra_fields():
    assert list(SignupForm(definition=Definition(0)).fields) == list(SignupForm.base_fields)


def test_a_choice_field_with_many_choices_is_a_list_and_few_are_radio_buttons():
    many = [{"value": f"c{i}", "label": {"en": f"C{i}"}} for i in range(8)]
    spec = {**EVERY_KIND["source"], "key": "source", "kind": "choice", "choices": many, "required": False,
            "label": {"en": "Source"}}  # fmt: skip
    few = {**spec, "choices": many[:3]}
    built = formfields.build_uncached(Definition(-1, (spec,)), "en")["f_source"]
    assert built.widget.input_type == "select" and built.choices[0] == ("", "—")
    assert formfields.build_uncached(Definition(-1, (few,)), "en")["f_source"].widget.input_type == "radio"


def test_reading_the_published_version_does_not_send_the_request_s_reads_to_the_primary():
    from django.core.cache import cache

    from formdef import published
    from project.db import state

    version = define(["seats"])
    cache.delete(published.POINTER_KEY)  # the pointer evicted: the database says which version is current
    published.forget()
    token = state.begin_request()
    try:
        assert published.current().id == version.id and published.get(version.id) is not None
        assert not state.has_written()  # an export or a list read afterwards still goes to a replica
    finally:
        state.end_request(token)
