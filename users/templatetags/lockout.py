from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def timeuntil_minutes(value: timedelta) -> str:
    """Render a cool-off period as "15 minutes" / "1 minute"."""
    minutes = max(1, round(value.total_seconds() / 60)) if value else 1
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
