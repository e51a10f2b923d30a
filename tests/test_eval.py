"""The evaluation: metric functions on tiny hand-made inputs, the judge, the question-file checks, the
CLI, and the CI gate (the whole question set through the session's seed index, against
eval/thresholds.json)."""

from __future__ import annotations

import json
import math

import pytest

from conftest import REPO, run_cli
from eval.metrics import (Claim, citation_scores, correct_refusal_rate, false_refusal_rate, grounding,
                          key_fact_recall, key_facts_found, mean, ndcg_at_k, percentile, recall_at_k,
                          reciprocal_rank)

# --- retrieval metrics -------------------------------------------------------------------------


def test_recall_at_k_counts_the_share_of_reference_sections_in_the_top_k():
    ranked = ["n#3", "n#1", "n#7", "n#2"]
    assert recall_at_k(ranked, {"n#1"}, 1) == 0.0
    assert recall_at_k(ranked, {"n#1"}, 2) == 1.0
    assert recall_at_k(ranked, {"n#1", "n#2"}, 3) == 0.5
    assert recall_at_k(ranked, {"n#1", "n#2"}, 5) == 1.0
    with pytest.raises(ValueError):
        recall_at_k(ranked, set(), 5)


def test_reciprocal_rank_is_one_over_the_first_hit_within_k():
    assert reciprocal_rank(["a", "b", "c"], {"a"}) == 1.0
    assert reciprocal_rank(["a", "b", "c"], {"c", "b"}) == 0.5
    assert reciprocal_rank(["x"] * 10 + ["a"], {"a"}, 10) == 0.0


def test_ndcg_with_binary_relevance():
    assert ndcg_at_k(["a", "b"], {"a"}) == 1.0
    assert ndcg_at_k(["b", "a"], {"a"}) == pytest.approx(1 / math.log2(3))
    # two relevant at ranks 2 and 4, ideal at ranks 1 and 2
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["x", "a", "y", "b"], {"a", "b"}) == pytest.approx(expected)
    assert ndcg_at_k(["x", "y"], {"a"}) == 0.0
    assert ndcg_at_k(["a", "a"], {"a", "b"}) == pytest.approx(1 / (1 + 1 / math.log2(3)))  # counted once


# --- answers -----------------------------------------------------------------------------------


def test_key_facts_match_any_spelling_case_insensitively():
    answer = "Functions can run for up to 900 Seconds (15 minutes) [1]."
    facts = [["900 seconds", "15 minutes"], ["10GB", "10 GB"], ["128  mb"]]
    assert key_facts_found(answer, facts) == [True, False, False]
    assert key_fact_recall(answer, facts) == pytest.approx(1 / 3)
    assert key_fact_recall("Up to 128 MB", [["128 mb"]]) == 1.0  # whitespace is folded
    assert key_fact_recall(answer, []) is None


def test_abstention_rates_and_latency_percentiles():
    abstained = [True, False, True, False, False]
    answerable = [False, False, True, True, True]
    assert correct_refusal_rate(abstained, answerable) == 0.5
    assert false_refusal_rate(abstained, answerable) == pytest.approx(1 / 3)
    assert correct_refusal_rate([True], [True]) is None
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert percentile([7], 95) == 7
    assert percentile([], 50) is None
    assert mean([1, None, 3]) == 2 and mean([None]) is None


# --- grounding and ALCE citations (a fake judge: supported when every needed word is present) -----


def needs(*words):
    return lambda claim, passage: all(w in passage for w in words)


def test_grounding_checks_each_sentence_against_what_it_cites():
    passages = {1: "alpha", 2: "beta"}
    claims = [Claim("s1", (1,)), Claim("s2", (2,)), Claim("s3", ()), Claim("s4", (9,))]
    assert grounding(claims, passages, needs("alpha")) == [True, False, False, False]


def test_citation_recall_and_precision_single_citations():
    passages = {1: "alpha", 2: "beta"}
    s = citation_scores([Claim("x", (1,)), Claim("y", (2,))], passages, needs("alpha"))
    assert (s.recall, s.precision) == (0.5, 0.5)
    assert (s.citations, s.relevant_citations, s.supported_sentences) == (2, 1, 1)


def test_a_citation_that_adds_nothing_is_irrelevant():
    # [1] alone supports the sentence; [2] alone does not, and removing it leaves support intact
    s = citation_scores([Claim("x", (1, 2))], {1: "alpha", 2: "beta"}, needs("alpha"))
    assert s.recall == 1.0 and s.precision == 0.5


def test_citations_needed_together_are_all_relevant():
    # neither supports alone, but removing either breaks the support: both relevant
    s = citation_scores([Claim("x", (1, 2))], {1: "alpha", 2: "beta"}, needs("alpha", "beta"))
    assert s.recall == 1.0 and s.precision == 1.0


