"""The catalogues: no user-facing text outside gettext in public templates; none missing or fuzzy; .mo current."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.template.base import Lexer, TokenType

from tests.conftest import CI

BASE = Path(__file__).resolve().parents[2]
TEMPLATES = BASE / "templates"
STAFF = ("admin", "ops", "staff", "api")  # English only: staff, on-call and API users, not the public side
SHOWN_ATTRIBUTES = {"alt", "title", "placeholder", "aria-label", "aria-description"}
LANGUAGES = ("de", "fr", "es")


def _public_templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*") if p.suffix in {".html", ".txt"}
                  and p.relative_to(TEMPLATES).parts[0] not in STAFF)  # fmt: skip


class _Text(HTMLParser):
    """Collect the text a reader sees: text nodes and the attributes that are shown or read aloud."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in {"style", "script"}
        self.found += [value for name, value in attrs if name in SHOWN_ATTRIBUTES and value]

    def handle_endtag(self, tag):
        self._skip -= tag in {"style", "script"} and self._skip > 0

    def handle_data(self, data):
        if not self._skip:
            self.found.append(data)


def untranslated(source: str, *, html: bool = True) -> list[str]:
    """Return the literal words of a template that no {% translate %} or {% blocktranslate %} holds."""
    literal, depth = [], 0
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0] if token.contents else ""
            depth += name in {"blocktranslate", "blocktrans", "comment"}
            depth -= name in {"endblocktranslate", "endblocktrans", "endcomment"}
            literal.append(" ")
        elif token.token_type == TokenType.TEXT and not depth:
            literal.append(token.contents)
        else:
            literal.append(" ")  # a variable: data, not wording
    text = "".join(literal)
    if html:
        parser = _Text()
        parser.feed(text)
        parser.close()
        pieces = parser.found
    else:
        pieces = [text]
    return [p.strip() for p in pieces if any(ch.isalpha() for ch in p)]


def test_the_checker_finds_an_untranslated_word():
    assert untranslated("<p>{% translate 'Hello' %} <b>world</b></p>") == ["world"]
    assert untranslated('<img alt="A cat" src="x">') == ["A cat"]
    assert untranslated("{% blocktranslate %}Hi {{ name }}{% endblocktranslate %} &middot; {{ x }}") == []
    assert untranslated("Dear {{ name }},", html=False)[0].startswith("Dear")


@pytest.mark.parametrize("path", _public_templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_public_templates_hold_no_untranslated_text(path):
    assert untranslated(path.read_text(), html=path.suffix == ".html") == []


def _msgfmt() -> str:
    found = shutil.which("msgfmt")
    if not found:
        if CI:
            pytest.fail("CI=true but msgfmt is not installed (apt-get install gettext)")
        pytest.skip("msgfmt is not installed (apt-get install gettext)")
    return found


def _statistics(msgfmt: str, po: Path) -> str:
    done = subprocess.run([msgfmt, "--check", "--statistics", "-o", os.devnull, str(po)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stderr.strip()


def test_every_catalogue_is_complete_for_the_code_as_it_is(tmp_path):
    """Run makemessages on a copy of the tree: a new string, or one changed, shows up untranslated or fuzzy."""
    msgfmt = _msgfmt()
    copy = tmp_path / "tree"
    ignore = shutil.ignore_patterns(".venv*", ".local", ".git", "staticfiles", "test-output", "node_modules",
                                    "__pycache__", "*.mo", ".pytest_cache", ".ruff_cache", ".terraform")  # fmt: skip
    shutil.copytree(BASE, copy, ignore=ignore)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "LOG_LEVEL": "ERROR"}
    for name in ("DATABASE_URL", "DATABASE_REPLICA_URLS", "REDIS_URL"):
        env.pop(name, None)  # makemessages needs no services
    done = subprocess.run([sys.executable, "manage.py", "makemessages"], cwd=copy, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for language in LANGUAGES:
        stats = _statistics(msgfmt, copy / "locale" / language / "LC_MESSAGES" / "django.po")
        assert re.fullmatch(r"\d+ translated messages?\.", stats), f"{language}: {stats} (translate, then make)"


def test_the_compiled_catalogues_are_current():
    msgfmt = _msgfmt()
    for language in LANGUAGES:
        po = BASE / "locale" / language / "LC_MESSAGES" / "django.po"
        mo = po.with_suffix(".mo")
        assert "untranslated" not in _statistics(msgfmt, po) and "fuzzy" not in _statistics(msgfmt, po)
        assert mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime, f"{mo} is stale: run `make` (test or run)"


def test_the_build_compiles_the_catalogues_everywhere(tmp_path):
    """make run/test and the image build the .mo files with msgfmt; CI installs it. The Dockerfile's line works."""
    makefile = (BASE / "Makefile").read_text()
    assert re.search(r"^run: .*\$\(MO\)", makefile, re.M) and re.search(r"^test: .*\$\(MO\)", makefile, re.M)
    assert "need+=(gettext)" in (BASE / ".ci" / "run").read_text()
    dockerfile = (BASE / "Dockerfile").read_text()
    build, app = (re.search(rf"^FROM \S+ AS {stage}\n(.*?)(?=^FROM )", dockerfile, re.M | re.S).group(1)
                  for stage in ("build", "app"))  # fmt: skip
    assert "gettext" in build and "COPY locale ./locale" in build
    assert "COPY --from=build --chown=app:app /build/locale ./locale" in app
    _msgfmt()
    (command,) = re.findall(r"^RUN (for po in locale/.*)$", build, re.M)
    shutil.copytree(BASE / "locale", tmp_path / "locale", ignore=shutil.ignore_patterns("*.mo"))
    subprocess.run(["bash", "-ec", command], cwd=tmp_path, check=True, timeout=60)
    for language in LANGUAGES:
        assert (tmp_path / "locale" / language / "LC_MESSAGES" / "django.mo").stat().st_size > 1000
