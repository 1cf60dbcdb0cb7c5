#!/usr/bin/env python3
"""Writes a corpus of hostile documents for ragmill (python3 standard library only).

    scripts/make-hostile-corpus.py OUT_DIR            # full size (a 20 MB line, 300 MB bombs)
    scripts/make-hostile-corpus.py --small OUT_DIR    # sized for the test (crates/ragmill/tests/hostile.rs)

Every file is made here from plain bytes; nothing is downloaded. Each file's name is its upload
name, except `manifest.tsv`, which maps a file to the name it is uploaded under (path
traversal, over-long names) and says what it is. Each is meant to end `failed` with a stable
code, be refused at upload with one, or be `ready` with sane chunks; none may hang a worker or
blow up the server's memory.
"""

import io
import os
import struct
import sys
import zipfile
import zlib


def pdf(objects, trailer_extra=""):
    """A PDF from object bodies (object 1 the catalog) with a correct xref table."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % (i + 1)
        out += body if isinstance(body, bytes) else body.encode("latin-1")
        out += b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += (
        "trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, trailer_extra, xref)
    ).encode("latin-1")
    return bytes(out)


def stream(content, extra=""):
    if isinstance(content, str):
        content = content.encode("latin-1")
    return b"<< /Length %d %s>>\nstream\n" % (len(content), extra.encode()) + content + b"\nendstream"


FONT = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
RESOURCES = "/Resources << /Font << /F1 5 0 R >> >>"


def one_page(page_extra, text):
    return pdf([
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page %s /Contents 4 0 R >>" % page_extra,
        stream("BT /F1 12 Tf 72 712 Td (%s) Tj ET" % text),
        FONT,
    ])


def good_pdf():
    return one_page("/Parent 2 0 R /MediaBox [0 0 612 792] " + RESOURCES, "Hostile corpus page")


def encrypted_pdf():
    body = good_pdf()
    enc = "/Encrypt << /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P -44 >> /ID [<%s> <%s>] " % (
        "11" * 32, "22" * 32, "33" * 16, "33" * 16)
    return body.replace(b"/Root 1 0 R ", b"/Root 1 0 R " + enc.encode())


def looping_pdf():
    # The page is its own parent: an inherited-attribute lookup that follows /Parent never ends.
    return pdf([
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 3 0 R /Contents 4 0 R >>",
        stream("BT /F1 12 Tf 72 712 Td (loop) Tj ET"),
        FONT,
    ])


def xref_loop_pdf():
    # The trailer's /Prev points back at the same cross-reference table.
    body = good_pdf()
    xref = body.rindex(b"xref\n")
    return body.replace(b"/Root 1 0 R ", b"/Root 1 0 R /Prev %d " % xref)


def many_pages_pdf(pages):
    # One page object listed `pages` times: a page tree that is cheap to write, costly to walk.
    kids = " ".join(["3 0 R"] * pages)
    return pdf([
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] %s /Contents 4 0 R >>" % RESOURCES,
        stream("BT /F1 12 Tf 72 712 Td (page) Tj ET"),
        FONT,
    ])


def flate_bomb_pdf(inflated):
    # A content stream that inflates to `inflated` bytes of text-showing operators.
    line = b"BT /F1 12 Tf 72 712 Td (aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa) Tj ET\n"
    comp = zlib.compressobj(9)
    packed = bytearray()
    block = line * ((1 << 20) // len(line) + 1)
    done = 0
    while done < inflated:
        packed += comp.compress(block)
        done += len(block)
    packed += comp.flush()
    return pdf([
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] %s /Contents 4 0 R >>" % RESOURCES,
        stream(bytes(packed), "/Filter /FlateDecode "),
        FONT,
    ])


def docx(document_xml_chunks):
    """A DOCX whose word/document.xml is the concatenation of the chunks, streamed."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                   '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
                   'officedocument.wordprocessingml.document.main+xml"/></Types>')
        z.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships/>')
        with z.open("word/document.xml", "w", force_zip64=True) as f:
            for chunk in document_xml_chunks:
                f.write(chunk)
    return buf.getvalue()


def zip_bomb_docx(inflated):
    head = b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>'
    zeros = b"0" * (1 << 20)
    return docx([head] + [zeros] * (inflated >> 20))


def exe_named_pdf():
    # A DOS/PE stub: "MZ", padding, PE offset, "PE\0\0", a machine type.
    stub = bytearray(b"MZ" + b"\x90\x00" * 29 + b"\x00" * 2)
    stub += b"\x00" * (0x3C - len(stub)) + struct.pack("<I", 0x80)
    stub += b"\x00" * (0x80 - len(stub)) + b"PE\x00\x00\x64\x86" + b"\x00" * 400
    return bytes(stub)


