"""Markdown → sections and sections → chunks (no model needed), on the seed note and small texts."""

from __future__ import annotations

from conftest import SEED_NOTE

from ingest.chunk import chunk_sections
from notes.blocks import plain_text
from notes.parse import parse_note
from notes.slug import slug

EXPECTED_HEADINGS = {
    "1": "AWS Neptune", "2": "How to set up a Neptune Cluster", "3": "How to interact with our Neptune Cluster",
    "4": "Internet access using Internet Gateway, NAT Gateway, or Endpoints", "5": "How to load data",
    "6": "Bulk loading", "7": "Small loads using Query Languages", "8": "Neptune Workbench Notebook",
    "9": "AWS Neptune Analytics", "10": "Serverless", "11": "Lambda", "12": "Core Concepts and Benefits of AWS Lambda",
    "13": "Lambda Capabilities and Integrations", "14": "Use Cases:", "15": "Lambda Limits",
    "16": "Cold Start and SnapStart", "17": "Lambda in a VPC", "18": "Customization At The Edge",
    "19": "CloudFront Functions:", "20": "Lambda@Edge:", "21": "Step functions", "22": "Amazon DymanoDB",
    "23": "Core Concepts and Structure", "24": "Read/Write Capacity Modes", "25": "DynamoDB Accelerator (DAX)",
    "26": "DynamoDB Streams", "27": "DynamoDB Global Tables", "28": "Time To Live (TTL)",
    "29": "DynamoDB - Backups for Disaster Recovery", "30": "Integration with Amazon S3",
    "31": "Serverless Architecture Context",
}
PARENTS = {"1": None, "2": "1", "6": "5", "7": "5", "10": None, "11": "10", "15": "11", "19": "18", "20": "18",
           "21": "10", "22": "10", "26": "22", "31": "22"}


def seed_note():
    return parse_note(SEED_NOTE.read_text(encoding="utf-8"), "aws-notes.md")


def test_seed_note_has_exactly_the_31_anchored_sections():
    note = seed_note()
    numbered = {s.anchor: s for s in note.sections if s.anchor.isdigit()}
    assert sorted(numbered, key=int) == [str(i) for i in range(1, 32)]
    assert {a: s.heading for a, s in numbered.items()} == EXPECTED_HEADINGS
    assert note.warnings == []


def test_seed_sections_have_the_right_parents_and_breadcrumbs():
    numbered = {s.anchor: s for s in seed_note().sections if s.anchor.isdigit()}
    assert numbered["15"].heading_path == ("Serverless", "Lambda", "Lambda Limits")
    assert numbered["15"].breadcrumb == "Serverless › Lambda › Lambda Limits"
    assert numbered["20"].heading_path == ("Serverless", "Lambda", "Customization At The Edge", "Lambda@Edge:")
    for anchor, parent in PARENTS.items():
        assert numbered[anchor].parent_anchor == parent, anchor
    assert numbered["15"].level == 3


def test_section_lines_point_at_the_heading_in_the_file():
    lines = SEED_NOTE.read_text(encoding="utf-8").splitlines()
    for section in seed_note().sections:
        if section.anchor.isdigit():
            assert section.heading in lines[section.start_line - 1]
            assert section.end_line >= section.start_line


def test_table_of_contents_is_navigation_and_never_chunked():
    note = seed_note()
    toc = [s for s in note.sections if s.is_navigation]
    assert len(toc) == 1 and "[Lambda Limits](#15)" in toc[0].text
    chunks = chunk_sections(note.sections)
    assert not any("(#15)" in c.text or "Lambda Limits](#" in c.text for c in chunks)
    intro = next(s for s in note.sections if s.anchor == "amazon-web-services")
    assert "](#1)" not in intro.text


def test_slugs_follow_github_rules_and_repeats_get_suffixes():
    assert slug("Lambda@Edge:") == "lambdaedge"
    assert slug("Read/Write Capacity Modes") == "readwrite-capacity-modes"
    assert slug("DynamoDB - Backups for Disaster Recovery") == "dynamodb---backups-for-disaster-recovery"
    assert slug("Time To Live (TTL)") == "time-to-live-ttl"
    note = parse_note("# Setup\ntext\n## Notes\na\n## Notes\nb\n## Notes\nc\n", "n.md")
    assert [s.anchor for s in note.sections] == ["setup", "notes", "notes-1", "notes-2"]


def test_explicit_anchors_win_and_duplicates_warn():
    text = '<a id="first"></a>\n\n# One\nx\n<a name="first"></a>\n# Two\ny\n## <a name="inline"></a>Three\nz\n'
    note = parse_note(text, "d.md")
    assert [s.anchor for s in note.sections] == ["first", "first-1", "inline"]
    assert [s.heading for s in note.sections] == ["One", "Two", "Three"]
    assert len(note.warnings) == 1 and "d.md" in note.warnings[0] and "duplicate anchor" in note.warnings[0]


def test_text_before_the_first_heading_is_its_own_section():
    note = parse_note("Some intro words.\n\n# Title\nbody\n", "folder/my-note.md")
    assert note.sections[0].anchor == "" and note.sections[0].heading == "my-note"
    assert note.sections[0].text == "Some intro words."
    assert note.sections[1].heading_path == ("Title",)


def test_headings_inside_code_fences_are_not_sections():
    note = parse_note("# Real\n```bash\n# not a heading\n```\ntail\n", "c.md")
    assert [s.heading for s in note.sections] == ["Real"]
    assert "# not a heading" in note.sections[0].text


def test_heading_without_text_warns_and_keeps_its_lines():
    note = parse_note("# Top\nA\n##\nB\n", "e.md")
    assert [s.heading for s in note.sections] == ["Top"]
    assert "B" in note.sections[0].text
    assert note.warnings and "e.md:3" in note.warnings[0] and "no text" in note.warnings[0]


def test_setext_headings_are_sections():
    note = parse_note("Title\n=====\nbody\n\nSub\n---\nmore\n", "s.md")
    assert [(s.heading, s.level) for s in note.sections] == [("Title", 1), ("Sub", 2)]


def test_images_links_html_and_emphasis_reduce_to_their_words():
    raw = '![](https://x/img.png) See <a href="https://a">the docs</a> and [guide](https://g). <a name="x"></a> **bold**'
    assert plain_text(raw) == "See the docs and guide. bold"
    chunks = chunk_sections(seed_note().sections)
    assert not any("![" in c.embed_text or "<a " in c.embed_text for c in chunks)


def test_chunks_stay_in_their_section_and_start_with_the_heading_path():
    note = seed_note()
    chunks = chunk_sections(note.sections)
    by_anchor = {s.anchor: s for s in note.sections}
    for chunk in chunks:
        section = by_anchor[chunk.section.anchor]
        assert chunk.embed_text.startswith(" › ".join(section.heading_path))
        words = plain_text(section.text)
        assert chunk.text in words  # a chunk is a piece of its own section, never of two
        md = chunk.metadata()
        assert {"source", "anchor", "heading", "heading_path", "start_line", "end_line", "hash"} <= md.keys()
        assert all(isinstance(v, (str, int, float, bool)) for v in md.values())
    long_section = by_anchor["2"]
    assert len([c for c in chunks if c.section.anchor == "2"]) > 1, long_section.heading


def test_chunk_ids_and_hashes_are_deterministic():
    first = chunk_sections(seed_note().sections)
    second = chunk_sections(seed_note().sections)
    assert [c.id for c in first] == [c.id for c in second]
    assert len({c.id for c in first}) == len(first)
    assert all(len(c.hash) == 64 for c in first)
