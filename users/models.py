from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, connections, models, router, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField

logger = logging.getLogger("users")

EMAIL_UNIQUE_CONSTRAINT = "users_signup_email_ci_unique"
# Everything the form collects about a person, in the order staff see and export it.
COLLECTED_FIELDS = [
    "full_name", "email", "phone", "country", "consent", "consent_at", "consent_version",
    "created_at", "ip_address", "user_agent",
]  # fmt: skip
# Where the person's consent and address stand (double opt-in, withdrawal, bounces) and the language we write
# to them in: shown and exported.
STATUS_FIELDS = ["confirmed_at", "confirmed_ip", "withdrawn_at", "email_blocked_at", "email_blocked_reason", "language"]
ERASED_EMAIL_DOMAIN = "invalid"  # RFC 2606: can never be delivered to anyone

# One status per person, the first that holds in the order of status_expression() (Signup.status).
ERASED, BLOCKED, WITHDRAWN, NO_CONSENT, CONFIRMED, UNCONFIRMED = (
    "erased", "blocked", "withdrawn", "no_consent", "confirmed", "unconfirmed",
)  # fmt: skip
STATUSES = [
    (CONFIRMED, "confirmed"),  # the only contactable status (SignupQuerySet.contactable)
    (UNCONFIRMED, "unconfirmed"),  # has not clicked the emailed link yet
    (WITHDRAWN, "withdrawn"),
    (BLOCKED, "bounced or complained"),
    (NO_CONSENT, "never consented"),  # signed up before consent was required (2026-12)
    (ERASED, "erased"),
]


def status_expression() -> models.Case:
    """Return the status as SQL: the first of these that holds (the database keeps it in Signup.status)."""
    erased = models.Q(email__startswith="erased-", email__endswith=f"@{ERASED_EMAIL_DOMAIN}")
    return models.Case(
        models.When(erased, then=models.Value(ERASED)),
        models.When(email_blocked_at__isnull=False, then=models.Value(BLOCKED)),
        models.When(withdrawn_at__isnull=False, then=models.Value(WITHDRAWN)),
        models.When(consent=False, then=models.Value(NO_CONSENT)),
        models.When(confirmed_at__isnull=False, then=models.Value(CONFIRMED)),
        default=models.Value(UNCONFIRMED),
    )


class SignupQuerySet(models.QuerySet):
    def contactable(self) -> SignupQuerySet:
        """The people we may write to: confirmed, consenting, not withdrawn, not bounced, not erased."""
        return self.filter(status=CONFIRMED)

    def not_erased(self) -> SignupQuerySet:
        return self.exclude(status=ERASED)

    def status_counts(self, limit: int) -> dict[str, int]:
        """Return how many rows are in each status, counting at most `limit` + 1 of each (see the admin)."""
        return {status: self.filter(status=status).order_by()[: limit + 1].count() for status, _label in STATUSES}

    def create_unless_duplicate(self, **fields) -> Signup | None:
        """Insert a signup; return None when the email is already taken (the database decides, not a read)."""
        using = router.db_for_write(self.model)
        try:
            with transaction.atomic(using=using):
                return self.using(using).create(**fields)
        except IntegrityError as exc:
            if is_email_conflict(exc):
                return None
            raise

    def estimated_count(self) -> int | None:
        """Return PostgreSQL's estimate of the table's rows (the planner's statistics), or None if unknown.

        The planner's own formula: rows per page from the last ANALYZE times the table's current size, so
        rows inserted since then are roughly counted too. Reads a catalogue row, never the table.
        """
        connection = connections[self.db]
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT CASE WHEN reltuples < 0 OR relpages = 0 THEN NULL ELSE (reltuples / relpages"
                " * (pg_relation_size(oid) / current_setting('block_size')::int))::bigint END"
                " FROM pg_class WHERE oid = %s::regclass",
                [self.model._meta.db_table],
            )
            row = cursor.fetchone()
        return row[0] if row else None


