"""The signups list's own parts: a paginator that never counts a million rows, its filters, times with zones."""

from __future__ import annotations

import functools

from django.conf import settings
from django.contrib import admin
from django.core.cache import cache
from django.core.paginator import Paginator
from django.utils import formats, timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from formdef.models import Topic
from users.forms import country_choices
from users.models import STATUSES, SignupTopic


class SignupPaginator(Paginator):
    """Count without reading a million rows: PostgreSQL's estimate unfiltered, an exact count up to a cap."""

    exact_limit = 10_000  # counting this many matching rows through an index takes milliseconds
    count_is_estimate = False  # unfiltered: the table's statistics, not a COUNT(*)
    count_is_capped = False  # filtered: more rows match than were counted
    count_in_order = False  # count the first rows in the page's order (a search: see SignupAdmin.get_paginator)

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not queryset.query.where:
            estimate = queryset.estimated_count()
            if estimate is not None and estimate > self.exact_limit:
                self.count_is_estimate = True
                return estimate
        # SELECT COUNT(*) FROM (SELECT ... LIMIT n+1): stops reading after the cap. In the page's order, the
        # count walks the same index as the page and stops with it; unordered, the planner may read every match.
        counted = queryset if self.count_in_order else queryset.order_by()
        count = counted[: self.exact_limit + 1].count()
        if count > self.exact_limit:
            self.count_is_capped = True  # the row beyond the cap is real: the list offers the next page
        return count

    @property
    def count_label(self) -> str:
        if self.count_is_estimate:
            return f"about {int(float(f'{self.count:.3g}')):,}"  # three significant digits
        if self.count_is_capped:
            return f"more than {self.exact_limit:,}"
        return f"{self.count:,}"


def ip_display(field: str, label: str):
    return admin.display(description=label)(lambda self, obj: getattr(obj, field) or "-")


def zoned(value) -> str:
    """A time with its zone said ("Dec. 6, 2026, 5:13 p.m. UTC"), not a bare clock time."""
    local = timezone.localtime(value)
    return f"{formats.date_format(local, 'DATETIME_FORMAT')} {local.tzname()}"


def time_display(field: str, label: str, ordering: str | None = None):
    """A time on the record page and the list with its zone said."""

    def shown(self, obj) -> str:
        value = getattr(obj, field)
        return "-" if value is None else zoned(value)

    return admin.display(description=label, ordering=ordering)(shown)


class CountryFilter(admin.ChoicesFieldListFilter):
    """The country filter as one <select> rather than 250 links (each link's URL costs the page time)."""

    template = "admin/users/signup/country_filter.html"

    def choices(self, changelist):
        selected = self.lookup_val[-1] if self.lookup_val else ""
        yield {
            "param": self.lookup_kwarg,
            "selected": selected,
            "options": _country_options(selected),
            "keep": sorted((k, v) for k, v in changelist.params.items() if not k.startswith(self.field_path)),
            "all_url": changelist.get_query_string(remove=[self.field_path]),
        }


@functools.cache
def _country_option_tags() -> tuple[tuple[str, str], ...]:
    return tuple(
        (code, format_html('<option value="{}">{}</option>', code, name)) for code, name in country_choices() if code
    )


@functools.cache
def country_names() -> dict[str, str]:
    return dict(country_choices()[1:])  # without the empty choice


def _country_options(selected: str) -> str:
    tags = (
        tag.replace("<option ", "<option selected ", 1) if code == selected else tag
        for code, tag in _country_option_tags()
    )
    return mark_safe("".join(tags))  # noqa: S308 - joined from format_html() output


class EmailBlockedFilter(admin.SimpleListFilter):
    """Addresses SES reported as bouncing or complaining (users/webhooks.py): no email goes to them."""

    title = "email"
    parameter_name = "email_blocked"

    def lookups(self, request, model_admin):
        return [("yes", "blocked (bounce or complaint)"), ("no", "deliverable")]

    def queryset(self, request, queryset):
        if self.value() in {"yes", "no"}:  # "yes" reads a partial index (migration 0005)
            return queryset.filter(email_blocked_at__isnull=self.value() == "no")
        return queryset


STATUS_COUNTS_KEY = "users:status-counts"
STATUS_COUNTS_SECONDS = 60


class StatusFilter(admin.SimpleListFilter):
    """One status per person (Signup.status), each with how many people are in it (capped like the list's count)."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        limit = SignupPaginator.exact_limit  # each count reads at most this many entries of the status index
        # Kept a minute (Redis): six index reads per page add up at a million rows, and staff paging or
        # searching the list need the counts' size, not their last digit.
        counts = cache.get_or_set(STATUS_COUNTS_KEY, lambda: model_admin.model.objects.status_counts(limit),
                                  STATUS_COUNTS_SECONDS)  # fmt: skip
        shown = {status: f"{limit:,}+" if n > limit else f"{n:,}" for status, n in counts.items()}
        return [(status, f"{label} ({shown[status]})") for status, label in STATUSES]

    def queryset(self, request, queryset):
        if self.value() in dict(STATUSES):  # read in order from users_signup_status_idx
            return queryset.filter(status=self.value())
        return queryset


class TopicFilter(admin.SimpleListFilter):
    """A topic's members (users.SignupTopic): confirmed and not left. The list's export then holds only them."""

    title = "topic"
    parameter_name = "topic"

    def lookups(self, request, model_admin):
        # Named as staff read them (the default language, the staff pages'), the key when it has no name there.
        topics = Topic.objects.order_by("position", "id")
        return [(t.key, (t.name or {}).get(settings.LANGUAGE_CODE) or t.key) for t in topics]

    def queryset(self, request, queryset):
        if self.value():  # one filter() call: the three conditions hold on the same membership row
            return queryset.filter(memberships__topic__key=self.value(), memberships__confirmed_at__isnull=False,
                                   memberships__withdrawn_at__isnull=True)  # fmt: skip
        return queryset


class ReadOnlyInline(admin.TabularInline):
    """Rows shown on the person's record that staff never add, change or delete (the ledger, their topics)."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class SignupTopicInline(ReadOnlyInline):
    """The person's topics on their record (users/topics.py), read-only: only the person switches them."""

    model = SignupTopic
    fields = readonly_fields = [
        "topic",
        "wording_version",
        "chosen_at_shown",
        "confirmed_at_shown",
        "withdrawn_at_shown",
    ]
    chosen_at_shown = time_display("chosen_at", "chosen at")
    confirmed_at_shown = time_display("confirmed_at", "confirmed at")
    withdrawn_at_shown = time_display("withdrawn_at", "left at")
    verbose_name = "topic"
    verbose_name_plural = "topics"
