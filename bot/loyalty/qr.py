"""QR codes: drawing the card's code (segno) and reading a photo of one (zxing-cpp)."""

from __future__ import annotations

import io

import segno
import zxingcpp
from PIL import Image, UnidentifiedImageError

MAX_PHOTO_PIXELS = 40_000_000


def qr_png(data: str, scale: int = 10) -> bytes:
    buffer = io.BytesIO()
    segno.make_qr(data, error="m").save(buffer, kind="png", scale=scale, border=4, dark="#1f2937")
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
