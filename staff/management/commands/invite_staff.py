from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from staff import enrolment


class Command(BaseCommand):
    help = (
        "Print a single-use, expiring enrolment link for a staff account (STAFF_ENROLMENT_HOURS): its owner opens "
        "it, signs in with the password and sets up an authenticator app. Revokes the account's older links."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", action="store_true", help="Also email the link to the account's address.")

    def handle(self, *, username: str, email: bool, **options) -> None:
        user = get_user_model().objects.filter(username=username, is_active=True, is_staff=True).first()
        if user is None:
            raise CommandError(f"no active staff account {username!r}")
        invite = enrolment.invite(user, "manage.py", email=email)
        self.stdout.write(settings.STAFF_BASE_URL + invite.path())
        self.stderr.write(f"valid once, until {invite.expires_at:%Y-%m-%d %H:%M} UTC" + (", emailed" if email else ""))
