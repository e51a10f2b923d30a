"""The Study page's Coverage view: a note's table of contents coloured by how well each section is
remembered (FSRS retrievability of its cards), with its cards, reviews and chat questions, and the reviews
per day with the share remembered.

The contents are HTML built here from escaped text only (headings, anchors and counts), so a heading such
as `<script>` or `**bold**` shows as written.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

import streamlit as st

from study.coverage import DayStudy, SectionCoverage, section_coverage, study_days
from study.deck import Deck, Scope
from ui.html import html_block
from ui.links import note_url
from ui.markdown import escape_markdown

NEVER_STUDIED = "#9e9e9e"  # grey: no card of the section was ever reviewed
INDENT_EM = 1.3
ROW_STYLE = "margin: 0 0 0.3rem {indent}em; padding: 0.15rem 0.6rem; border-left: 0.5rem solid {colour}; " \
            "background-color: {tint}; border-radius: 0 0.3rem 0.3rem 0"
DETAIL_STYLE = "font-size: 0.85em; opacity: 0.75; margin-left: 0.5em"
LINK_STYLE = "color: inherit; text-decoration-color: rgba(128, 128, 128, 0.5)"
BAR_WIDTH_PX = 28
LEGEND = ('<span style="display: inline-block; width: 7em; height: 0.7em; border-radius: 0.2em; '
          'background: linear-gradient(to right, {low}, {mid}, {high})"></span> forgotten → remembered '
          '&emsp;<span style="display: inline-block; width: 0.7em; height: 0.7em; border-radius: 0.2em; '
          'background: {grey}"></span> never studied')


def recall_colour(recall: float | None, *, alpha: float = 1.0) -> str:
    """Red (likely forgotten) through amber to green (remembered) for FSRS retrievability 0-1; grey when the
    section was never studied."""
    if recall is None:
        return NEVER_STUDIED if alpha == 1.0 else f"rgba(158, 158, 158, {alpha})"
    hue = round(120 * max(0.0, min(1.0, recall)))
    return f"hsla({hue}, 70%, 42%, {alpha})"


def section_line(row: SectionCoverage) -> str:
    """'recall 93% · 4 cards · 6 reviews · asked 2 · cited 1' ('never studied · 4 cards', 'no cards')."""
    chat = f"asked {row.asked} · cited {row.cited}"
    if not row.cards:
        return f"no cards · {chat}"
    cards = f"{row.cards} card{'s' * (row.cards != 1)}"
    if row.retrievability is None:
        return f"never studied · {cards} · {chat}"
    return f"recall {row.retrievability:.0%} · {cards} · {row.reviews} review{'s' * (row.reviews != 1)} · {chat}"


def coverage_html(rows: Iterable[SectionCoverage]) -> str:
    """A table of contents (headings indented by level, each a link to that section on the Notes page)
    coloured by recall, as one block of safe HTML."""
    rows = [r for r in rows if r.level > 0 and r.heading]
    if not rows:
        return ""
    top = min(r.level for r in rows)
    items = []
    for r in rows:
        style = ROW_STYLE.format(indent=INDENT_EM * (r.level - top), colour=recall_colour(r.retrievability),
                                 tint=recall_colour(r.retrievability, alpha=0.08))
        link = html.escape(note_url(r.source, r.anchor), quote=True)
        items.append(f'<div data-anchor="{html.escape(r.anchor, quote=True)}" style="{style}">'
                     f'<a href="{link}" target="_self" style="{LINK_STYLE}">{html.escape(r.heading)}</a>'
                     f'<span style="{DETAIL_STYLE}">{html.escape(section_line(r))}</span></div>')
    return html_block("".join(items))


def legend_html() -> str:
    return html_block('<p style="font-size: 0.85em; opacity: 0.8">' + LEGEND.format(
        low=recall_colour(0.0), mid=recall_colour(0.5), high=recall_colour(1.0), grey=NEVER_STUDIED) + "</p>")


def days_chart(days: list[DayStudy]):
    """Reviews per day (bars) and the share of them remembered (line, right axis), as an Altair chart."""
    import altair as alt

    data = alt.Data(values=[{"day": d.day, "reviews": d.reviews, "remembered": d.remembered} for d in days])
    base = alt.Chart(data).encode(x=alt.X("day:O", title=None, axis=alt.Axis(labelAngle=0)))
    bars = base.mark_bar(color="#1c83e1", opacity=0.6, size=BAR_WIDTH_PX).encode(
        y=alt.Y("reviews:Q", title="Reviews"), tooltip=["day:O", "reviews:Q"])
    share = base.mark_line(color="#21c354", point=True).encode(
        y=alt.Y("remembered:Q", title="Remembered", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        tooltip=["day:O", alt.Tooltip("remembered:Q", format=".0%")])
    return alt.layer(bars, share).resolve_scale(y="independent").properties(height=260)


def notes_in(deck: Deck, scope: Scope) -> list:
    """The notes the scope covers (all of them, one, or those with one of its tags)."""
    return [n for n in deck.corpus.notes if (not scope.source or n.source == scope.source)
            and (not scope.tags or set(scope.tags) & set(n.meta.tags))]


def show_coverage(deck: Deck, scope: Scope) -> None:
    """The Coverage view of the notes in the scope, then the reviews per day."""
    notes = notes_in(deck, scope)
    rows = section_coverage(deck.corpus, deck.store)
    studied = [r for r in rows if r.retrievability is not None and any(r.source == n.source for n in notes)]
    total = sum(1 for r in rows if r.level > 0 and any(r.source == n.source for n in notes))
    st.caption(f"{len(studied)} of {total} sections studied"
               + (f"; mean recall {sum(r.retrievability for r in studied) / len(studied):.0%}" if studied else "")
               + ". Each heading opens its section in Notes; *asked* and *cited* count the chat's questions.")
    st.markdown(legend_html(), unsafe_allow_html=True)  # built from escaped text only
    for note in notes:
        if len(notes) > 1:
            st.markdown(f"**{escape_markdown(note.title or note.source)}** · :gray[{escape_markdown(note.source)}]")
        shown = coverage_html(r for r in rows if r.source == note.source)
        if shown:
            st.markdown(shown, unsafe_allow_html=True)  # built from escaped text only
    st.subheader("Reviews per day", anchor=False)
    days = study_days(deck.store)
    if not days:
        st.caption("No reviews yet: rate a few cards in Quiz and they show here.")
        return
    st.altair_chart(days_chart(days), width="stretch")
    st.caption(f"{sum(d.reviews for d in days)} reviews over {len(days)} day{'s' * (len(days) != 1)}; "
               "remembered = rated Hard, Good or Easy.")
