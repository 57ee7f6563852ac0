"""LaTeX typeset at export as inline SVG, so a page shows its math with no script, font or network.

We use ``ziamath`` (pure Python, maintained; it parses with ``latex2mathml`` and lays the MathML out with
its bundled STIX Two Math font): every browser draws the SVG alike. We chose it over plain MathML, which
the browser the tests use (version 156) lays out wrongly for our ELBO equation (its underbraces come out
shorter than their terms), and over an offline MathJax, which pip ships only as MathJax 2 (many files,
megabytes).
"""

import re
import unicodedata
import warnings
from html import escape

MATH_SIZE = 16.0  # px per em when ziamath lays out; the SVG is then sized in em, so it follows the text
MATH_SCALE = 1.1  # STIX Two's x-height is about 0.47 em, the lab's sans-serif text's about 0.52 em

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


def math_html(tex, display):
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
