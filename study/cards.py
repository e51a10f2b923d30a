"""Cloze cards from the notes' answer units, no LLM needed: a figure, a defined term, a name, a command or
a short list's item is blanked out of one unit (study/blanks.py), kept when study/keep.py finds it worth
asking, and the card keeps the unit's exact quote and address.

Written by hand: LangChain and the flashcard libraries make cards with an LLM or from cards written by
hand; none picks a blank from a note's own sentences and keeps its citation.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field

from notes.model import ParsedNote, Section
from notes.units import Unit, units_of
from qa.text import content_terms, name_vocabulary
from study.blanks import Blank, command_blanks, figure_blanks, item_blanks, name_blanks, term_blank
from study.keep import BLANK, MIN_CONTEXT_TERMS, keep_reason, plain

DEFAULT_MAX_PER_SECTION = 6  # cards kept per section, the best first (one per quote)
DEFAULT_MAX_PER_UNIT = 2  # a row of limits gives one card per figure, up to this many
DEFAULT_COMMON_SHARE = 0.25  # a word in more sections than this is the notes' subject, not something to recall
MIN_COMMON_SECTIONS = 4
DEFAULT_WIDESPREAD_SHARE = 0.05  # a one-word name in more sections than this (HTTP, API) asks little
MIN_WIDESPREAD_SECTIONS = 6
KINDS = ("figure", "term", "name", "command", "item")  # cloze kinds; "question" is an LLM's (study/freeform.py)
_KIND_RANK = {kind: n for n, kind in enumerate(KINDS)}
_SYMBOLS = re.compile(r"[^\w\s.,;:!?()'\"’“”$€£%&@+/<>=~#*`\[\]{}|·∙–—-]")  # emoji and icons: decoration
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


@dataclass
class Card:
    """One cloze card: `prompt` with `___` where `answer` was, from `quote` (the note's exact text)."""

    id: str
    source: str
    anchor: str
    heading: str  # the section's heading path as a breadcrumb
    prompt: str
    answer: str
    quote: str
    kind: str  # figure | term | name | command | item
    section_hash: str = ""
    heading_path: tuple[str, ...] = ()
    anchor_path: tuple[str, ...] = ()
    title: str = ""
    tags: tuple[str, ...] = ()
    score: float = field(default=0.0, compare=False)

    def to_dict(self) -> dict:
        """The `python -m study cards --json` line, plus where the card sits."""
        data = asdict(self)
        data.pop("score")
        data["heading_path"], data["anchor_path"], data["tags"] = (
            list(self.heading_path), list(self.anchor_path), list(self.tags))
        return data


def card_id(source: str, quote: str, answer: str) -> str:
    """Stable across edits elsewhere: the same quote with the same blank is the same card (and keeps its
    reviews) wherever its section moves; a changed quote is a new card."""
    return hashlib.sha1(f"{source}\0{' '.join(quote.split())}\0{answer}".encode()).hexdigest()[:16]


def section_hash(section: Section) -> str:
    return hashlib.sha1(section.text.encode()).hexdigest()[:16]


def _prompt(text: str, blank: Blank) -> str:
    return f"{text[:blank.start]}{BLANK}{text[blank.end:]}"


def _mostly_links(quote: str) -> bool:
    """A line of links ("Homepage ∙ User guide ∙ FAQ"): a menu, not a fact."""
    links = _LINK.findall(quote)
    return len(links) >= 2 and len(content_terms(_LINK.sub(" ", quote))) < MIN_CONTEXT_TERMS


def unit_cards(unit: Unit, section: Section, names: set[str], *, common: frozenset[str] = frozenset(),
               widespread: frozenset[str] = frozenset(), max_per_unit: int = DEFAULT_MAX_PER_UNIT) -> list[Card]:
    """The cloze cards one unit gives, best first. `common` holds names the notes use everywhere (the
    notes' own subject): blanking one of those asks nothing."""
    text = " ".join(_SYMBOLS.sub(" ", unit.text).split())
    if unit.kind in ("item", "example") or _mostly_links(unit.quote) or "~~" in unit.quote:
        return []  # an item repeats its sentences' cards; struck-through text is what the notes retired
    if unit.kind == "list":
        blanks = item_blanks(unit, names)
    else:
        blanks = (term_blank(text, unit.label, names) + command_blanks(text) + figure_blanks(text)
                  + name_blanks(text, names))
    cards: list[Card] = []
    taken: list[Blank] = []
    heading_words = plain(" ".join(section.heading_path))
    for blank in sorted(blanks, key=lambda b: (-b.score, b.start)):
        if any(blank.start < t.end and t.start < blank.end for t in taken):
            continue
        same = re.match(r"\s*\(\s*[$\d][^()]{0,28}\)", text[blank.end:]) if blank.kind == "figure" else None
        if same and re.search(r"\d", same.group(0)):  # "900 seconds (15 minutes)": the same figure, both answer
            blank = Blank(blank.start, blank.end + same.end(), blank.kind, blank.score)
        answer = text[blank.start:blank.end].strip().strip("`").strip()
        if blank.kind == "term":
            answer = answer.rstrip(":").strip()
        prompt = _prompt(text, blank)
        if plain(answer) in common or unit.kind == "row" and blank.start < text.find(" · "):
            continue  # the notes' own subject; a table row's first cell names the row
        if keep_reason(prompt, answer, unit.quote, kind=blank.kind, heading_path=section.heading_path,
                       common=common, widespread=widespread):
            continue
        taken.append(blank)
        score = blank.score - (1.0 if plain(answer) in heading_words else 0.0)
        cards.append(Card(card_id(section.source, unit.quote, answer), section.source, section.anchor,
                          section.breadcrumb, prompt, answer, unit.quote, blank.kind, section_hash(section),
                          section.heading_path, section.anchor_path, section.title, section.tags, score))
        if len(cards) >= max_per_unit:
            break
    return cards


def section_cards(section: Section, names: set[str], *, common: frozenset[str] = frozenset(),
                  widespread: frozenset[str] = frozenset(), max_cards: int = DEFAULT_MAX_PER_SECTION) -> list[Card]:
    """A section's cards: the best `max_cards`, one per prompt, in note order."""
    found: list[tuple[int, Card]] = []
    for order, unit in enumerate(units_of(section.text)):
        found += [(order, card) for card in unit_cards(unit, section, names, common=common, widespread=widespread)]
    seen: set[str] = set()
    kept: list[tuple[int, Card]] = []
    for order, card in sorted(found, key=lambda oc: (-oc[1].score, _KIND_RANK[oc[1].kind], oc[0])):
        key = plain(card.prompt)
        if card.id in seen or key in seen:
            continue
        seen |= {card.id, key}
        kept.append((order, card))
        if len(kept) >= max_cards:
            break
    return [card for _, card in sorted(kept, key=lambda oc: oc[0])]


def note_names(notes: list[ParsedNote]) -> set[str]:
    """Words these notes write as names (Lambda, DynamoDB…): learned from the notes, never listed."""
    return name_vocabulary([s.text for n in notes for s in n.content_sections])


def common_names(notes: list[ParsedNote], *, share: float = DEFAULT_COMMON_SHARE,
                 least: int = MIN_COMMON_SECTIONS) -> frozenset[str]:
    """Words in more than `share` of the sections, and more than `least` (AWS in AWS notes, Poetry in
    Poetry's docs)."""
    sections = [s for n in notes for s in n.content_sections]
    seen: dict[str, int] = {}
    for section in sections:
        for word in {w.strip(".,;:()!?'\"") for w in plain(section.text).split()}:
            seen[word] = seen.get(word, 0) + 1
    floor = max(least, share * len(sections))
    return frozenset(w for w, n in seen.items() if n > floor)


def make_cards(notes: list[ParsedNote], *, max_per_section: int = DEFAULT_MAX_PER_SECTION) -> list[Card]:
    """Every card the notes give, note by note in section order."""
    names, common = note_names(notes), common_names(notes)
    widespread = common_names(notes, share=DEFAULT_WIDESPREAD_SHARE, least=MIN_WIDESPREAD_SECTIONS)
    cards: dict[str, Card] = {}
    for note in notes:
        for section in note.content_sections:
            for card in section_cards(section, names, common=common, widespread=widespread,
                                      max_cards=max_per_section):
                cards.setdefault(card.id, card)  # a passage repeated in two sections is one card, the first
    return list(cards.values())


