"""The hand-written text rules behind keyword search and the "names the notes never mention" check."""

from __future__ import annotations

from qa.text import cased_terms, name_vocabulary, question_names, stem, tokenize


def test_cased_terms_flag_names_by_case_and_leave_sentence_starts_undecided():
    terms = dict(cased_terms("Lambda's limit is high. Use DynamoDB and S3 with Amazon Aurora;\n  **Kinesis** streams"))
    assert terms["lambda"] is None  # starts the text: could be any word
    assert terms["dynamodb"] is True and terms["s3"] is True  # inner capital / digit
    assert terms["aurora"] is True and terms["limit"] is False
    assert terms["kinesis"] is None  # after "**": a bold line start
    assert "lambda's" not in terms  # possessive stripped


def test_name_vocabulary_keeps_words_the_notes_nearly_always_capitalise():
    texts = ["Data goes to Neptune first.", "Then Neptune loads it.", "We query the graph with Gremlin.",
             "The graph is big, the graph is fast."]
    assert {"neptune", "gremlin"} <= name_vocabulary(texts)
    assert "graph" not in name_vocabulary(texts)
    assert question_names("does neptune support gremlin?", name_vocabulary(texts)) == ["neptune", "gremlin"]


def test_tokenize_drops_stop_words_and_stems_plurals_and_ing_forms():
    assert tokenize("The functions are loading classes") == ["function", "load", "class"]
    assert stem("status") == "status" and stem("policies") == "policy"


def test_words_in_code_do_not_stop_a_name_and_a_lower_case_question_still_names_it():
    from qa.conversation import is_follow_up

    notes = ["With Helmfile you declare every release in one file. Then run `helmfile sync`.\n\n"
             "```bash\nhelmfile apply\nhelmfile diff\n```\n\nThe Helmfile docs list more commands."]
    names = name_vocabulary(notes)
    assert "helmfile" in names
    assert question_names("What is a helmfile?", names) == ["helmfile"]
    assert not is_follow_up("What is a helmfile?", names)  # its own subject, whatever the case
    assert is_follow_up("And how do I apply it?", names)
