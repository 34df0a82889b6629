"""System checks for the person's-data settings (emails and their links)."""

from pathlib import Path

from django.conf import settings
from django.core.checks import Warning, register


@register()
def check_email_links(app_configs, **kwargs):
    errors = []
    if settings.HTTPS and not settings.PUBLIC_BASE_URL.startswith("https://"):
        errors.append(
            Warning(
                f"PUBLIC_BASE_URL={settings.PUBLIC_BASE_URL!r} is not https: the links in emails, List-Unsubscribe "
                "included (RFC 8058 requires https), would point at plain HTTP or a local address.",
                hint="Set PUBLIC_BASE_URL to the public origin, e.g. https://signup.example.org.",
                id="users.W001",
            )
        )
    if settings.EMAIL_PROVIDER == "ses" and settings.EMAIL_FROM.rpartition("@")[2].rstrip(">") == "example.org":
        errors.append(
            Warning(
                "EMAIL_FROM is still the example sender: SES refuses an identity you have not verified.",
                hint="Set EMAIL_FROM to an address at your SES-verified domain.",
                id="users.W002",
            )
        )
    return errors


@register(deploy=True)
def check_ses_events(app_configs, **kwargs):
    """Sending through SES without its bounce/complaint topic: bounced addresses would keep getting email."""
    if settings.EMAIL_PROVIDER == "ses" and not settings.SES_EVENTS_TOPIC_ARN:
        hint = "Set SES_EVENTS_TOPIC_ARN to the SNS topic of the SES configuration set (see docs/email.md, Bounces)."
        return [Warning("EMAIL_PROVIDER=ses but SES_EVENTS_TOPIC_ARN is unset: /webhooks/ses/ refuses every event.",
                        hint=hint, id="users.W003")]  # fmt: skip
    return []


@register()
def check_languages(app_configs, **kwargs):
    """A language offered without its compiled catalogue would show English under that language's name."""

    def compiled(code: str) -> bool:
        return any((Path(path) / code / "LC_MESSAGES" / "django.mo").exists() for path in settings.LOCALE_PATHS)

    missing = [code for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE and not compiled(code)]
    if not missing:
        return []
    return [Warning(f"LANGUAGES offers {', '.join(missing)} but locale/ has no compiled catalogue for it.",
                    hint="Run `make test` or `make run` (msgfmt), or add locale/<code>/ and translate it (docs/"
                         "languages.md).", id="users.W004")]  # fmt: skip


@register(deploy=True)
def check_erasure_ledger(app_configs, **kwargs):
    """Outside local mode the erasure ledger must outlive the database and a SECRET_KEY rotation."""
    if settings.LOCAL_MODE:
        return []
    errors = []
    if not settings.ERASURE_LEDGER_BUCKET:
        errors.append(Warning(
            f"ERASURE_LEDGER_BUCKET is unset: erasures are recorded in the folder {settings.ERASURE_LEDGER_DIR}, "
            "which a container loses; a restored backup would then bring erased people back.",
            hint="Set ERASURE_LEDGER_BUCKET to the Object Lock bucket (Terraform output erasure_ledger_bucket).",
            id="users.W010"))  # fmt: skip
    if not settings.ERASURE_LEDGER_KEY:
        errors.append(Warning(
            "ERASURE_LEDGER_KEY is unset: the ledger's address HMAC key is derived from SECRET_KEY, so rotating "
            "SECRET_KEY would leave reapply_erasures matching by signup id only.",
            hint="Set ERASURE_LEDGER_KEY (or ERASURE_LEDGER_KEY_FILE) from its own secret.",
            id="users.W011"))  # fmt: skip
    return errors
