"""The README's API examples are what the service answers today, so the docs cannot drift."""
import json
import re

import pytest

from .conftest import ROOT

EXAMPLE = re.compile(r"```sh\n(curl -s localhost:8000(?P<path>/\S+) .*?-d '(?P<body>.*?)')\n```\n"
                     r"```json\n(?P<answer>.*?)\n```", re.S)


def readme_examples():
    """(path, request body, documented answer) for every curl example followed by its JSON."""
    text = (ROOT / "README.md").read_text()
    return [(m["path"], json.loads(m["body"]), json.loads(m["answer"]))
            for m in EXAMPLE.finditer(text)]


def test_readme_shows_single_batch_legacy_and_error_examples():
    paths = [path for path, _, _ in readme_examples()]
    assert paths.count("/api/v1/predict") >= 3 and "/predict_api" in paths


@pytest.mark.parametrize("path, body, documented", readme_examples(),
                         ids=lambda value: value if isinstance(value, str) else "example")
def test_readme_example_answers_match_the_service(client, path, body, documented):
    response = client.post(path, json=body)
    assert response.get_json() == documented


def test_readme_quotes_the_committed_cards_coverage_figures(real_model):
    likely = real_model.card["interval"]
    text = " ".join((ROOT / "README.md").read_text().split())
    holdout, resampled = likely["holdout"], likely["resampled"]
    groups = holdout["by_group"]
    assert (f"**{holdout['coverage']:.1%}** (smokers {groups['smoker=yes']:.1%}, "
            f"non-smokers {groups['smoker=no']:.1%})") in text
    assert f"covers **{resampled['mean']:.1%}** on average (sd {resampled['sd'] * 100:.1f}" in text
