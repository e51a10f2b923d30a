"""SQuAD v1.1 train (../shared/datasets, CC BY-SA 4.0) as training pairs for the reader and as a held-out
evaluation corpus.

Articles are split by a fixed seed: most train the reader (`python -m eval.train_reader`), a few are
held out and never trained on. Each paragraph is cut into answer units exactly as notes are
(`notes.units.extract_units`), so the reader learns on the units it will score at question time:

- positive: the unit that holds the answer span;
- paragraph negatives: the other units of the paragraph;
- near-topic negatives: units of *other* paragraphs of the same article, the ones sharing most words
  with the question first. The question is about the article's topic but those units do not answer it,
  which is what teaches the reader to refuse.

The held-out articles also become a notes corpus (`write_heldout_corpus`): one note per article, one
section per paragraph, some paragraphs left out of the notes so that their questions are near-topic
questions the notes cannot answer (as SQuAD 2.0's unanswerable questions are).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from notes.units import Unit, extract_units
from qa.text import content_terms

DATASETS = Path(os.environ.get("NOTESQA_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
SQUAD_PATH = DATASETS / "squad-v1.1-train-reconstructed.json.gz"
SQUAD_SHA256 = "256bc838f01be4e2d069b6eb5d9a35dd454eecb9fb976d3c7e3f486c8a77a792"  # of the uncompressed JSON
SPLIT_SEED = "notes-qa-reader-2026"
HELDOUT_SHARE = 0.06  # of the 442 articles: ~26 never trained on
EVAL_ARTICLES = 8  # held-out articles written out as notes for `python -m eval --corpus squad`
EVAL_ANSWERABLE, EVAL_UNANSWERABLE = 120, 60
WITHHELD_SHARE = 0.25  # paragraphs of an evaluation article left out of its note


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    answer: str
    start: int  # the answer's offset in the paragraph


@dataclass
class Paragraph:
    article: str
    index: int
    context: str
    questions: list[Question]

    @cached_property
    def units(self) -> list[Unit]:
        """The paragraph's answer units (sentences, and the whole paragraph when it is short)."""
        return _units_of(self.context)

    def answer_units(self, q: Question) -> list[Unit]:
        """Units whose exact text holds the answer span."""
        end = q.start + len(q.answer)
        return [u for u in self.units if u.start <= q.start and end <= u.start + len(u.quote)]


@dataclass
class Article:
    title: str
    paragraphs: list[Paragraph]

    @property
    def heading(self) -> str:
        return self.title.replace("_", " ")

    @cached_property
    def unit_terms(self) -> list[tuple[int, Unit, frozenset[str]]]:
        """(paragraph index, unit, its content terms) for every unit of the article."""
        return [(p.index, u, frozenset(content_terms(u.text))) for p in self.paragraphs for u in p.units]


def _units_of(context: str) -> list[Unit]:
    return [u for u in extract_units(context) if u.quote.strip()]


def cut_units(articles: list[Article], *, processes: int = 2) -> None:
    """Cut every paragraph into units once, on `processes` cores (pysbd takes ~10 ms a paragraph)."""
    import multiprocessing

    todo = [p for a in articles for p in a.paragraphs if "units" not in p.__dict__]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        for p, units in zip(todo, pool.imap(_units_of, [p.context for p in todo], chunksize=64)):
            p.__dict__["units"] = units


def file_sha256(path: Path = SQUAD_PATH) -> str:
    """sha256 of the uncompressed JSON (what the dataset's README gives)."""
    digest = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_articles(path: Path = SQUAD_PATH) -> list[Article]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    articles = []
    for a in data["data"]:
        paragraphs = []
        for i, p in enumerate(a["paragraphs"]):
            qs = [Question(q["id"], q["question"].strip(), q["answers"][0]["text"], q["answers"][0]["answer_start"])
                  for q in p["qas"] if q.get("answers") and q["question"].strip()]
            paragraphs.append(Paragraph(a["title"], i, p["context"], qs))
        articles.append(Article(a["title"], paragraphs))
    return articles


def is_heldout(title: str, *, seed: str = SPLIT_SEED) -> bool:
    """Whether an article is held out from training (a hash of its title: fixed, whatever else changes)."""
    return int(hashlib.sha256(f"{seed}:{title}".encode()).hexdigest(), 16) % 10_000 < HELDOUT_SHARE * 10_000


def split_articles(articles: list[Article]) -> tuple[list[Article], list[Article]]:
    """(train, held out)."""
    train = [a for a in articles if not is_heldout(a.title)]
    return train, [a for a in articles if is_heldout(a.title)]


def near_topic_units(article: Article, paragraph: Paragraph, question: Question, n: int,
                     rng: random.Random) -> list[Unit]:
    """`n` units of the article's other paragraphs: those sharing most of the question's words first
    (the hard ones), then one at random."""
    terms = frozenset(content_terms(question.text))
    scored = [(len(terms & unit_terms), u) for index, u, unit_terms in article.unit_terms if index != paragraph.index]
    if not scored:
        return []
    scored.sort(key=lambda pair: -pair[0])
    others = [u for _, u in scored]
    chosen = others[:max(0, n - 1)]
    rest = others[len(chosen):]
    if rest and n > 0:
        chosen.append(rng.choice(rest))
    return chosen[:n]