def test_redundant_citations_each_supporting_alone_are_relevant():
    s = citation_scores([Claim("x", (1, 2))], {1: "alpha", 2: "alpha too"}, needs("alpha"))
    assert s.recall == 1.0 and s.precision == 1.0


def test_unsupported_sentence_makes_its_citations_irrelevant_and_bad_ones_are_not_counted():
    passages = {1: "alpha", 2: "beta"}
    s = citation_scores([Claim("x", (1, 2)), Claim("y", ()), Claim("z", (7,))], passages, needs("gamma"))
    assert s.recall == 0.0 and s.precision == 0.0
    assert s.citations == 2  # ALCE: a sentence citing a passage that does not exist adds no citations
    assert citation_scores([], passages, needs("alpha")).recall == 0.0


# --- the judge ---------------------------------------------------------------------------------


def test_lexical_check_needs_every_number_and_ignores_citation_markers():
    from eval.judge import lexical_check, normalise

    share, numbers, terms = lexical_check("Lambda runs for up to 5 minutes [1].", "Maximum: 900 seconds (15 minutes).")
    assert numbers == ["5"]
    assert "1" not in numbers
    share, numbers, terms = lexical_check("Memory allocation up to 10GB.", "Memory allocation: 128 MB to 10 GB.")
    assert numbers == [] and terms == [] and share == 1.0
    assert normalise("**400KB** [2]") == "400 KB"
    share, numbers, terms = lexical_check("Entries expire after 1,000,000 requests.",
                                          "entries expiry: 1000000 requests")
    assert numbers == [] and share == 1.0  # expire/expiry share a long prefix


def test_judge_on_real_embeddings(model):
    from eval.judge import NEGATION_MISMATCH, judge_support

    passage = "- Maximum execution time: 900 seconds (15 minutes).\n- Concurrency executions: 1000 (can be increased)."
    ok, similarity, missing = judge_support("Maximum execution time is 900 seconds (15 minutes) [1].", passage, model)
    assert ok and similarity > 0.8 and missing == []
    ok, _, missing = judge_support("Maximum execution time is 5 minutes.", passage, model)
    assert not ok and "5" in missing
    ok, _, missing = judge_support("Concurrency executions: 1000, and this cannot be increased.", passage, model)
    assert not ok and NEGATION_MISMATCH in missing
    ok, _, _ = judge_support("Neptune is a graph database.", passage, model)
    assert not ok


def test_stored_judge_thresholds_are_what_calibration_gives(model):
    """qa/judge_thresholds.json must be re-fitted (python -m eval.judge) whenever the judge changes."""
    from eval.judge import calibrate, load_calibration

    stored = load_calibration()
    fitted = calibrate(model)
    assert (fitted["min_similarity"], fitted["min_content_share"]) == (stored["min_similarity"],
                                                                       stored["min_content_share"])
    assert fitted["agreement"] == pytest.approx(stored["agreement"], abs=1e-3)
    assert fitted["agreement"] >= 0.75  # the judge agrees with the hand labels well above chance (0.52)


# --- the question file -------------------------------------------------------------------------

GOOD = {"id": "g1", "question": "How long can a Lambda function run?", "answerable": True,
        "reference_anchors": ["15"], "key_facts": [["900 seconds", "15 minutes"]], "type": "fact"}


def lines_with(*rows) -> list[str]:
    return [r if isinstance(r, str) else json.dumps(r) for r in rows]


@pytest.fixture(scope="module")
def anchors():
    from eval.questions import AnchorIndex

    return AnchorIndex.from_notes_dir(REPO / "corpus")


def test_each_bad_line_is_reported_with_its_line_number(anchors):
    from eval.questions import QuestionFileError, parse_questions

    missing = {k: v for k, v in GOOD.items() if k != "type"}
    lines = lines_with(GOOD, '{"id": "g2", "question": ', missing | {"id": "g3"},
                       GOOD | {"id": "g4", "reference_anchors": ["999"]}, "",
                       GOOD | {"id": "g6", "type": "trivia"}, GOOD,
                       GOOD | {"id": "g8", "type": "follow-up"}, GOOD | {"id": "g9", "key_facts": ["900 seconds"]},
                       "[1, 2]", GOOD | {"id": "g11", "answerable": False})
    with pytest.raises(QuestionFileError) as info:
        parse_questions(lines, anchors, path="q.jsonl")
    errors = info.value.errors
    text = "\n".join(errors)
    assert "q.jsonl line 2: bad JSON" in text
    assert "line 3 (g3): missing field 'type'" in text
    assert "line 4 (g4): unknown anchor '999'" in text
    assert "line 6 (g6): 'type' must be one of" in text
    assert "line 7 (g1): duplicate id 'g1' (first on line 1)" in text
    assert "line 8 (g8): a follow-up item needs a 'history'" in text
    assert "line 9 (g9): 'key_facts' must be a list of facts" in text
    assert "line 10: expected a JSON object" in text
    assert "line 11 (g11): an unanswerable item cannot have reference anchors" in text
    assert not any("line 1:" in e or "line 1 " in e or "line 5" in e for e in errors)
    assert "has 9 problem(s)" in str(info.value)


