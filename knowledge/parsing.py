"""From a document's bytes to its sections (the text under each heading), by format; and from
sections to chunks of about a paragraph or three, cut along that structure.

Formats: PDF (pypdf, a section per page), DOCX (python-docx: its Heading styles), PPTX
(python-pptx: a section per slide, titled by the slide's title), HTML and Markdown (Beautiful
Soup over h1–h6), CSV and XLSX (openpyxl: a row per line, "column: value"), plain text.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

#: a chunk holds about this many words (≈ 250 tokens: the embedding model reads 256)
CHUNK_WORDS = 160
MAX_HEADING = 500


class ParseError(Exception):
    """The document cannot be read; ``code`` is one of the documented error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Section:
    headings: list[str]
    text: str
    source_url: str = ""


@dataclass
class ChunkText:
    heading: str
    text: str
    source_url: str = ""
    links: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- formats
EXTENSIONS = {
    ".pdf": "pdf", ".docx": "docx", ".pptx": "pptx", ".html": "html", ".htm": "html", ".md": "markdown",
    ".markdown": "markdown", ".txt": "text", ".csv": "csv", ".xlsx": "xlsx",
}
MEDIA_TYPES = {
    "application/pdf": "pdf", "text/html": "html", "application/xhtml+xml": "html", "text/markdown": "markdown",
    "text/plain": "text", "text/csv": "csv",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}
UNSUPPORTED = {".doc": "old Word .doc files (save it as .docx)", ".ppt": "old PowerPoint .ppt files (save as .pptx)",
               ".xls": "old Excel .xls files (save as .xlsx)", ".png": "images", ".jpg": "images",
               ".jpeg": "images", ".gif": "images", ".webp": "images"}


def detect_format(name: str, media_type: str = "", head: bytes = b"") -> str:
    """The format of a file from its name, its media type and its first bytes."""
    suffix = PurePosixPath(name.lower().split("?")[0]).suffix
    if head.startswith(b"%PDF"):
        return "pdf"
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    base = media_type.split(";")[0].strip().lower()
    if base in MEDIA_TYPES:
        return MEDIA_TYPES[base]
    if suffix in UNSUPPORTED:
        raise ParseError("file_format_unsupported", f"{UNSUPPORTED[suffix]} cannot be read; use PDF, DOCX, PPTX, "
                                                    "TXT, Markdown, HTML, CSV or XLSX")
    if head.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
        return "html"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("file_format_unsupported", f"{name or 'the file'} is not a format we read (PDF, DOCX, "
                                                    "PPTX, TXT, Markdown, HTML, CSV or XLSX)") from None
    return "text"


def parse(data: bytes, fmt: str, *, source_url: str = "") -> list[Section]:
    """The sections of a document. Raises ParseError for a file that cannot be read or is empty."""
    try:
        sections = _PARSERS[fmt](data)
    except ParseError:
        raise
    except Exception as exc:  # noqa: BLE001 - every library has its own errors for a broken file
        raise ParseError("file_format_unsupported", f"the {fmt.upper()} file could not be read "
                                                    f"({type(exc).__name__}: {str(exc)[:200]})") from None
    sections = [Section(s.headings, _tidy(s.text), s.source_url or source_url) for s in sections]
    sections = [s for s in sections if s.text]
    if not sections:
        raise ParseError("file_empty", "the document has no text to read")
    return sections


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\u00a0", " ")
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _pdf(data: bytes) -> list[Section]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    return [Section([f"Page {i}"], page.extract_text() or "") for i, page in enumerate(reader.pages, 1)]


def _docx(data: bytes) -> list[Section]:
    import docx

    document = docx.Document(io.BytesIO(data))
    sections: list[Section] = [Section([], "")]
    path: list[str] = []
    for paragraph in document.paragraphs:
        style = (paragraph.style.name or "") if paragraph.style is not None else ""
        text = paragraph.text.strip()
        match = re.match(r"Heading (\d)", style)
        if match and text:
            level = int(match.group(1))
            path = path[: level - 1] + [text]
            sections.append(Section(list(path), ""))
        elif text:
            sections[-1].text += text + "\n\n"
    for table in document.tables:
        rows = ["; ".join(cell.text.strip() for cell in row.cells) for row in table.rows]
        sections.append(Section(list(path), "\n".join(rows)))
    return sections


