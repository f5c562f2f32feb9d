"""The OpenAPI document as a Markdown reference page, for the docs site (never hand-copied)."""

from __future__ import annotations

import html
import re

REF = "#/components/schemas/"
# Code spans are left as they are (Markdown shows their text literally); text outside them is
# escaped, so nothing in the document can become HTML on the page or break a table row.
CODE_SPAN = re.compile(r"(`[^`\n]+`)")


def text(value: str) -> str:
    """Prose from the document, safe in a paragraph or a table cell."""
    parts = CODE_SPAN.split(" ".join(value.split()))
    return "".join(
        part if CODE_SPAN.fullmatch(part) else html.escape(part, quote=False).replace("|", "\\|")
        for part in parts
    )


def anchor(name: str) -> str:
    """The heading id of a component schema on the page."""
    return "schema-" + name.lower()


def type_of(schema: dict) -> str:
    """A schema in a few words: links to components, enums and constants spelled out."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(REF)
        return f"[{name}](#{anchor(name)})"
    if "oneOf" in schema:
        return " or ".join(type_of(option) for option in schema["oneOf"])
    if "const" in schema:
        value = schema["const"]
        return f'`"{value}"`' if isinstance(value, str) else f"`{value}`"
    if "enum" in schema:
        return "one of " + ", ".join(f'`"{v}"`' for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return "array of " + type_of(schema.get("items", {}))
    return " or ".join(kind) if isinstance(kind, list) else kind


def limits(schema: dict) -> str:
    """The constraints a schema puts on its value, in words."""
    words = []
    for key, say in (
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("exclusiveMaximum", "<"),
    ):
        if key in schema:
            words.append(f"{say} {schema[key]:,}")
    if "minItems" in schema or "maxItems" in schema:
        words.append(f"{schema.get('minItems', 0):,} to {schema.get('maxItems', '∞'):,} items")
    if "format" in schema:
        words.append(schema["format"])
    if schema.get("additionalProperties") is False:
        words.append("no other properties")
    return ", ".join(words)


def operation(path: str, method: str, op: dict) -> list[str]:
    """One operation: its heading, prose, body and responses."""
    lines = [
        f"### {method.upper()} `{path}` {{#{op['operationId'].lower()}}}",
        "",
        text(op["summary"]) + ".",
    ]
    if op.get("description"):
        lines += ["", text(op["description"])]
    body = op.get("requestBody")
    if body:
        ((media, content),) = body["content"].items()
        lines += ["", f"**Body** (`{media}`): {type_of(content['schema'])}."]
    lines += ["", "| Status | Meaning | Body |", "|---|---|---|"]
    for status, response in op["responses"].items():
        shown = "; ".join(
            f"`{media}`: {type_of(content['schema'])}"
            for media, content in response.get("content", {}).items()
        )
        lines.append(f"| {status} | {text(response['description'])} | {shown} |")
    return lines + [""]


def component(name: str, schema: dict) -> list[str]:
    """One component schema: its description and, for an object, a table of its properties."""
    lines = [f"### {name} {{#{anchor(name)}}}", ""]
    summary = [text(schema["description"])] if "description" in schema else []
    if schema.get("type") != "object" or "properties" not in schema:
        summary.append(
            f"Type: {type_of(schema)}" + (f" ({limits(schema)})" if limits(schema) else "") + "."
        )
    elif limits(schema):
        summary.append(f"An object ({limits(schema)}).")
    lines += [" ".join(summary), ""] if summary else []
    required = set(schema.get("required", []))
    properties = schema.get("properties", {})
    if properties:
        lines += ["| Property | Type | Required | Limits | Meaning |", "|---|---|---|---|---|"]
        for prop, spec in properties.items():
            meaning = text(spec.get("description", spec.get("title", "")))
            lines.append(
                f"| `{prop}` | {type_of(spec)} | {'yes' if prop in required else 'no'} "
                f"| {limits(spec)} | {meaning} |"
            )
        lines.append("")
    elif required:
        lines += ["Required: " + ", ".join(f"`{r}`" for r in schema["required"]) + ".", ""]
    return lines


def reference(doc: dict) -> str:
    """The whole reference page for one OpenAPI document."""
    lines = [
        "# API reference",
        "",
        f"Generated from the service's own OpenAPI {doc['openapi']} document (the one "
        "`GET /openapi.json` serves, with the default limits) each time the site is built. "
        "The running service also renders it at `GET /docs`.",
        "",
        text(doc["info"]["description"]),
        "",
        "## Operations",
        "",
    ]
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            lines += operation(path, method, op)
    lines += ["## Schemas", ""]
    for name, schema in doc["components"]["schemas"].items():
        lines += component(name, schema)
    return "\n".join(lines).rstrip() + "\n"
