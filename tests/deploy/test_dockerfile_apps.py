"""The image holds every package of ours that the settings load: a new app missing from the Dockerfile's COPY
lines fails here at once, not minutes later in `make image`'s collectstatic (it once did: formdef)."""

import re
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_app_of_ours_in_installed_apps_is_copied_into_the_image():
    copied = set(re.findall(r"^COPY --chown=app:app (\w+) \./\1$", (ROOT / "Dockerfile").read_text(), re.M))
    ours = {app.split(".")[0] for app in settings.INSTALLED_APPS if (ROOT / app.split(".")[0]).is_dir()}
    assert ours and ours <= copied, f"not copied into the image: {sorted(ours - copied)}"