def is_email_conflict(exc: IntegrityError) -> bool:
    """Return whether `exc` is the address's unique constraint (not another integrity error)."""
    cause = exc.__cause__
    diag = getattr(cause, "diag", None)
    if diag is not None:  # PostgreSQL names the violated index
        return diag.constraint_name == EMAIL_UNIQUE_CONSTRAINT
    return "users_signup.email" in str(exc) or EMAIL_UNIQUE_CONSTRAINT in str(exc)  # SQLite


class Signup(models.Model):
    """One person's details as collected by the public signup form."""

    full_name = models.CharField(max_length=150)
    # Stored as typed (local part case kept, domain lower-cased); uniqueness ignores case, see Meta.
    email = models.EmailField(max_length=254)
    phone = models.CharField(max_length=20, blank=True, help_text="E.164, e.g. +442079460958")
    country = CountryField(blank=True)
    consent = models.BooleanField("consent to be contacted", default=False)
    # When consent was given and which wording the person saw: needed to prove consent later.
    consent_at = models.DateTimeField(null=True, blank=True)
    # "<CONSENT_VERSION>:<language>:<digest of the words>" (users.consent): the exact text, in its language.
    consent_version = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(default=timezone.now)  # indexed with id, see Meta
    # The client as seen through the load balancer (X-Forwarded-For, TRUSTED_PROXY_COUNT hops).
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    # Double opt-in: when and from which client IP the person clicked Confirm in the emailed link.
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_ip = models.GenericIPAddressField(null=True, blank=True)
    # Consent withdrawn (manage page or List-Unsubscribe); the purge erases the row after a while.
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    # Set on a bounce or complaint (SES events): no email is ever sent to this address again.
    email_blocked_at = models.DateTimeField(null=True, blank=True)
    email_blocked_reason = models.CharField(max_length=200, blank=True, default="", db_default="")
    # The language the person used the form in: every email to them is in it, whoever triggers it.
    language = models.CharField(max_length=10, default="en", db_default="en")
    # Last "you are already signed up" email queued: at most one per address per hour.
    notice_sent_at = models.DateTimeField(null=True, blank=True)
    # Every emailed link carries this number (users/tokens.py); raising it revokes every link sent before.
    link_version = models.PositiveIntegerField(default=0, db_default=0)
    # A signup from before double opt-in was asked to confirm (`manage.py reconfirm`): asked once, not daily.
    reconfirm_requested_at = models.DateTimeField(null=True, blank=True)
    # The answers to the fields staff added (formdef), typed JSON by field key: numbers as numbers, dates as
    # ISO strings, yes/no as booleans, multiple choice as lists of choice values; an unanswered field is absent.
    # Judged against `form_version`, the definition the person saw. Emptied by erasure.
    answers = models.JSONField(default=dict, blank=True)
    # The published form version (formdef.FormVersion id) the form was rendered with; None before versions.
    form_version = models.PositiveIntegerField(null=True, blank=True)
    # Where the person stands (STATUSES), computed by the database from the columns above whenever a row is
    # written: one definition for the admin's column and filter, the exports and the landing count, and indexed.
    status = models.GeneratedField(
        expression=status_expression(), output_field=models.CharField(max_length=12, choices=STATUSES),
        db_persist=True,
    )  # fmt: skip

    objects = SignupQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(Lower("email"), name=EMAIL_UNIQUE_CONSTRAINT)]
        # And on PostgreSQL CHECK (jsonb_typeof(answers) = 'object') (migration 0013: SQLite has no jsonb).
        indexes = [
            # Each list page is "newest first": every filter's index ends with (created_at, id), so a
            # filtered page is read in order from the index and stops after 50 rows, with no sort.
            models.Index(fields=["created_at", "id"], name="users_signup_created_idx"),
            models.Index(fields=["country", "created_at", "id"], name="users_signup_country_idx"),
            models.Index(fields=["consent", "created_at", "id"], name="users_signup_consent_idx"),
            # The status filter's pages and the capped count of each status (SignupQuerySet.status_counts).
            models.Index(fields=["status", "created_at", "id"], name="users_signup_status_idx"),
            # The landing count (confirmed people) and the purge's "unconfirmed since" read only these rows.
            models.Index(fields=["confirmed_at"], name="users_signup_confirmed_idx"),
            # The admin's search, UPPER(col::text) LIKE UPPER('%term%'), has pg_trgm GIN indexes on exactly
            # that expression: created in migration 0002 with SQL, as they are PostgreSQL-only (local mode
            # runs on SQLite) and declaring them here would need django.contrib.postgres installed.
        ]
        permissions = [
            ("export_signup", "Can export signups (CSV of the list, one person's data as JSON)"),
            ("erase_signup", "Can erase a person's signup (anonymise it)"),
        ]

    def __str__(self) -> str:
        return f"{self.full_name} <{self.email}>"

    def validate_constraints(self, exclude=None) -> None:
        """Leave email uniqueness to the unique index at INSERT time, never a "does it exist?" read.

        That read could hit a lagging replica, race a concurrent signup, and its error message would tell a
        stranger who has signed up; a duplicate is handled by the view like any other signup.
        """
        super().validate_constraints(exclude={*(exclude or ()), "email"})

    @property
    def is_erased(self) -> bool:
        return self.email == erased_email(self.pk)

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None

    @property
    def status_label(self) -> str:
        return dict(STATUSES)[self.status]

    @property
    def can_be_emailed(self) -> bool:
        """Say whether any email may go to this address (not erased, not bounced or complaining)."""
        return not self.is_erased and self.email_blocked_at is None


