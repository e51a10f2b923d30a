"""GitHub's heading ids, as github-slugger computes them (the npm package GitHub's ids are checked against).

Written by hand: no Python package reproduces github-slugger (python-slugify and markdown-it's anchors
plugin transliterate or keep other characters). The rule: lower-case; drop every character of the
Unicode general categories below unless it is alphabetic; spaces become `-`; a repeated id gets
`-1`, `-2`… (`tests/test_slug.py` runs github-slugger's own fixtures).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# github-slugger's script/generate-regex.mjs strips these categories: Other_Number, the punctuation
# classes except connectors (`_`), every Symbol, Control, Private_Use, Format, Unassigned, Separator.
_STRIPPED = frozenset({"No", "Pe", "Pf", "Pi", "Ps", "Po", "Pd", "Sc", "Sk", "Sm", "So", "Cc", "Co", "Cf", "Cn",
                       "Zl", "Zp", "Zs"})
# …except what Unicode calls Alphabetic. In those categories that is only the circled and squared
# letters (Other_Alphabetic symbols); Python's unicodedata has no Alphabetic property to ask.
_ALPHABETIC_SYMBOLS = ((0x24B6, 0x24E9), (0x1F130, 0x1F149), (0x1F150, 0x1F169), (0x1F170, 0x1F189))


@lru_cache(maxsize=4096)
def _kept(char: str) -> bool:
    if char in " -":
        return True
    if unicodedata.category(char) not in _STRIPPED:
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in _ALPHABETIC_SYMBOLS)


def slug(text: str) -> str:
    """The id GitHub gives a heading whose text is `text` (before de-duplication)."""
    return "".join(c for c in text.lower() if _kept(c)).replace(" ", "-")


class Slugger:
    """Ids for the headings of one document, in order: repeats get `-1`, `-2`… as on GitHub."""

    def __init__(self) -> None:
        self.occurrences: dict[str, int] = {}

    def reserve(self, anchor: str) -> None:
        """Mark an id as taken (an explicit `<a name>` anchor), so no slug repeats it."""
        self.occurrences.setdefault(anchor, 0)

    def slug(self, text: str) -> str:
        original = result = slug(text)
        while result in self.occurrences:
            self.occurrences[original] += 1
            result = f"{original}-{self.occurrences[original]}"
        self.occurrences[result] = 0
        return result
