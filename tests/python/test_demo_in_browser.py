"""The index.html of `attn demo --out DIR` in a real browser: headless Chromium (Debian's
chromium package) loads it without an error of any kind, shows every picture at its
own size with its own pixels, and a screenshot of the whole page is taken.
"""

import subprocess

import pytest

from attn_tool import attn_bin
from headless_chromium import HeadlessChromium, find_chromium
from png_reader import read_png

WINDOW = (1280, 1024)
# Points sampled per side of each picture, compared between the page and the file.
SAMPLES_PER_SIDE = 7


@pytest.fixture(scope="module")
def loaded_page(tmp_path_factory):
    if find_chromium() is None:
        pytest.fail("no chromium: scripts/install-deps --test installs Debian's chromium")
    out = tmp_path_factory.mktemp("browser") / "attn-demo"
    run = subprocess.run([attn_bin(), "demo", "--out", str(out)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    with HeadlessChromium(window=WINDOW) as browser:
        page = browser.open((out / "index.html").as_uri())
        images = page.evaluate("""[...document.images].map(img => {
            const box = img.getBoundingClientRect();
            return {src: img.getAttribute('src'), complete: img.complete,
                    natural: [img.naturalWidth, img.naturalHeight],
                    box: [box.left + window.scrollX, box.top + window.scrollY,
                          box.width, box.height]};
        })""")
        size = page.evaluate("[document.documentElement.scrollWidth, "
                             "document.documentElement.scrollHeight, window.devicePixelRatio]")
        shots = {}
        for image in images:
            x, y, width, height = image["box"]
            shots[image["src"]] = page.call("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": x, "y": y, "width": width, "height": height, "scale": 1}})["data"]
        screenshot = page.screenshot()
        errors = list(page.errors)
    (out / "index-screenshot.png").write_bytes(screenshot)
    return out, images, size, shots, screenshot, errors


def test_loads_without_errors(loaded_page):
    _, images, _, _, _, errors = loaded_page
    assert errors == []
    assert len(images) >= 10, [image["src"] for image in images]


def test_every_picture_is_shown_at_its_size(loaded_page):
    out, images, _, _, _, _ = loaded_page
    for image in images:
        png = read_png(out / image["src"])
        assert image["complete"], image
        assert image["natural"] == [png.width, png.height], image
        # The window is wide enough for every picture: none is scaled down.
        assert image["box"][2:] == [png.width, png.height], image


def test_the_page_shows_the_pictures_pixels(loaded_page):
    import base64

    out, images, size, shots, _, _ = loaded_page
    assert size[2] == 1, f"device pixel ratio {size[2]}"
    for image in images:
        file = read_png(out / image["src"])
        shown = read_png(base64.b64decode(shots[image["src"]]))
        assert (shown.width, shown.height) == (file.width, file.height), image["src"]
        for i in range(SAMPLES_PER_SIDE):
            for j in range(SAMPLES_PER_SIDE):
                x = (2 * i + 1) * file.width // (2 * SAMPLES_PER_SIDE)
                y = (2 * j + 1) * file.height // (2 * SAMPLES_PER_SIDE)
                expected, got = file.rgb(x, y), shown.rgb(x, y)
                assert max(abs(a - b) for a, b in zip(expected, got)) <= 2, \
                    (image["src"], x, y, expected, got)


def test_screenshot_of_the_whole_page(loaded_page):
    out, _, size, _, screenshot, _ = loaded_page
    shot = read_png(screenshot, pixels=False)
    assert (shot.width, shot.height) == (WINDOW[0], max(size[1], WINDOW[1]))
    assert (out / "index-screenshot.png").stat().st_size == len(screenshot)
