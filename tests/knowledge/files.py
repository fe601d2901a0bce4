"""Small real documents of every format the knowledge base reads, made with the same libraries
people's tools use (python-docx, python-pptx, openpyxl) or written out by hand (PDF, HTML)."""
from __future__ import annotations

import io

FACTS = {
    "refund": "Refunds are paid within 14 days to the card used for the purchase.",
    "zorblax": "The Zorblax 3000 blender costs 417 euros and comes with a five-year warranty.",
    "hours": "The Lisbon shop opens at nine in the morning and closes at six in the evening, Monday to Saturday.",
}


def docx_bytes() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Customer help", level=1)
    document.add_heading("Refunds", level=2)
    document.add_paragraph(FACTS["refund"])
    document.add_heading("Products", level=2)
    document.add_paragraph(FACTS["zorblax"])
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def pptx_bytes() -> bytes:
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Opening hours"
    slide.placeholders[1].text = FACTS["hours"]
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def xlsx_bytes() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Prices"
    sheet.append(["product", "price"])
    sheet.append(["Zorblax 3000", "417 euros"])
    sheet.append(["Zorblax Mini", "199 euros"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def pdf_bytes(lines: list[str]) -> bytes:
    """A one-page PDF with the lines in Helvetica (the file format written out by hand)."""
    text = "BT /F1 11 Tf 50 780 Td 14 TL " + " ".join(
        "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '" for line in lines) + " ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text.encode("latin-1") + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def html_page(title: str, body: str, links: list[str] = ()) -> bytes:
    anchors = "".join(f'<a href="{href}">{href}</a> ' for href in links)
    return (f"<!doctype html><html><head><title>{title}</title><script>var x = 1;</script></head><body>"
            f"<nav>Home About</nav><h1>{title}</h1>{body}<p>{anchors}</p><footer>© Shop</footer></body></html>").encode()
