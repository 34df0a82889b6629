"""`manage.py seed_signups --count 1000000`: realistic fake signups for load and admin testing, fast.

Rows go to the primary with COPY in batches (one transaction each), ordered by created_at like real
traffic, with addresses only at the reserved example.com/.org/.net domains. Refuses a database that
looks like production unless --force: one on a host other than this machine, or one holding any
signup whose address is not at an example domain (a real person's). ANALYZE runs at the end, so the
planner and the admin's estimated count know the new size at once.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connections, router, transaction
from django.utils import timezone

from users.consent import CONSENT_VERSION
from users.models import Signup
from users.stats import invalidate_signup_count

LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}
EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net")  # RFC 2606: nobody can receive mail there
SPAN = dt.timedelta(days=3 * 365)  # seeded signups spread over the last three years
COLUMNS = ["full_name", "email", "phone", "country", "consent", "consent_at", "consent_version", "created_at",
           "ip_address", "user_agent"]  # fmt: skip

FIRST_NAMES = [
    "Ada", "Grace", "Alan", "Katherine", "Dorothy", "Mary", "John", "James", "Sofia", "Lucas", "Zoë", "Amélie",
    "José", "Søren", "Björn", "Ngozi", "Chidi", "Aisha", "Fatima", "Omar", "Yusuf", "Priya", "Arjun", "Ananya",
    "Wei", "Mei", "Hiroshi", "Yuki", "Min-jun", "Seo-yeon", "Olga", "Dmitri", "Ewa", "Jakub", "Liam", "Noah",
    "Emma", "Olivia", "Chloé", "Mateo", "Valentina", "Thabo", "Lerato", "Kwame", "Ama", "Siobhán", "Niamh",
]  # fmt: skip
LAST_NAMES = [
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Lovelace", "Hopper", "Turing",
    "Müller", "Schmidt", "García", "Fernández", "Rossi", "Bianchi", "Dubois", "Lefèvre", "Nowak", "Kowalski",
    "Okafor", "Adeyemi", "Mensah", "Nkosi", "Khan", "Patel", "Sharma", "Singh", "Wang", "Li", "Zhang", "Chen",
    "Tanaka", "Suzuki", "Kim", "Park", "Nguyễn", "Ivanova", "Petrov", "O'Brien", "Murphy", "Silva", "Santos",
    "Andersson", "Johansson", "Nielsen", "de Vries", "van Dijk", "Hernández", "López",
]  # fmt: skip
# ISO code, weight, phone prefix of a range reserved for drama/fiction or plausible for the country.
COUNTRIES = [
    ("GB", 18, "+447700900"), ("US", 16, "+1202555"), ("DE", 8, "+4915510"), ("FR", 7, "+3361"),
    ("IN", 7, "+9198"), ("NG", 4, "+23480"), ("ES", 4, "+3460"), ("IT", 4, "+39312"), ("CA", 3, "+1613555"),
    ("AU", 3, "+614910"), ("BR", 3, "+55119"), ("JP", 3, "+8190"), ("PL", 2, "+4850"), ("NL", 2, "+3161"),
    ("IE", 2, "+35383"), ("ZA", 2, "+2782"), ("KE", 1, "+2547"), ("SE", 1, "+4670"), ("MX", 1, "+5255"),
    ("KR", 1, "+8210"), ("", 6, ""),
]  # fmt: skip
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
]  # fmt: skip
IP_PREFIXES = ["192.0.2.", "198.51.100.", "203.0.113."]  # IPv4 documentation ranges (RFC 5737)


class Command(BaseCommand):
    help = "Insert realistic fake signups quickly (COPY) for load and admin testing. Never on production."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=1000, help="how many signups to add (default 1000)")
        parser.add_argument("--batch", type=int, default=50_000, help="rows per COPY and transaction")
        parser.add_argument("--seed", type=int, default=None, help="random seed, for repeatable data")
        parser.add_argument("--force", action="store_true", help="run even on a database that looks like production")

    def handle(self, *args, count: int, batch: int, seed: int | None, force: bool, **options):
        if count < 1 or batch < 1:
            raise CommandError("--count and --batch must be positive")
        using = router.db_for_write(Signup)
        connection = connections[using]
        if connection.vendor != "postgresql":
            raise CommandError("seed_signups needs PostgreSQL (it uses COPY)")
        if not force:
            refuse_production(using)
        fake = FakeSignups(random.Random(seed), first_number=_next_id(using), count=count)
        started = time.monotonic()
        progress = Progress(count, self.stderr)
        copy_sql = f"COPY {Signup._meta.db_table} ({', '.join(COLUMNS)}) FROM STDIN"
        for start in range(0, count, batch):
            with transaction.atomic(using=using), connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
                for i in range(start, min(start + batch, count)):
                    copy.write_row(fake.row(i))
                    if i % 5000 == 4999:
                        progress.update(i + 1)
        progress.update(count)
        progress.finish()
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Signup._meta.db_table}")
        invalidate_signup_count()  # the landing page's cached count
        seconds = time.monotonic() - started
        self.stdout.write(
            f"Seeded {count:,} signups in {seconds:.1f} s ({count / seconds:,.0f} rows/s) on {using}; "
            f"the table now holds about {Signup.objects.using(using).estimated_count() or 0:,} rows (ANALYZEd)."
        )


def refuse_production(using: str) -> None:
    """Raise CommandError when the database looks like production (see the module docstring)."""
    host = connections[using].settings_dict.get("HOST") or ""
    if host not in LOCAL_HOSTS and not host.startswith("/"):
        raise CommandError(f"refusing to seed {using} on host {host!r}: not this machine (use --force if you must)")
    real = Signup.objects.using(using).exclude(
        email__iendswith="@" + EXAMPLE_DOMAINS[0]).exclude(
        email__iendswith="@" + EXAMPLE_DOMAINS[1]).exclude(
        email__iendswith="@" + EXAMPLE_DOMAINS[2])  # fmt: skip
    if real.exists():
        raise CommandError(
            f"refusing to seed {using}: it holds signups from real addresses, so it looks like production "
            "(use --force if you must)"
        )


def _next_id(using: str) -> int:
    """Return a number past every existing id, so seeded addresses never collide with earlier runs."""
    last = Signup.objects.using(using).order_by("-id").values_list("id", flat=True).first()
    return (last or 0) + 1


class FakeSignups:
    """Realistic fake signups; row i of count is created i/count of the way through the last SPAN."""

    def __init__(self, rng: random.Random, first_number: int, count: int) -> None:
        self.rng, self.first_number, self.count = rng, first_number, count
        self.start = timezone.now() - SPAN
        self.cum_weights = list(itertools.accumulate(weight for _, weight, _ in COUNTRIES))

    def row(self, i: int) -> tuple:
        rng, number = self.rng, self.first_number + i
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        country, _, phone_prefix = rng.choices(COUNTRIES, cum_weights=self.cum_weights)[0]
        created = self.start + SPAN * (i / self.count) + dt.timedelta(seconds=rng.random())
        local = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
        email = f"{local}.{number}@{rng.choice(EXAMPLE_DOMAINS)}"  # the number keeps every address unique
        phone = f"{phone_prefix}{rng.randrange(100, 1000)}" if phone_prefix and rng.random() < 0.6 else ""
        consent = rng.random() < 0.55
        if rng.random() < 0.9:
            ip = f"{rng.choice(IP_PREFIXES)}{rng.randrange(1, 255)}"
        else:
            ip = f"2001:db8::{number >> 16 & 0xFFFF:x}:{number & 0xFFFF:x}"  # documentation prefix (RFC 3849)
        return (
            f"{first} {last}", email, phone, country, consent, created if consent else None,
            CONSENT_VERSION if consent else "", created, ip, rng.choice(USER_AGENTS),
        )  # fmt: skip


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, a line per tenth otherwise (CI logs)."""

    WIDTH = 30

    def __init__(self, total: int, out) -> None:
        self.total, self.out = total, out
        self.started = self.drawn = time.monotonic()
        self.tty = out.isatty()
        self.tenths = -1

    def update(self, done: int) -> None:
        now = time.monotonic()
        tenths = 10 * done // self.total
        unchanged = now - self.drawn < 0.1 if self.tty else tenths == self.tenths
        if unchanged and done < self.total:
            return
        self.drawn, self.tenths = now, tenths
        filled = self.WIDTH * done // self.total
        rate = done / max(now - self.started, 1e-6)
        line = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done:,}/{self.total:,} rows  {rate:,.0f} rows/s"
        self.out.write("\r" + line if self.tty else line, ending="" if self.tty else "\n")
        self.out.flush()

    def finish(self) -> None:
        if self.tty:
            self.out.write("")  # end the redrawn line
