#!/usr/bin/env python3
"""Make the real PDF and DOCX fixtures for crates/ragmill-extract/tests/data.

Requires: pip install fpdf2 python-docx   (made with fpdf2 2.8.9, python-docx 1.2.0)
Run from the repository root:  python3 scripts/make-extract-fixtures.py
The small text fixtures (HTML, Markdown, latin-1, UTF-16) are written here too, byte-exact.
"""

import datetime
import pathlib

import docx
from docx.shared import Pt  # noqa: F401  (kept for readers tweaking the fixture)
from fpdf import FPDF

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/ragmill-extract/tests/data"
FIXED = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def new_pdf():
    pdf = FPDF()
    pdf.set_creation_date(FIXED)
    pdf.set_font("Helvetica", size=14)
    return pdf


def two_pages(pdf):
    pdf.add_page()
    pdf.cell(text="Alpha page one text.")
    pdf.ln(10)
    pdf.cell(text="The quick brown fox.")
    pdf.add_page()
    pdf.cell(text="Beta page two text.")
    return pdf


def make_pdfs():
    two_pages(new_pdf()).output(str(OUT / "two-pages.pdf"))

    # Needs the user password to open: text cannot be read without it.
    pdf = two_pages(new_pdf())
    pdf.set_encryption(owner_password="owner-secret", user_password="user-secret")
    pdf.output(str(OUT / "encrypted-user-password.pdf"))

    # Encrypted with an empty user password (permissions only): opens without a password.
    pdf = two_pages(new_pdf())
    pdf.set_encryption(owner_password="owner-secret")
    pdf.output(str(OUT / "encrypted-owner-only.pdf"))

    # A "scanned" page: only graphics, no text layer.
    pdf = new_pdf()
    pdf.add_page()
    pdf.set_fill_color(40, 40, 40)
    pdf.rect(20, 20, 120, 80, style="F")
    pdf.output(str(OUT / "no-text.pdf"))


def make_docx():
    d = docx.Document()
    d.core_properties.created = FIXED.replace(tzinfo=None)
    d.core_properties.modified = FIXED.replace(tzinfo=None)
    d.add_heading("Quarterly Report", level=0)  # style "Title"
    d.add_heading("Introduction", level=1)
    d.add_paragraph("Ragmill reads DOCX files.")
    p = d.add_paragraph("Before tab")
    run = p.add_run()
    run.add_tab()
    p.add_run("after tab")
    run = p.add_run()
    run.add_break()
    p.add_run("second line")
    d.add_heading("Details", level=2)
    d.add_paragraph("A table follows.")
    t = d.add_table(rows=2, cols=2)
    t.cell(0, 0).text = "Name"
    t.cell(0, 1).text = "Value"
    t.cell(1, 0).text = "alpha"
    t.cell(1, 1).text = "1"
    d.add_paragraph("The end.")
    d.save(str(OUT / "report.docx"))


def make_text():
    (OUT / "page.html").write_bytes(
        b"<!DOCTYPE html>\n<html><head><title>Ignored title</title>"
        b"<style>body { color: red }</style><script>var x = 'hidden';</script></head>\n"
        b"<body><nav><a href='/'>Home</a></nav>\n"
        b"<h1>Main   Title</h1>\n<p>First  paragraph\n with <b>bold</b> text.</p>\n"
        b"<h2>Section</h2><ul><li>one</li><li>two</li></ul>\n"
        b"<table><tr><th>A</th><th>B</th></tr><tr><td>1</td><td>2</td></tr></table>\n"
        b"<pre>  keep\n    this</pre>\n"
        b"<footer>copyright</footer></body></html>\n"
    )
    (OUT / "notes.md").write_bytes(
        b"# Title\r\n\r\nIntro text.\r\n\r\n## Part `one`\r\n\r\nBody.\r\n\r\n### Deep *three*\r\n\r\nMore.\r\n"
    )
    (OUT / "latin1.txt").write_bytes(
        "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e \u00e0 la fa\u00e7on du ch\u00e2teau, tr\u00e8s appr\u00e9ci\u00e9e.\n"
        "D\u00e9j\u00e0 vu: na\u00efve fa\u00e7ade, \u00e9t\u00e9 \u00e0 M\u00fcnchen.\n".encode("latin-1")
    )
    (OUT / "utf16le-bom.txt").write_bytes(b"\xff\xfe" + "Hello UTF-16 \u00fcber\r\nline two\r\n".encode("utf-16-le"))


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    make_pdfs()
    make_docx()
    make_text()
    for f in sorted(OUT.iterdir()):
        print(f.name, f.stat().st_size)
