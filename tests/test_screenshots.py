"""The docs' screenshots: the browser tests keep them current without dirtying the checkout."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from . import screenshots


def png(colour: str, size: tuple[int, int] = (1280, 900)) -> bytes:
    """A screenshot-sized PNG of one colour with a line across it, as a browser would send it."""
    image = Image.new("RGB", size, colour)
    ImageDraw.Draw(image).line((0, 0, size[0], size[1]), fill="black", width=9)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_published_screenshot_is_at_the_docs_width_in_a_small_palette(tmp_path):
    target = screenshots.publish(png("white"), "page.png", screenshots.DESKTOP_WIDTH, tmp_path)
    with Image.open(target) as image:
        assert image.size == (960, 675) and image.mode == "P"
        assert len(image.getcolors(maxcolors=256)) <= screenshots.COLOURS
    assert [p.name for p in tmp_path.iterdir()] == ["page.png"]  # no partial file left


def test_a_page_that_looks_the_same_leaves_its_screenshot_untouched(tmp_path):
    target = screenshots.publish(png("white"), "page.png", screenshots.DESKTOP_WIDTH, tmp_path)
    with Image.open(target) as image:  # the same pixels, encoded differently
        image.save(target, format="PNG", optimize=False, compress_level=1)
    encoded = target.read_bytes()
    screenshots.publish(png("white"), "page.png", screenshots.DESKTOP_WIDTH, tmp_path)
    assert target.read_bytes() == encoded


@pytest.mark.parametrize(
    "changed",
    [png("lightblue"), png("white", (1280, 1000))],
    ids=["another colour", "another height"],
)
def test_a_page_that_looks_different_replaces_its_screenshot(tmp_path, changed):
    target = screenshots.publish(png("white"), "page.png", screenshots.DESKTOP_WIDTH, tmp_path)
    before = target.read_bytes()
    screenshots.publish(changed, "page.png", screenshots.DESKTOP_WIDTH, tmp_path)
    assert target.read_bytes() != before
