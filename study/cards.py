"""Cloze cards from the notes' answer units, no LLM needed: a figure, a defined term, a name, a command or
a short list's item is blanked out of one unit, and the card keeps the unit's exact quote and address.

Written by hand: LangChain and the flashcard libraries make cards with an LLM or from cards written by
hand; none picks a blank from a note's own sentences and keeps its citation.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from notes.model import ParsedNote, Section
from notes.units import Unit, units_of
from qa.text import STOPWORDS, content_terms, name_vocabulary, stem

BLANK = "___"
DEFAULT_MAX_PER_SECTION = 6  # cards kept per section, the best first (one per quote)
DEFAULT_MAX_PER_UNIT = 2  # a row of limits gives one card per figure, up to this many
MIN_CONTEXT_TERMS = 3  # words left around the blank that say what is asked
MAX_ANSWER_WORDS = 5
MAX_PROMPT_CHARS = 300
MAX_LIST_ITEMS = 4  # a longer list has too many right answers for one blank
DEFAULT_COMMON_SHARE = 0.25  # a word in more sections than this is the notes' subject, not something to recall
MIN_COMMON_SECTIONS = 4
DEFAULT_WIDESPREAD_SHARE = 0.05  # a one-word name in more sections than this (HTTP, API) asks little
MIN_WIDESPREAD_SECTIONS = 6
KINDS = ("figure", "term", "name", "command", "item")
_KIND_RANK = {kind: n for n, kind in enumerate(KINDS)}

# A figure: a number not glued to letters before it (EC2, S3 are names), with its unit when one follows, or
# a range of two ("128 MB to 10GB", "5-10 seconds").
# Units of measure and counting words (generic English, not any one corpus's vocabulary).
_UNIT_WORDS = ("ms|milliseconds?|seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|times|"
               "bytes?|bits?|characters?|chars|requests?|copies|items?|records?|rows?|lines?|files?|versions?|"
               "instances?|nodes?|regions?|zones?|AZs|accounts?|users?|connections?|partitions?|shards?|"
               "retries|attempts?|steps?|levels?|digits?|cents?|dollars?|percent|million|billion|thousand")
_UNIT = rf"(?:(?:\s?(?:%|[KMGTP]i?B(?:/s|-[a-z]+)?\b|[KMGT]Hz\b|x\b)|\s(?:{_UNIT_WORDS})\b|-(?:[a-z]+)\b))?"
_NUM = r"(?<![\w.$@/-])[$€£]?\d[\d,]*(?:\.\d+)?"
_FIGURE = re.compile(rf"[<>~]?{_NUM}{_UNIT}(?:\s?(?:-|–|to)\s?{_NUM}{_UNIT})?")
_DEFINES = re.compile(r"^(?P<term>[^,;:()]{2,60}?)\s+(?:is|are|was|refers to|means)\s+(?:a|an|the|one)\s+", re.I)
_DEFINES_LABEL = re.compile(r"^(?:(?:this|these|it|they)\s+(?:is|are)\b|(?:a|an)\s)", re.I)
_POINTS_AWAY = re.compile(r"\b(?:like this|as follows|the following|following example|this example|shown (?:here|below)|"
                          r"see below|below|above|(?:found|see|listed|described) here|for this|like this|of this)\W*$", re.I)  # at a code block or figure the card cannot show
_SYMBOLS = re.compile(r"[^\w\s.,;:!?()'\"’“”$€£%&@+/<>=~#*`\[\]{}|·∙–—-]")  # emoji and icons: decoration
_LISTED_BEFORE = re.compile(r"(?:[,;/]|\b(?:such as|like|e\.g\.,?|i\.e\.,?|including|include|includes|or|and|"
                            r"vs\.?|versus))\s*$", re.I)
_LISTED_AFTER = re.compile(r"^\s*(?:[,;/]|(?:or|and|vs\.?|versus)\b)", re.I)
_PRONOUN = re.compile(r"\b(?:it|them|they|their)\b", re.I)  # refers to a sentence the card does not show
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_POINTS_BACK = re.compile(
    r"^(?:it|its|they|their|them|this|these|that|those|he|she|such|both|as a result|therefore|thus|"
    r"hence|otherwise|similarly|likewise|in (?:this|that|such a) case|the (?:former|latter|first|second|third|other)|"
    r"example|for example|e\.g\.|see|refer to|above that|below that|beyond that|after that|before that)\b", re.I)
_EXAMPLE = re.compile(r"\b(?:(?:this|the|that|above) example|the following|following (?:call|command|code|example|snippet)|"
                      r"the above|refer to)\b", re.I)
# "this limit", "these steps": a thing named in a sentence the card does not show (after a bold label,
# "Lambda SnapStart: This feature…" names its thing, so the label's own "This" is left alone)
_THIS_THING = re.compile(r"\b(?:this|these|those) (?!is\b|are\b|was\b|can\b|will\b|means\b)[a-z]+\b", re.I)
_LABEL_THIS = re.compile(r"^(?:[A-Z][\w-]*\s+)+[A-Z][\w-]*:\s*(?i:this|these)\s+\w+")  # leans on an example or a block the card does not show
_PLACEHOLDER = re.compile(r"^(?:foo|bar|baz|qux|quux|spam|eggs|my[-_]?\w+|example\w*)$", re.I)
_GARBLED = re.compile(r"(?:\b\d{1,3}:\s.*){2,}|\b\w+n t\b|[a-z]\.\d+\.?\s*$")  # footnote numbers run together; a lost apostrophe
_CODE_SPAN = re.compile(r"`([^`]+)`")
_WORD = re.compile(r"[\w@&+#.'/-]+")
_MARKUP = re.compile(r"[*_`\[\]<>|#]|\]\([^)]*\)")
_NAME_JOINERS = frozenset({"&", "of", "for", "on", "de"})


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


@dataclass(frozen=True)
class Blank:
    """A candidate blank inside a unit's text: [start, end) and what kind of thing it is."""

    start: int
    end: int
    kind: str
    score: float