def erased_email(pk: int) -> str:
    """Return the placeholder address of an erased signup: unique per row, deliverable to nobody."""
    return f"erased-{pk}@{ERASED_EMAIL_DOMAIN}"


class SignupExport(models.Model):
    """One export of collected data by a staff member: who, when, which rows, how many."""

    CSV = "csv"
    XLSX = "xlsx"
    PERSON = "person"
    KINDS = [(CSV, "CSV of the list"), (XLSX, "XLSX of the list"), (PERSON, "one person (JSON)")]

    kind = models.CharField(max_length=10, choices=KINDS)
    # SET_NULL keeps the record when a staff account is deleted; username still says who it was.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    row_count = models.PositiveBigIntegerField(default=0)
    # The list's search and filters as in its URL ({"country": "GB", "q": "smith"}); {"id": n} for one person.
    filters = models.JSONField(default=dict, blank=True)
    # False while streaming, and for good when the client went away: row_count is then what was sent.
    complete = models.BooleanField(default=False)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = "export"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.username} at {self.started_at:%Y-%m-%d %H:%M}"


class Erasure(models.Model):
    """Proof that a person's signup was anonymised, by whom and when. Holds no personal data."""

    # Not a foreign key: the proof must outlive the row if the row is ever deleted.
    signup_id = models.PositiveBigIntegerField(db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150)
    erased_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-erased_at", "-id"]

    def __str__(self) -> str:
        return f"signup {self.signup_id} erased by {self.username} at {self.erased_at:%Y-%m-%d %H:%M}"


