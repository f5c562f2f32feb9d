"""The docs site tells the truth: examples the service answers, citations that resolve, no stale
dates."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import markdown
import pytest
from mkdocs.exceptions import PluginError

from devtools import docs_site
from devtools.openapi_markdown import reference, text
from insurance_charges.settings import MAX_BATCH_LIMIT, MAX_CONTENT_LENGTH
from insurance_charges.web.openapi import build_document

from .conftest import ROOT

DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_MOST_LINES = 200  # issue 21: a front page, everything else in the site
# Where code, configuration and deployment files may cite the docs.
CITING = [
    "insurance_charges",
    "gunicorn.conf.py",
    "application.py",
    "Makefile",
    "Dockerfile",
    "docker",
    ".ebextensions",
    ".platform",
    "deploy",
    "airflow",
    ".github",
    ".ci",
    "bench",
    "devtools",
    "tests",
]
BINARY = {".pkl", ".png", ".json", ".pem", ".gz", ".zip", ".pyc"}
CITATION = re.compile(r"docs/(?P<page>[\w/.-]+?\.md)(?:#(?P<anchor>[\w-]+))?")
# How the old citations read: a README heading in quotes, or "the README's <something>" (the
# READMEs of bench/ and airflow/ are files of their own, cited by path).
README_HEADING = re.compile(r"(?<!/)\bREADME(?:\.md)?(?:'s\b|, *[\"“]| +[\"“])")
EXAMPLE = re.compile(
    r"```sh\n(curl -s localhost:8000(?P<path>/\S+) .*?-d '(?P<body>.*?)')\n```\n"
    r"```json\n(?P<answer>.*?)\n```",
    re.S,
)
HEADER = re.compile(r"-H '([A-Za-z-]+): ([^']*)'")
DATE = re.compile(r"\b(?:19|20)\d\d-(?:0[1-9]|1[0-2])\b")
# A commit hash as git abbreviates it: 7 to 40 hex digits with at least one letter and one digit.
COMMIT = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}\b")
# A fenced block, also one indented inside a list item.
FENCE = re.compile(r"^ *```.*?^ *```", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]+`")
# The extensions mkdocs.yml gives Markdown that shape headings and their ids.
HEADING_EXTENSIONS = ["toc", "attr_list", "tables", "admonition", "pymdownx.superfences"]


def pages() -> list[Path]:
    """Every Markdown page of the site, as written (the API reference is made at build time)."""
    return sorted(DOCS.rglob("*.md"))


def anchors(page: Path) -> set[str]:
    """The heading ids MkDocs gives a page."""
    md = markdown.Markdown(extensions=HEADING_EXTENSIONS)
    md.convert(page.read_text(encoding="utf-8"))

    def walk(tokens):
        for token in tokens:
            yield token["id"]
            yield from walk(token["children"])

    return set(walk(md.toc_tokens))


def citing_files() -> list[Path]:
    """The files that may cite the docs (sources, configuration, deployment files, tests)."""
    found = []
    for name in CITING:
        path = ROOT / name
        found += (
            [path]
            if path.is_file()
            else [
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and p.suffix not in BINARY
                and not {"__pycache__", "node_modules"} & set(p.parts)
            ]
        )
    # This file's own examples of broken citations are what it must catch elsewhere.
    return [p for p in found if p != Path(__file__).resolve()]


def broken_citations(content: str) -> list[str]:
    """Each citation in this text that names no page, or no heading of its page."""
    broken = []
    for found in CITATION.finditer(content):
        page = (DOCS / found["page"]).resolve()
        if not page.is_file() or DOCS.resolve() not in page.parents:
            broken.append(f"{found[0]}: no such page")
        elif found["anchor"] and found["anchor"] not in anchors(page):
            broken.append(f"{found[0]}: no heading #{found['anchor']} on {found['page']}")
    broken += [
        f"{m[0]!r}: cites a README heading; cite docs/<page>.md#<anchor>"
        for m in README_HEADING.finditer(content)
    ]
    return broken


def prose(markdown_text: str) -> str:
    """A page without its code blocks and code spans (examples carry real versions and times)."""
    return CODE_SPAN.sub("", FENCE.sub("", markdown_text))


def stale_marks(markdown_text: str) -> list[str]:
    """Dates and commit hashes in a page's prose."""
    text_only = prose(markdown_text)
    return DATE.findall(text_only) + COMMIT.findall(text_only)


# --- Examples: what the pages show is what the service answers --------------------------------