def card_id(source: str, quote: str, answer: str) -> str:
    """Stable across edits elsewhere: the same quote with the same blank is the same card (and keeps its
    reviews) wherever its section moves; a changed quote is a new card."""
    return hashlib.sha1(f"{source}\0{' '.join(quote.split())}\0{answer}".encode()).hexdigest()[:16]


def section_hash(section: Section) -> str:
    return hashlib.sha1(section.text.encode()).hexdigest()[:16]


def plain(text: str) -> str:
    """Words only, lower case: what "the answer is in the quote" is checked on."""
    return " ".join(_MARKUP.sub(" ", text).lower().split())


def _is_name_word(word: str, names: set[str]) -> bool:
    core = word.strip(".,'\"")
    if not core or core.lower() in STOPWORDS:
        return False
    if core[0].isdigit():
        return False  # 10GB, 128MB: a figure
    if any(c.isdigit() for c in core) and any(c.isalpha() for c in core):
        return True  # EC2, S3, Route53
    if any(c.isupper() for c in core[1:]) or "@" in core:
        return True  # DynamoDB, SnapStart, Lambda@Edge, AWS
    return core[:1].isupper() and stem(core.lower()) in names


def _capitalised(word: str) -> bool:
    return word[:1].isupper()


def _name_blanks(text: str, names: set[str]) -> list[Blank]:
    """Whole runs of name words ("AWS Step Functions", "RDS Proxy", "Java 11"), never part of a longer
    capitalised phrase (a title's "… Key Becoming ___") and never the text's first word."""
    words = list(_WORD.finditer(text))
    blanks, run = [], []

    def close(after: int) -> None:
        while run and run[-1].group(0).lower() in _NAME_JOINERS:
            run.pop()
        if run and len(run) <= MAX_ANSWER_WORDS and any(_is_name_word(w.group(0), names) for w in run):
            first, last = words.index(run[0]), words.index(run[-1])
            glued = lambda a, b: text[a.end():b.start()].strip() in ("", "-", "–", "—")  # noqa: E731
            previous = words[first - 1].group(0) if first > 0 else ""
            before = bool(previous) and glued(words[first - 1], run[0]) and _capitalised(previous) \
                and (previous.lower() not in STOPWORDS or previous.isupper())
            after_cap = last + 1 < len(words) and glued(run[-1], words[last + 1]) \
                and _capitalised(words[last + 1].group(0))
            start, end = run[0].start(), run[-1].end()
            while end > start and text[end - 1] in ".,'":
                end -= 1
            if not before and not after_cap and start > 0:
                blanks.append(Blank(start, end, "name", 2.0 + 0.2 * len(run)))
        run.clear()

    for n, m in enumerate(words):
        word = m.group(0)
        if run and text[run[-1].end():m.start()].strip():  # punctuation between two names: two names
            close(n)
        number = bool(run) and re.fullmatch(r"\d+(?:\.\d+)*", word.rstrip(".,")) is not None  # Java 11, PEP 517, Route 53
        if _is_name_word(word, names) or number or (run and word.lower() in _NAME_JOINERS):
            run.append(m)
        else:
            close(n)
    close(len(words))
    return blanks


