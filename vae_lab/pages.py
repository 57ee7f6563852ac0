"""Self-contained HTML pages (the notebook, the report) that render with no network.

nbconvert's ``lab`` template loads require.js, MathJax and mermaid from a CDN, so offline a page's
LaTeX shows raw. Here the LaTeX is typeset at export by ``ziamath`` (pure Python, maintained; it parses
with ``latex2mathml`` and lays the MathML out with its bundled STIX Two Math font) into inline SVG:
no script, no font and no network is needed, and every browser draws it alike. We chose it over plain
MathML, which Chromium (156) lays out wrongly for our ELBO equation (its underbraces come out shorter
than their terms), and over an offline MathJax, which pip ships only as MathJax 2 (many files, megabytes).

The page keeps the lab template's CSS inline (``templates/vae_lab_offline`` extends ``lab`` and only
drops its CDN script blocks), embeds every image as a data: URI, and holds no ``http(s)://`` string
except links the notebook's author wrote.
"""

import functools
import os
import re
import unicodedata
import warnings
from html import escape
from pathlib import Path

TEMPLATES = Path(__file__).with_name("templates")
TEMPLATE_NAME = "vae_lab_offline"
MATH_SIZE = 16.0  # px per em when ziamath lays out; the SVG is then sized in em, so it follows the text
MATH_SCALE = 1.1  # STIX Two's x-height is about 0.47 em, the lab's sans-serif text's about 0.52 em

_URL = re.compile(r"https?://[^\s\"'<>()\\`]*", re.IGNORECASE)
_XMLNS_ATTRIBUTE = re.compile(r"""\s+xmlns(?::[\w.-]+)?=(["'])https?://[^"'<>]*\1""", re.IGNORECASE)

# mathvariant -> the prefix of the Unicode names of the Mathematical Alphanumeric Symbols, which the
# math font draws directly (ziamath itself maps script and bold, but not double-struck, for example).
_VARIANT_PREFIX = {
    "bold": "MATHEMATICAL BOLD",
    "italic": "MATHEMATICAL ITALIC",
    "bold-italic": "MATHEMATICAL BOLD ITALIC",
    "script": "MATHEMATICAL SCRIPT",
    "bold-script": "MATHEMATICAL BOLD SCRIPT",
    "fraktur": "MATHEMATICAL FRAKTUR",
    "bold-fraktur": "MATHEMATICAL BOLD FRAKTUR",
    "double-struck": "MATHEMATICAL DOUBLE-STRUCK",
    "sans-serif": "MATHEMATICAL SANS-SERIF",
    "bold-sans-serif": "MATHEMATICAL SANS-SERIF BOLD",
    "sans-serif-italic": "MATHEMATICAL SANS-SERIF ITALIC",
    "sans-serif-bold-italic": "MATHEMATICAL SANS-SERIF BOLD ITALIC",
    "monospace": "MATHEMATICAL MONOSPACE",
}
# Where Unicode keeps a letter of those alphabets in the older Letterlike Symbols block instead.
_LETTERLIKE_PREFIX = {"MATHEMATICAL SCRIPT": "SCRIPT", "MATHEMATICAL FRAKTUR": "BLACK-LETTER",
                      "MATHEMATICAL DOUBLE-STRUCK": "DOUBLE-STRUCK"}


def external_references(html):
    """Every http(s):// address left in a page, in order, once each; an empty list means offline-safe."""
    return list(dict.fromkeys(match.group(0) for match in _URL.finditer(html)))


def _math_character(char, prefix):
    """CHAR in the mathematical alphabet PREFIX (N -> U+1D4A9 for script), or None where it has none."""
    name = unicodedata.name(char, "")
    for script in ("LATIN ", "GREEK "):
        if name.startswith(script):
            name = name[len(script):].replace(" LETTER ", " ", 1)
            break
    else:
        if not name.startswith("DIGIT "):
            return None
    candidates = [f"{prefix} {name}"]
    if prefix in _LETTERLIKE_PREFIX:
        candidates.append(f"{_LETTERLIKE_PREFIX[prefix]} {name}")
    if prefix == "MATHEMATICAL ITALIC" and name == "SMALL H":
        candidates.append("PLANCK CONSTANT")
    for candidate in candidates:
        try:
            return unicodedata.lookup(candidate)
        except KeyError:
            continue
    return None


