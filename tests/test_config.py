"""Configuration: a missing or bad value stops the bot with one clear line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import main
from bot.business import load_business
from bot.core.config import DEFAULT_BUSINESS_FILE, ConfigError, load_settings
from bot.dispatcher import create_bot
from tests.conftest import TOKEN, make_settings

ENV = ("BOT_TOKEN", "TELEGRAM_API_URL", "DATABASE_URL", "ADMIN_IDS", "MANAGER_CHAT_ID", "BUSINESS_FILE")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_need_nothing() -> None:
    settings = load_settings()
    assert settings.bot_token is None
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.database_url.endswith("data/bot.db")
    assert settings.admin_ids == frozenset()
    assert settings.business_file == DEFAULT_BUSINESS_FILE


def test_values_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("ADMIN_IDS", "11, 22,33")
    monkeypatch.setenv("MANAGER_CHAT_ID", "-1001234567890")
    monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:8081/")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://bot@db/bot")
    settings = load_settings()
    assert settings.admin_ids == {11, 22, 33}
    assert settings.manager_chat_id == -1001234567890
    assert settings.telegram_api_url == "http://127.0.0.1:8081"
    assert settings.database_url == "postgresql+asyncpg://bot@db/bot"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"BOT_TOKEN={TOKEN}\nADMIN_IDS=5\n")
    settings = load_settings()
    assert settings.bot_token is not None and settings.bot_token.get_secret_value() == TOKEN
    assert settings.admin_ids == {5}


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ADMIN_IDS", "12,abc", "ADMIN_IDS: expected comma-separated Telegram user ids, got 'abc'"),
        ("BOT_TOKEN", "nonsense", "BOT_TOKEN: expected a token from @BotFather"),
        ("MANAGER_CHAT_ID", "managers", "MANAGER_CHAT_ID: expected the numeric id"),
        ("TELEGRAM_API_URL", "localhost:8081", "TELEGRAM_API_URL: expected an http:// or https:// base URL"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL: expected sqlite+aiosqlite:///"),
    ],
)
def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


def test_custom_bot_api_server_receives_every_call() -> None:
    bot = create_bot(make_settings(telegram_api_url="http://127.0.0.1:8081"))
    assert bot.session.api.api_url(TOKEN, "getMe") == f"http://127.0.0.1:8081/bot{TOKEN}/getMe"
    assert bot.session.api.file_url(TOKEN, "photos/1.jpg") == f"http://127.0.0.1:8081/file/bot{TOKEN}/photos/1.jpg"
    default = create_bot(make_settings())
    assert default.session.api.api_url(TOKEN, "getMe").startswith("https://api.telegram.org/")


def _business_with(tmp_path: Path, change: dict) -> Path:
    data = yaml.safe_load(DEFAULT_BUSINESS_FILE.read_text(encoding="utf-8"))
    for dotted, value in change.items():
        target = data
        *parents, last = dotted.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is None:
            del target[int(last) if last.isdigit() else last]
        else:
            target[int(last) if last.isdigit() else last] = value
    path = tmp_path / "business.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_example_business_file_is_valid() -> None:
    business = load_business(DEFAULT_BUSINESS_FILE)
    assert business.currency == "PLN" and business.exponent == 2
    assert [t.earn_basis_points for t in business.tiers] == [500, 700, 1000]
    assert [t.min_spend for t in business.tiers] == [0, 100_000, 500_000]
    assert business.redeem_max_share_percent == 30
    assert business.code_ttl_seconds == 600
    surveys = business.surveys
    assert surveys.after_purchase == "auto" and surveys.delay.total_seconds() == 3600
    assert surveys.recontact.days == 30 and surveys.lifetime.days == 7 and surveys.change_window.seconds == 300
    assert (surveys.quiet_hours.start.hour, surveys.quiet_hours.end.hour) == (21, 9)
    assert surveys.rating_emoji == ("😠", "🙁", "😐", "🙂", "😄") and surveys.apology_bonus == 50
    assert surveys.check_back_delay.days == 3 and business.managers_language == "en"
    lifecycle = business.lifecycle
    assert (lifecycle.birthday_bonus, lifecycle.birthday_at.hour, lifecycle.referral_bonus) == (100, 10, 50)
    assert lifecycle.expiry_months == 0 and lifecycle.expiry_remind.days == 14  # expiry is off in the example
    assert lifecycle.win_back is not None and lifecycle.win_back.days == 60 and lifecycle.retention_months == 24


def test_a_business_file_without_lifecycle_sections_turns_them_off(tmp_path: Path) -> None:
    path = _business_with(
        tmp_path, {"birthday": None, "referral": None, "points_expiry": None, "win_back": None, "retention": None}
    )
    lifecycle = load_business(path).lifecycle
    assert (lifecycle.birthday_bonus, lifecycle.referral_bonus, lifecycle.expiry_months) == (0, 0, 0)
    assert lifecycle.win_back is None and lifecycle.retention_months == 24


def test_a_business_file_without_surveys_gets_the_defaults(tmp_path: Path) -> None:
    path = _business_with(tmp_path, {"surveys": None, "managers_language": None})
    business = load_business(path)
    assert business.surveys.delay.total_seconds() == 3600 and business.managers_language == "en"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"currency": "ZZZ"}, "currency: unknown ISO 4217 currency code 'ZZZ'"),
        ({"timezone": "Mars/Olympus"}, "timezone: unknown time zone"),
        ({"country": "xx_YY"}, "country: unknown locale 'xx_YY'"),
        ({"country": "pl"}, "country: 'pl' names no country"),
        ({"tiers.1.earn_percent": "abc"}, "tiers.1.earn_percent"),
        ({"tiers.2.min_spend": "10"}, "min_spend must grow"),
        ({"limits.max_receipt": "12.345"}, "limits.max_receipt: PLN has 2 decimal places"),
        ({"limits.redeem_max_share_percent": 150}, "limits.redeem_max_share_percent"),
        ({"name": None}, "name: Field required"),
        ({"welcome_bonus": -5}, "welcome_bonus"),
        ({"tiers.0.name.pl": None}, "tiers.0.name.pl: Field required"),
        ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
        ({"default_language": "de"}, "default_language: expected one of ru, pl, en"),
        ({"managers_language": "de"}, "managers_language: expected one of ru, pl, en"),
        ({"surveys.after_purchase": "sometimes"}, "surveys.after_purchase"),
        (
            {"surveys.quiet_hours.start": 1260},
            'surveys.quiet_hours.start: write the time in quotes, like "21:00"',
        ),
        ({"surveys.quiet_hours.end": "25:00"}, "surveys.quiet_hours.end"),
        ({"surveys.rating_emoji": ["😠", "🙁", "😐"]}, "surveys.rating_emoji"),
        ({"surveys.rating_emoji": ["😠", "😠", "😐", "🙂", "😄"]}, "the five rating buttons must differ"),
        ({"surveys.recontact_days": -1}, "surveys.recontact_days"),
        ({"birthday.send_at": 600}, 'birthday.send_at: write the time in quotes, like "21:00"'),
        ({"referral.bonus": -1}, "referral.bonus"),
        ({"points_expiry.months": 1000}, "points_expiry.months"),
        ({"win_back.days": "often"}, "win_back.days"),
    ],
)
def test_business_file_errors_name_the_key(tmp_path: Path, change: dict, expected: str) -> None:
    path = _business_with(tmp_path, change)
    with pytest.raises(ConfigError) as caught:
        load_business(path)
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_or_broken_business_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="BUSINESS_FILE: no such file"):
        load_business(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_business(broken)


def test_main_without_token_explains_how_to_get_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main([]) == 2
    err = capsys.readouterr().err
    assert "@BotFather" in err and "BOT_TOKEN=" in err and ".env" in err
    assert "Traceback" not in err


def test_main_reports_a_bad_setting_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ADMIN_IDS", "owner")
    assert main.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "Configuration error: ADMIN_IDS: expected comma-separated Telegram user ids, got 'owner'"


def test_main_check_validates_without_running(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.main(["--check"]) == 0
    assert "Acme Café" in capsys.readouterr().out