def documented_examples():
    """(page, path, request body, documented answer, headers) for every curl example followed
    by JSON."""
    return [
        (
            page.relative_to(ROOT).as_posix(),
            m["path"],
            json.loads(m["body"]),
            json.loads(m["answer"]),
            dict(HEADER.findall(m[1])),
        )
        for page in [README, *pages()]
        for m in EXAMPLE.finditer(page.read_text(encoding="utf-8"))
    ]


def test_the_api_page_shows_single_batch_legacy_and_error_examples():
    paths = [path for page, path, *_ in documented_examples() if page == "docs/api.md"]
    assert paths.count("/api/v1/predict") >= 3 and "/predict_api" in paths


def test_the_readme_shows_one_api_example():
    assert [p for page, p, *_ in documented_examples() if page == "README.md"] == [
        "/api/v1/predict"
    ]


@pytest.mark.parametrize(
    "page, path, body, documented, headers",
    documented_examples(),
    ids=lambda value: value if isinstance(value, str) else "example",
)
def test_every_documented_api_example_is_what_the_service_answers(
    client, page, path, body, documented, headers
):
    assert client.post(path, json=body, headers=headers).get_json() == documented


def test_the_form_page_quotes_the_committed_cards_coverage_figures(real_model):
    likely = real_model.card["interval"]
    page = " ".join((DOCS / "form.md").read_text().split())
    holdout, resampled = likely["holdout"], likely["resampled"]
    groups = holdout["by_group"]
    assert (
        f"**{holdout['coverage']:.1%}** (smokers {groups['smoker=yes']:.1%}, "
        f"non-smokers {groups['smoker=no']:.1%})"
    ) in page
    assert f"covers **{resampled['mean']:.1%}** on average (sd {resampled['sd'] * 100:.1f}" in page


def test_the_training_page_counts_the_candidates_the_card_lists(real_model):
    count = len(real_model.card["training"]["candidates"])
    page = " ".join((DOCS / "training.md").read_text().split())
    assert f"{count} candidate regressors" in page
    assert re.findall(r"(\d+) candidate regressors", page) == [str(count)]


@pytest.mark.parametrize(
    "row, field",
    [
        ("19,Female,27.9,0,yes,southwest", "sex"),
        ("19,female,27.9,0,YES,southwest", "smoker"),
        ("19,female,27.9,0,Yes,southwest", "smoker"),
        ("19,female,27.9,0,yes,SouthWest", "region"),
        ("19,MALE,27.9,0,no,northeast", "sex"),
    ],
)
def test_csv_categories_are_case_sensitive_as_the_sagemaker_page_says(client, row, field):
    answer = client.post("/invocations", data=row + "\n", content_type="text/csv")
    assert answer.status_code == 422
    assert [e["pointer"] for e in answer.get_json()["errors"]] == [f"/1/{field}"]


# --- Citations: code that cites the docs cites a page and a heading that exist ----------------


def test_code_configuration_and_deployment_files_cite_the_docs():
    cited = [f for f in citing_files() if CITATION.search(f.read_text(errors="replace"))]
    assert len(cited) >= 15  # the README's 20 citations now point into the site