def _pptx(data: bytes) -> list[Section]:
    from pptx import Presentation

    sections = []
    for number, slide in enumerate(Presentation(io.BytesIO(data)).slides, 1):
        title = slide.shapes.title.text.strip() if slide.shapes.title is not None else ""
        texts = [shape.text_frame.text for shape in slide.shapes
                 if shape.has_text_frame and shape is not slide.shapes.title]
        if slide.has_notes_slide:
            texts.append(slide.notes_slide.notes_text_frame.text)
        sections.append(Section([title or f"Slide {number}"], "\n\n".join(texts)))
    return sections


def html_sections(html: str) -> tuple[list[Section], list[str], str]:
    """(sections under each heading, the links in the page, its title)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for tag in soup(["script", "style", "noscript", "nav", "footer", "header", "form", "svg", "iframe"]):
        tag.decompose()
    links = [a["href"] for a in soup.find_all("a", href=True)]
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    body = soup.body or soup
    sections: list[Section] = [Section([title] if title else [], "")]
    path: list[str] = []
    for element in body.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "td", "blockquote", "dd", "dt"]):
        if element.find_parent(["li", "td", "blockquote"]) is not None and element.name == "p":
            continue  # its parent's text has it
        text = element.get_text(" ", strip=True)
        if not text:
            continue
        if element.name[0] == "h" and element.name[1:].isdigit():
            level = int(element.name[1])
            path = path[: level - 1] + [text]
            sections.append(Section(list(path), ""))
        else:
            sections[-1].text += ("- " if element.name == "li" else "") + text + "\n\n"
    return sections, links, title


def _html(data: bytes) -> list[Section]:
    return html_sections(_decode(data))[0]


def _markdown(data: bytes) -> list[Section]:
    import markdown

    return html_sections(markdown.markdown(_decode(data), extensions=["tables"]))[0]


def _text(data: bytes) -> list[Section]:
    return [Section([], _decode(data))]


def _rows_as_lines(rows: list[list[str]]) -> str:
    if not rows:
        return ""
    header, body = rows[0], rows[1:]
    if not body:
        return "; ".join(header)
    return "\n\n".join("; ".join(f"{h}: {v}" for h, v in zip(header, row) if str(v).strip()) for row in body)


def _csv(data: bytes) -> list[Section]:
    rows = [row for row in csv.reader(io.StringIO(_decode(data))) if any(c.strip() for c in row)]
    return [Section([], _rows_as_lines(rows))]


def _xlsx(data: bytes) -> list[Section]:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    sections = []
    for sheet in workbook.worksheets:
        rows = [["" if c is None else str(c) for c in row] for row in sheet.iter_rows(values_only=True)]
        rows = [r for r in rows if any(c.strip() for c in r)]
        sections.append(Section([sheet.title], _rows_as_lines(rows)))
    return sections


_PARSERS = {"pdf": _pdf, "docx": _docx, "pptx": _pptx, "html": _html, "markdown": _markdown, "text": _text,
            "csv": _csv, "xlsx": _xlsx}


# ---------------------------------------------------------------------------- chunking
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def _pieces(text: str) -> list[str]:
    """Paragraphs, with any paragraph longer than a chunk cut at sentence ends (or words)."""
    out: list[str] = []
    for paragraph in (p.strip() for p in re.split(r"\n\s*\n", text)):
        if not paragraph:
            continue
        if len(paragraph.split()) <= CHUNK_WORDS:
            out.append(paragraph)
            continue
        current: list[str] = []
        for sentence in _SENTENCE.split(paragraph):
            words = sentence.split()
            while len(words) > CHUNK_WORDS:  # one endless "sentence": cut by words
                out.append(" ".join(words[:CHUNK_WORDS]))
                words = words[CHUNK_WORDS:]
            if current and len(" ".join(current).split()) + len(words) > CHUNK_WORDS:
                out.append(" ".join(current))
                current = []
            if words:
                current.append(" ".join(words))
        if current:
            out.append(" ".join(current))
    return out


def chunk_sections(sections: list[Section]) -> list[ChunkText]:
    """Paragraphs gathered into chunks of up to ``CHUNK_WORDS`` words, never across a heading."""
    chunks: list[ChunkText] = []
    for section in sections:
        heading = " › ".join(h for h in section.headings if h)[:MAX_HEADING]
        current: list[str] = []
        count = 0
        for piece in _pieces(section.text):
            words = len(piece.split())
            if current and count + words > CHUNK_WORDS:
                chunks.append(ChunkText(heading, "\n\n".join(current), section.source_url))
                current, count = [], 0
            current.append(piece)
            count += words
        if current:
            chunks.append(ChunkText(heading, "\n\n".join(current), section.source_url))
    return chunks