def _figure_blanks(text: str) -> list[Blank]:
    out = []
    for m in _FIGURE.finditer(text):
        value = m.group(0).rstrip().rstrip(",")
        previous = re.search(r"([\w.]+)\s*$", text[:m.start()])
        if previous and _capitalised(previous.group(1)) and m.start() > previous.end() - 1:
            continue  # "Java 11", "March 24", "Route 53": part of a name or a date
        digits = re.sub(r"\D", "", value)
        if re.fullmatch(r"(19|20)\d\d", value.strip()) and len(digits) == 4:
            continue
        if re.fullmatch(r"\d+\.\d+(?:\.\d+)*", value.strip()):
            continue  # "1.2", "3.9": a version, not a quantity  # a year is rarely what a card should ask (and "in 2019" reads as a date, not a limit)
        if value.strip().isdigit() and len(value.strip()) == 1 and m.end() - m.start() == 1:
            score = 1.5  # a bare single digit ("2 types"): weaker than a figure with its unit
        else:
            score = 3.0
        out.append(Blank(m.start(), m.start() + len(value), "figure", score))
    return out


def _term_blank(text: str, label: str, names: set[str]) -> list[Blank]:
    """The thing a sentence defines: "AWS Lambda is a serverless compute service…", or a bold label whose
    text defines it ("Edge Functions: These are code snippets…")."""
    if label and text.startswith(label) and text[len(label):len(label) + 1] == ":":
        rest = text[len(label) + 1:].strip()
        if _DEFINES_LABEL.match(rest) and any(_is_name_word(w, names) for w in label.split()):
            return [Blank(0, len(label), "term", 3.5)]
        return []
    m = _DEFINES.match(text)
    if not m:
        return []
    term = m.group("term")
    lead = re.match(r"(?:the|an?)\s+", term, re.I)
    start = lead.end() if lead else 0
    if not any(_is_name_word(w, names) for w in term[start:].split()) or _POINTS_BACK.match(term):
        return []
    return [Blank(start, len(term), "term", 3.5)]


def _command_blanks(text: str) -> list[Blank]:
    """One inline code span in prose ("To add a dependency, run `poetry add`."): the command is the answer,
    so the prompt shows no code."""
    spans = list(_CODE_SPAN.finditer(text))
    if len(spans) != 1:
        return []
    code = spans[0].group(1).strip()
    if not code or len(code.split()) > MAX_ANSWER_WORDS or len(code) > 60:
        return []
    return [Blank(spans[0].start(), spans[0].end(), "command", 2.5)]


def _item_blanks(unit: Unit, names: set[str]) -> list[Blank]:
    """An item of a short list of names ("two types of Edge functions: CloudFront Functions; ___")."""
    if unit.kind != "list" or not 2 <= len(unit.items) <= MAX_LIST_ITEMS:
        return []
    out = []
    for item in unit.items:
        words = item.rstrip(".").split()
        if not words or len(words) > MAX_ANSWER_WORDS or not any(_is_name_word(w, names) for w in words):
            continue
        at = unit.text.rfind(item.rstrip("."))
        if at > 0:
            out.append(Blank(at, at + len(item.rstrip(".")), "item", 1.8))
    return out[-1:]  # the last item: the others stay as the hint


def _prompt(text: str, blank: Blank) -> str:
    return f"{text[:blank.start]}{BLANK}{text[blank.end:]}"


