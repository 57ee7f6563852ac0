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
import itertools
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


def tex_to_svg(tex, *, display=False, id_prefix="m"):
    """One LaTeX formula (no $ delimiters) typeset as an inline <svg> sized in em; raises on TeX it can't.

    The SVG's colour is currentColor and its baseline sits on the text's; ID_PREFIX keeps the ids of
    its glyph <symbol>s apart from other formulas' on the same page.
    """
    import xml.etree.ElementTree as ElementTree

    import ziamath
    from ziamath.tex import tex2mml

    mathml = ElementTree.fromstring(tex2mml(tex.strip(), inline=not display))
    math = ziamath.Math(_fix_mathml(mathml), size=MATH_SIZE, margin=0)
    svg = math.svgxml()
    svg.attrib.pop("xmlns", None)
    svg.attrib.pop("xmlns:xlink", None)
    for name in ("width", "height"):
        svg.set(name, f"{float(svg.get(name)) * MATH_SCALE / MATH_SIZE:.3f}em")
    svg.set("style", f"vertical-align: {math.getyofst() * MATH_SCALE / MATH_SIZE:.3f}em")
    for element in svg.iter():
        if element.get("id"):
            element.set("id", f"{id_prefix}-{element.get('id')}")
        if (element.get("href") or "").startswith("#"):
            element.set("href", f"#{id_prefix}-{element.get('href')[1:]}")
        for paint in ("fill", "stroke"):
            if element.get(paint) == "black":
                element.set(paint, "currentColor")
    return ElementTree.tostring(svg, encoding="unicode")


def _math_html(tex, display, id_prefix):
    """TEX typeset, labelled with its source for screen readers; TeX that can't be typeset stays as TeX."""
    kind = "display" if display else "inline"
    try:
        svg = tex_to_svg(tex, display=display, id_prefix=id_prefix)
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

        def __init__(self, *args, formula_ids, **kwargs):
            super().__init__(*args, **kwargs)
            self.formula_ids = formula_ids

        def _math(self, tex, display):
            return _math_html(tex, display, f"vae-lab-math-{next(self.formula_ids)}")

        def block_math(self, body):
            return self._math(body, True)

        def inline_math(self, body):
            return self._math(body, False)

        def latex_environment(self, name, body):
            return self._math(f"\\begin{{{name}}}{body}\\end{{{name}}}", True)

        def multiline_math(self, text):  # mistune 2 only: the $$...$$ paragraph, delimiters included
            return self._math(text.strip().strip("$"), True)

    class OfflineHTMLExporter(HTMLExporter):
        """HTMLExporter whose pages need no network (see the module docstring)."""

        def from_notebook_node(self, nb, resources=None, **kw):
            self.formula_ids = itertools.count(1)  # per page, so that a page is the same every time
            return super().from_notebook_node(nb, resources, **kw)

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
                formula_ids=self.formula_ids,
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


def notebook_to_html(notebook, *, exclude_input=False, **options):
    """The notebook (an nbformat NotebookNode) as one self-contained HTML page, a str.

    OPTIONS are further HTMLExporter settings, e.g. exclude_input_prompt=True, exclude_output_prompt=True.
    """
    exporter = _exporter_class()(extra_template_basedirs=[str(TEMPLATES)], template_name=TEMPLATE_NAME,
                                 exclude_input=exclude_input, embed_images=True, **options)
    html, _ = exporter.from_notebook_node(notebook)
    return _remove_urls(html)


def write_html(notebook, path, **options):
    """Write notebook_to_html(notebook, **options) to PATH atomically (a .partial file, then a rename)."""
    path = Path(path)
    html = notebook_to_html(notebook, **options)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(html, encoding="utf-8")
    os.replace(partial, path)
    return path