@dataclass(frozen=True)
class Pair:
    """One (question, unit) example: label 1 when the unit answers the question."""

    question: str
    passage: str  # heading path + unit, as the reader sees it at question time
    label: int
    kind: str  # positive | paragraph | near-topic
    group: str  # the question's id


def passage_text(unit: Unit, breadcrumb: str) -> str:
    """What the reader reads beside the question: the unit with its heading path and the item it hangs from."""
    from notes.units import unit_embed_text

    return unit_embed_text(unit, breadcrumb)


def informal(question: str, rng: random.Random) -> str:
    """Some questions as students type them: no question mark, no capital (the tokenizer is uncased anyway)."""
    if rng.random() < 0.3:
        question = question.rstrip(" ?")
    return question


def make_pairs(articles: list[Article], *, questions: int, paragraph_negatives: int, near_negatives: int,
               seed: int, augment: bool = True) -> list[Pair]:
    """Pairs for `questions` questions drawn at random from `articles` (each question: its positive unit,
    `paragraph_negatives` other units of its paragraph, `near_negatives` units of the same article)."""
    rng = random.Random(seed)
    pool = [(a, p, q) for a in articles for p in a.paragraphs for q in p.questions]
    rng.shuffle(pool)
    pairs: list[Pair] = []
    taken = 0
    for article, paragraph, q in pool:
        if taken >= questions:
            break
        positives = paragraph.answer_units(q)
        sentences = [u for u in positives if u.kind != "item"]
        if not sentences:
            continue  # the answer crosses sentences: no single unit holds it
        taken += 1
        text = informal(q.text, rng) if augment else q.text
        positive = rng.choice(sentences)
        pairs.append(Pair(text, passage_text(positive, article.heading), 1, "positive", q.id))
        wrong = [u for u in paragraph.units if u not in positives]
        for u in rng.sample(wrong, min(paragraph_negatives, len(wrong))):
            pairs.append(Pair(text, passage_text(u, article.heading), 0, "paragraph", q.id))
        for u in near_topic_units(article, paragraph, q, near_negatives, rng):
            pairs.append(Pair(text, passage_text(u, article.heading), 0, "near-topic", q.id))
    return pairs


@dataclass
class HeldoutCase:
    """A held-out question with every unit the reader should rank: its paragraph's units (some
    positive) and near-topic units of the same article (all negative)."""

    question: str
    passages: list[str]
    labels: list[int]
    near: list[bool]


def heldout_cases(articles: list[Article], *, questions: int, near_negatives: int = 8, seed: int = 7
                  ) -> list[HeldoutCase]:
    rng = random.Random(seed)
    pool = [(a, p, q) for a in articles for p in a.paragraphs for q in p.questions]
    rng.shuffle(pool)
    cases = []
    for article, paragraph, q in pool:
        if len(cases) >= questions:
            break
        positives = paragraph.answer_units(q)
        if not any(u.kind != "item" for u in positives):
            continue
        units = list(paragraph.units)
        near = near_topic_units(article, paragraph, q, near_negatives, rng)
        cases.append(HeldoutCase(q.text, [passage_text(u, article.heading) for u in units + near],
                                 [int(u in positives) for u in units] + [0] * len(near),
                                 [False] * len(units) + [True] * len(near)))
    return cases


# --- the held-out articles as a notes corpus -------------------------------------------------------------


def _slug_name(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-") + ".md"


def write_heldout_corpus(folder: Path, questions_path: Path, articles: list[Article] | None = None, *,
                         seed: int = 11) -> tuple[Path, Path]:
    """Write `EVAL_ARTICLES` held-out articles as notes (one `##` section per paragraph, a share of the
    paragraphs left out) and their question file: answerable questions from the written paragraphs (key
    fact: the answer text), unanswerable near-topic ones from the paragraphs left out."""
    from notes.slug import slug

    if articles is None:
        _, articles = split_articles(load_articles())
    rng = random.Random(seed)
    chosen = sorted(articles, key=lambda a: hashlib.sha256(a.title.encode()).hexdigest())[:EVAL_ARTICLES]
    folder.mkdir(parents=True, exist_ok=True)
    answerable, unanswerable = [], []
    for article in chosen:
        name = _slug_name(article.title)
        withheld = set(rng.sample(range(len(article.paragraphs)), int(len(article.paragraphs) * WITHHELD_SHARE)))
        lines = [f"# {article.heading}", ""]
        seen: Counter = Counter()
        for p in article.paragraphs:
            if p.index in withheld:
                for q in p.questions:
                    unanswerable.append({"id": q.id, "question": q.text, "answerable": False, "reference_anchors": [],
                                         "key_facts": [], "type": "fact", "near_topic": True})
                continue
            heading = f"{article.heading}, part {p.index + 1}"
            base = slug(heading)
            anchor = base if not seen[base] else f"{base}-{seen[base]}"
            seen[base] += 1
            lines += [f"## {heading}", "", p.context.strip(), ""]
            for q in p.questions:
                answerable.append({"id": q.id, "question": q.text, "answerable": True,
                                   "reference_anchors": [f"{name}#{anchor}"], "key_facts": [[q.answer]],
                                   "type": "fact"})
        (folder / name).write_text("\n".join(lines), encoding="utf-8")
    rng.shuffle(answerable)
    rng.shuffle(unanswerable)
    rows = answerable[:EVAL_ANSWERABLE] + unanswerable[:EVAL_UNANSWERABLE]
    questions_path.parent.mkdir(parents=True, exist_ok=True)
    questions_path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder, questions_path
