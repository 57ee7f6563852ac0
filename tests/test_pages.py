"""HTML pages render offline: no http(s) address, images as data: URIs, LaTeX typeset at export.

The browser test opens pages in headless Debian chromium with the network blocked; it is skipped
where chromium is not installed (apt-get install chromium).
"""

import base64
import re
import struct
import zlib
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup

from vae_lab import pages, typeset

from browser import browser_check

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "vae_mnist.ipynb"

DESCRIPTION = r"""## The model

A **variational** autoencoder maps an image $x$ to a *distribution* over latent points,
$q(z\mid x) = \mathcal N\big(\mu(x), \operatorname{diag}\sigma^2(x)\big)$; a point is drawn as
$z = \mu + \sigma\odot\varepsilon$ with $\varepsilon\sim\mathcal N(0, I)$ and $\sigma = \exp(\tfrac12\log\sigma^2)$.
Dollars in code stay as they are: `echo $HOME` and `cost = $5`.

$$
-\text{ELBO}(x) = \underbrace{-\sum_{i=1}^{784}\big[x_i\log \hat x_i + (1-x_i)\log(1-\hat x_i)\big]}_{\text{reconstruction: BCE summed over pixels}}
\;+\; \underbrace{\left(-\tfrac12\sum_{j=1}^{2}\big(1 + \log\sigma_j^2 - \mu_j^2 - \sigma_j^2\big)\right)}_{\text{KL}\left(q(z\mid x)\,\|\,\mathcal N(0, I)\right)}
$$

```
price = "$x$ is not math here"
```
"""
FORMULAS_IN_DESCRIPTION = 6  # five inline, one display


def tiny_png(width=3, height=2):
    """A valid RGB PNG (red pixels) as base64, as a notebook's image/png output holds it."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return base64.b64encode(png).decode("ascii")


def small_notebook():
    """Markdown with the kinds of math our notebook uses, a figure output and a text/latex output."""
    figure = nbformat.v4.new_code_cell("show(figure)", execution_count=1)
    figure.outputs = [nbformat.v4.new_output("display_data", data={"image/png": tiny_png(),
                                                                   "text/plain": "<Figure>"})]
    latex = nbformat.v4.new_code_cell("Math(r'\\mathbb E[x]')", execution_count=2)
    latex.outputs = [nbformat.v4.new_output("execute_result", execution_count=2, data={
        "text/latex": r"$\displaystyle \mathbb{E}_{q}\left[\log p(x\mid z)\right]$", "text/plain": "<Math>"})]
    cells = [nbformat.v4.new_markdown_cell(DESCRIPTION), figure, latex]
    for number, cell in enumerate(cells):
        cell.id = f"cell-{number}"  # nbformat draws random ids, which the page shows
    return nbformat.v4.new_notebook(cells=cells)


def visible_text(html):
    """The page's text outside code, scripts, styles and typeset formulas."""
    soup = BeautifulSoup(html, "html.parser")
    for element in soup.select("pre, code, script, style, svg"):
        element.decompose()
    return soup.get_text(" ")


def assert_offline_page(html, *, images, formulas=None):
    """What every page must satisfy; FORMULAS None means at least one."""
    assert pages.external_references(html) == []
    assert "<script" not in html  # nothing to fetch, nothing to run: the math is already typeset
    soup = BeautifulSoup(html, "html.parser")
    assert soup.select("style") and "--jp-cell-editor-background" in html  # the lab template's CSS, inline
    leftover = re.findall(r"\\[A-Za-z]+|\$\$", visible_text(html))
    assert leftover == [], f"raw TeX in the page's text: {leftover[:10]}"
    spans = soup.select(".vae-lab-math")
    assert len(spans) == formulas if formulas is not None else spans
    for span in spans:
        svg = span.find("svg")
        assert svg is not None and span["aria-label"], span
        assert float(svg["width"].removesuffix("em")) > 0 and float(svg["height"].removesuffix("em")) > 0
    assert not soup.select(".vae-lab-tex-error")
    ids = [element["id"] for element in soup.select("[id]")]
    assert len(ids) == len(set(ids)), "duplicate ids (formulas' glyph symbols must be kept apart)"
    sources = [image["src"] for image in soup.select("img")]
    assert len(sources) == images
    assert all(source.startswith("data:image/png;base64,") for source in sources)


