"""Staff admin for signups, built to stay fast at a million rows; CSV export, per-person export and erasure.

Reads come from a replica (the router sends them there: nothing here runs inside a primary transaction).
The list never counts the whole table: see SignupPaginator.
"""

from __future__ import annotations

import io
import re

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.templatetags import admin_list
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ALL_VAR, PAGE_VAR, SEARCH_VAR, ChangeList
from django.core.exceptions import PermissionDenied
from django.db import router, transaction
from django.db.models import Value
from django.db.models.functions import Lower
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone, translation
from django.utils.functional import cached_property
from django.utils.html import format_html
from django_tasks.base import TaskResultStatus

from formdef.models import Topic
from project.db.state import use_primary
from users import admin_answers, admin_audit, emails, export, imports  # noqa: F401 - admin_audit registers
from users.admin_lists import (
    CountryFilter,
    EmailBlockedFilter,
    ReadOnlyInline,
    SignupPaginator,
    SignupTopicInline,
    StatusFilter,
    TopicFilter,
    country_names,
    ip_display,
    time_display,
    zoned,
)
from users.erasure import erase_signup
from users.models import COLLECTED_FIELDS, STATUS_FIELDS, STATUSES, ConsentEvent, Signup, SignupExport
from users.tasks import email_tasks, enqueue_email

FULL_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")  # local@domain.tld, nothing around it


class SignupChangeList(ChangeList):
    def get_results(self, request) -> None:
        super().get_results(request)
        if self.paginator.count_is_capped:
            self.can_show_all = False  # "more than N" is not known to fit on one page: no "Show all" link

    @cached_property
    def result_table(self) -> dict | None:
        """The page's table as the admin's {% result_list %} renders it, without its per-cell lookups.

        Same HTML (tests/users/test_admin_scale.py compares the two); a third of the page's time at 50 rows.
        """
        plain = list(self.list_display) == SignupAdmin.list_display and list(self.list_display_links) == ["full_name"]
        if self.is_popup or not plain:
            return None  # anything but the plain list: the admin's own rendering
        headers = list(admin_list.result_headers(self))
        url = add_preserved_filters(
            {"preserved_filters": self.preserved_filters, "opts": self.opts},
            reverse("admin:users_signup_change", args=("PK",), current_app=self.model_admin.admin_site.name),
        )
        empty = self.model_admin.get_empty_value_display()
        icons = {value: admin_list._boolean_icon(value) for value in (True, False)}
        statuses = dict(STATUSES)
        rows = [
            admin_list.ResultList(None, [  # .form = None, as the admin's own rows: no failed lookups per row
                format_html('<th class="field-full_name"><a href="{}">{}</a></th>',
                            url.replace("/PK/", f"/{quote(s.pk)}/", 1), s.full_name or empty),
                format_html('<td class="field-email">{}</td>', s.email or empty),
                format_html('<td class="field-status">{}</td>', statuses[s.status]),
                format_html('<td class="field-country_name">{}</td>', self.model_admin.country_name(s)),
                format_html('<td class="field-consent">{}</td>', icons[s.consent]),
                format_html('<td class="field-created_at_shown">{}</td>', zoned(s.created_at)),
            ])
            for s in self.result_list
        ]  # fmt: skip
        return {
            "result_headers": headers,
            "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
            "results": rows,
        }


# Labels Django would spell from the field names ("Ip address") are display methods too. The record page shows
# these fields through display methods: the time zone said, the language named, no help
# text for typing a phone on a page where nothing is typed.
SHOWN_AS = {"ip_address": "ip_address_shown", "confirmed_ip": "confirmed_ip_shown", "phone": "phone_shown",
            "language": "language_name", "consent_at": "consent_at_shown", "created_at": "created_at_shown",
            "confirmed_at": "confirmed_at_shown", "withdrawn_at": "withdrawn_at_shown",
            "email_blocked_at": "email_blocked_at_shown"}  # fmt: skip


class ConsentEventInline(ReadOnlyInline):
    """The person's consent ledger on their record: the proof of opt-in, read-only (append-only by design)."""

    model = ConsentEvent
    fields = readonly_fields = ["kind", "topic", "at_shown", "wording_version", "ip_shown"]
    at_shown = time_display("at", "at")
    ip_shown = ip_display("ip", "IP")
    verbose_name = "consent event"
    verbose_name_plural = "consent ledger"


