"""The sandbox page in a real browser: headless Chromium driven by Playwright through the loyalty flow."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.runner import Sandbox
from tests.conftest import IN_CI

SCREENSHOTS = Path(__file__).resolve().parent.parent / "data" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


def _missing() -> str | None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install playwright)"
    if CHROMIUM is None:
        return "Chromium is not installed (Debian: apt-get install chromium)"
    return None


@pytest.fixture
async def page_and_box(tmp_path: Path) -> AsyncIterator[tuple[object, Sandbox]]:
    problem = _missing()
    if problem:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)
    from playwright.async_api import async_playwright

    log = (tmp_path / "bot.log").open("wb")
    box = Sandbox(port=0, data_dir=tmp_path, bot_output=log)  # type: ignore[arg-type]
    await box.start()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = await browser.new_page(viewport={"width": 1280, "height": 860})
        await page.goto(box.url)
        try:
            yield page, box
        finally:
            await browser.close()
            await box.stop()
            log.close()


async def test_the_loyalty_flow_in_a_real_browser(page_and_box: tuple[object, Sandbox]) -> None:
    from playwright.async_api import Page, expect

    page, box = page_and_box
    assert isinstance(page, Page)
    messages = page.locator("#messages")

    await page.get_by_test_id("person-1003").click()
    await page.locator("#text").fill("/start")
    await page.locator("#text").press("Enter")
    await expect(messages).to_contain_text("Hello, Emma!")
    await page.get_by_role("button", name="Join the loyalty programme").click()
    await expect(messages).to_contain_text("Tier: Base")
    await expect(page.locator("#messages img").last).to_be_visible()

    # The phone camera: read the QR and open the card as the cashier. The amount typed is the sale.
    await page.get_by_role("button", name="📷 Scan as cashier").last.click()
    await expect(page.locator(".chat-head")).to_contain_text("Kasia")
    await expect(messages).to_contain_text("Saldo: 50 punktów")
    await expect(messages).not_to_contain_text("c_")  # a deep link's start reads "/start", as in Telegram
    await page.locator("#text").fill("250,00")
    await page.locator("#text").press("Enter")
    await expect(messages).to_contain_text("✅ Naliczono: +12 punktów\nKlient: Emma\nSaldo: 62 punkty")

    # The customer has been told; the unread badge led the way back to her chat, where the card
    # itself now shows the new balance and a spent code.
    await expect(page.get_by_test_id("person-1003").locator(".badge")).to_be_visible()
    await page.get_by_test_id("person-1003").click()
    await expect(messages).to_contain_text("+12 points for your purchase of 250.00 zł. Balance: 62 points.")
    await expect(messages).to_contain_text("This code has been used.")

    # Paying with points: both people read the money to take first.
    await page.locator("#text").fill("/card")
    await page.locator("#text").press("Enter")
    await expect(messages).to_contain_text("This card was replaced by a newer one below.")
    await page.get_by_role("button", name="📷 Scan as cashier").last.click()
    await expect(messages).to_contain_text("Saldo: 62 punkty")
    await page.get_by_role("button", name="🎁 Zapłać punktami").last.click()
    await expect(messages).to_contain_text("Płatność punktami. Klient: Emma")
    await page.locator("#text").fill("100")
    await page.locator("#text").press("Enter")
    await expect(messages).to_contain_text("Maksimum punktów dla tego paragonu: 30 punktów.")
    await page.locator("#text").fill("20")
    await page.locator("#text").press("Enter")
    await expect(messages).to_contain_text("Do zapłaty, jeśli klient potwierdzi: 80,00")
    await page.get_by_test_id("person-1003").click()
    await expect(messages).to_contain_text("To pay: 80.00 zł")
    await page.get_by_role("button", name="✅ Yes, redeem").last.click()
    await expect(messages).to_contain_text("To pay: 80.00 zł\nPoints to use: 20 points on your 100.00 zł receipt")
    await page.get_by_test_id("person-2001").click()
    await expect(messages).to_contain_text("💰 Do zapłaty: 80,00")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "sandbox-loyalty-flow.png"), full_page=True)
    assert (SCREENSHOTS / "sandbox-loyalty-flow.png").stat().st_size > 10_000
    assert box.world.bot_texts(2001)[-1].startswith("💰 Do zapłaty: 80,00")

    # At a phone's width the people are a strip above the chat, and the chat stays readable.
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.get_by_test_id("person-1003").click()
    await expect(messages).to_contain_text("To pay: 80.00 zł")
    nav, chat = await page.locator("nav").bounding_box(), await page.locator("#messages").bounding_box()
    assert nav is not None and chat is not None
    assert nav["width"] <= 390 and chat["y"] >= nav["y"] + nav["height"] - 1, "the people sit above the chat"
    assert chat["width"] >= 360 and chat["height"] >= 400, "the chat takes the screen"
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390, "nothing sticks out sideways"
    assert await page.evaluate("document.documentElement.scrollHeight") <= 844, "one screen: only the chat scrolls"
    await page.screenshot(path=str(SCREENSHOTS / "sandbox-phone.png"))


async def test_the_group_opens_on_the_newest_topic_and_reset_leaves_no_badges(
    page_and_box: tuple[object, Sandbox],
) -> None:
    from playwright.async_api import Page, expect

    page, box = page_and_box
    assert isinstance(page, Page)
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Reset").click()
    await expect(page.locator("#overlay")).not_to_have_class("overlay on", timeout=60_000)
    await expect(page.locator("nav .badge")).to_have_count(0)  # the setup's own messages are not news

    await page.get_by_test_id("person-1001").click()
    await page.locator("#text").fill("/support")
    await page.locator("#text").press("Enter")
    await page.locator("#text").fill("Czy mogę zamówić tort na sobotę?")
    await page.locator("#text").press("Enter")
    await expect(page.get_by_test_id("group").locator(".badge")).to_be_visible()
    await page.get_by_test_id("group").click()
    active = page.locator(".topic.active")
    await expect(active).to_contain_text("Anna")  # not the empty General
    await expect(page.locator("#messages")).to_contain_text("Czy mogę zamówić tort na sobotę?")
