"""The deck for other tools: an Anki package (genanki), each card linking back to its section in the app,
and CSV."""

from __future__ import annotations

import csv
import hashlib
import html
from pathlib import Path

import genanki

from study.cards import BLANK, Card
from ui.links import note_url

DEFAULT_APP_URL = "http://localhost:8501"
CSV_FIELDS = ("id", "source", "anchor", "heading", "prompt", "answer", "quote", "kind", "link")
_CSS = ".card { font-family: sans-serif; font-size: 20px; text-align: left; } .heading { color: #777; " \
       "font-size: 14px; } .quote { color: #444; font-size: 15px; border-left: 3px solid #ccc; padding-left: 8px; }"


def _stable_id(text: str) -> int:
    """Anki wants fixed model and deck ids (31 bits here) so a re-import updates, not duplicates."""
    return int(hashlib.sha1(text.encode()).hexdigest()[:7], 16) + (1 << 30)


def card_link(card: Card, *, app_url: str = DEFAULT_APP_URL) -> str:
    """The app's Notes page opened at the card's section with its passage highlighted."""
    return f"{app_url.rstrip('/')}/{note_url(card.source, card.anchor, card.quote)}"


MODEL = genanki.Model(
    _stable_id("notes-qa cloze model"), "Notes Q&A cloze",
    fields=[{"name": "Prompt"}, {"name": "Answer"}, {"name": "Heading"}, {"name": "Quote"}, {"name": "Link"},
            {"name": "Id"}],
    templates=[{
        "name": "Card 1",
        "qfmt": '<div class="heading">{{Heading}}</div><div>{{Prompt}}</div>',
        "afmt": '{{FrontSide}}<hr id="answer"><b>{{Answer}}</b><div class="quote">{{Quote}}</div>'
                '<div><a href="{{Link}}">Open in your notes</a></div>',
    }],
    css=_CSS)


class _Note(genanki.Note):
    @property
    def guid(self):  # the card's own id: re-exporting updates the same Anki notes
        return genanki.guid_for(self.fields[5])


def write_apkg(cards: list[Card], path: Path, *, deck_name: str = "Notes Q&A", app_url: str = DEFAULT_APP_URL) -> int:
    """Write an Anki package of `cards`; returns how many were written."""
    deck = genanki.Deck(_stable_id(f"notes-qa deck {deck_name}"), deck_name)
    for card in cards:
        prompt = html.escape(card.prompt).replace(BLANK, "<b>[…]</b>")
        deck.add_note(_Note(model=MODEL, fields=[
            prompt, html.escape(card.answer), html.escape(card.heading), html.escape(card.quote),
            html.escape(card_link(card, app_url=app_url), quote=True), card.id], tags=[
            t.replace(" ", "_") for t in card.tags]))
    genanki.Package(deck).write_to_file(str(path))
    return len(cards)


def write_csv(cards: list[Card], path: Path, *, app_url: str = DEFAULT_APP_URL) -> int:
    """Write the cards as CSV (one row per card, with the link back); returns how many were written."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for card in cards:
            row = {k: v for k, v in card.to_dict().items() if k in CSV_FIELDS}
            writer.writerow({**row, "link": card_link(card, app_url=app_url)})
    return len(cards)