def _topic_id(key: str | None) -> int | None:
    """Return the id of the topic the list is filtered by, or None."""
    return Topic.objects.filter(key=key).values_list("pk", flat=True).first() if key else None


@admin.register(Signup)
class SignupAdmin(admin.ModelAdmin):
    list_display = ["full_name", "email", "status", "country_name", "consent", "created_at_shown"]
    list_filter = [StatusFilter, ("created_at", admin.DateFieldListFilter), ("country", CountryFilter), "consent",
                   EmailBlockedFilter, TopicFilter]  # fmt: skip
    search_fields = ["full_name", "email"]  # icontains, served by the trigram indexes
    readonly_fields = fields = ["status", *(SHOWN_AS.get(f, f) for f in (*COLLECTED_FIELDS, *STATUS_FIELDS)),
                                "answers_shown", "form_version"]  # fmt: skip
    answers_shown = admin.display(description="answers")(lambda self, obj: admin_answers.record(obj))
    ip_address_shown = ip_display("ip_address", "IP address")
    confirmed_ip_shown = ip_display("confirmed_ip", "Confirmed from IP")
    phone_shown = admin.display(description="phone")(lambda self, obj: obj.phone or "-")
    consent_at_shown = time_display("consent_at", "consent given at")
    created_at_shown = time_display("created_at", "signed up at", ordering="created_at")
    confirmed_at_shown = time_display("confirmed_at", "confirmed at")
    withdrawn_at_shown = time_display("withdrawn_at", "withdrawn at")
    email_blocked_at_shown = time_display("email_blocked_at", "email blocked at")

    @admin.display(description="language")
    def language_name(self, obj: Signup) -> str:
        return f"{_language_name(obj)} ({obj.language})"

    inlines = [ConsentEventInline, SignupTopicInline]
    ordering = ["-created_at", "-id"]
    sortable_by = ["created_at_shown"]  # created_at: the only order with an index behind it for every filter
    list_per_page = 50
    paginator = SignupPaginator
    show_full_result_count = False  # no second count of the whole table
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan the table once per filter choice
    actions = None

    @admin.display(description="country")
    def country_name(self, obj: Signup) -> str:
        # Not "country": the admin would rebuild the 250 country choices twice for every row (~3 ms a row).
        return country_names().get(obj.country.code) or "-"

    def get_list_filter(self, request):
        return [*self.list_filter, *admin_answers.filters()]  # one per choice and yes/no field staff added

    def has_add_permission(self, request) -> bool:
        return False  # records come from the public form only

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # read-only: the record is shown with no save buttons, and a POST to it is refused

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a person is erased (anonymised, with an audit record), never deleted

    def has_export_permission(self, request) -> bool:
        return self.has_view_permission(request) and request.user.has_perm("users.export_signup")

    def has_import_permission(self, request) -> bool:
        # The add permission, although no add form exists: staff bring people in only as lists (users.imports).
        return self.has_view_permission(request) and request.user.has_perm("users.add_signup")

    def has_erase_permission(self, request) -> bool:
        return self.has_view_permission(request) and request.user.has_perm("users.erase_signup")

    def get_search_results(self, request, queryset, search_term):
        """A full address finds that person through the unique index on lower(email); anything else is a substring.

        Staff paste a whole address to find one person: answered by an index equality (a millisecond), not by
        the trigram indexes, which read every row sharing its trigrams ("example.com" is most of the table).
        """
        term = search_term.strip()
        if FULL_ADDRESS.fullmatch(term):
            return queryset.alias(address=Lower("email")).filter(address=Lower(Value(term))), False
        return super().get_search_results(request, queryset, search_term)

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        paginator = super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)
        if request.GET.get(SEARCH_VAR, "").strip():
            # A search is counted only as far as the pages up to this one and one row beyond ("more than 50",
            # then a next page), in the page's order: any further count has PostgreSQL build the trigram
            # bitmap of every match (44 ms for a common surname at a million rows) before a LIMIT applies.
            pages = self.list_max_show_all if ALL_VAR in request.GET else per_page * _page_number(request)
            paginator.exact_limit = min(paginator.exact_limit, pages)
            paginator.count_in_order = True
        return paginator

    def get_changelist(self, request, **kwargs):
        return SignupChangeList

    def changelist_view(self, request, extra_context=None):
        ctx = {"can_export_list": self.has_export_permission(request),
               "can_import": self.has_import_permission(request), **(extra_context or {})}  # fmt: skip
        return super().changelist_view(request, ctx)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        ctx = {
            "can_export_person": self.has_export_permission(request),
            "can_erase": self.has_erase_permission(request),
            "can_resend": self.has_view_permission(request),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, ctx)

    def get_urls(self):
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("export/", view(self.export_list_view), name=f"{info}_export"),
            path("export-csv/", view(self.export_list_view), name=f"{info}_export_csv"),  # the older address
            path("import/", view(self.import_view), name=f"{info}_import"),
            path("import/run/", view(self.import_run_view), name=f"{info}_import_run"),
            path("<path:object_id>/export-json/", view(self.export_person_view), name=f"{info}_export_person"),
            path("<path:object_id>/erase/", view(self.erase_view), name=f"{info}_erase"),
            path("<path:object_id>/resend-confirmation/", view(self.resend_view), name=f"{info}_resend"),
            *super().get_urls(),
        ]

    def export_list_view(self, request):
        """Confirm (GET), then stream the list as CSV or XLSX (POST), with the list's search and filters.

        Contactable people only unless the POST says scope=all; erased rows never (users.export.scoped).
        """
        if not self.has_export_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(reverse("admin:users_signup_changelist") + "?e=1")
        if request.method != "POST":  # a link, a prefetch or a cross-site GET starts nothing
            return self._confirm(request, None, "export_csv", changelist=changelist, scopes=export.SCOPES)
        scope = export.ALL if request.POST.get("scope") == export.ALL else export.CONTACTABLE
        kind = SignupExport.XLSX if request.POST.get("format") == "xlsx" else SignupExport.CSV
        # Pin the replica now: the audit write below would send this request's later reads to the primary.
        queryset = export.scoped(changelist.queryset, scope)
        queryset = queryset.using(queryset.db)
        filters = {**export.filters_of(request.GET.items()), "scope": scope}
        audit = export.start_audit(request.user, kind, filters)
        self.message_user(request, f"{kind.upper()} export {audit.pk} started ({export.SCOPES[scope]}); "
                                   "it is recorded under Exports.")  # fmt: skip
        stream = export.xlsx_stream if kind == SignupExport.XLSX else export.csv_stream
        topic_id = _topic_id(request.GET.get(TopicFilter.parameter_name))  # its unsubscribe URL per row
        response = StreamingHttpResponse(stream(queryset, audit, topic_id), content_type=export.FORMATS[kind])
        name = f"signups-{scope}-{timezone.now():%Y%m%d-%H%M%S}.{kind}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "no-store"
        return response

    def import_view(self, request):
        """Upload a listmonk or Mailchimp export (POST): preview its first rows and outcomes; nothing is written."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        ctx = {**self.admin_site.each_context(request), "opts": self.opts, "title": "Import a list",
               "max_rows": imports.ADMIN_MAX_ROWS, "languages": settings.LANGUAGES}  # fmt: skip
        upload = request.FILES.get("file") if request.method == "POST" else None
        if upload is not None:
            data = upload.read(imports.ADMIN_MAX_BYTES + 1)
            try:
                found = imports.preview(io.BytesIO(data), default_language=request.POST.get("language", ""))
                ctx.update(imports.admin_preview(found, data, request.POST.get("language", "")))
            except imports.ImportRefused as exc:
                ctx["error"] = f"Not imported: {exc}."
        return TemplateResponse(request, "admin/users/signup/import.html", ctx)

    def import_run_view(self, request):
        """Import the previewed file (POST only), in this request, and say what happened to each row."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return redirect("admin:users_signup_import")
        try:
            counts = imports.run_held(request.POST.get("token", ""))
        except imports.ImportRefused as exc:
            self.message_user(request, f"Not imported: {exc}.", messages.ERROR)
            return redirect("admin:users_signup_import")
        summary = "; ".join(f"{counts[key]:,} {label}" for key, label in imports.OUTCOMES.items() if counts[key])
        self.message_user(request, f"Imported {sum(counts.values()):,} rows: {summary}.")
        return redirect("admin:users_signup_changelist")

    def export_person_view(self, request, object_id):
        """Confirm, then download everything stored about one person as JSON."""
        signup = self._person(request, object_id, allowed=self.has_export_permission(request))
        if not isinstance(signup, Signup):
            return signup  # no such person: back to the list
        if signup.is_erased:
            self.message_user(request, f"Signup {signup.pk} was erased: it holds no personal data to export.",
                              messages.WARNING)  # fmt: skip
            return redirect("admin:users_signup_change", signup.pk)
        if request.method != "POST":
            return self._confirm(request, signup, "export")
        body = export.person_json(signup)
        export.finish_audit(export.start_audit(request.user, SignupExport.PERSON, {"id": signup.pk}), 1, True)
        self.message_user(request, f"Signup {signup.pk}'s data was exported as JSON; it is recorded under Exports.")
        response = HttpResponse(body, content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="signup-{signup.pk}.json"'
        response["Cache-Control"] = "no-store"
        return response

    def erase_view(self, request, object_id):
        """Confirm, then anonymise one person's signup and record the erasure."""
        signup = self._person(request, object_id, allowed=self.has_erase_permission(request))
        if not isinstance(signup, Signup):
            return signup  # no such person: back to the list
        if request.method != "POST":
            return self._confirm(request, signup, "erase")
        if erase_signup(signup.pk, request.user) is None:
            self.message_user(request, f"Signup {signup.pk} was already erased.", messages.WARNING)
        else:
            self.message_user(request, f"Signup {signup.pk} erased: no personal data is left in it.")
        return redirect("admin:users_signup_change", signup.pk)

    def resend_view(self, request, object_id):
        """Confirm, then queue the confirmation email again: to the person's own address, in their language."""
        signup = self._person(request, object_id, allowed=self.has_view_permission(request))
        if not isinstance(signup, Signup):
            return signup  # no such person: back to the list
        refusal = emails.skip_reason(signup, emails.CONFIRM)
        if refusal is None and _queued(signup.pk):
            refusal = "one is already waiting in the queue"
        if refusal:
            self.message_user(request, f"No confirmation email for signup {signup.pk}: {refusal}.", messages.WARNING)
            return redirect("admin:users_signup_change", signup.pk)
        if request.method != "POST":
            return self._confirm(request, signup, "resend")
        with transaction.atomic(using=router.db_for_write(Signup)):
            enqueue_email(signup.pk, emails.CONFIRM)
        self.message_user(request, f"A new confirmation email to signup {signup.pk} is queued; it goes out in "
                                   f"{_language_name(signup)} within a minute.")  # fmt: skip
        return redirect("admin:users_signup_change", signup.pk)

    def _person(self, request, object_id, *, allowed: bool) -> Signup | HttpResponse:
        """The signup an action is about (read on the primary), or the admin's "no such object" redirect."""
        if not allowed:
            raise PermissionDenied
        with use_primary():  # one row; the primary never shows an erased person again after a lagging replica
            signup = self.get_object(request, unquote(object_id))
        return signup or self._get_obj_does_not_exist_redirect(request, self.opts, object_id)

    def _confirm(self, request, signup: Signup | None, action: str, **extra) -> TemplateResponse:
        titles = {"erase": "Erase this person?", "export": "Export this person's data?",
                  "export_csv": "Export the list?", "resend": "Resend the confirmation email?"}  # fmt: skip
        ctx = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": signup,
            "action": action,
            "title": titles[action],
            "language_name": _language_name(signup) if signup else "",
            **extra,
        }
        return TemplateResponse(request, "admin/users/signup/confirm_action.html", ctx)


def _language_name(signup: Signup) -> str:
    """The language's English name (staff pages are English): "German", not "Deutsch"."""
    try:
        return translation.get_language_info(signup.language)["name"]
    except KeyError:
        return signup.language


def _page_number(request) -> int:
    """The list's page as the admin reads it (?p=, from 1); a wrong one counts as the first."""
    try:
        return max(1, int(request.GET.get(PAGE_VAR, 1)))
    except ValueError:
        return 1


def _queued(signup_id: int) -> bool:
    """Say whether a confirmation email to this signup waits in the queue (on the primary: just queued counts)."""
    with use_primary():
        waiting = email_tasks(signup_id, using=router.db_for_write(Signup)).filter(status=TaskResultStatus.READY)
        return waiting.filter(args_kwargs__kwargs__kind=emails.CONFIRM).exists()