def _fix_mathml(root):
    """Mend, in place, what latex2mathml gets wrong for our kind of formulas.

    mathvariant letters become the Unicode mathematical alphabets (\\mathbb R was drawn italic);
    \\sim becomes the relation U+223C (latex2mathml writes an ASCII-tilde identifier); and a name from
    \\operatorname becomes an identifier, so that it gets the thin space after it that \\log gets.
    A command latex2mathml does not know (it writes it out as an identifier) raises ValueError.
    """
    for element in root.iter():
        element.tag = element.tag.rpartition("}")[2]  # the MathML namespace, which ziamath drops anyway
        variant = element.get("mathvariant")
        if variant in _VARIANT_PREFIX and element.text:
            mapped = [_math_character(char, _VARIANT_PREFIX[variant]) for char in element.text]
            if all(mapped):
                element.text = "".join(mapped)
                del element.attrib["mathvariant"]
        text = element.text or ""
        if element.tag in ("mi", "mo") and re.fullmatch(r"\\[A-Za-z]+", text):
            raise ValueError(f"unknown LaTeX command {text}")
        if element.tag == "mi" and text == "~" and not len(element):
            element.tag, element.text = "mo", "\u223c"
        elif (element.tag == "mo" and len(text) > 1 and text.isalpha()
              and element.get("movablelimits") != "true"):
            element.tag = "mi"
    return root


def _moved_outline(outline, x0, y0, scale_x, scale_y):
    """A glyph outline (absolute M/L/Q/C/Z commands, as ziafont writes them) scaled, then moved to x0, y0."""
    parts, coordinate = [], 0
    for token in re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[A-Za-z]", outline):
        if token.isalpha():
            parts.append(token)
            coordinate = 0
            continue
        value = x0 + float(token) * scale_x if coordinate % 2 == 0 else y0 + float(token) * scale_y
        parts.append(f"{value:.2f}")
        coordinate += 1
    return " ".join(parts)


def _merge_glyphs(svg):
    """Replace, in place, ziamath's glyph <symbol>s and the <use>s that place them by one <path> per colour.

    Pieces anti-aliased one by one darken where they overlap, which drew tick marks along the long
    underbraces (assembled from many pieces); and the symbols' ids would repeat across a page's formulas.
    Filled as one path (nonzero rule), overlaps are painted once.
    """
    if any(element.get("transform") for element in svg.iter()):
        return svg  # only rotated text has one, which no formula of ours needs
    symbols = {}
    for symbol in svg.findall("symbol"):
        symbols[symbol.get("id")] = ([float(number) for number in symbol.get("viewBox").split()],
                                     " ".join(path.get("d", "") for path in symbol.iter("path")))
        svg.remove(symbol)
    outlines = {}
    for parent in list(svg.iter()):
        for use in parent.findall("use"):
            (left, top, width, height), outline = symbols[use.get("href").removeprefix("#")]
            parent.remove(use)
            if not (outline and width and height):  # a space: nothing to draw
                continue
            scale_x, scale_y = float(use.get("width")) / width, float(use.get("height")) / height
            outlines.setdefault(use.get("fill", "black"), []).append(_moved_outline(
                outline, float(use.get("x")) - left * scale_x, float(use.get("y")) - top * scale_y,
                scale_x, scale_y))
    for fill, parts in outlines.items():
        svg.append(svg.makeelement("path", {"d": " ".join(parts), "fill": fill}))
    return svg


def tex_to_svg(tex, *, display=False):
    """One LaTeX formula (no $ delimiters) typeset as an inline <svg>; raises on TeX it can't typeset.

    The SVG is sized in em, so it follows the text's size; its colour is currentColor and its
    baseline sits on the text's.
    """
    import xml.etree.ElementTree as ElementTree

    import ziamath
    from ziamath.tex import tex2mml

    mathml = ElementTree.fromstring(tex2mml(tex.strip(), inline=not display))
    math = ziamath.Math(_fix_mathml(mathml), size=MATH_SIZE, margin=0)
    svg = _merge_glyphs(math.svgxml())
    svg.attrib.pop("xmlns", None)
    svg.attrib.pop("xmlns:xlink", None)
    for name in ("width", "height"):
        svg.set(name, f"{float(svg.get(name)) * MATH_SCALE / MATH_SIZE:.3f}em")
    svg.set("style", f"vertical-align: {math.getyofst() * MATH_SCALE / MATH_SIZE:.3f}em")
    for element in svg.iter():
        for paint in ("fill", "stroke"):
            if element.get(paint) == "black":
                element.set(paint, "currentColor")
    return ElementTree.tostring(svg, encoding="unicode")


