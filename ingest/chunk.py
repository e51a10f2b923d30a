"""Sections → chunks that never cross a section, with deterministic ids and content hashes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from notes.blocks import plain_text
from notes.model import HEADING_PATH_SEPARATOR, TAG_SEPARATOR, Section

# all-MiniLM-L6-v2 reads at most 256 word pieces; ~900 characters of English plus the heading path
# stays under that, so nothing a chunk holds is silently cut off by the model.
DEFAULT_CHUNK_CHARS = 200
DEFAULT_OVERLAP_CHARS = 40
_SEPARATORS = ["\n\n", "\n- ", "\n* ", "\n", ". ", "; ", ", ", " ", ""]


@dataclass(frozen=True)
class Chunk:
    """A piece of one section: `text` is shown, `embed_text` (heading path first) is embedded."""

    id: str
    section: Section
    ordinal: int
    text: str
    embed_text: str
    hash: str

    def metadata(self) -> dict[str, str | int]:
        """Scalar metadata stored beside the vector, enough to trace any answer to its section.

        The first chunk of a section also carries the section's raw Markdown, so answers can quote the
        note exactly as it was indexed, even from a Chroma server on another machine.
        """
        s = self.section
        extra = {"section_text": s.text} if self.ordinal == 0 else {}
        return {
            "source": s.source,
            "anchor": s.anchor,
            "heading": s.heading,
            "heading_path": HEADING_PATH_SEPARATOR.join(s.heading_path),
            "anchor_path": HEADING_PATH_SEPARATOR.join(s.anchor_path),
            "level": s.level,
            "start_line": s.start_line,
            "end_line": s.end_line,
            "ordinal": self.ordinal,
            "hash": self.hash,
            "title": s.title,
            "tags": TAG_SEPARATOR.join(s.tags),
            **extra,
        }


def make_splitter(*, chunk_chars: int = DEFAULT_CHUNK_CHARS, overlap_chars: int = DEFAULT_OVERLAP_CHARS):
    """LangChain's recursive splitter, cutting at paragraphs, then bullets, then sentences."""
    return RecursiveCharacterTextSplitter(
        chunk_size=chunk_chars, chunk_overlap=overlap_chars, separators=_SEPARATORS, keep_separator="start"
    )


def chunk_section(section: Section, *, splitter: RecursiveCharacterTextSplitter | None = None) -> list[Chunk]:
    """Split one section's cleaned text; each chunk's embedded text starts with its heading path."""
    splitter = splitter or make_splitter()
    body = plain_text(section.text)
    if not body:
        return []
    prefix = HEADING_PATH_SEPARATOR.join(section.heading_path)
    chunks = []
    for ordinal, piece in enumerate(splitter.split_text(body)):
        piece = piece.strip()
        embed_text = f"{prefix}\n\n{piece}"
        digest = hashlib.sha256(embed_text.encode("utf-8")).hexdigest()
        key = f"{section.source}\x00{section.anchor}\x00{ordinal}\x00{digest}"
        chunk_id = hashlib.sha1(key.encode("utf-8")).hexdigest()
        chunks.append(Chunk(chunk_id, section, ordinal, piece, embed_text, digest))
    return chunks


def chunk_sections(sections: list[Section], **options) -> list[Chunk]:
    """Chunks of every content section, in document order (navigation is never chunked)."""
    splitter = make_splitter(**options)
    return [c for s in sections if not s.is_navigation for c in chunk_section(s, splitter=splitter)]
