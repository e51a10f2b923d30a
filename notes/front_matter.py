"""A note's front matter (YAML between `---`, TOML between `+++`) as metadata: title, tags, aliases.

Front matter comes from files anyone may have written, so it is read within bounds: at most
`MAX_FRONT_MATTER_CHARS` of it, no YAML aliases (`*name`: a few hundred bytes of nested aliases expand
into gigabytes), and a title and lists of bounded size. Front matter outside these bounds is ignored
with one warning; the note itself is still indexed.
"""

from __future__ import annotations

import re
import tomllib

import yaml

from notes.model import NoteMeta

MAX_FRONT_MATTER_CHARS = 32 * 1024
MAX_TITLE_CHARS = 200
MAX_LISTED = 50  # tags or aliases kept per note
MAX_LISTED_CHARS = 100  # characters kept per tag or alias

_YAML_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?---[ \t]*(?:\n|\Z)", re.S)
_TOML_FRONT_MATTER = re.compile(r"\A\+\+\+[ \t]*\n(.*?\n)?\+\+\+[ \t]*(?:\n|\Z)", re.S)
_LIST_FIELD = re.compile(r"[,\s]+")
_LONE_CR = re.compile(r"\r(?!\n)")


def normalize_newlines(text: str) -> str:
    """Old Mac line endings (a lone CR) as LF; CRLF stays as written. The parser counts lines as
    markdown-it does (CR, LF and CRLF each end one), and the notes model splits on LF."""
    return _LONE_CR.sub("\n", text) if "\r" in text else text


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases: they are how a tiny document expands without bound."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"the alias *{event.anchor}: YAML aliases are not allowed "
                                              "in front matter", event.start_mark)
        return super().compose_node(parent, index)


def _parse_fields(text: str, source: str, warnings: list[str] | None) -> object:
    """The front matter's fields (any YAML or TOML value), or None with a warning when it is refused."""
    yaml_match, toml_match = _YAML_FRONT_MATTER.match(text), _TOML_FRONT_MATTER.match(text)
    match = yaml_match or toml_match
    if not match:
        return None
    body = match.group(1) or ""
    problem = None
    if len(body) > MAX_FRONT_MATTER_CHARS:
        problem = f"{len(body) // 1024} KB, over the {MAX_FRONT_MATTER_CHARS // 1024} KB limit"
    else:
        try:
            return yaml.load(body, Loader=_NoAliasLoader) if yaml_match else tomllib.loads(body)
        except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
            problem = str(exc).splitlines()[0]
        except RecursionError:
            problem = "nested too deeply"
    if warnings is not None:
        warnings.append(f"{source}:1: the front matter cannot be read ({problem}); ignored")
    return None


def _listed(value) -> tuple[str, ...]:
    """Tags or aliases as written: a list, or one string of words separated by commas or spaces."""
    if isinstance(value, str):
        value = [v for v in _LIST_FIELD.split(value) if v]
    if not isinstance(value, (list, tuple)):
        return ()
    kept = (str(v).strip().lstrip("#")[:MAX_LISTED_CHARS] for v in value[:MAX_LISTED] if str(v).strip())
    return tuple(dict.fromkeys(kept))


def read_front_matter(text: str, source: str = "", warnings: list[str] | None = None) -> NoteMeta:
    """A note's front matter without parsing the rest; bad or oversized front matter is ignored, with a
    warning, and `title` falls back to the file name."""
    stem = source.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    fields = _parse_fields(normalize_newlines(text), source, warnings)
    if not isinstance(fields, dict):
        return NoteMeta(title=stem)
    title = str(fields.get("title") or "").strip()[:MAX_TITLE_CHARS].strip() or stem
    return NoteMeta(title=title, tags=_listed(fields.get("tags")), aliases=_listed(fields.get("aliases")),
                    fields=fields)
