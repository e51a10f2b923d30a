"""What a note is made of: sections with addresses (`source#anchor`) and the note's own metadata."""

from __future__ import annotations

from dataclasses import dataclass, field

HEADING_PATH_SEPARATOR = " › "
TAG_SEPARATOR = ","  # a note's tags joined, as index metadata holds only scalars


def section_url(source: str, anchor: str) -> str:
    """`aws-notes.md#15`: how citations and links name a section."""
    return f"{source}#{anchor}" if anchor else source


class SectionAddress:
    """`url` and `breadcrumb` for anything with `source`, `anchor` and `heading_path`."""

    source: str
    anchor: str
    heading_path: tuple[str, ...]

    @property
    def url(self) -> str:
        return section_url(self.source, self.anchor)

    @property
    def breadcrumb(self) -> str:
        return HEADING_PATH_SEPARATOR.join(self.heading_path)


@dataclass(frozen=True)
class Section(SectionAddress):
    """One heading and the Markdown under it, up to the next heading of any level."""

    source: str
    anchor: str
    heading: str
    level: int
    heading_path: tuple[str, ...]
    anchor_path: tuple[str, ...]
    start_line: int
    end_line: int
    text: str  # the section's Markdown as written (navigation such as a table of contents left out)
    is_navigation: bool = False
    title: str = ""  # the note's title: front matter `title`, else its file name without the extension
    tags: tuple[str, ...] = ()

    @property
    def parent_anchor(self) -> str | None:
        return self.anchor_path[-2] if len(self.anchor_path) > 1 else None


@dataclass
class NoteMeta:
    """Front matter: `title`, `tags` and `aliases` are used; every other field is kept as written."""

    title: str = ""  # front matter `title`, else the file name without its extension
    tags: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    fields: dict = field(default_factory=dict)


@dataclass
class ParsedNote:
    """The sections of one note, its metadata, and the warnings met while parsing it."""

    source: str
    sections: list[Section] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    meta: NoteMeta = field(default_factory=NoteMeta)
    title: str = ""

    @property
    def content_sections(self) -> list[Section]:
        return [s for s in self.sections if not s.is_navigation and s.text.strip()]
