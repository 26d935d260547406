"""bot.core.keyboards.Buttons lays buttons out exactly as aiogram's InlineKeyboardBuilder does
(it replaced the builder, which copied the whole keyboard for every button it added)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.core.callbacks import MenuCB, SurveyCB
from bot.core.keyboards import Buttons


@pytest.mark.parametrize(
    ("count", "sizes"),
    [(11, (6, 5)), (5, (5,)), (4, (2, 2)), (7, (1,)), (3, (2,)), (10, ()), (17, ()), (1, (3,)), (9, (2, 3))],
)
def test_the_same_rows_as_aiograms_builder(count: int, sizes: tuple[int, ...]) -> None:
    ours, aiograms = Buttons(), InlineKeyboardBuilder()
    for score in range(count):
        for builder in (ours, aiograms):
            builder.button(text=str(score), callback_data=SurveyCB(survey_id=7 + score, score=score % 11))
    if sizes:
        ours.adjust(*sizes)
        aiograms.adjust(*sizes)
    assert ours.as_markup().model_dump() == aiograms.as_markup().model_dump()


def test_links_and_packed_callback_data() -> None:
    markup = (
        Buttons()
        .button(text="Site", url="https://example.com")
        .button(text="Card", callback_data=MenuCB(action="card"))
        .as_markup()
    )
    ((site, card),) = markup.inline_keyboard
    assert (site.url, site.callback_data) == ("https://example.com", None)
    assert card.callback_data == MenuCB(action="card").pack()


def test_a_row_holds_one_to_eight_buttons() -> None:
    with pytest.raises(ValueError, match="1 to 8"):
        Buttons().adjust(9)
    with pytest.raises(ValueError, match="1 to 8"):
        Buttons().adjust(2, 0)


def test_no_module_builds_with_aiograms_builder() -> None:
    root = Path(__file__).resolve().parent.parent
    users = [
        str(path.relative_to(root))
        for folder in ("bot", "handlers")
        for path in (root / folder).rglob("*.py")
        if "import InlineKeyboardBuilder" in path.read_text(encoding="utf-8")
    ]
    assert users == [], "build inline keyboards with bot.core.keyboards.Buttons"
