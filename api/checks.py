"""System checks for the API and webhooks settings."""

from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=True)
def check_webhook_secret_keys(app_configs, **kwargs):
    """Outside local mode the endpoints' secrets must be encrypted with keys of their own, not SECRET_KEY's."""
    if settings.LOCAL_MODE or settings.WEBHOOK_SECRET_KEYS:
        return []
    return [Warning(
        "WEBHOOK_SECRET_KEYS is unset: the webhook endpoints' secrets are encrypted with a key derived from "
        "SECRET_KEY, so rotating SECRET_KEY would make every endpoint's secret unreadable.",
        hint="Set WEBHOOK_SECRET_KEYS (or WEBHOOK_SECRET_KEYS_FILE) from its own secret (Terraform: "
             "the webhook-secret-keys secret).",
        id="api.W001")]  # fmt: skip