def _stems(text: str) -> set[str]:
    text = re.sub(r"(?<=\d)[,.](?=\d)", "", text.lower())  # 1,000,000 is one figure, not "000" thrice
    return {stem(t) for t in re.findall(r"[a-z0-9]+", text) if len(t) > 2 and t not in STOPWORDS}


def _shares_word(own: set[str], heading: set[str]) -> bool:
    """A word of the answer is a word of the heading, or starts like one (config / configuration)."""
    return any(a == h or min(len(a), len(h)) >= 4 and (a.startswith(h) or h.startswith(a)) for a in own for h in heading)


def _spelled_out(answer: str, rest: str) -> bool:
    """An acronym whose words stand beside it ("Infrequent Access (___)" → IA), or the other way round."""
    def initials_match(acronym: str, text: str) -> bool:
        letters = re.sub(r"s$", "", acronym) if len(acronym) > 2 else acronym
        words = [w for w in re.findall(r"[A-Za-z][a-z0-9]*", text) if w.lower() not in ("of", "and", "for", "the")]
        return any("".join(w[0] for w in words[i:i + len(letters)]).upper() == letters.upper()
                   for i in range(len(words) - len(letters) + 1))

    if re.search(r"\d", answer):
        return False
    compact = answer.replace(" ", "")
    if re.fullmatch(r"[A-Z][A-Za-z]{1,5}", compact) and sum(c.isupper() for c in compact) >= 2:
        return initials_match(compact.upper() if not compact.endswith("s") else compact[:-1].upper(), rest)
    if any(initials_match(word, rest) for word in answer.split() if re.fullmatch(r"[A-Z]{3,6}", word)):
        return True  # "AWS WAF" beside "web application firewall"
    return any(initials_match(acr, answer) for acr in re.findall(r"\b[A-Z]{2,6}s?\b", rest)) \
        if len(answer.split()) >= 2 else False


