"""The shipped reader (qa/models/reader.onnx): it is the file reader.json describes, it ranks fixed pairs as a
reader should, and the training data it was made from is built as documented (eval/squad.py)."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest

from eval.squad import Article, Paragraph, Question, make_pairs, near_topic_units
from qa.errors import ModelUnavailable
from qa.reader import META_PATH, READER_PATH, check_reader, load_reader, reader_meta


def test_the_shipped_reader_is_the_file_its_record_describes():
    meta = reader_meta()
    check_reader()  # sha256 of reader.onnx == reader.json's
    assert meta["data"]["sha256"] == "256bc838f01be4e2d069b6eb5d9a35dd454eecb9fb976d3c7e3f486c8a77a792"
    assert meta["heldout"]["shipped"]["p_at_1_in_paragraph"] >= 0.85
    assert meta["training"]["pairs"] >= 90_000


def test_a_changed_model_file_is_refused_in_one_sentence(tmp_path):
    copy = tmp_path / "reader.onnx"
    shutil.copyfile(READER_PATH, copy)
    with copy.open("r+b") as f:
        f.seek(-16, 2)
        f.write(b"\0" * 16)
    with pytest.raises(ModelUnavailable, match="not the shipped one.*python -m eval.train_reader"):
        check_reader(copy, META_PATH)


@pytest.mark.parametrize("question, answer, others", [
    ("How long can a Lambda function run before it is stopped?",
     "Lambda › Limits: Maximum execution time: 900 seconds (15 minutes).",
     ["Lambda › Limits: Memory allocation: 128 MB to 10,240 MB.",
      "Lambda › Pricing: You pay for each request and for the time your code runs.",
      "Lambda › Overview: Lambda runs your code in response to events."]),
    ("which query languages can I use with neptune?",
     "Neptune › Overview: Neptune supports the Gremlin, openCypher and SPARQL query languages.",
     ["Neptune › Overview: Neptune is a fully managed graph database service.",
      "Neptune › Backups: Neptune backs up your cluster volume continuously to S3."]),
    pytest.param("What is Helm?",
                 "Kubernetes › Helm: Helm is the package manager for Kubernetes: it installs charts of manifests.",
                 ["Kubernetes › Helm: Install the chart: `helm install my-release bitnami/nginx`.",
                  "Kubernetes › Helm: Add the repo: `helm repo add bitnami https://charts.bitnami.com/bitnami`."],
                 marks=pytest.mark.xfail(strict=True, reason=(
                     "known weakness: SQuAD has no commands, and the reader scores a command line that names the "
                     "subject above its definition (0.85 vs 0.48); the whole answer is checked in test_qa"))),
    ("Who wrote the novel that the film was based on?",
     "Film › Production: The film is an adaptation of the 1951 novel by Richard Matheson.",
     ["Film › Production: Filming took place in Toronto over eleven weeks.",
      "Film › Reception: The film received mixed reviews from critics."]),
])
def test_the_reader_ranks_the_passage_that_answers_first(question, answer, others):
    scores = load_reader().score(question, [answer] + others)
    assert int(np.argmax(scores)) == 0, scores


def test_the_reader_scores_a_near_topic_passage_below_one_that_answers():
    reader = load_reader()
    answers = reader.score("How long does SQS keep a message?",
                           ["SQS › Retention: Messages are kept for 4 days by default, and up to 14 days."])
    near = reader.score("How long does SQS keep a message?",
                        ["SQS › Visibility: A received message is hidden from other consumers for 30 seconds."])
    assert answers[0] > near[0] + 0.5  # measured: 3.51 vs 2.70


def test_scores_do_not_depend_on_the_other_passages_or_their_order():
    reader = load_reader()
    passages = ["Lambda › Limits: Maximum execution time: 900 seconds (15 minutes).",
                "Lambda › Overview: Lambda runs your code in response to events, such as an upload to an S3 bucket "
                "or a message on a queue, and scales with the number of events it receives.", "Short one."]
    together = reader.score("How long can a function run?", passages)
    alone = [reader.score("How long can a function run?", [p])[0] for p in passages]
    reordered = reader.score("How long can a function run?", passages[::-1])[::-1]
    assert np.allclose(together, alone, atol=1e-3) and np.allclose(together, reordered, atol=1e-3)
    assert reader.score("anything", []).shape == (0,)


def _article() -> Article:
    contexts = ["The tower was finished in 1889. It is 330 metres tall.",
                "The tower was built by the company of Gustave Eiffel. Work took two years.",
                "Visitors climb the tower by stairs or take the lift. The top floor opens at nine."]
    paragraphs = [Paragraph("Tower", i, c, []) for i, c in enumerate(contexts)]
    paragraphs[0].questions.append(Question("q0", "When was the tower finished?", "1889", contexts[0].index("1889")))
    paragraphs[1].questions.append(Question("q1", "Whose company built the tower?", "Gustave Eiffel",
                                            contexts[1].index("Gustave Eiffel")))
    return Article("Tower", paragraphs)


def test_training_pairs_hold_the_answer_unit_its_paragraph_and_near_topic_units():
    article = _article()
    pairs = make_pairs([article], questions=2, paragraph_negatives=1, near_negatives=2, seed=3, augment=False)
    by_question = {}
    for p in pairs:
        by_question.setdefault(p.question, []).append(p)
    assert set(by_question) == {"When was the tower finished?", "Whose company built the tower?"}
    first = by_question["When was the tower finished?"]
    assert [p.kind for p in first] == ["positive", "paragraph", "near-topic", "near-topic"]
    assert first[0].passage == "Tower: The tower was finished in 1889." and first[0].label == 1
    assert first[1].passage == "Tower: It is 330 metres tall." and first[1].label == 0
    assert all("1889" not in p.passage and p.label == 0 for p in first[2:])  # other paragraphs only


def test_near_topic_negatives_prefer_units_sharing_the_question_words():
    article = _article()
    paragraph = article.paragraphs[0]
    chosen = near_topic_units(article, paragraph, paragraph.questions[0], 2, random.Random(0))
    assert chosen[0].text == "The tower was built by the company of Gustave Eiffel."  # shares "tower"
    assert all(u not in paragraph.units for u in chosen)
