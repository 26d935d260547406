"""/stats, the chart and /export: true figures, for managers only."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from aiogram.methods import EditMessageText, SendDocument, SendMessage, SendPhoto

from bot.core.callbacks import LanguageCB, StatsCB, SurveyCB
from bot.surveys.rules import SurveyKind, Trigger
from storage.models import Survey
from tests.conftest import ANNA, EMMA, GROUP_ID, IVAN, MANAGER, MANAGER_2, OWNER, STRANGER, Harness
from tests.test_surveys import asked, surveys_of


async def answered_mix(h: Harness) -> None:
    """Emma 10 and Ivan 3 on NPS after purchases; Anna asks for /feedback and stays silent, and
    rates a support conversation 4."""
    for user, score in ((EMMA, 10), (IVAN, 3)):
        survey = await asked(h, user)
        await h.press(user, SurveyCB(survey_id=survey.id, score=score))
    await h.send(ANNA, "/feedback")
    anna = await h.customer(ANNA)
    await h.surveys.request(anna.id, Trigger.SUPPORT, key="ticket:1", kind=SurveyKind.RATING)
    await h.tick()
    rating = [s for s in await surveys_of(h, ANNA) if s.kind == "rating"][0]
    await h.press(ANNA, SurveyCB(survey_id=rating.id, score=4))


async def test_stats_show_true_nps_response_rate_csat_cashiers_and_open_alerts(shop: Harness) -> None:
    await answered_mix(shop)
    await shop.send_group(MANAGER_2, "/stats")
    text = shop.last(GROUP_ID)
    assert "Feedback, last 30 days" in text  # Oleg reads Russian, but the group reads the group's language
    await shop.send(OWNER, "/language")
    await shop.press(OWNER, LanguageCB(code="ru"))
    await shop.send(OWNER, "/stats")
    assert "Отзывы за последние 30 дней" in shop.last(OWNER.id)  # in private, the owner's own
    await shop.send_group(OWNER, "/stats")
    text = shop.last(GROUP_ID)
    assert "Feedback, last 30 days" in text
    assert "NPS: <b>0</b>" in text and "promoters 1 · passives 0 · detractors 1" in text
    assert "margin of error ± 139" in text  # two answers, +1 and −1: 1.96 · sqrt(1 / 2) · 100
    assert "Response rate: 75% (3 of 4 surveys answered)" in text
    assert "CSAT 100% · average 4.0 of 5 · 1 answer" in text
    assert "Kasia Kowalska · NPS 0 (2)" in text
    assert "1 open alert" in text and "Иван · NPS 3 of 10" in text


async def test_period_buttons_change_the_figures_in_place(shop: Harness) -> None:
    await answered_mix(shop)
    shop.clock.advance(days=10)
    await shop.send_group(MANAGER, "/stats 7")
    assert "No surveys were sent in this period." in shop.last(GROUP_ID)  # the group's language
    await shop.press_group(MANAGER, StatsCB(action="show", days=30))
    edit = shop.sent(EditMessageText, GROUP_ID)[-1]
    assert "30" in edit.text and "✓" in [b.text for b in edit.reply_markup.inline_keyboard[0]][1]


async def test_the_chart_is_a_png_with_weekly_figures(shop: Harness) -> None:
    await answered_mix(shop)
    await shop.press_group(OWNER, StatsCB(action="chart", days=30))
    (photo,) = shop.sent(SendPhoto, GROUP_ID)
    png = shop.session.photos[max(shop.session.photos)]
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "NPS" in photo.caption


async def test_export_is_a_csv_excel_opens_in_each_language(shop: Harness) -> None:
    await answered_mix(shop)
    await shop.send(IVAN, "/hello")  # Ivan never picked a language: his Telegram's is Russian
    shop.session.group_members.add(OWNER.id)
    await shop.send_group(OWNER, "/export")
    (document,) = shop.sent(SendDocument, GROUP_ID)
    data = shop.session.documents[max(shop.session.documents)]
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Excel shows Cyrillic and Polish letters
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=","))
    assert rows[0][:6] == ["Survey", "Kind", "Trigger", "Asked at", "Answered at", "Score"]
    assert len(rows) == 1 + 4
    by_name = {row[9]: row for row in rows[1:] if row[1] == "NPS"}
    assert by_name["Иван"][5] == "3" and by_name["Иван"][6] == "Detractor" and by_name["Иван"][12] == "Kasia Kowalska"
    assert by_name["Anna"][5] == "" and by_name["Anna"][2] == "/feedback" and by_name["Emma"][11] == "40.00"
    assert document.document.filename.endswith(".csv")
    # A Polish owner gets semicolons and decimal commas, as Polish Excel expects.
    await shop.send(OWNER, "/language")
    await shop.press(OWNER, LanguageCB(code="pl"))
    await shop.send(OWNER, "/export 7")
    data = shop.session.documents[max(shop.session.documents)]
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][0] == "Ankieta" and any(row[11] == "40,00" for row in rows[1:])
    assert {row[6] for row in rows[1:]} >= {"Promotor", "Krytyk"}


async def test_a_comment_cannot_become_a_spreadsheet_formula(shop: Harness) -> None:
    survey = await asked(shop)
    await shop.press(EMMA, SurveyCB(survey_id=survey.id, score=5))
    await shop.send(EMMA, '=HYPERLINK("http://evil")')
    await shop.send_group(OWNER, "/export")
    data = shop.session.documents[max(shop.session.documents)].decode("utf-8-sig")
    assert "'=HYPERLINK" in data


async def test_reports_are_for_managers_and_admins_only(shop: Harness) -> None:
    await shop.send(STRANGER, "/stats")
    assert "for the managers' group and the owners" in shop.last(STRANGER.id)
    await shop.send(STRANGER, "/export")
    assert shop.sent(SendDocument, STRANGER.id) == []
    await shop.press(STRANGER, StatsCB(action="csv", days=30))
    assert shop.sent(SendDocument, STRANGER.id) == []
    await shop.send(OWNER, "/stats")
    assert "Feedback, last 30 days" in shop.last(OWNER.id)
    shop.session.group_members.add(MANAGER.id)
    await shop.send(MANAGER, "/stats 90")
    assert "90" in shop.sent(SendMessage, MANAGER.id)[-1].text


async def test_a_bad_period_is_explained(shop: Harness) -> None:
    await shop.send_group(OWNER, "/stats lots")
    assert "from 1 to 366" in shop.last(GROUP_ID)


async def test_the_report_counts_each_answer_in_its_week_by_the_databases_aggregation(shop: Harness) -> None:
    """/stats is one aggregation (kind, score, week, cashier), not the answers loaded one by one:
    every answer lands in the week it was asked in, a boundary included, and the totals add up."""
    emma = await shop.customer(EMMA)
    now = shop.clock()
    since = now - timedelta(days=30)
    placed = [  # (asked at, kind, score)
        (since + timedelta(hours=1), "nps", 10),  # week 0
        (since + timedelta(days=7), "nps", 3),  # exactly on week 1's start
        (since + timedelta(days=7, seconds=-1), "rating", 5),  # the last second of week 0
        (since + timedelta(days=29), "rating", 2),  # the last, short week (days 28-30)
        (now - timedelta(days=31), "nps", 0),  # before the period: not counted
    ]
    async with shop.db.writing() as session:
        for n, (moment, kind, score) in enumerate(placed):
            session.add(
                Survey(
                    key=f"placed:{n}",
                    customer_id=emma.id,
                    kind=kind,
                    trigger="purchase",
                    status="answered",
                    created_at=moment,
                    due_at=moment,
                    asked_at=moment,
                    answered_at=moment,
                    score=score,
                )  # fmt: skip
            )
        session.add(
            Survey(
                key="unanswered",
                customer_id=emma.id,
                kind="nps",
                trigger="purchase",
                status="asked",
                created_at=since,
                due_at=since,
                asked_at=since + timedelta(days=15),
            )  # fmt: skip
        )
    report = await shop.surveys.report(30)
    assert (report.asked, report.answered) == (5, 4)
    assert (report.nps.promoters, report.nps.passives, report.nps.detractors) == (1, 0, 1)
    assert (report.rating.count, report.rating.satisfied, report.rating.total_score) == (2, 1, 7)
    weeks = [(w.nps.total, w.rating.count) for w in report.weeks]
    assert len(weeks) == 5 and weeks == [(1, 1), (1, 0), (0, 0), (0, 0), (0, 1)]
    assert report.weeks[1].nps.detractors == 1 and report.weeks[4].rating.total_score == 2