@pytest.fixture(scope="module")
def small_page():
    return pages.notebook_to_html(small_notebook())


@pytest.fixture(scope="module")
def notebook_page():
    return pages.notebook_to_html(nbformat.read(NOTEBOOK, as_version=4))


def test_small_notebook_is_offline_with_math_typeset(small_page):
    assert_offline_page(small_page, images=1, formulas=FORMULAS_IN_DESCRIPTION + 1)
    soup = BeautifulSoup(small_page, "html.parser")
    displays = soup.select(".vae-lab-math-display")
    assert len(displays) == 1  # the ELBO; the text/latex output is inline math in \displaystyle
    assert r"\underbrace" in displays[0]["aria-label"] and "reconstruction" in displays[0]["aria-label"]
    assert soup.select_one('[data-mime-type="text/latex"] .vae-lab-math')
    assert "mathcal" in soup.select(".vae-lab-math-inline")[1]["aria-label"]


def test_dollars_in_code_are_not_math(small_page):
    assert "<code>echo $HOME</code>" in small_page and "<code>cost = $5</code>" in small_page
    assert "$x$ is not math here" in small_page


def test_committed_notebook_is_offline_with_math_typeset(notebook_page):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    figures = sum("image/png" in output.get("data", {})  # 0 where it is committed without outputs
                  for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs)
    assert_offline_page(notebook_page, images=figures)
    labels = [span["aria-label"] for span in BeautifulSoup(notebook_page, "html.parser").select(".vae-lab-math")]
    assert any(r"\underbrace" in label for label in labels)  # the ELBO display equation


NO_DESCRIPTION = "No description has been provided for this image"  # nbconvert's stand-in, with a warning


def test_a_figure_output_carries_its_description_as_alt_text():
    """alt from the output's own metadata (IPython's Image(alt=...)), else its text/plain when that is words;
    a Python repr is no description, so nbconvert's stand-in stays there."""
    described = {"image/png": tiny_png(), "text/plain": "<IPython.core.display.Image object>"}
    cell = nbformat.v4.new_code_cell("show(figure)", execution_count=1)
    cell.outputs = [
        nbformat.v4.new_output("display_data", data=described,
                               metadata={"image/png": {"alt": 'Latent means "z" of <10> classes & more'}}),
        nbformat.v4.new_output("display_data", data={"image/png": tiny_png(), "text/plain": "Samples from the prior"}),
        nbformat.v4.new_output("display_data", data={"image/png": tiny_png(), "text/plain": "<Figure size 640x480>"}),
    ]
    cell.id = "cell-0"
    html = pages.notebook_to_html(nbformat.v4.new_notebook(cells=[cell]))
    assert_offline_page(html, images=3, formulas=0)
    alts = [image.get("alt") for image in BeautifulSoup(html, "html.parser").select("img")]
    assert alts == ['Latent means "z" of <10> classes & more', "Samples from the prior", NO_DESCRIPTION]


def test_every_figure_of_the_committed_notebooks_page_is_described(notebook_page):
    from vae_lab.record_format import LAB_FIGURES

    alts = [image.get("alt") for image in BeautifulSoup(notebook_page, "html.parser").select("img")]
    assert alts and NO_DESCRIPTION not in alts and all(alts), alts
    assert {figure.caption for figure in LAB_FIGURES.values()} <= set(alts)


def test_markdown_images_beside_the_notebook_are_embedded(tmp_path):
    (tmp_path / "figure.png").write_bytes(base64.b64decode(tiny_png()))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("![a figure](figure.png)")])
    assert_offline_page(pages.notebook_to_html(notebook, base_dir=tmp_path), images=1, formulas=0)


def test_page_is_the_same_every_time():
    assert pages.notebook_to_html(small_notebook()) == pages.notebook_to_html(small_notebook())


def test_exclude_input_and_prompts_as_the_report_uses_them():
    html = pages.notebook_to_html(small_notebook(), exclude_input=True, exclude_input_prompt=True,
                                  exclude_output_prompt=True)
    soup = BeautifulSoup(html, "html.parser")
    assert not soup.select(".jp-InputPrompt, .jp-OutputPrompt") and "show(figure)" not in html
    assert_offline_page(html, images=1, formulas=FORMULAS_IN_DESCRIPTION + 1)