@pytest.mark.parametrize("path", citing_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_citation_of_the_docs_names_an_existing_page_and_heading(path):
    assert broken_citations(path.read_text(errors="replace")) == []


@pytest.mark.parametrize(
    "content, problem",
    [
        ("see docs/nowhere.md", "no such page"),
        ("see docs/security.md#no-such-heading", "no heading #no-such-heading"),
        ("see docs/deploy/nowhere.md#x", "no such page"),
        ("see docs/../README.md", "no such page"),
        ("see docs/deploy/../../README.md#x", "no such page"),
        ('(README, "Model signing")', "cites a README heading"),
        ("README's benchmark table", "cites a README heading"),
        ('README.md, "Training"', "cites a README heading"),
    ],
)
def test_a_citation_of_a_missing_page_heading_or_readme_heading_is_reported(content, problem):
    (found,) = broken_citations(content)
    assert problem in found


@pytest.mark.parametrize(
    "content",
    [
        "docs/security.md#model-signing",
        "docs/security.md",
        "docs/deploy/sagemaker.md#what-invocations-reads",
        "bench/README.md",
        'bench/README.md, "Noise"',
        'see airflow/README.md" >&2',
    ],
)
def test_a_citation_of_an_existing_page_and_heading_passes(content):
    assert broken_citations(content) == []


# --- Dates and commit hashes live in the changelog only ----------------------------------------


@pytest.mark.parametrize(
    "page",
    [p for p in [README, *pages()] if p != DOCS / "changelog.md"],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_no_page_but_the_changelog_dates_its_prose_or_names_a_commit(page):
    assert stale_marks(page.read_text(encoding="utf-8")) == []


def test_the_changelog_is_where_the_dates_and_commits_went():
    assert len(stale_marks((DOCS / "changelog.md").read_text(encoding="utf-8"))) >= 10


@pytest.mark.parametrize(
    "markdown_text, marks",
    [
        ("Measured 2026-11-22 on 2 cores.", ["2026-11"]),
        ("as stored here (2026-11), shows", ["2026-11"]),
        ("on a fresh clone of e3c8011: 22 min", ["e3c8011"]),
        (
            "built from 1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
            ["1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"],
        ),
        ("`2026.11.22-gbr-586c9afb` in a code span", []),
        ('```json\n{"time": "2026-11-21T10:12:06Z"}\n```\n', []),
        ("CVE-2024-5206 and 1,338 rows, decade, feedface", []),
    ],
)
def test_dates_and_hashes_are_found_in_prose_and_not_in_code(markdown_text, marks):
    assert stale_marks(markdown_text) == marks


# --- The README is a front page -------------------------------------------------------------------


def test_the_readme_is_under_200_lines_and_links_only_to_pages_that_exist():
    text_lines = README.read_text(encoding="utf-8").splitlines()
    assert len(text_lines) < README_MOST_LINES
    links = re.findall(r"\]\((docs/[^)]+)\)", "\n".join(text_lines))
    assert len(links) >= 10
    assert [problem for link in links for problem in broken_citations(link)] == []
    for link in links:
        assert (ROOT / link.split("#")[0]).is_file(), link


# --- The API reference and the measured tables are generated, never copied ---------------------


def test_the_api_reference_lists_every_operation_and_schema_of_the_document():
    doc = build_document(MAX_BATCH_LIMIT, MAX_CONTENT_LENGTH)
    page = reference(doc)
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            assert f"### {method.upper()} `{path}` {{#{op['operationId'].lower()}}}" in page
    for name in doc["components"]["schemas"]:
        assert f"### {name} {{#schema-{name.lower()}}}" in page
    links = set(re.findall(r"\]\(#([\w-]+)\)", page))
    assert links and links <= set(re.findall(r"\{#([\w-]+)\}", page))


@pytest.mark.parametrize(
    "prose_text, shown",
    [
        ("<script>alert(1)</script> and `a`", "&lt;script&gt;alert(1)&lt;/script&gt; and `a`"),
        ("a | b", "a \\| b"),
        ("two\nlines", "two lines"),
        ("`<b>` stays code", "`<b>` stays code"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
    ],
)
def test_the_documents_prose_cannot_become_html_or_break_a_table_on_the_reference(
    prose_text, shown
):
    assert text(prose_text) == shown


@pytest.mark.parametrize("name", ["nothing", "../../etc/passwd", "bench extra", "", "latest.json"])
def test_a_page_asking_for_an_unknown_table_stops_the_build_with_one_line(name):
    with pytest.raises(PluginError, match=r"page\.md: no generated table .*; use one of bench,"):
        docs_site.table(name, "page.md")


def test_a_missing_results_file_stops_the_build_naming_the_command_that_writes_it(
    monkeypatch, tmp_path
):
    monkeypatch.setattr(docs_site, "ROOT", tmp_path)
    with pytest.raises(PluginError, match=r"cannot read .*latest\.json.*; run `make bench`"):
        docs_site.table("bench", "performance.md")


def test_every_generated_table_a_page_asks_for_exists_and_every_table_is_shown():
    asked = {
        m["name"]
        for page in pages()
        for m in docs_site.MARKER.finditer(page.read_text(encoding="utf-8"))
    }
    assert asked == set(docs_site.GENERATED)
    for name in asked:
        assert docs_site.table(name, "test").startswith("| ")


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_site_builds_with_strict_checks(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert built.returncode == 0, built.stderr
    reference_page = (tmp_path / "site" / "api-reference" / "index.html").read_text()
    assert 'id="predict"' in reference_page and "`" not in reference_page.split("<article")[1]
    assert "<!-- generated:" not in (tmp_path / "site" / "performance" / "index.html").read_text()