def _math_html(tex, display):
    """TEX typeset, labelled with its source for screen readers; TeX that can't be typeset stays as TeX."""
    kind = "display" if display else "inline"
    try:
        svg = tex_to_svg(tex, display=display)
    except ImportError:
        raise
    except Exception as error:  # latex2mathml and ziamath raise assorted types on TeX they lack
        warnings.warn(f"could not typeset LaTeX ({error!r}); the page shows it as TeX: {tex!r}", stacklevel=2)
        delimiter = "$$" if display else "$"
        return f'<code class="vae-lab-tex-error">{escape(delimiter + tex + delimiter)}</code>'
    return (f'<span class="vae-lab-math vae-lab-math-{kind}" role="img" aria-label="{escape(tex.strip())}">'
            f"{svg}</span>")


@functools.cache
def _exporter_class():
    """HTMLExporter on the offline template, whose markdown renderer typesets the math."""
    import jinja2
    import markupsafe
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class TypesettingRenderer(IPythonRenderer):
        """nbconvert's markdown renderer, with $...$, $$...$$ and \\begin{env}...\\end{env} typeset."""

        def block_math(self, body):
            return _math_html(body, True)

        def inline_math(self, body):
            return _math_html(body, False)

        def latex_environment(self, name, body):
            return _math_html(f"\\begin{{{name}}}{body}\\end{{{name}}}", True)

        def multiline_math(self, text):  # mistune 2 only: the $$...$$ paragraph, delimiters included
            return _math_html(text.strip().strip("$"), True)

    class OfflineHTMLExporter(HTMLExporter):
        """HTMLExporter whose pages need no network (see the module docstring)."""

        @jinja2.pass_context
        def markdown2html(self, context, source):
            cell = context.get("cell", {})
            renderer = TypesettingRenderer(
                escape=False,
                attachments=cell.get("attachments", {}),
                embed_images=self.embed_images,
                path=context.get("resources", {}).get("metadata", {}).get("path", ""),
                anchor_link_text=self.anchor_link_text,
                exclude_anchor_links=self.exclude_anchor_links,
                **self.lexer_options,
            )
            return MarkdownWithMath(renderer=renderer).render(source)

        @jinja2.pass_context
        def latex2html(self, context, source):
            """A text/latex output (IPython's Math, sympy): delimited math as in markdown, else one formula."""
            if not re.search(r"\$|\\\[|\\\(|\\begin\{", source):
                source = f"$${source}$$"
            return markupsafe.Markup(self.markdown2html(context, source))

        def default_filters(self):
            yield from super().default_filters()
            yield ("latex2html", self.latex2html)

    return OfflineHTMLExporter


def _remove_urls(html):
    """Strip the http(s) strings that nbconvert's template brings, none of which loads anything.

    They are addresses in the CSS's comments (licences, sources) and XML namespaces, which HTML5
    needs on no inline <svg> or <math>. A link the notebook's author wrote is left alone
    (external_references still lists it).
    """
    def clean_style(style):
        return re.sub(r"/\*.*?\*/", lambda comment: _URL.sub("", comment.group(0)), style.group(0),
                      flags=re.DOTALL)

    html = re.sub(r"<style\b.*?</style>", clean_style, html, flags=re.DOTALL | re.IGNORECASE)
    return _XMLNS_ATTRIBUTE.sub("", html)


def notebook_to_html(notebook, *, exclude_input=False, base_dir=".", **options):
    """The notebook (an nbformat NotebookNode) as one self-contained HTML page, a str.

    Markdown images are read relative to BASE_DIR (the notebook's folder) and embedded. OPTIONS are
    further HTMLExporter settings, e.g. exclude_input_prompt=True, exclude_output_prompt=True.
    """
    exporter = _exporter_class()(extra_template_basedirs=[str(TEMPLATES)], template_name=TEMPLATE_NAME,
                                 exclude_input=exclude_input, embed_images=True, **options)
    html, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"path": str(base_dir)}})
    return _remove_urls(html)


def write_html(notebook, path, **options):
    """Write notebook_to_html(notebook, **options) to PATH atomically (a .partial file, then a rename)."""
    from .run_directory import atomic_write_text

    path = Path(path)
    atomic_write_text(path, notebook_to_html(notebook, **options))
    return path


