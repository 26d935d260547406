"""QR codes: drawing the card's code and reading a photo of one, both with zxing-cpp (C++).

Drawing used to be segno's, in pure Python, which spent most of an image (about 7 ms of a /card)
choosing the mask; zxing-cpp draws the same code in C++ and Pillow saves it as a two-colour PNG.
"""

from __future__ import annotations

import io

import zxingcpp
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PHOTO_PIXELS = 40_000_000
DARK = (0x1F, 0x29, 0x37)  # the modules; the background is white
BORDER = 4  # modules of white around the code, as the QR standard asks: phone cameras need it
_PALETTE = [*DARK, 255, 255, 255] + [0] * (256 * 3 - 6)


def qr_png(data: str, scale: int = 10) -> bytes:
    """A QR code of `data` (error correction M), `scale` pixels a module, as a PNG."""
    code = zxingcpp.create_barcode(data, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    modules = code.to_image(scale=scale, add_quiet_zones=False)
    height, width = modules.shape
    gray = Image.frombuffer("L", (width, height), modules, "raw", "L", 0, 1)  # zxing's Image is a buffer
    image = ImageOps.expand(gray, border=BORDER * scale, fill=255).convert("1").convert("P")
    image.putpalette(_PALETTE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", bits=1)
    return buffer.getvalue()


def read_qr(image_bytes: bytes) -> list[str]:
    """Texts of the QR codes in a photo; empty when there is none or the file is not an image."""
    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            if image.width * image.height > MAX_PHOTO_PIXELS:
                return []
            image.load()
            results = zxingcpp.read_barcodes(image.convert("L"))
    except (UnidentifiedImageError, OSError, ValueError):
        return []
    return [result.text for result in results if result.format == zxingcpp.BarcodeFormat.QRCode]
