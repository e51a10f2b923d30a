"""Whether a cloze card is worth keeping: the blank is meaningful, the rest says what is asked without giving
the answer away or leaning on text the card does not show, the answer is in the quote, and the prompt reads
as words. Each rule came from a failure class of the rubric review (eval/study_rubric.md, eval/cards/).

Written by hand: these are checks on our own cards, which no library makes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from qa.text import STOPWORDS, content_terms, stem

BLANK = "___"
MIN_CONTEXT_TERMS = 3  # words left around the blank that say what is asked
MAX_ANSWER_WORDS = 5
MAX_PROMPT_CHARS = 300
_MARKUP = re.compile(r"[*_`\[\]<>|#]|\]\([^)]*\)")
# At a code block, a figure or a page the card cannot show.
_POINTS_AWAY = re.compile(r"\b(?:like this|as follows|the following|following example|this example|shown (?:here|below)|"
                          r"see below|below|above|(?:found|see|listed|described) here|for this|like this|of this)\W*$", re.I)
# One of a list: other answers would be as right.
_LISTED_BEFORE = re.compile(r"(?:[,;/]|\b(?:such as|like|e\.g\.,?|i\.e\.,?|including|include|includes|or|and|"
                            r"vs\.?|versus))\s*$", re.I)
_LISTED_AFTER = re.compile(r"^\s*(?:[,;/]|(?:or|and|vs\.?|versus)\b)", re.I)
_PRONOUN = re.compile(r"\b(?:it|them|they|their)\b", re.I)  # refers to a sentence the card does not show
POINTS_BACK = re.compile(
    r"^(?:it|its|they|their|them|this|these|that|those|he|she|such|both|as a result|therefore|thus|"
    r"hence|otherwise|similarly|likewise|in (?:this|that|such a) case|the (?:former|latter|first|second|third|other)|"
    r"example|for example|e\.g\.|see|refer to|above that|below that|beyond that|after that|before that)\b", re.I)

# Leans on an example or a block the card does not show.
_EXAMPLE = re.compile(r"\b(?:(?:this|the|that|above) example|the following|following (?:call|command|code|example|snippet)|"
                      r"the above|refer to)\b", re.I)

# "this limit", "these steps": a thing named in a sentence the card does not show (after a bold label,
# "Lambda SnapStart: This feature…" names its thing, so the label's own "This" is left alone).
_THIS_THING = re.compile(r"\b(?:this|these|those) (?!is\b|are\b|was\b|can\b|will\b|means\b)[a-z]+\b", re.I)

_LABEL_THIS = re.compile(r"^(?:[A-Z][\w-]*\s+)+[A-Z][\w-]*:\s*(?i:this|these)\s+\w+")

_PLACEHOLDER = re.compile(r"^(?:foo|bar|baz|qux|quux|spam|eggs|my[-_]?\w+|example\w*)$", re.I)

_GARBLED = re.compile(r"(?:\b\d{1,3}:\s.*){2,}|\b\w+n t\b|[a-z]\.\d+\.?\s*$")  # footnotes run together; a lost apostrophe



def plain(text: str) -> str:
    """Words only, lower case: what "the answer is in the quote" is checked on."""
    return " ".join(_MARKUP.sub(" ", text).lower().split())


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
    if POINTS_BACK.match(prompt) or prompt.startswith(BLANK) and POINTS_BACK.match(rest.strip()) \
            or label and not named and POINTS_BACK.match(before[label.end():]):
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

