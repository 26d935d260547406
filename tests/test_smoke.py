from tests.conftest import ANNA, Harness


async def test_start_greets(harness: Harness) -> None:
    await harness.send(ANNA, "/start")
    assert "Acme" in harness.last(ANNA.id)
