"""The docs' screenshots, written by the browser tests so they always show the current pages."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from PIL import Image

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
DESKTOP_WIDTH = 960  # the docs' content column: a 1280 px page at 3/4 stays readable there
PHONE_WIDTH = 375  # one CSS pixel per image pixel, as a phone shows it
# The pages use a handful of colours; 128 keeps text and charts crisp and each file about
# 100 KB, where full colour would add about 3x that to the repository at every change.
COLOURS = 128


def reduced(png: bytes, width: int) -> Image.Image:
    """The screenshot at the docs' width, in a palette of COLOURS."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    if image.width != width:
        image = image.resize(
            (width, round(image.height * width / image.width)), Image.Resampling.LANCZOS
        )
    return image.quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    """Whether two images show exactly the same thing, whatever their encoding."""
    return a.size == b.size and a.convert("RGB").tobytes() == b.convert("RGB").tobytes()


def publish(png: bytes, name: str, width: int, directory: Path = DOCS_SCREENSHOTS) -> Path:
    """Write the docs' copy of a screenshot, but only when the page looks different.

    An unchanged page leaves the file untouched, so a test run does not dirty the checkout.
    """
    image, target = reduced(png, width), directory / name
    if target.exists():
        with Image.open(target) as current:
            if same_pixels(current, image):
                return target
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".partial")
    with os.fdopen(handle, "wb") as out:
        out.write(buffer.getvalue())
        os.fchmod(out.fileno(), 0o644)  # mkstemp's 0600 would hide it from other users
    os.replace(temporary, target)  # a reader never sees half a PNG
    return target
