"""Notes as people write them: GitHub ids, front matter, shortcodes, Obsidian, tables, hard-wrapped text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import FIXTURES, REPO, SEED_NOTE, corpus_dir

from ingest.chunk import chunk_sections
from notes.blocks import plain_text
from notes.parse import parse_note
from notes.sentences import split_sentences
from notes.slug import Slugger
from notes.units import extract_units

SLUGGER_FIXTURES = REPO.parent / "shared" / "fixtures" / "github-slugger" / "fixtures.json"
OBSIDIAN = FIXTURES / "obsidian"
# What must never reach an answer: front matter fields, shortcodes, wikilinks, comments, callout markers.
MARKUP = re.compile(r"\{\{[%<]|\{%|\[\[|(?<![\w%])%%(?=\s)|\[!|^(?:title|draft|type|layout|menu|weight|tags|aliases):",
                    re.M)


def parse_file(path: Path, root: Path):
    return parse_note(path.read_text(encoding="utf-8"), path.relative_to(root).as_posix())


def notes_of(name: str) -> list[tuple[str, object]]:
    """(raw text, parsed note) of every note of a corpus: the seed, og-aws, poetry-docs or the Obsidian fixture."""
    root = {"seed": SEED_NOTE.parent, "obsidian": OBSIDIAN}.get(name) or corpus_dir(name)
    return [(p.read_text(encoding="utf-8"), parse_file(p, root)) for p in sorted(root.rglob("*.md"))]


def test_ids_match_every_github_slugger_fixture():
    if not SLUGGER_FIXTURES.exists():
        pytest.skip(f"{SLUGGER_FIXTURES} is missing")
    slugger = Slugger()
    cases = json.loads(SLUGGER_FIXTURES.read_text(encoding="utf-8"))
    got = [(case["name"], slugger.slug(case["input"]), case["expected"]) for case in cases]
    assert len(cases) == 78
    assert [g for g in got if g[1] != g[2]] == []


def test_heading_ids_come_from_the_text_github_shows():
    text = "# Head &amp; `code` __name__\n\n# Head & code name\n\n## Installing with `pipx`\n"
    assert [s.anchor for s in parse_note(text, "h.md").sections] == ["head--code-name", "head--code-name-1",
                                                                      "installing-with-pipx"]


@pytest.mark.parametrize("corpus", ["seed", "obsidian", "poetry-docs", "og-aws"])
def test_every_quote_is_the_note_as_written_and_no_markup_reaches_a_unit(corpus):
    for raw, note in notes_of(corpus):
        flat = " ".join(raw.split())
        for section in note.content_sections:
            for unit in extract_units(section.text):
                assert " ".join(unit.quote.split()) in flat, (note.source, unit.quote)
                assert unit.quote in section.text
                prose = re.sub(r"`[^`]*`", "", unit.text)  # code is shown as written, `[[tool.poetry.source]]` too
                assert not MARKUP.search(prose), (note.source, unit.text)


def test_front_matter_is_metadata_not_content():
    [(raw, note)] = [(r, n) for r, n in notes_of("poetry-docs") if n.source == "managing-environments.md"]
    assert raw.startswith("---\ntitle:")
    assert note.title == "Managing environments" and note.meta.fields["menu"]["docs"]["weight"] == 60
    chunks = chunk_sections(note.sections)
    assert chunks and not any(MARKUP.search(c.text) or "weight: 60" in c.embed_text for c in chunks)
    assert {c.metadata()["title"] for c in chunks} == {"Managing environments"}
    assert note.sections[0].start_line > 10  # the front matter belongs to no section


def test_shortcode_text_is_content_and_the_tags_are_not():
    [(_, note)] = [(r, n) for r, n in notes_of("poetry-docs") if n.source == "managing-environments.md"]
    units = [u.text for s in note.content_sections for u in extract_units(s.text)]
    assert "Since version 1.2, Poetry no longer supports managing environments for Python 2.7." in units
    assert not any("{{" in u for u in units)


def test_hard_wrapped_sentences_come_back_whole_and_quote_the_lines_as_written():
    [(_, note)] = [(r, n) for r, n in notes_of("poetry-docs") if n.source == "managing-environments.md"]
    units = {u.text: u for u in extract_units(note.sections[0].text)}
    whole = "But if it's not, it will use one that it has already created or create a brand new one for you."
    assert whole in units
    assert units[whole].quote == ("But if it's not, it will use\none that it has already created or create a brand "
                                  "new one for you.")
    assert not any(u.endswith((" under.", " use.", " the.")) for u in units)


def test_inline_code_stays_code_links_and_emphasis_become_words():
    units = [u.text for u in extract_units("Run `poetry env use 3.9` now, see [the docs](https://x.y/z) and "
                                           "**bold** words.\nIt is *easy* to `poetry.lock` it.")]
    assert units[:2] == ["Run `poetry env use 3.9` now, see the docs and bold words.",
                         "It is easy to `poetry.lock` it."]


def test_obsidian_wikilinks_callouts_comments_and_embeds():
    notes = dict((n.source, (raw, n)) for raw, n in notes_of("obsidian"))
    raw, note = notes["Serverless functions.md"]
    assert note.meta.tags == ("aws", "serverless") and note.meta.aliases == ("FaaS notes",)
    units = [u for s in note.content_sections for u in extract_units(s.text)]
    texts = [u.text for u in units]
    assert ("See Cold starts for what happens on the first request, and keeping functions warm when latency "
            "matters.") in texts
    timeout = next(u for u in units if "fifteen minutes" in u.text)
    assert timeout.label == "Timeout" and timeout.quote.startswith("A function invocation") and "\n> " in timeout.quote
    assert any(u.label == "Payload size" and "6 MB" in u.text for u in units)
    everything = " ".join(plain_text(s.text) for s in note.content_sections)
    assert "TODO" not in everything and "architecture-diagram" not in everything and "HTML comment" not in everything


def test_table_rows_and_data_lines_are_units_that_carry_their_headers():
    [(_, note)] = [(r, n) for r, n in notes_of("obsidian") if n.source == "Serverless functions.md"]
    rows = [u for s in note.content_sections for u in extract_units(s.text) if u.kind == "row"]
    assert [(u.text, u.quote) for u in rows] == [
        ("Setting: Memory · Minimum: 128 MB · Maximum: 10,240 MB", "| Memory | 128 MB | 10,240 MB |"),
        ("Setting: Ephemeral storage · Minimum: 512 MB · Maximum: 10,240 MB",
         "| Ephemeral storage | 512 MB | 10,240 MB |"),
        ("Region: us-east-1 · Cold start (ms): 240 · Warm (ms): 12", "us-east-1     240               12"),
        ("Region: eu-west-1 · Cold start (ms): 260 · Warm (ms): 14", "eu-west-1     260               14"),
    ]
    program = extract_units("Some text here.\n\n```python\nimport os\nprint(os.getcwd())\n```\n")
    assert [u.kind for u in program] == ["sentence"]  # code on its own is shown, never quoted as an answer
    [example] = extract_units("To sync it, run:\n\n```bash\npoetry install --sync\npoetry env use 3.12\n```\n")
    assert example.kind == "example"  # a short command with the sentence that introduces it is an answer
    assert example.text == "To sync it, run: `poetry install --sync`; `poetry env use 3.12`."
    assert example.quote.startswith("To sync it, run:") and example.quote.endswith("```")


def test_tables_and_lone_links_made_of_in_page_links_are_navigation():
    [(_, note)] = notes_of("og-aws")
    content = " ".join(s.text for s in note.content_sections)
    assert "[📗](#alb-basics)" not in content and "[Back to top" in content
    assert "Back to top" not in " ".join(plain_text(s.text) for s in note.content_sections)
    nav = [s for s in note.sections if s.is_navigation]
    assert nav and "[📗](#alb-basics)" in nav[0].text
    assert any(u.kind == "row" and "Durability (per year)" in u.text
               for s in note.content_sections for u in extract_units(s.text))


def test_sentences_split_like_a_careful_reader_on_the_labelled_passages():
    items = [json.loads(line) for line in (REPO / "eval" / "sentences.jsonl").read_text().splitlines() if line]
    exact = sum([item["text"][a:b] for a, b in split_sentences(item["text"])] == item["sentences"] for item in items)
    assert len(items) == 75 and exact >= 73  # bench.sentences: pysbd 75/75, blingfire 72/75


def test_bad_front_matter_is_ignored_with_a_warning_and_toml_front_matter_is_read():
    bad = parse_note("---\ntitle: [oops\n---\n# Heading\nBody text here.\n", "bad.md")
    assert bad.title == "bad" and bad.warnings and "bad.md:1" in bad.warnings[0]
    assert [s.text for s in bad.content_sections] == ["Body text here."]
    toml = parse_note('+++\ntitle = "Hugo page"\ntags = ["x"]\n+++\n# Heading\nBody.\n', "hugo.md")
    assert toml.title == "Hugo page" and toml.meta.tags == ("x",) and toml.content_sections[0].text == "Body."


def test_answers_over_poetry_docs_quote_whole_sentences_across_line_breaks(corpus_qa):
    qa = corpus_qa("poetry-docs")
    wrapped = []
    for question in ("why might the python poetry was installed with not suit my project?",
                     "what does poetry do when it isn't already running inside a virtualenv?",
                     "where does poetry put virtual environments by default?",
                     "can poetry still manage environments for python 2.7?"):
        answer = qa.ask(question)
        assert not answer.abstained, question
        for citation, sentence in zip(answer.citations, answer.sentences):
            note = " ".join((corpus_dir("poetry-docs") / citation.source).read_text().split())
            assert " ".join(citation.quote.split()) in note
            assert sentence.text.rstrip().endswith((".", "!", "?", ")")) and not MARKUP.search(sentence.text)
            if "\n" in citation.quote and citation.quote[:1].isupper():
                wrapped.append(sentence.text)
                assert sentence.text.startswith(" ".join(citation.quote.split())[:20])
    assert wrapped  # some answer sentences were hard-wrapped in the note and came back whole


def test_a_lead_in_to_a_command_is_an_answer_only_with_its_command():
    text = ("## Install\n\nSteps to deploy:\n\n- Add the repo\n  ```\n  helm repo add bitnami https://charts.example\n"
            "  ```\n- Install the chart\n  ```\n  helm install my-release bitnami/nginx\n  ```\n\n"
            "To see the output:\n\n- Result would be:\n  ```\n  NAME: my-release\n  LAST DEPLOYED: now\n"
            "  NAMESPACE: default\n  STATUS: deployed\n  REVISION: 1\n  ```\n- Check the pods\n\n"
            "Do you need a values file? Charts are packages of Kubernetes manifests.\n")
    units = {u.text: u for u in extract_units(text)}
    assert "Install the chart: `helm install my-release bitnami/nginx`." in units
    assert "Install the chart." not in units and "Add the repo." not in units  # never without the command
    steps = [u for u in units.values() if u.kind == "list" and u.text.startswith("Steps to deploy")]
    assert steps and "`helm install my-release bitnami/nginx`" in steps[0].text
    # a list whose item only leads into a long output is not an answer
    assert not any(u.kind == "list" and "Result would be" in u.text for u in units.values())
