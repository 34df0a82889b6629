from __future__ import annotations

import logging

from django.db import IntegrityError, models, router, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django_countries.fields import CountryField

logger = logging.getLogger("users")

EMAIL_UNIQUE_CONSTRAINT = "users_signup_email_ci_unique"


class SignupQuerySet(models.QuerySet):
    def create_unless_duplicate(self, **fields) -> Signup | None:
        """Insert a signup; return None when the email is already taken (the database decides, not a read)."""
        using = router.db_for_write(self.model)
        try:
            with transaction.atomic(using=using):
                return self.using(using).create(**fields)
        except IntegrityError as exc:
            if _is_email_conflict(exc):
                return None
            raise


def _is_email_conflict(exc: IntegrityError) -> bool:
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
    consent_version = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The client as seen through the load balancer (X-Forwarded-For, TRUSTED_PROXY_COUNT hops).
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)

    objects = SignupQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(Lower("email"), name=EMAIL_UNIQUE_CONSTRAINT)]
        indexes = [models.Index(fields=["country"]), models.Index(fields=["consent"])]

    def validate_constraints(self, exclude=None) -> None:
        """Leave email uniqueness to the unique index at INSERT time, never a "does it exist?" read.

        That read could hit a lagging replica, race a concurrent signup, and its error message would tell a
        stranger who has signed up; a duplicate is handled by the view like any other signup.
        """
        super().validate_constraints(exclude={*(exclude or ()), "email"})

    def __str__(self) -> str:
        return f"{self.full_name} <{self.email}>"