class ConsentEvent(models.Model):
    """One entry of a person's consent ledger: the proof of opt-in staff can show. Append-only.

    Rows are only ever added; erasure (users.erasure) is the one change allowed, and it clears `ip`.
    """

    GIVEN = "given"
    CONFIRMED = "confirmed"
    WITHDRAWN = "withdrawn"
    ERASED = "erased"
    PURGED = "purged"
    KINDS = [  # lazy: the person's manage page shows them in their language (staff pages stay English)
        (GIVEN, _("consent given (signup form)")),
        (CONFIRMED, _("address confirmed (double opt-in)")),
        (WITHDRAWN, _("consent withdrawn")),
        (ERASED, _("erased on request")),
        (PURGED, _("erased by retention")),
    ]

    signup = models.ForeignKey(Signup, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10, choices=KINDS)
    at = models.DateTimeField(default=timezone.now)
    # Which consent wording, in which language (users.consent, or a topic's: formdef.published), the person had
    # seen when this happened.
    wording_version = models.CharField(max_length=64, blank=True)
    # The client as seen through the load balancer; None when no person acted (purge) and after erasure.
    ip = models.GenericIPAddressField(null=True, blank=True)
    # The topic this event is about (users.topics); None: the consent to be contacted at all (the form's box).
    # Not indexed: nothing lists the ledger by topic (memberships are SignupTopic), and the migration then adds a
    # NULL column to a large table without building an index while the table is locked.
    # No database constraint (db_constraint=False), as on SignupTopic.topic: see there.
    topic = models.ForeignKey("formdef.Topic", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              db_index=False, db_constraint=False)  # fmt: skip

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["signup", "at"], name="users_consent_signup_at_idx")]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValueError("the consent ledger is append-only (erasure clears IPs with a queryset update)")
        super().save(*args, **kwargs)


class SignupTopic(models.Model):
    """A person's membership of one topic (users/topics.py): chosen on the form or the manage page.

    Confirmed by the double opt-in (or at once when joined from the manage page: the address is proven);
    withdrawn on its own (preference centre, the topic's unsubscribe link) or with all consent. Erasure deletes
    the row; the ledger (ConsentEvent.topic) keeps when and which wording, as for the form's consent.
    """

    signup = models.ForeignKey(Signup, on_delete=models.CASCADE, related_name="memberships")
    # PROTECT: a topic people joined is deactivated, never deleted (the ledger names it too); the admin offers
    # no delete. No database constraint: its check takes a KEY SHARE lock on the topic's row for every signup
    # that joins it, and all signups joining the same few topics queue on those rows (MultiXacts); the signup's
    # statement only inserts topics it reads from formdef_topic in that same statement.
    topic = models.ForeignKey("formdef.Topic", on_delete=models.PROTECT, related_name="memberships",
                              db_index=False, db_constraint=False)  # (topic, confirmed_at) below serves it  # fmt: skip
    # The topic's consent words the person agreed to: "<topic>:<language>:<digest>" (formdef.published).
    wording_version = models.CharField(max_length=64, blank=True)
    chosen_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["topic__position", "topic_id"]
        constraints = [models.UniqueConstraint(fields=["signup", "topic"], name="users_signuptopic_unique")]
        # The topic's members, for its counts, filter and export (signup_id is the unique index's first column).
        indexes = [models.Index(fields=["topic", "confirmed_at"], name="users_signuptopic_topic_idx")]

    def __str__(self) -> str:
        return f"signup {self.signup_id} in {self.topic_id}"

    @property
    def is_active(self) -> bool:
        """In the topic now: confirmed and not withdrawn."""
        return self.confirmed_at is not None and self.withdrawn_at is None


class SnsMessage(models.Model):
    """The MessageId of an SNS message already acted on (users/webhooks.py): a replay changes nothing twice.

    In the database, in the transaction that applies the message, not in Redis (which fails open here): the id
    is remembered exactly when the effect is. Kept twice SNS_MAX_AGE_SECONDS; older messages are refused anyway.
    """

    message_id = models.CharField(max_length=100, primary_key=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return self.message_id


class Tombstone(models.Model):
    """The database's half of the erasure ledger (users.tombstones): the name of every entry it knows.

    Written in the erasure's transaction, before the ledger entry itself: a ledger name missing here means the
    database was restored to before that erasure (`manage.py reapply_erasures` then erases again and records it).
    """

    name = models.CharField(max_length=100, unique=True)  # the ledger object's name (erasure time + signup id)
    signup_id = models.PositiveBigIntegerField()
    erased_at = models.DateTimeField()
    # Set when `manage.py reapply_erasures` learnt this entry from the ledger after a restore.
    reapplied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