def test_anchors_resolve_to_source_and_anchor(anchors):
    from eval.questions import parse_questions

    items = parse_questions(lines_with(GOOD, GOOD | {"id": "g2", "reference_anchors": ["aws-notes.md#16"]}), anchors)
    assert [i.references for i in items] == [("aws-notes.md#15",), ("aws-notes.md#16",)]
    assert items[0].line == 1 and items[0].key_facts == (("900 seconds", "15 minutes"),)
    from eval.questions import QuestionFileError

    with pytest.raises(QuestionFileError, match="line 1.*contents"):  # the table of contents is not a section
        parse_questions(lines_with(GOOD | {"reference_anchors": ["amazon-web-services-contents"]}), anchors)


def test_the_shipped_question_set_is_valid_and_covers_the_notes(anchors):
    from eval.questions import load_questions

    items = load_questions(anchors=anchors)
    assert len(items) >= 80
    assert sum(not i.answerable for i in items) >= 15
    assert sum(i.type == "follow-up" for i in items) >= 8
    numbered = {a for a in anchors.by_anchor if a.isdigit()}
    assert numbered == {a for i in items for a in i.reference_anchors} & numbered


def test_cli_stops_on_a_bad_question_file_before_loading_the_model(tmp_path):
    bad = tmp_path / "questions.jsonl"
    rows = lines_with(GOOD, "not json", {"id": "x"}, GOOD | {"id": "g4", "reference_anchors": ["nope"]})
    bad.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = run_cli("-m", "eval", "--questions", str(bad), "--out", str(tmp_path / "out"),
                     env={"NOTES_DIR": str(REPO / "corpus"), "CHROMA_DIR": str(tmp_path / "idx")}, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "line 2: bad JSON" in result.stderr
    assert "line 3 (x): missing field 'question'" in result.stderr
    assert "line 4 (g4): unknown anchor 'nope'" in result.stderr
    assert not (tmp_path / "idx").exists() and not (tmp_path / "out").exists()  # stopped before any work


# --- the gate ----------------------------------------------------------------------------------


def test_gate_failures_reads_min_and_max():
    from eval.runner import gate_failures

    gate = {"min": {"recall@5": 0.9, "grounding": 0.95}, "max": {"false_refusal": 0.05}}
    assert gate_failures({"recall@5": 0.92, "grounding": 0.95, "false_refusal": 0.05}, gate) == []
    failures = gate_failures({"recall@5": 0.89, "grounding": None, "false_refusal": 0.06}, gate)
    assert len(failures) == 3 and "recall@5 = 0.89 is below the threshold 0.9" in failures


def test_thresholds_file_gates_in_the_right_direction():
    from eval.runner import METRICS, load_gate

    gate = load_gate()
    for name in gate["min"]:
        assert METRICS[name][1] == "higher", name
    for name in gate["max"]:
        assert METRICS[name][1] == "lower", name
    assert {"recall@5", "key_fact_recall", "grounding", "citation_precision", "correct_refusal"} <= set(gate["min"])
    assert "false_refusal" in gate["max"]


def corpus_report(qa, corpus: str) -> dict:
    """One corpus's whole question set through its session index, one inference thread as `python -m eval`."""
    from eval.corpora import corpora
    from eval.questions import AnchorIndex, load_questions
    from eval.runner import run_eval

    import torch

    items = load_questions(corpora()[corpus].questions, AnchorIndex.from_notes_dir(qa.settings.notes_dir))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # ~3x faster on a busy 2-core machine, same answers
    try:
        return run_eval(qa, items)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def eval_report(notes_qa):
    """The seed's whole question set through the session's seed index (model loaded once for the session)."""
    return corpus_report(notes_qa, "seed")


@pytest.mark.parametrize("corpus", ["seed", "og-aws", "poetry-docs"])
def test_quality_does_not_fall_below_the_thresholds(corpus, notes_qa, corpus_qa, request):
    """The CI gate, per corpus: raise eval/thresholds.json when quality improves; never lower it quietly."""
    from eval.runner import gate_failures, load_gate

    report = request.getfixturevalue("eval_report") if corpus == "seed" else corpus_report(corpus_qa(corpus), corpus)
    failures = gate_failures(report["metrics"], load_gate(corpus=corpus))
    assert not failures, f"{corpus} below eval/thresholds.json:\n" + "\n".join(failures)


def test_report_files_and_comparison(eval_report, tmp_path):
    from eval.report import compare, format_comparison, load_report, write_reports

    report = dict(eval_report, meta={"questions_file": "eval/questions.jsonl"})
    paths = write_reports(report, tmp_path / "out")
    md = paths["md"].read_text(encoding="utf-8")
    assert "## Summary" in md and "## Per question type" in md and "## Failing items" in md
    for t in ("fact", "list", "how/why", "comparison", "follow-up"):
        assert f"| {t} |" in md
    stored = load_report(tmp_path / "out")
    assert stored["metrics"] == eval_report["metrics"] and len(stored["items"]) == len(eval_report["items"])
    assert stored["charts"] and all((tmp_path / "out" / c).read_bytes()[:4] == b"\x89PNG" for c in stored["charts"])
    failing = [r for r in stored["items"] if r["failures"]]
    for r in failing:
        assert f"### {r['id']} " in md
    worse = json.loads(json.dumps(stored))
    worse["metrics"]["recall@5"] -= 0.1
    worse["metrics"]["false_refusal"] = (worse["metrics"]["false_refusal"] or 0) + 0.1
    rows = {r["metric"]: r["verdict"] for r in compare(stored, worse)}
    assert rows["recall@5"] == "worse" and rows["false_refusal"] == "worse" and rows["grounding"] == "same"
    assert {r["verdict"] for r in compare(worse, stored)} >= {"better"}
    assert "2 worse" in format_comparison(compare(stored, worse))


def test_cli_end_to_end_on_a_small_question_file(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(lines_with(
        GOOD,
        {"id": "u1", "question": "Who won the 2018 FIFA World Cup?", "answerable": False, "reference_anchors": [],
         "key_facts": [], "type": "fact"},
        {"id": "f1", "question": "How long does it keep the records?", "answerable": True,
         "reference_anchors": ["26"], "key_facts": [["24-hour"]], "type": "follow-up",
         "history": [{"role": "user", "content": "Tell me about DynamoDB Streams"},
                     {"role": "assistant", "content": "An ordered stream of item-level changes."}]},
    )) + "\n", encoding="utf-8")
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"metrics": {"recall@5": 0.1, "false_refusal": 0.9}}), encoding="utf-8")
    env = {"NOTES_DIR": str(REPO / "corpus"), "CHROMA_DIR": str(tmp_path / "idx")}
    result = run_cli("-m", "eval", "--questions", str(questions), "--out", str(tmp_path / "out"), "--judge", "llm",
                     "--compare", str(old), env=env)
    assert result.returncode == 0, result.stderr
    assert "LLM judge: not configured (LLM_PROVIDER is unset)" in result.stderr
    assert "3 questions" in result.stdout and "recall@5" in result.stdout
    assert f"compared with {old}" in result.stdout
    assert "recall@5" in result.stdout.split("compared with")[1] and "better" in result.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert [r["id"] for r in report["items"]] == ["g1", "u1", "f1"]
    assert report["metrics"]["items"] == 3 and report["by_type"].keys() == {"fact", "follow-up"}
    assert report["llm_judge"]["status"].startswith("LLM judge: not configured")
    assert (tmp_path / "out" / "report.md").is_file() and list((tmp_path / "out").glob("*.png"))


