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

    # The phone camera: read the QR and open the card as the cashier.
    await page.get_by_role("button", name="📷 Scan as cashier").last.click()
    await expect(page.locator(".chat-head")).to_contain_text("Kasia")
    await expect(messages).to_contain_text("Saldo: 50 punktów")
    await page.get_by_role("button", name="🧾 Zakup").last.click()
    await expect(messages).to_contain_text("Zakup dla Emma")
    await page.locator("#text").fill("250,00")
    await page.locator("#text").press("Enter")
    await page.get_by_role("button", name="Pomiń").last.click()
    await page.get_by_role("button", name="✅ Potwierdź").last.click()
    await expect(messages).to_contain_text("Gotowe: +12 punktów dla Emma")

    # The customer has been told; the unread badge led the way back to her chat.
    await expect(page.get_by_test_id("person-1003").locator(".badge")).to_be_visible()
    await page.get_by_test_id("person-1003").click()
    await expect(messages).to_contain_text("+12 points for your purchase of PLN250.00. Balance: 62 points.")

    # A redemption, confirmed by the customer in her chat.
    await page.locator("#text").fill("/card")
    await page.locator("#text").press("Enter")
    await expect(messages).to_contain_text("Balance: 62 points\nTier: Base")
    await page.get_by_role("button", name="📷 Scan as cashier").last.click()
    await expect(messages).to_contain_text("Saldo: 62 punkty")
    await page.get_by_role("button", name="🎁 Zapłać punktami").last.click()
    await expect(messages).to_contain_text("Płatność punktami dla Emma")
    await page.locator("#text").fill("100")
    await page.locator("#text").press("Enter")
    await expect(messages).to_contain_text("najwyżej 30 punktów")
    await page.locator("#text").fill("20")
    await page.locator("#text").press("Enter")
    await expect(messages).to_contain_text("Poprosiliśmy Emma")
    await page.get_by_test_id("person-1003").click()
    await page.get_by_role("button", name="✅ Yes, redeem").last.click()
    await expect(messages).to_contain_text("20 points paid for your receipt of PLN100.00. Balance: 42 points.")
    await expect(page.get_by_test_id("toast").or_(messages).first).to_be_visible()

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "sandbox-loyalty-flow.png"), full_page=True)
    assert (SCREENSHOTS / "sandbox-loyalty-flow.png").stat().st_size > 10_000
    assert box.world.bot_texts(2001)[-1].startswith("Emma potwierdza: −20 punktów")
