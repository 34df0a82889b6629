"""A spreadsheet (XLSX) written while its rows are read: the first bytes leave before the last row is fetched.

1. Cells are typed: text as text (a phone keeps its "+", and no text is ever a formula: an XLSX cell holds a
   formula only in an <f> element, which this writer never writes), whole numbers as numbers, booleans as
   TRUE/FALSE, times as spreadsheet dates in UTC with a date-and-time format (the header names the zone).
2. The parts are written into a ZIP that is never seeked (data descriptors, ZIP64), so the file can be
   handed out in pieces; the sheet is streamed through zlib at level 1.
3. Why not XlsxWriter or openpyxl: both assemble the ZIP when the workbook closes, so nothing could leave
   before the last row (a million rows take longer than a load balancer waits for a first byte).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from xml.sax.saxutils import escape

TEXT, NUMBER, BOOL, TIME, CODE = "text", "number", "bool", "time", "code"  # CODE: text kept as typed (phones)
DATE = "date"  # an ISO date string ("2026-12-06"), written as a spreadsheet date without a time
_EPOCH = dt.datetime(1899, 12, 30, tzinfo=dt.UTC)  # day 0 of the 1900 date system, as spreadsheets count
_STYLE = {TIME: 1, CODE: 2, DATE: 4}  # indexes into cellXfs below
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # XML 1.0 cannot hold these at all

_STATIC_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
        'Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
        'Target="worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
        'Target="styles.xml"/></Relationships>'
    ),
    "xl/styles.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy\\-mm\\-dd\\ hh:mm:ss"/>'
        '<numFmt numFmtId="165" formatCode="yyyy\\-mm\\-dd"/></numFmts>'
        '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="5"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
        '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"
    ),
}


def _workbook(sheet_name: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        f'<sheets><sheet name="{escape(sheet_name)}" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )


class _Pieces(io.RawIOBase):
    """An unseekable file that keeps what was written until it is taken (zipfile then writes no seeks)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self.pending = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        self.pending += len(data)
        return len(data)

    def take(self) -> bytes:
        data, self._chunks, self.pending = b"".join(self._chunks), [], 0
        return data


def text(value: str) -> str:
    return escape(_NOT_XML.sub("", value))


def _cell(value, kind: str) -> str:
    if value is None or value == "":
        return "<c/>"
    if kind == TIME:
        days = (value - _EPOCH).total_seconds() / 86400
        return f'<c s="1"><v>{days:.8f}</v></c>'
    if kind == BOOL:
        return f'<c t="b"><v>{int(bool(value))}</v></c>'
    if kind == NUMBER:
        if value.__class__ is float:  # a number answer with a fraction (users/answers.py); repr is exact
            return f"<c><v>{value!r}</v></c>"
        if value.__class__ is int or not isinstance(value, str | bool | list):
            return f"<c><v>{int(value)}</v></c>"
    if kind == DATE and isinstance(value, str):
        try:
            days = (dt.date.fromisoformat(value) - _EPOCH.date()).days
        except ValueError:
            days = None
        if days is not None and days > 0:
            return f'<c s="4"><v>{days}</v></c>'
    style = ' s="2"' if kind == CODE else ""  # "@": typed into later, it stays text
    return f'<c t="inlineStr"{style}><is><t xml:space="preserve">{text(str(value))}</t></is></c>'


def stream(header: list[str], kinds: list[str], rows: Iterable[tuple], *, sheet: str = "Sheet1",
           flush_bytes: int = 64 * 1024) -> Iterator[bytes]:  # fmt: skip
    """Yield an XLSX file of one sheet in pieces of about `flush_bytes`: the header in bold, then `rows`."""
    out = _Pieces()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for name, body in (*_STATIC_PARTS.items(), ("xl/workbook.xml", _workbook(sheet))):
            book.writestr(name, body)
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as part:
            part.write(
                b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                b'<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" state="frozen"/>'
                b"</sheetView></sheetViews><sheetData>"
            )
            cells = "".join(f'<c t="inlineStr" s="3"><is><t>{text(name)}</t></is></c>' for name in header)
            part.write(f"<row>{cells}</row>".encode())
            pairs = list(enumerate(kinds))
            for row in rows:
                part.write(("<row>" + "".join(_cell(row[i], kind) for i, kind in pairs) + "</row>").encode())
                if out.pending >= flush_bytes:
                    yield out.take()
            part.write(b"</sheetData></worksheet>")
    yield out.take()
