"""The little Markdown the API document's prose uses, rendered safely for the /docs page."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

# A code span as CommonMark writes it with single backticks: no backtick or line break inside,
# so an unpaired backtick stays a literal character instead of swallowing the rest.
CODE_SPAN = re.compile(r"`([^`\n]+)`")
CODE = Markup("<code>{}</code>")  # format() escapes what goes in


def code_spans(text: str) -> Markup:
    """Escape the text and show each `code span` as <code>: no other markup gets through."""
    # split() with one group alternates text outside spans (even) and inside them (odd).
    parts = CODE_SPAN.split(text)
    return Markup("").join(
        CODE.format(part) if i % 2 else escape(part) for i, part in enumerate(parts)
    )
