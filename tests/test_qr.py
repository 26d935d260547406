"""The card's QR code, drawn by zxing-cpp: every size the bot draws reads back to its link, and the
image is the two-colour PNG Telegram shows crisply."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.loyalty.qr import BORDER, qr_png, read_qr
from bot.loyalty.rules import CARD_LINK_PREFIX, new_token, token_from_card_link


@pytest.mark.parametrize("scale", [4, 6, 8, 10, 12])
@pytest.mark.parametrize("username", ["a_cafe_bot", "acme_cafe_bot", "the_longest_possible_name_of_a_bot_here_bot"])
def test_every_size_of_the_card_reads_back_to_its_link(scale: int, username: str) -> None:
    token = new_token()
    link = f"https://t.me/{username}?start={CARD_LINK_PREFIX}{token}"  # as handlers/card.py draws it
    png = qr_png(link, scale=scale)
    assert read_qr(png) == [link] and token_from_card_link(read_qr(png)[0]) == token
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.mode == "P" and image.width == image.height
        assert image.getpixel((0, 0)) == 1  # the quiet zone is white
        assert image.width % scale == 0 and image.width // scale >= 21 + 2 * BORDER  # whole modules


def test_a_photo_that_is_not_an_image_reads_as_no_code() -> None:
    assert read_qr(b"not an image") == []
