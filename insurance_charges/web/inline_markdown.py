"""The little Markdown the API document's prose uses, rendered safely for the /docs page."""
from __future__ import annotations

import re

from markupsafe import Markup, escape

# A code span as CommonMark writes it with single backticks: no backtick or line break inside,
# so an unpaired backtick stays a literal character instead of swallowing the rest.
CODE_SPAN = re.compile(r"`([^`\n]+)`")


def code_spans(text: str) -> Markup:
    """Escape the text, then turn each `code span` into <code>: no other markup gets through."""
    return Markup(CODE_SPAN.sub(r"<code>\1</code>", str(escape(text))))
