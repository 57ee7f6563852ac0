"""Self-contained HTML pages (the notebook, the report) that render with no network.

nbconvert's ``lab`` template loads require.js, MathJax and mermaid from a CDN, so offline a page's
LaTeX shows raw. Here the markdown renderer typesets it at export instead (see ``typeset``). The page
keeps the lab template's CSS inline (``templates/vae_lab_offline`` extends ``lab`` and only drops its
CDN script blocks), embeds every image as a data: URI, and holds no ``http(s)://`` string except links
the notebook's author wrote.
"""

import functools
import re
from pathlib import Path

from .typeset import math_html

TEMPLATES = Path(__file__).with_name("templates")
TEMPLATE_NAME = "vae_lab_offline"

_URL = re.compile(r"https?://[^\s\"'<>()\\`]*", re.IGNORECASE)
_XMLNS_ATTRIBUTE = re.compile(r"""\s+xmlns(?::[\w.-]+)?=(["'])https?://[^"'<>]*\1""", re.IGNORECASE)


def external_references(html):
    """Every http(s):// address left in a page, in order, once each; an empty list means offline-safe."""
    return list(dict.fromkeys(match.group(0) for match in _URL.finditer(html)))


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
            return math_html(body, True)

        def inline_math(self, body):
            return math_html(body, False)

        def latex_environment(self, name, body):
            return math_html(f"\\begin{{{name}}}{body}\\end{{{name}}}", True)

        def multiline_math(self, text):  # mistune 2 only: the $$...$$ paragraph, delimiters included
            return math_html(text.strip().strip("$"), True)

        def inline_html(self, html):
            # nbconvert re-parses each inline tag on its own to embed images, which turns an opening <mark>
            # into <mark></mark> and drops its closing tag: only a tag that is an image needs it
            if self.embed_images and re.match(r"<img\b", html, re.IGNORECASE):
                html = self._html_embed_images(html)
            return super(IPythonRenderer, self).inline_html(html)

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


def figure_cell(png, caption):
    """A code cell without source showing PNG bytes, `caption` its text/plain: the page's alt text."""
    import base64

    import nbformat

    cell = nbformat.v4.new_code_cell(source="")
    cell.outputs = [nbformat.v4.new_output(
        "display_data", data={"image/png": base64.b64encode(png).decode("ascii"), "text/plain": caption})]
    return cell


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
    """Write notebook_to_html(notebook, **options) to PATH atomically."""
    from .atomic import atomic_write_text

    path = Path(path)
    atomic_write_text(path, notebook_to_html(notebook, **options))
    return path
