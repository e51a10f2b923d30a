"""`python -m eval.fit [--exclude CORPUS] [--out FILE]`: fit the answer decision on the tune halves.

First the retrieval's fusion weight (keyword ranking vs dense, `KEYWORD_WEIGHTS`) that puts the
reference section first most often, averaged over the corpora. Then, for every question of the tune
half of each corpus (eval/corpora.py), the real pipeline retrieves sections, cuts them into answer
units and the reader (qa/reader.py, trained on SQuAD by `python -m eval.train_reader`) reads the
units the cheap score picks. On those:

1. the answer-or-refuse classifier (logistic regression over the reader's best scores and what the
   sections hold, qa/features.py) learns from the answerable questions (positives), the unanswerable
   ones, and the answerable ones asked again with their reference sections taken out of the index,
   which makes near-topic negatives the notes cannot answer;
2. the threshold is the log-odds that refuses at most `--false-refusals` of the tune half's
   answerable questions;
3. the follow margin and floor (how close to the best, and how high, the reader must score a further
   unit for it to join the answer) are the pair with the best key-fact recall on the tune half among
   those whose answers average at most TARGET_WORDS words.

It also reports how often the reader's first unit holds a key fact, and how often the units read
include one, for several numbers of units read (the speed/quality trade of `DEFAULT_READ`).

The result goes to qa/answer_model.json (or `--out`), with what it was fitted on. `--exclude` leaves
a corpus out, for leave-one-corpus-out runs: `python -m eval.fit --exclude og-aws --out /tmp/m.json`
then `python -m eval --corpus og-aws --answer-model /tmp/m.json`. The held-out SQuAD articles
(`squad`) are never fitted on.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from eval.corpora import corpora, corpus_settings, half_of, open_corpus  # noqa: E402
from eval.metrics import key_facts_found  # noqa: E402
from eval.questions import AnchorIndex, EvalItem, load_questions  # noqa: E402
from qa.answer import (DEFAULT_READ, RETRIEVED_FOR_ANSWER, candidates, considered_sections,  # noqa: E402
                       question_info, rank_candidates, read_candidates, select, shown_text)
from qa.answer_model import MODEL_PATH, AnswerModel, LinearModel  # noqa: E402
from qa.conversation import condense_query  # noqa: E402
from qa.retrieve import KEYWORD_WEIGHT  # noqa: E402
from qa.features import (ANSWERABLE_FEATURES, RANK_FEATURES, Candidate, QuestionInfo,  # noqa: E402
                         answerable_features, as_matrix, rank_features)

DEFAULT_FALSE_REFUSALS = 0.04
KEYWORD_WEIGHTS = (0.25, 0.5, 0.75, 1.0, 1.5)
MARGINS = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0)
FLOORS = (-4.0, -2.0, -1.0, 0.0, 1.0, 2.0)
READ_COUNTS = (4, 8, 12, 16, 24, 32)  # reported: what reading more or fewer units would change
TARGET_WORDS = 55  # a product choice, not fitted: answers that read as answers average at most this
REGULARISATION = 1.0  # scikit-learn's C: the default, not tuned
# A question asked without its sections is not always unanswerable (another section may say the same):
# those made-up negatives count for less than the real ones.
SYNTHETIC_WEIGHT = float(os.environ.get("FIT_SYNTHETIC_WEIGHT", "0.3"))


@dataclass
class Case:
    """One question asked of one retrieval: the item, what the pipeline saw, and the truth."""

    corpus: str
    item: EvalItem
    info: QuestionInfo
    cands: list[Candidate]  # in cheap-score order; the first max(READ_COUNTS) read by the reader
    retrieval: object
    answerable: bool  # False for unanswerable items and for answerable ones asked without their sections
    synthetic: bool = False

    def as_read(self, n: int = DEFAULT_READ) -> list[Candidate]:
        """The candidates as the pipeline leaves them when it reads `n`: the first `n` read, the rest not."""
        return [c if i < n else replace(c, reader=float("-inf"), score=float("-inf"))
                for i, c in enumerate(self.cands)]


def unit_label(c: Candidate, item: EvalItem) -> int:
    if c.section.url not in item.references:
        return 0
    return int(any(key_facts_found(c.unit.text, item.key_facts)))


def fit_keyword_weight(sets: list[tuple[object, list[EvalItem]]]) -> tuple[float, dict]:
    """The fusion weight of the keyword ranking with the best mean share of answerable questions whose
    reference section comes first, over the corpora (each corpus counts the same)."""
    scores = {}
    for weight in KEYWORD_WEIGHTS:
        per_corpus = []
        for qa, items in sets:
            qa.retriever.keyword_weight = weight
            keyword = qa.retriever.keyword_index()
            hits = []
            for item in (i for i in items if i.answerable):
                query = condense_query(item.question, list(item.history), names=keyword.names)
                top = qa.retriever.search(query, k=1, keyword=keyword).sections
                hits.append(bool(top) and top[0].url in item.references)
            per_corpus.append(float(np.mean(hits)) if hits else 0.0)
        scores[weight] = float(np.mean(per_corpus))
    best = max(scores, key=lambda w: (scores[w], -abs(w - 0.5)))
    for qa, _ in sets:
        qa.retriever.keyword_weight = best
    return best, {str(w): round(s, 4) for w, s in scores.items()}


def collect(qa, corpus: str, items: list[EvalItem]) -> list[Case]:
    cases = []
    keyword = qa.retriever.keyword_index()
    for item in items:
        query = condense_query(item.question, list(item.history), names=keyword.names)
        asks = [(frozenset(), item.answerable, False)]
        if item.answerable:
            asks.append((frozenset(item.references), False, True))
        for exclude, answerable, synthetic in asks:
            retrieval = qa.retriever.search(query, k=RETRIEVED_FOR_ANSWER, keyword=keyword, exclude=exclude)
            info = question_info(item.question, retrieval)
            cands = read_candidates(info, candidates(info, retrieval, qa.scorer), qa.reader, n=max(READ_COUNTS))
            cases.append(Case(corpus, item, info, cands, retrieval, answerable, synthetic))
    return cases


def reading_report(cases: list[Case]) -> dict:
    """Per number of units read: share of answerable questions whose read units include one holding a key
    fact, and whose best read unit holds one."""
    answerable = [c for c in cases if c.answerable and not c.synthetic and c.item.key_facts]
    out = {}
    for n in READ_COUNTS:
        reached, first = [], []
        for case in answerable:
            read = case.cands[:n]
            labels = [unit_label(c, case.item) for c in read]
            reached.append(any(labels))
            best = max(range(len(read)), key=lambda i: read[i].reader, default=None)
            first.append(best is not None and labels[best] == 1)
        out[str(n)] = {"key_fact_unit_read": round(float(np.mean(reached)), 4),
                       "best_read_unit_holds_a_key_fact": round(float(np.mean(first)), 4)}
    return out


def fit_pairwise(groups: list[tuple[np.ndarray, np.ndarray]], names: tuple[str, ...]) -> LinearModel:
    """A ranker from pairs within each question (a unit that answers vs one that does not): the logistic
    regression of feature differences, so only how units of one question compare matters."""
    from sklearn.linear_model import LogisticRegression

    everything = np.vstack([x for x, _ in groups])
    mean, scale = everything.mean(axis=0), everything.std(axis=0)
    scale[scale == 0] = 1.0
    diffs = []
    for x, y in groups:
        z = (x - mean) / scale
        positive, negative = z[y == 1], z[y == 0]
        diffs.append((positive[:, None, :] - negative[None, :, :]).reshape(-1, z.shape[1]))
    d = np.vstack(diffs)
    model = LogisticRegression(C=REGULARISATION, fit_intercept=False, max_iter=2000)
    model.fit(np.vstack([d, -d]), np.r_[np.ones(len(d)), np.zeros(len(d))])
    return LinearModel(names, tuple(mean.tolist()), tuple(scale.tolist()), tuple(model.coef_[0].tolist()), 0.0)


def fit_linear(x: np.ndarray, y: np.ndarray, names: tuple[str, ...], weights: np.ndarray | None = None
               ) -> LinearModel:
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    weights = np.ones(len(y)) if weights is None else weights
    for label in (0, 1):  # each class weighs as much as the other
        weights = np.where(y == label, weights * len(y) / (2 * weights[y == label].sum()), weights)
    model = LogisticRegression(C=REGULARISATION, max_iter=2000)
    model.fit((x - mean) / scale, y, sample_weight=weights)
    return LinearModel(names, tuple(mean.tolist()), tuple(scale.tolist()), tuple(model.coef_[0].tolist()),
                       float(model.intercept_[0]))


def ranked(case: Case, model: AnswerModel) -> list[Candidate]:
    return rank_candidates(case.info, case.as_read(), model)


def answer_features(case: Case, model: AnswerModel) -> dict[str, float] | None:
    order = ranked(case, model)
    if not order or order[0].reader == float("-inf"):
        return None
    return answerable_features(case.info, order, considered_sections(case.retrieval))


def composed(cases: list[Case], model: AnswerModel) -> tuple[float, float]:
    """(key-fact recall, mean words) of the answers `model` composes for these cases."""
    scores, words = [], []
    for case in cases:
        text = " ".join(shown_text(c, case.info) for c in select(case.info, ranked(case, model), model))
        found = key_facts_found(text, case.item.key_facts)
        scores.append(sum(found) / len(found))
        words.append(len(text.split()))
    return (float(np.mean(scores)), float(np.mean(words))) if scores else (0.0, 0.0)


def fit_ranker(cases: list[Case]) -> LinearModel:
    """Pairwise, on the read units of the tune questions: a unit of a reference section holding a key
    fact against every other unit read."""
    groups = []
    for case in cases:
        if case.synthetic or not case.answerable or not case.item.key_facts:
            continue
        read = case.as_read()[:DEFAULT_READ]
        labels = np.asarray([unit_label(c, case.item) for c in read])
        if labels.any() and not labels.all():
            groups.append((as_matrix([rank_features(case.info, c) for c in read], RANK_FEATURES), labels))
    return fit_pairwise(groups, RANK_FEATURES)


def fit(cases: list[Case], *, false_refusals: float = DEFAULT_FALSE_REFUSALS, ranker: bool = True
        ) -> tuple[AnswerModel, dict]:
    """The answer decision for these cases (with a fitted ranker, or the reader alone), and how it does."""
    interim = AnswerModel(LinearModel((), (), (), (), 0.0), 0.0, MARGINS[-1], FLOORS[0],
                          ranker=fit_ranker(cases) if ranker else None)
    rows, labels, real = [], [], []
    for case in cases:
        features = answer_features(case, interim)
        if features is not None:
            rows.append(features)
            labels.append(int(case.answerable))
            real.append(not case.synthetic)
    x, y, real = as_matrix(rows, ANSWERABLE_FEATURES), np.asarray(labels), np.asarray(real)
    answerable = fit_linear(x, y, ANSWERABLE_FEATURES, np.where(real, 1.0, SYNTHETIC_WEIGHT))
    logits = answerable.score(x)
    positives = logits[(y == 1) & real]
    threshold = float(np.quantile(positives, false_refusals)) if len(positives) else 0.0

    with_facts = [c for c in cases if c.answerable and not c.synthetic and c.item.key_facts]
    grid = {(m, f): composed(with_facts, replace(interim, answerable=answerable, threshold=threshold, follow_margin=m,
                                                 follow_floor=f))
            for m in MARGINS for f in FLOORS}
    short = {k: v for k, v in grid.items() if v[1] <= TARGET_WORDS} or grid
    margin, floor = max(short, key=lambda k: (short[k][0], -short[k][1]))
    model = replace(interim, answerable=answerable, threshold=threshold, follow_margin=margin, follow_floor=floor)
    negatives = logits[(y == 0) & real]
    synthetic = logits[(y == 0) & ~real]
    report = {
        "answerable": int(len(positives)), "unanswerable": int(len(negatives)), "synthetic_negatives": int(len(synthetic)),
        "false_refusal": round(float((positives < threshold).mean()), 4) if len(positives) else None,
        "correct_refusal": round(float((negatives < threshold).mean()), 4) if len(negatives) else None,
        "synthetic_refusal": round(float((synthetic < threshold).mean()), 4) if len(synthetic) else None,
        "reading": reading_report(cases),
        "key_fact_recall_and_words": {f"margin {m}, floor {f}": [round(r, 4), round(w, 1)]
                                      for (m, f), (r, w) in grid.items()},
    }
    return model, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.fit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--exclude", action="append", default=[], choices=tuple(corpora()), metavar="CORPUS",
                        help="leave this corpus out (repeatable), for leave-one-corpus-out runs")
    parser.add_argument("--out", type=Path, default=MODEL_PATH, metavar="FILE",
                        help=f"where to write the model (default {MODEL_PATH.relative_to(Path.cwd()) if MODEL_PATH.is_relative_to(Path.cwd()) else MODEL_PATH})")
    parser.add_argument("--no-ranker", action="store_true",
                        help="order the read units by the reader alone (no fitted ranker over it)")
    parser.add_argument("--false-refusals", type=float, default=DEFAULT_FALSE_REFUSALS,
                        help="share of the tune half's answerable questions the threshold may refuse")
    args = parser.parse_args(argv)

    from eval.variants import squad_only_model
    from qa.embeddings import load_embedding_model
    from qa.errors import NotesQAError
    from qa.settings import load_settings

    base = load_settings()
    chosen = [c for name, c in corpora().items() if name not in args.exclude and c.available and c.fitted]
    if not chosen:
        print("error: no corpus to fit on", file=sys.stderr)
        return 2
    try:
        model = load_embedding_model(base.embed_model, batch_size=base.embed_batch_size)
        sets = []
        for corpus in chosen:
            settings = corpus_settings(corpus, base)
            items = [i for i in load_questions(corpus.questions, AnchorIndex.from_notes_dir(settings.notes_dir))
                     if half_of(i.id) == "tune"]
            print(f"{corpus.name}: {len(items)} tune questions", file=sys.stderr)
            # answering is not needed to fit: the SQuAD-only decision stands in until there is a fitted one
            sets.append((corpus.name, open_corpus(corpus, settings, model,
                                                  answer_model=squad_only_model(KEYWORD_WEIGHT)), items))
        keyword_weight, by_weight = fit_keyword_weight([(qa, items) for _, qa, items in sets])
        cases = [case for name, qa, items in sets for case in collect(qa, name, items)]
    except NotesQAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    fitted, report = fit(cases, false_refusals=args.false_refusals, ranker=not args.no_ranker)
    report["recall_at_1_by_keyword_weight"] = by_weight
    from eval.__main__ import _commit

    fitted = replace(fitted, keyword_weight=keyword_weight, fitted_on={
        "corpora": [c.name for c in chosen], "half": "tune", "questions": len({(c.corpus, c.item.id) for c in cases}),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "commit": _commit(),
        "command": "python -m eval.fit" + "".join(f" --exclude {e}" for e in args.exclude)
        + (" --no-ranker" if args.no_ranker else ""), "on_tune": report})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(fitted.to_dict(), indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    for kind, m in (("ranker", fitted.ranker), ("answerable", fitted.answerable)):
        if m is not None:
            print(f"{kind}: " + ", ".join(f"{n} {w:+.2f}" for n, w in sorted(zip(m.features, m.weights),
                                                                             key=lambda p: -abs(p[1]))))
    print(f"threshold {fitted.threshold:.3f}, follow margin {fitted.follow_margin}, follow floor "
          f"{fitted.follow_floor}, keyword weight {fitted.keyword_weight}; written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