def test_latex2mathml_output_is_mended():
    from xml.etree import ElementTree

    from ziamath.tex import tex2mml

    def mended(tex):
        return ElementTree.tostring(typeset._fix_mathml(ElementTree.fromstring(tex2mml(tex))), encoding="unicode")

    assert "<mo>\u223c</mo>" in mended(r"\varepsilon\sim\mathcal N(0, I)")  # not an ASCII tilde
    assert "\U0001d4a9" in mended(r"\mathcal N") and "\u211d" in mended(r"\mathbb R")  # script N, double-struck R
    assert "<mi>diag</mi>" in mended(r"\operatorname{diag}\sigma")
    with pytest.raises(ValueError, match=r"\\foo"):
        mended(r"\foo x")


def test_tex_that_cannot_be_typeset_stays_visible_with_a_warning():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(r"Broken: $\frac{a$ and $\foo$.")])
    with pytest.warns(UserWarning, match="could not typeset"):
        html = pages.notebook_to_html(notebook)
    errors = BeautifulSoup(html, "html.parser").select(".vae-lab-tex-error")
    assert [error.get_text() for error in errors] == [r"$\frac{a$", r"$\foo$"]


@pytest.mark.parametrize("module", ["vae_lab.pages", "vae_lab.typeset"])
def test_importing_pages_or_typeset_loads_neither_nbconvert_nor_ziamath(module):
    import subprocess
    import sys

    code = f"import sys, {module}; print(sorted({{'nbconvert', 'ziamath'}} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"


def test_external_references_lists_each_address_once():
    html = ('<a href="https://example.org/a">x</a> <img src="data:image/png;base64,AAAA">'
            "<p>http://example.org/b and again https://example.org/a</p>")
    assert pages.external_references(html) == ["https://example.org/a", "http://example.org/b"]
    assert pages.external_references("<p>no address</p>") == []


def test_write_html_is_atomic(tmp_path):
    target = tmp_path / "page.html"
    assert pages.write_html(small_notebook(), target, exclude_input=True) == target
    assert target.read_text(encoding="utf-8") == pages.notebook_to_html(small_notebook(), exclude_input=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["page.html"]  # no .partial left
    with pytest.raises(Exception):
        pages.write_html({"not": "a notebook"}, target)
    assert "vae-lab-math" in target.read_text(encoding="utf-8")  # the old page is untouched
    assert sorted(path.name for path in tmp_path.iterdir()) == ["page.html"]


def check_page_in_browser(path):
    """browser_check, printing the summary for the test log."""
    summary = browser_check(path)
    print(f"{Path(path).name}: {summary}")
    return summary


@pytest.mark.parametrize("which", ["small notebook", "committed notebook"])
def test_page_renders_offline_in_chromium(tmp_path, which, chromium):
    notebook = small_notebook() if which == "small notebook" else nbformat.read(NOTEBOOK, as_version=4)
    summary = check_page_in_browser(pages.write_html(notebook, tmp_path / f"{which.replace(' ', '_')}.html"))
    assert summary["requests"] == []
    assert summary["formulas"] > 0 and summary["formulas_typeset"] == summary["formulas"], summary["untypeset"]
    assert summary["raw_tex"] == []
    assert summary["images_loaded"] == summary["images"], summary["broken_images"]
    if which == "small notebook":
        assert summary["images"] == 1
    assert summary["ok"]


def test_marked_phrases_keep_their_words_inside_the_mark():
    # the class page's shared phrases rendered as <mark></mark>word: nbconvert re-parsed each inline tag alone
    # (a hunt, 2026-12-06)
    source = "| a | b |\n| --- | --- |\n| <mark>The</mark> <mark>latent</mark> space | x |\n\nText <mark>word</mark>."
    html = pages.notebook_to_html(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(source)]))
    marks = [tag.get_text() for tag in BeautifulSoup(html, "html.parser").find_all("mark")]
    assert marks == ["The", "latent", "word"]