def nested_list(depth):
    return "".join("  " * i + "- item %d\n" % i for i in range(depth)).encode()


def main():
    args = sys.argv[1:]
    small = "--small" in args
    args = [a for a in args if a != "--small"]
    if len(args) != 1:
        sys.exit(__doc__)
    out = args[0]
    os.makedirs(out, exist_ok=True)
    mb = 1 << 20
    line_mb = 4 if small else 20
    bomb = 300 * mb  # over the 256 MiB decompression limit either way; ~300 KB compressed

    prose = ("Hostile inputs must fail cleanly. " * 20 + "\n\n").encode()
    files = [
        # (file, upload name, what it is)
        ("zip-bomb.docx", None, zip_bomb_docx(bomb), "DOCX whose XML inflates to 300 MB of zeros"),
        ("encrypted.pdf", None, encrypted_pdf(), "PDF with a Standard security handler"),
        ("looping.pdf", None, looping_pdf(), "PDF page that is its own parent"),
        ("xref-loop.pdf", None, xref_loop_pdf(), "PDF whose /Prev xref points at itself"),
        ("truncated.pdf", None, many_pages_pdf(3)[:180], "PDF cut off in its first object"),
        ("many-pages.pdf", None, many_pages_pdf(20_000 if small else 200_000), "one page listed many times"),
        ("flate-bomb.pdf", None, flate_bomb_pdf((64 if small else 512) * mb), "content stream inflating to 64+ MB"),
        ("exe.pdf", None, exe_named_pdf(), "a PE executable named .pdf"),
        ("traversal.txt", "../../../etc/passwd.txt", prose, "path traversal in the file name"),
        ("long-name.txt", "n" * 300 + ".txt", prose, "a 304-character file name"),
        ("utf16-nobom.txt", None, ("UTF-16 without a byte order mark. " * 200).encode("utf-16-le"), "BOM-less UTF-16LE"),
        ("latin1.txt", None, ("Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e, na\u00efve fa\u00e7ade. " * 200).encode("latin-1"), "Latin-1"),
        ("mixed-encodings.txt", None, ("UTF-8 caf\u00e9 \u2014 ".encode() + "Latin-1 caf\u00e9 ".encode("latin-1") + "Shift_JIS \u65e5\u672c ".encode("shift_jis")) * 300, "UTF-8, Latin-1 and Shift_JIS in one file"),
        ("rtl-emoji.txt", None, ("\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd \U0001F468\u200D\U0001F469\u200D\U0001F467 e\u0301\u0301\u0301 \u202Eevil\u202C \U0001F600\n" * 300).encode(), "RTL scripts, emoji ZWJ sequences, combining marks, bidi overrides"),
        ("nested-list.md", None, nested_list(1000), "Markdown list nested 1,000 deep (1 MB)"),
        ("long-line.txt", None, b"x" * (line_mb * mb), "%d MB line without whitespace" % line_mb),
        ("deep.html", None, b"<html><body>" + b"<div>" * 100_000 + b"deep</body></html>", "100,000 nested <div>s"),
        ("flat.html", None, b"<html><body>" + b"<i>x</i>" * 1_100_000 + b"</body></html>", "1.1 million elements"),
        ("giant-attr.html", None, b'<html><body><div title="' + b"a" * ((2 if small else 16) * mb) + b'">visible text</div></body></html>', "a multi-megabyte attribute"),
        ("brackets.md", None, b"[" * (200_000) + b"x" + b"]" * 200_000, "200k unmatched link brackets"),
        ("quotes.md", None, b">" * 100_000 + b" deep quote\n", "a block quote nested 100k deep"),
        ("emphasis.md", None, b"*a **a " * 100_000 + b"\n", "300k unclosed emphasis runs"),
        ("nuls.txt", None, b"\x00" * mb, "1 MB of NUL bytes"),
        ("whitespace.txt", None, b" \n\t" * (100_000), "only whitespace"),
    ]
    with open(os.path.join(out, "manifest.tsv"), "w", encoding="utf-8") as manifest:
        for file, name, data, what in files:
            with open(os.path.join(out, file), "wb") as f:
                f.write(data)
            manifest.write("%s\t%s\t%s\n" % (file, name or file, what))
    print("wrote %d files to %s" % (len(files), out))


if __name__ == "__main__":
    main()
