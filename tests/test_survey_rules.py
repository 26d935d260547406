"""Survey rules as plain functions: NPS and rating maths, quiet hours, throttling, answer windows."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.surveys.rules import (
    AfterPurchase,
    AnswerWindow,
    Category,
    QuietHours,
    SurveyKind,
    answer_window,
    asked_recently,
    choose_after_purchase,
    needs_alert,
    nps_category,
    nps_summary,
    rating_category,
    rating_summary,
    round_half_away,
)

WARSAW = ZoneInfo("Europe/Warsaw")
NIGHT = QuietHours(time(21, 0), time(9, 0))


def test_nps_categories_follow_the_definition() -> None:
    assert [nps_category(s) for s in range(11)] == [Category.DETRACTOR] * 7 + [Category.PASSIVE] * 2 + [
        Category.PROMOTER
    ] * 2
    with pytest.raises(ValueError):
        nps_category(11)
    with pytest.raises(ValueError):
        nps_category(-1)


def test_nps_is_promoters_minus_detractors_in_percent() -> None:
    summary = nps_summary([10, 9, 9, 8, 7, 6, 0, 10, 3, 9])  # 5 promoters, 2 passives, 3 detractors
    assert (summary.promoters, summary.passives, summary.detractors, summary.total) == (5, 2, 3, 10)
    assert summary.score == 20


def test_nps_with_no_answers_is_unknown_not_zero() -> None:
    summary = nps_summary([])
    assert summary.total == 0 and summary.score is None and summary.margin is None


def test_all_promoters_give_100_and_all_detractors_minus_100() -> None:
    assert nps_summary([9, 10, 10]).score == 100
    assert nps_summary([0, 6, 3]).score == -100
    assert nps_summary([7, 8]).score == 0


def test_nps_rounds_half_away_from_zero() -> None:
    # 1 promoter of 8 answers: 12.5 → 13; 1 detractor of 8: −12.5 → −13 (not banker's 12 / −12).
    assert nps_summary([10] + [8] * 7).score == 13
    assert nps_summary([0] + [8] * 7).score == -13
    # 2 promoters, 1 detractor of 3: 33.33 → 33; 2 of 3 promoters: 66.67 → 67.
    assert nps_summary([10, 10, 0]).score == 33
    assert nps_summary([10, 10, 7]).score == 67
    assert round_half_away(2.5) == 3 and round_half_away(-2.5) == -3 and round_half_away(2.4999) == 2


def test_margin_of_error_shrinks_with_more_answers() -> None:
    # p = 0.5, d = 0.25 → variance 0.75 − 0.0625 = 0.6875; n = 100 → 1.96 · sqrt(0.006875) · 100 = 16.25 → 17
    hundred = nps_summary([10] * 50 + [8] * 25 + [0] * 25)
    assert hundred.score == 25 and hundred.margin == 17
    four_hundred = nps_summary([10] * 200 + [8] * 100 + [0] * 100)
    assert four_hundred.margin == 9  # a quarter of the variance per answer: about half the margin
    assert nps_summary([10, 10]).margin == 0  # unanimous: no spread in the sample
    assert nps_summary([10]).margin is None  # one answer says nothing about the spread


def test_ratings_give_csat_and_average() -> None:
    summary = rating_summary([5, 4, 3, 1, 5, 2])
    assert summary.count == 6 and summary.satisfied == 3
    assert summary.csat == 50
    assert summary.average_tenths == 33  # 20 / 6 = 3.33
    assert rating_summary([]).csat is None and rating_summary([]).average_tenths is None
    assert rating_summary([4, 5]).average_tenths == 45
    with pytest.raises(ValueError):
        rating_summary([0])


def test_alerts_follow_detractors_and_bad_ratings() -> None:
    assert [needs_alert(SurveyKind.NPS, s) for s in (0, 6, 7, 10)] == [True, True, False, False]
    assert [needs_alert(SurveyKind.RATING, s) for s in (1, 2, 3, 5)] == [True, True, False, False]
    assert not needs_alert(SurveyKind.CHECK_BACK, 0)
    assert [rating_category(s) for s in (1, 2, 3, 4, 5)] == [
        Category.DETRACTOR,
        Category.DETRACTOR,
        Category.PASSIVE,
        Category.PASSIVE,
        Category.PROMOTER,
    ]


def local(hour: int, minute: int = 0, day: int = 23, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=WARSAW).astimezone(UTC)


def test_quiet_hours_span_midnight() -> None:
    assert not NIGHT.contains(time(20, 59)) and NIGHT.contains(time(21, 0))
    assert NIGHT.contains(time(3, 0)) and NIGHT.contains(time(8, 59)) and not NIGHT.contains(time(9, 0))
    afternoon = local(15)
    assert NIGHT.next_allowed(afternoon, WARSAW) == afternoon


def test_an_evening_survey_waits_for_the_next_morning() -> None:
    assert NIGHT.next_allowed(local(21, 30), WARSAW) == local(9, 0, day=24)
    assert NIGHT.next_allowed(local(23, 59), WARSAW) == local(9, 0, day=24)


def test_a_night_survey_waits_for_the_same_morning() -> None:
    assert NIGHT.next_allowed(local(2, 15), WARSAW) == local(9, 0)


def test_quiet_hours_follow_the_clock_across_a_dst_change() -> None:
    # Poland moves clocks back in the night of 25 October 2026: 09:00 local is 08:00 UTC after it.
    moment = datetime(2026, 10, 24, 22, 0, tzinfo=WARSAW).astimezone(UTC)
    morning = NIGHT.next_allowed(moment, WARSAW)
    assert morning.astimezone(WARSAW).hour == 9 and morning == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)


def test_daytime_quiet_hours_and_none() -> None:
    lunch = QuietHours(time(13, 0), time(14, 0))
    assert lunch.contains(time(13, 30)) and not lunch.contains(time(14, 0)) and not lunch.contains(time(9, 0))
    assert lunch.next_allowed(local(13, 30), WARSAW) == local(14, 0)
    assert not QuietHours(time(0, 0), time(0, 0)).contains(time(3, 0))


def test_one_survey_per_recontact_period() -> None:
    now = local(12)
    period = timedelta(days=30)
    assert not asked_recently(None, now, period)
    assert asked_recently(now - timedelta(days=29, hours=23), now, period)
    assert not asked_recently(now - timedelta(days=30), now, period)


def test_which_survey_follows_a_purchase() -> None:
    assert choose_after_purchase(AfterPurchase.OFF, False) is None
    assert choose_after_purchase(AfterPurchase.NPS, True) == SurveyKind.NPS
    assert choose_after_purchase(AfterPurchase.RATING, False) == SurveyKind.RATING
    assert choose_after_purchase(AfterPurchase.AUTO, False) == SurveyKind.NPS
    assert choose_after_purchase(AfterPurchase.AUTO, True) == SurveyKind.RATING


def test_answers_can_change_for_five_minutes_and_close_after_seven_days() -> None:
    asked = local(10)
    change, lifetime = timedelta(minutes=5), timedelta(days=7)
    assert answer_window(asked, None, asked + timedelta(days=6), change, lifetime) == AnswerWindow.OPEN
    answered = asked + timedelta(minutes=1)
    assert answer_window(asked, answered, answered + timedelta(minutes=5), change, lifetime) == AnswerWindow.OPEN
    assert answer_window(asked, answered, answered + timedelta(minutes=6), change, lifetime) == AnswerWindow.LOCKED
    assert answer_window(asked, None, asked + timedelta(days=7, seconds=1), change, lifetime) == AnswerWindow.CLOSED