# What browser_check appends to its copy of a page: on load it measures the page and writes a JSON
# summary into an element, which chromium's --dump-dom then prints.
_CHECK_SCRIPT = """
<script>
window.addEventListener("load", () => {
  const visible = (element) => {
    const box = element.getBoundingClientRect();
    return box.width > 0 && box.height > 0;
  };
  const formulas = [...document.querySelectorAll(".vae-lab-math, math, mjx-container")]
    .filter((element) => !element.parentElement.closest(".vae-lab-math, math, mjx-container"));
  const untypeset = formulas.filter((element) => {
    const drawn = element.matches(".vae-lab-math") ? element.querySelector("svg") : element;
    return !drawn || !visible(drawn);
  });
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const parent = walker.currentNode.parentElement;
    if (!parent.closest("pre, code, script, style, svg, math, mjx-container, #vae-lab-browser-check")
        && parent.getClientRects().length) {
      texts.push(walker.currentNode.nodeValue);
    }
  }
  const rawTex = texts.join(" ").match(/\\\\[A-Za-z]+|\\$\\$/g) || [];
  const images = [...document.images];
  const broken = images.filter((image) => !(image.complete && image.naturalWidth > 0));
  const summary = {
    formulas: formulas.length,
    formulas_typeset: formulas.length - untypeset.length,
    untypeset: untypeset.slice(0, 5).map((element) => element.getAttribute("aria-label") || element.outerHTML.slice(0, 80)),
    raw_tex: [...new Set(rawTex)].slice(0, 10),
    images: images.length,
    images_loaded: images.length - broken.length,
    broken_images: broken.slice(0, 5).map((image) => image.src.slice(0, 80)),
    requests: performance.getEntriesByType("resource").map((entry) => entry.name)
      .filter((name) => !name.startsWith("data:")),
  };
  const output = document.createElement("pre");
  output.id = "vae-lab-browser-check";
  output.textContent = JSON.stringify(summary);
  document.body.appendChild(output);
});
</script>
"""


def find_chromium():
    """The chromium executable on PATH (Debian's package: apt-get install chromium), or None."""
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


@functools.cache
def _network_namespace_prefix():
    """The unshare command that runs chromium in an empty network namespace here, or () where none may."""
    import shutil
    import subprocess

    if shutil.which("unshare"):
        for prefix in (("unshare", "--net"), ("unshare", "--map-root-user", "--net")):  # root; user namespaces
            if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
                return prefix
    return ()


def browser_check(path, *, timeout=120):
    """Open the page at PATH in headless chromium with the network blocked, and say what it shows.

    Returns a dict: formulas and formulas_typeset (drawn with a non-zero size), untypeset, raw_tex (TeX
    commands left in the visible text), images and images_loaded, broken_images, requests (what the page
    tried to load), network (how it was blocked) and ok. A copy of the page gets a script that measures it
    on load; chromium's --dump-dom prints the result. Raises FileNotFoundError where chromium is absent.
    """
    import json
    import subprocess
    import tempfile
    from html import unescape

    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium not installed: apt-get install chromium")
    html = Path(path).read_text(encoding="utf-8")
    closing = html.lower().rfind("</body>")
    html = html[:closing] + _CHECK_SCRIPT + html[closing:] if closing >= 0 else html + _CHECK_SCRIPT
    with tempfile.TemporaryDirectory(prefix="vae-lab-browser-check-") as scratch:
        page = Path(scratch) / "page.html"
        page.write_text(html, encoding="utf-8")
        prefix = list(_network_namespace_prefix())
        command = prefix + [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            f"--user-data-dir={Path(scratch) / 'profile'}", "--no-first-run", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
            "--virtual-time-budget=10000", "--dump-dom", page.as_uri(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, "HOME": scratch})
    found = re.search(r'<pre id="vae-lab-browser-check">(.*?)</pre>', result.stdout, re.DOTALL)
    if not found:
        raise RuntimeError(f"chromium gave no check result (exit {result.returncode}): {result.stderr[-2000:]}")
    summary = json.loads(unescape(found.group(1)))
    summary["network"] = "blocked: " + ("empty network namespace, " if prefix else "") + "no DNS, dead proxy"
    summary["ok"] = (summary["formulas_typeset"] == summary["formulas"] and not summary["raw_tex"]
                     and summary["images_loaded"] == summary["images"] and not summary["requests"])
    return summary