def test_llm_judge_says_in_one_line_why_it_cannot_run(tmp_path):
    import importlib.util

    from conftest import make_settings
    from eval.llm_judge import not_configured_message, run_llm_judge

    unset = make_settings(tmp_path, tmp_path / ".chroma")
    assert not_configured_message(unset).startswith("LLM judge: not configured (LLM_PROVIDER is unset)")
    assert run_llm_judge([], unset, model=None)["metrics"] == {}
    configured = make_settings(tmp_path, tmp_path / ".chroma", llm_provider="openai")
    message = not_configured_message(configured)
    if importlib.util.find_spec("ragas") is None:
        assert "ragas package is not installed" in message
    else:
        assert message is None


def test_the_quality_table_puts_the_old_model_beside_the_reader():
    from eval.variants import quality_table

    baseline = {"corpora": {"seed": {"report": {"key_fact_recall": 0.81}, "loco": {"key_fact_recall": 0.73}}}}
    figures = {"seed": {("reader", "report"): {"key_fact_recall": 0.9}, ("reader", "loco"): {"key_fact_recall": 0.88},
                        ("squad-only", "report"): {"key_fact_recall": 0.7}},
               "squad": {("reader", "report"): {"key_fact_recall": 0.8}}}
    table = quality_table(figures, baseline)
    row = next(line for line in table.splitlines() if line.startswith("| key_fact_recall") and "0.81" in line)
    assert [cell.strip() for cell in row.split("|")[2:7]] == ["0.810", "0.900", "0.730", "0.880", "0.700"]
    assert "### squad" in table and "| – | 0.800 | – | – | – |" in table
