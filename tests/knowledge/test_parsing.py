"""Every format the knowledge base reads becomes sections under its headings, and chunks that
keep to that structure; unreadable files get the documented error codes."""
from __future__ import annotations

import pytest

from knowledge.parsing import CHUNK_WORDS, ParseError, Section, chunk_sections, detect_format, parse
from tests.knowledge import files


def _text(sections) -> str:
    return " ".join(s.text for s in sections)


def test_docx_sections_follow_its_headings():
    sections = parse(files.docx_bytes(), "docx")
    refund = next(s for s in sections if files.FACTS["refund"] in s.text)
    assert refund.headings == ["Customer help", "Refunds"]


def test_pptx_slides_are_titled_sections():
    sections = parse(files.pptx_bytes(), "pptx")
    assert sections[0].headings == ["Opening hours"] and files.FACTS["hours"] in sections[0].text


def test_xlsx_rows_read_as_column_value_lines():
    text = _text(parse(files.xlsx_bytes(), "xlsx"))
    assert "product: Zorblax 3000; price: 417 euros" in text


def test_pdf_text_is_read_page_by_page():
    sections = parse(files.pdf_bytes(["The Zorblax 3000 costs 417 euros."]), "pdf")
    assert sections[0].headings == ["Page 1"] and "417 euros" in sections[0].text


def test_html_keeps_the_content_and_drops_scripts_and_navigation():
    sections = parse(files.html_page("Help", "<h2>Refunds</h2><p>" + files.FACTS["refund"] + "</p>"), "html")
    text = _text(sections)
    assert files.FACTS["refund"] in text and "var x" not in text and "Home About" not in text
    assert any(s.headings == ["Help", "Refunds"] for s in sections)


def test_markdown_and_csv():
    md = parse(b"# Shop\n\n## Hours\n\n" + files.FACTS["hours"].encode(), "markdown")
    assert any(s.headings == ["Shop", "Hours"] and files.FACTS["hours"] in s.text for s in md)
    assert "name: Ana; city: Lisbon" in _text(parse(b"name,city\nAna,Lisbon\n", "csv"))


@pytest.mark.parametrize("name, head, code", [
    ("scan.png", b"\x89PNG\r\n", "file_format_unsupported"),
    ("old.doc", b"\xd0\xcf\x11\xe0", "file_format_unsupported"),
    ("blob.bin", b"\xff\xfe\x00\x81\x92", "file_format_unsupported"),
])
def test_formats_we_cannot_read_are_named(name, head, code):
    with pytest.raises(ParseError) as err:
        detect_format(name, "", head)
    assert err.value.code == code


def test_a_broken_or_empty_file_gets_its_code():
    with pytest.raises(ParseError) as err:
        parse(b"PK\x03\x04 not really a docx", "docx")
    assert err.value.code == "file_format_unsupported"
    with pytest.raises(ParseError) as err:
        parse(b"   \n\n  ", "text")
    assert err.value.code == "file_empty"


def test_chunks_keep_to_headings_and_stay_under_the_model_window():
    long_paragraph = " ".join(f"Sentence number {i} says something about blenders." for i in range(120))
    sections = [Section(["Products"], files.FACTS["zorblax"]), Section(["Refunds"], files.FACTS["refund"]),
                Section(["Manual"], long_paragraph)]
    chunks = chunk_sections(sections)
    assert [c.heading for c in chunks[:2]] == ["Products", "Refunds"]  # never merged across a heading
    manual = [c for c in chunks if c.heading == "Manual"]
    assert len(manual) >= 4 and all(len(c.text.split()) <= CHUNK_WORDS for c in manual)
    assert " ".join(c.text for c in manual).split() == long_paragraph.split()  # nothing lost
