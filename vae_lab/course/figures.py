"""What the grader sees in a record's figures: a real PNG of a plausible size with something drawn, and
fingerprints that find a copied figure however its bytes were re-encoded.

The PNG's header is read and checked by hand before Pillow decodes anything, so a hostile image that
claims 100,000 × 100,000 pixels is refused without allocating for it.
"""

import hashlib
import io
import struct
import zlib
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A lab figure is a few hundred pixels a side (matplotlib at 100 dpi: 600-1100 wide); far outside is no figure.
MIN_SIDE, MAX_SIDE = 100, 4000
# Below this spread of grey levels (0-255) an image is blank or one flat colour.
MIN_GREY_SPREAD = 4.0
# dHash side: the image is shrunk to (HASH_SIDE + 1) x HASH_SIDE grey pixels and neighbours compared.
HASH_SIDE = 16
HASH_BITS = HASH_SIDE * HASH_SIDE
# Two figures whose dHashes differ in at most this many of 256 bits are the same picture, re-encoded, resized
# or lightly touched (benchmarks/bench_figures.py measures honest pairs and copies).
COPY_DISTANCE = 24


@dataclass(frozen=True)
class FigureFacts:
    """What a figure is: its size, what is wrong with it (empty if nothing), and its fingerprints."""

    width: int = 0
    height: int = 0
    problem: str = ""
    pixel_hash: str = ""  # sha256 of the decoded pixels: equal for the same picture in any PNG encoding
    perceptual_hash: int = 0  # dHash bits: close for the same picture resized or retouched


def png_size(png):
    """(width, height) from a PNG's IHDR chunk, or raise ValueError when the bytes are no PNG."""
    if len(png) < 33 or not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", png[16:24])
    if zlib.crc32(png[12:29]) != struct.unpack(">I", png[29:33])[0]:
        raise ValueError("a damaged PNG header")
    return width, height


def inspect(png):
    """FigureFacts of one figure's PNG bytes; never raises (a broken figure is a FigureFacts with a problem)."""
    try:
        width, height = png_size(png)
    except ValueError as error:
        return FigureFacts(problem=str(error))
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        return FigureFacts(width, height, f"{width}×{height} pixels: not a lab figure's size "
                                          f"({MIN_SIDE}-{MAX_SIDE} a side)")
    try:
        grey = _decode_grey(png)
    except Exception as error:  # Pillow raises many types on broken images; all mean the same here
        return FigureFacts(width, height, f"not a valid PNG ({type(error).__name__})")
    import numpy as np

    pixels = np.asarray(grey, dtype=np.float32)
    if float(pixels.std()) < MIN_GREY_SPREAD:
        return FigureFacts(width, height, "blank: one flat colour, nothing drawn")
    pixel_hash = hashlib.sha256(f"{width}x{height}".encode() + grey.tobytes()).hexdigest()
    return FigureFacts(width, height, "", pixel_hash, _dhash(grey))


def _decode_grey(png):
    from PIL import Image

    with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
        image.load()
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, image)
        return image.convert("L")


def _dhash(grey):
    """Difference hash: is each pixel of the shrunk image brighter than its right-hand neighbour."""
    from PIL import Image

    small = grey.resize((HASH_SIDE + 1, HASH_SIDE), Image.Resampling.BILINEAR)
    values = list(small.getdata())
    bits = 0
    for row in range(HASH_SIDE):
        line = values[row * (HASH_SIDE + 1):(row + 1) * (HASH_SIDE + 1)]
        for left, right in zip(line, line[1:]):
            bits = (bits << 1) | (left > right)
    return bits


def distance(first, second):
    """Bits in which two perceptual hashes differ (0 to HASH_BITS)."""
    return (first ^ second).bit_count()