def keep_reason(prompt: str, answer: str, quote: str, *, kind: str = "name", heading_path: Iterable[str] = (),
                common: frozenset[str] = frozenset(), widespread: frozenset[str] = frozenset()) -> str | None:
    """Why a cloze is not kept (None: keep it). The blank must be meaningful, the rest must say what is
    asked without giving the answer away, the answer must be in the quote, and the prompt must read as
    words (no markup, no code). `common`: words of the notes' subject; `widespread`: words in many sections."""
    words = answer.split()
    if not words or len(words) > MAX_ANSWER_WORDS:
        return "answer too long"
    if all(w.lower().strip(".,") in STOPWORDS for w in words) or len(re.sub(r"\W", "", answer)) < 2:
        return "blank is a stop word"
    if re.search(r":\s*(?:·|$)", prompt.rstrip(".")):
        return "an empty cell: the table's marks were lost"
    if "`" in prompt or _MARKUP.search(prompt.replace(BLANK, "")) or "http" in prompt or "\n" in prompt:
        return "markup or code in the prompt"
    if "://" in answer or re.search(r"\w\.\w+\.\w", answer) or max(len(w) for w in words) > 30:
        return "answer is an address"
    if answer.endswith(":"):
        return "answer leads into a list"
    if re.search(r"\w/\w", answer) and sum(w[:1].isupper() for w in re.split(r"[/\s]", answer)) >= 2:
        return "several answers in one blank"  # SNS/SQS/Kinesis
    if len(prompt) > MAX_PROMPT_CHARS:
        return "prompt too long"
    if prompt.count(BLANK) != 1:
        return "not one blank"
    before, after = prompt.split(BLANK)
    rest = f"{before} {after}"
    if plain(answer) in plain(rest) or _spelled_out(answer, rest):
        return "answer given away in the prompt"
    own = _stems(answer) - {stem(w) for w in common}
    if kind == "command" and own & _stems(rest) or own and own <= _stems(rest) \
            or kind in ("name", "term") and any(len(w) >= 4 for w in own & _stems(rest)):
        return "answer given away in the prompt"
    if not own or own <= _stems(" ".join(heading_path)) or _shares_word(own, _stems(list(heading_path)[-1:] and
                                                                                       list(heading_path)[-1] or "")):
        return "answer is the subject of the notes or the section"
    if _PLACEHOLDER.match(answer.strip("`")):
        return "a placeholder name from an example"
    if kind == "name" and re.search(r"[A-Z][\w-]*\s*\($", before) and re.fullmatch(r"[A-Za-z0-9]*[A-Z][A-Za-z0-9]*[A-Z]\w*",
                                                                                    answer):
        return "an abbreviation of the words before it"
    modified = re.match(r"\s+([a-z][a-z-]+)\b", after)
    if kind == "name" and re.fullmatch(r"[A-Z]{2,5}s?", answer) and modified and modified.group(1) not in STOPWORDS:
        return "an abbreviation qualifying the noun after it (the ___ role, ___ endpoints)"
    if _EXAMPLE.search(rest) or _GARBLED.search(rest) or _THIS_THING.search(_LABEL_THIS.sub("", rest.strip())):
        return "prompt leans on an example, or its text is garbled"
    if kind in ("name", "command") and len(words) == 1 and plain(answer).strip(".,") in widespread:
        return "a word used all over the notes"
    if len(content_terms(rest)) < MIN_CONTEXT_TERMS:
        return "too little around the blank"
    label = re.match(r"^([^:]{1,60}):\s*", before)
    named = label is not None and sum(w[:1].isupper() for w in label.group(1).split()) >= 2  # "Lambda SnapStart:"
    if _POINTS_BACK.match(prompt) or prompt.startswith(BLANK) and _POINTS_BACK.match(rest.strip()) \
            or label and not named and _POINTS_BACK.match(before[label.end():]):
        return "prompt points back at a sentence it does not show"
    if _PRONOUN.search(rest):
        return "prompt leans on a sentence it does not show"
    if not re.match(rf"(?:{re.escape(BLANK)}|[A-Z0-9$\"“'])", prompt):
        return "prompt starts mid-sentence"
    if re.search(r"\b(?:19|20)\d\d\b", answer):
        return "a date"
    if _POINTS_AWAY.search(prompt.rstrip(".:")):
        return "prompt points at something the card cannot show"
    if kind in ("name", "command") and (_LISTED_BEFORE.search(before) or _LISTED_AFTER.match(after)):
        return "one of a list: other answers would be as right"
    if kind == "figure" and (re.search(r"\d[\w,.]*(?:\s+[a-z]+)?\s*\($", before) or re.match(r"\s*\(\s*[$\d]", after)):
        return "the figure before it gives it away"  # "900 seconds (___)" is 15 minutes
    if kind == "name" and re.match(r"['’]s\b", after):
        return "the owner of a name, not the name"  # "___'s mrjob"
    if kind == "name" and after.startswith(":") and before.strip():
        return "a label, not a fact"
    if plain(answer.strip("`")) not in plain(quote) or re.search(rf"(?:<sup>|\[\^)\s*{re.escape(answer)}", quote):
        return "answer not in the quote"
    return None


def _mostly_links(quote: str) -> bool:
    """A line of links ("Homepage ∙ User guide ∙ FAQ"): a menu, not a fact."""
    links = _LINK.findall(quote)
    return len(links) >= 2 and len(content_terms(_LINK.sub(" ", quote))) < MIN_CONTEXT_TERMS


def unit_cards(unit: Unit, section: Section, names: set[str], *, common: frozenset[str] = frozenset(),
               widespread: frozenset[str] = frozenset(), max_per_unit: int = DEFAULT_MAX_PER_UNIT) -> list[Card]:
    """The cloze cards one unit gives, best first. `common` holds names the notes use everywhere (the
    notes' own subject): blanking one of those asks nothing."""
    text = " ".join(_SYMBOLS.sub(" ", unit.text).split())
    if unit.kind in ("item", "example") or _mostly_links(unit.quote):  # an item repeats its sentences' cards
        return []
    if unit.kind == "list":
        blanks = _item_blanks(unit, names)
    else:
        blanks = (_term_blank(text, unit.label, names) + _command_blanks(text) + _figure_blanks(text)
                  + _name_blanks(text, names))
    cards: list[Card] = []
    taken: list[Blank] = []
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
        heading_words = plain(" ".join(section.heading_path))
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


