"""The pictures of `attn demo --out DIR`: a heatmap (PNG) of every attention the demo
computes, document 000's network with the shape on every edge, and an index.html
that shows them all, one section per document.

The PNGs are checked with png_reader (the standard library only): the signature,
every chunk's CRC, the IHDR header, and the IDAT stream inflated to exactly one
filtered row per line.
"""

import subprocess
from html.parser import HTMLParser

import pytest

from png_reader import read_png
from attn_tool import attn_bin

# Every picture `attn demo` draws, by example (as in the --json record) and the
# picture's file name: document 000's network first, then a heatmap of every
# attention; d2l's examples are drawn in d2l's "Reds", the others in viridis.
NETWORK = "network"
PICTURES = [
    ("doc000_d2l_multi_head_attention", "doc000_d2l_multi_head_attention-network.png", NETWORK),
    ("doc000_d2l_multi_head_attention", "doc000_d2l_multi_head_attention-weights.png", "reds"),
    ("doc000_d2l_multi_head_attention", "doc000_d2l_multi_head_attention-module_weights.png",
     "reds"),
    ("doc001_dot_product", "doc001_dot_product-weights.png", "viridis"),
    ("doc002_encoder_self_attention", "doc002_encoder_self_attention-weights.png", "viridis"),
    ("doc002_decoder_masked_self_attention",
     "doc002_decoder_masked_self_attention-weights.png", "viridis"),
    ("doc002_encoder_decoder_attention", "doc002_encoder_decoder_attention-weights.png",
     "viridis"),
    ("doc003_numpy_columns", "doc003_numpy_columns-weights.png", "viridis"),
    ("doc003_self_attention_module", "doc003_self_attention_module-weights.png", "viridis"),
    ("doc004_additive_attention", "doc004_additive_attention-weights.png", "reds"),
    ("doc004_dot_product_attention", "doc004_dot_product_attention-weights.png", "reds"),
]


class IndexPage(HTMLParser):
    """The sections, images (src, alt) and captions of index.html."""

    def __init__(self):
        super().__init__()
        self.sections = []  # [(id, [(src, alt, caption)])]
        self._in_caption = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append((attrs.get("id"), []))
        elif tag == "img":
            assert self.sections, "an <img> outside every <section>"
            self.sections[-1][1].append([attrs.get("src"), attrs.get("alt"), ""])
        elif tag == "figcaption":
            self._in_caption = True

    def handle_endtag(self, tag):
        if tag == "figcaption":
            self._in_caption = False

    def handle_data(self, data):
        if self._in_caption:
            self.sections[-1][1][-1][2] += data

    def images(self):
        return [image for _, images in self.sections for image in images]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("pictures")
    out = root / "new" / "attn-demo"  # parents created as well
    record = root / "demo.json"
    run = subprocess.run([attn_bin(), "demo", "--out", str(out), "--json", str(record)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return out, run.stdout, record


def test_prints_where_the_pictures_are(demo):
    out, stdout, _ = demo
    assert stdout.rstrip().endswith(f"pictures: {out / 'index.html'}"), stdout[-300:]


def test_index_shows_every_attention(demo):
    import json

    out, _, record = demo
    page = IndexPage()
    page.feed((out / "index.html").read_text(encoding="utf-8"))
    images = page.images()

    # One picture per attention computed, in the order they are computed.
    assert [src for src, _, _ in images] == [file for _, file, _ in PICTURES]
    # Each belongs to an example of the --json record and to its document's section.
    with open(record) as f:
        examples = json.load(f)["examples"]
    sections = {src: section_id for section_id, imgs in page.sections for src, _, _ in imgs}
    for example, file, _ in PICTURES:
        assert example in examples, example
        assert sections[file] == f"document-{examples[example]['document']}", file
    assert [section_id for section_id, _ in page.sections] == [
        f"document-{i:03d}" for i in range(5)]

    # Nothing else in the folder: every PNG there is one the page shows.
    assert sorted(p.name for p in out.glob("*.png")) == sorted(file for _, file, _ in PICTURES)

    for (example, file, kind), (src, alt, caption) in zip(PICTURES, images):
        png = read_png(out / src, pixels=False)
        width, height = png.width, png.height
        assert caption.strip(), f"{src}: no caption"
        assert width >= 16 and height >= 16, (src, width, height)
        if kind == NETWORK:
            assert alt and alt.startswith("Multi-head attention network:"), (src, alt)
            continue
        assert alt and alt.startswith("Attention weights:"), (src, alt)
        assert "(Queries x Keys)" in alt and f"{kind} colour scale" in alt, (src, alt)


def test_panel_titles_name_batch_and_head(demo):
    out, _, _ = demo
    page = IndexPage()
    page.feed((out / "index.html").read_text(encoding="utf-8"))
    alts = {src: alt for src, alt, _ in page.images()}
    # d2l MultiHeadAttention: (B, H, Lq, Lk) = (2, 5, 4, 6), one panel per batch and head.
    alt = alts["doc000_d2l_multi_head_attention-weights.png"]
    assert "2 x 5 panels of 4 x 6" in alt and "batch 0, head 2" in alt and "batch 1, head 4" in alt
    # (B, Lq, Lk): one panel per batch.
    assert "titled batch 0, batch 1;" in alts["doc001_dot_product-weights.png"]


def test_network_of_document_000(demo):
    out, _, _ = demo
    page = IndexPage()
    page.feed((out / "index.html").read_text(encoding="utf-8"))
    sections = dict(page.sections)
    network = [image for image in sections["document-000"] if image[0].endswith("-network.png")]
    assert len(network) == 1, sections["document-000"]
    _, alt, caption = network[0]
    # d2l's num_hiddens=100, num_heads=5 for batch_size=2, num_queries=4, num_kvpairs=6:
    # the shapes document 000 prints.
    assert "embed_dim 100, 5 heads of 20, batch 2, 4 queries, 6 key-value pairs" in alt, alt
    assert "split into heads (2, 5, 4, 20), (2, 5, 6, 20)" in alt, alt
    assert "output (2, 4, 100)" in alt and "averaged over heads (2, 4, 6)" in alt, alt
    assert "num_hiddens=100, num_heads=5" in caption, caption


def test_captions_are_escaped(demo):
    out, _, _ = demo
    html = (out / "index.html").read_text(encoding="utf-8")
    # Document 001's caption reads "bmm(x1, x2^T) -> softmax(dim=-1), ...".
    assert "bmm(x1, x2^T) -&gt; softmax" in html and "-> softmax" not in html
    page = IndexPage()
    page.feed(html)
    captions = {src: caption for src, _, caption in page.images()}
    assert captions["doc001_dot_product-weights.png"].startswith("bmm(x1, x2^T) -> softmax")


def test_out_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    run = subprocess.run([attn_bin(), "demo", "--out", str(blocker / "pictures")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "cannot create the output folder" in run.stderr and str(blocker) in run.stderr, \
        run.stderr
    assert "Document 000" not in run.stdout, "the demo ran before checking its folder"
