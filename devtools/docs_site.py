"""MkDocs hook of the docs site: the API reference and the measured tables, made at build time.

`make docs` runs ``python -m mkdocs build --strict`` from the project root (so ``bench``,
``devtools`` and ``insurance_charges`` import). The API reference page is written from the app's
own OpenAPI document; each ``<!-- generated: NAME -->`` line of a page becomes the table of the
figures NAME stands for (bench/results/, the committed model card). A missing or unknown table
stops the build with one line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

from bench import tables
from devtools.openapi_markdown import reference
from insurance_charges.settings import MAX_BATCH_LIMIT, MAX_CONTENT_LENGTH
from insurance_charges.web.openapi import build_document

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_PAGE = "api-reference.md"
MARKER = re.compile(r"^<!-- generated: (?P<name>[^ ]*) -->$", re.M)
# NAME -> (the file of figures, how it becomes a table, the command that writes the file)
GENERATED: dict[str, tuple[str, Callable[[dict], str], str]] = {
    "bench": ("bench/results/latest.json", tables.bench, "make bench"),
    "capture": ("bench/results/capture.json", tables.capture, "python -m bench.capture_cost"),
    "invocations": ("bench/results/invocations.json", tables.invocations, "make bench"),
    "kafka": ("bench/results/kafka.json", tables.kafka, "make bench"),
    "metrics-soak": (
        "bench/results/metrics-soak.json",
        tables.metrics_soak,
        "python -m bench.metrics_soak",
    ),
    "mutation": ("bench/results/mutation.json", tables.mutation, "make mutate"),
    "model-card": ("model/insurance-charges.card.json", tables.model_card, "make train"),
    "worker": ("bench/results/worker.json", tables.worker, "make bench"),
    "blas-spread": (
        "bench/results/blas-spread.json",
        tables.blas_spread,
        "python -m devtools.blas_spread --data ../shared/data/insurance.csv "
        "--out bench/results/blas-spread.json",
    ),
}


def table(name: str, page: str) -> str:
    """The Markdown table NAME stands for, from its results file."""
    if name not in GENERATED:
        raise PluginError(
            f"{page}: no generated table {name!r}; use one of {', '.join(sorted(GENERATED))}"
        )
    file_name, render, command = GENERATED[name]
    path = ROOT / file_name
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PluginError(
            f"{page}: cannot read {path} for the {name!r} table ({exc}); "
            f"run `{command}` to write it"
        ) from None
    return render(result)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the API reference, written from the document the app serves by default."""
    document = build_document(MAX_BATCH_LIMIT, MAX_CONTENT_LENGTH)
    files.append(File.generated(config, REFERENCE_PAGE, content=reference(document)))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Replace every generated-table line of a page with its table."""
    return MARKER.sub(lambda found: table(found["name"], page.file.src_uri), markdown)
