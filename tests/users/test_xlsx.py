"""The XLSX export: typed cells read back by a real spreadsheet (LibreOffice headless), streamed, audited."""

import csv
import datetime as dt
import io
import shutil
import subprocess
import zipfile
from xml.etree import ElementTree

import pytest

from tests.conftest import CI
from tests.helpers import login_staff, sample_replicas
from users import export, xlsx
from users.models import Signup, SignupExport

pytestmark = pytest.mark.usefixtures("live_db")

EXPORT = "/admin/users/signup/export/"
NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
WHEN = dt.datetime(2026, 12, 6, 17, 30, 5, tzinfo=dt.UTC)


@pytest.fixture
def person(pg):
    row = Signup.objects.create(
        full_name='Zoë =HYPERLINK("http://evil.example/","x")', email="zoe@example.com", phone="+442079460958",
        country="GB", consent=True, consent_at=WHEN, created_at=WHEN, confirmed_at=WHEN, user_agent="@SUM(A1)",
    )  # fmt: skip
    pg.wait_for_replica()
    sample_replicas()
    return row


def _download(client) -> bytes:
    staff = login_staff("exporter", "view_signup", "export_signup", client=client)
    response = staff.post(EXPORT, {"format": "xlsx"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == export.FORMATS["xlsx"]
    assert response["Content-Disposition"].endswith('.xlsx"')
    return b"".join(response.streaming_content)


def _cells(body: bytes) -> list[list[ElementTree.Element]]:
    with zipfile.ZipFile(io.BytesIO(body)) as book:
        assert book.testzip() is None
        sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))  # noqa: S314 - our own file
    return [row.findall("m:c", NS) for row in sheet.find("m:sheetData", NS)]


def test_cells_are_typed_phones_text_times_dates_booleans_and_no_formula(client, person):
    header, row = _cells(_download(client))
    names = [c.find("m:is/m:t", NS).text for c in header]
    assert names == export.XLSX_HEADER and "created_at (UTC)" in names  # the zone, said in the header
    cell = dict(zip(names, row, strict=True))
    assert cell["phone"].get("t") == "inlineStr" and cell["phone"].find("m:is/m:t", NS).text == "+442079460958"
    assert cell["consent"].get("t") == "b" and cell["consent"].find("m:v", NS).text == "1"
    assert cell["id"].get("t") is None and cell["id"].find("m:v", NS).text == str(person.pk)
    days = float(cell["created_at (UTC)"].find("m:v", NS).text)
    assert abs(dt.datetime(1899, 12, 30, tzinfo=dt.UTC) + dt.timedelta(days=days) - WHEN) < dt.timedelta(seconds=1)
    assert cell["full_name"].find("m:is/m:t", NS).text.startswith("Zoë =HYPERLINK(")  # text, as typed
    assert not [c for c in row if c.find("m:f", NS) is not None]  # no cell is ever a formula
    audit = SignupExport.objects.using("default").get()
    assert (audit.kind, audit.row_count, audit.complete) == ("xlsx", 1, True)


def test_the_file_leaves_in_pieces_before_the_last_row_is_read():
    rows = ((i, f"name {i}") for i in range(5000))
    pieces = xlsx.stream(["id", "name"], [xlsx.NUMBER, xlsx.TEXT], rows, flush_bytes=1024)
    first = next(pieces)
    assert first.startswith(b"PK") and next(rows)[0] < 4999  # the generator has not been drained
    body = first + b"".join(pieces)
    assert len(_cells(body)) == 5000  # header + 4999 (one row was taken by the assertion above)


@pytest.mark.skipif(not shutil.which("soffice") and not CI, reason="LibreOffice (apt: libreoffice-calc) missing")
def test_libreoffice_reads_the_file_and_the_phone_keeps_its_plus(client, person, tmp_path):
    (tmp_path / "signups.xlsx").write_bytes(_download(client))
    subprocess.run(
        ["soffice", "--headless", f"-env:UserInstallation=file://{tmp_path}/profile", "--convert-to",
         "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false", "--outdir", str(tmp_path),
         str(tmp_path / "signups.xlsx")],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    header, row = list(csv.reader(io.StringIO((tmp_path / "signups.csv").read_text("utf-8"))))
    cell = dict(zip(header, row, strict=True))
    assert header[0] == "id" and cell["phone"] == "+442079460958"
    assert cell["full_name"] == 'Zoë =HYPERLINK("http://evil.example/","x")'  # not run, not mangled
    assert cell["consent"] == "TRUE"
    assert cell["created_at (UTC)"] == "2026-12-06 17:30:05"
