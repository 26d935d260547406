"""Words of the surveys, the alerts and the reports, built for the current locale."""

from __future__ import annotations

from datetime import datetime

from aiogram import html
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from babel.dates import format_date

from bot.business import Business
from bot.core import formatting
from bot.core.i18n import LANGUAGE_NAMES
from bot.loyalty import texts
from bot.loyalty.rules import tier_for
from bot.surveys.rules import Category, NpsSummary, RatingSummary, SurveyKind, Trigger, category, needs_alert
from bot.surveys.service import AlertView, Report
from storage.models import AlertStatus, Customer, Survey


def question(survey: Survey, business: Business) -> str:
    name = html.quote(business.name)
    if survey.kind == SurveyKind.NPS:
        return _(
            "How likely are you to recommend {business} to a friend?\n"
            "<i>0 means not at all likely, 10 means extremely likely.</i>"
        ).format(business=name)
    if survey.kind == SurveyKind.RATING:
        if survey.trigger == Trigger.SUPPORT:
            return _("How did we do in this conversation? Tap a face.")
        return _("How was your visit to {business}? Tap a face.").format(business=name)
    return _("A few days ago you told us something went wrong, and our team worked on it. Did we fix it?")


def follow_up(kind: SurveyKind, score: int) -> str:
    group = category(kind, score)
    if group == Category.DETRACTOR:
        return _("Thank you. What went wrong? Write a few words, or tap Skip.")
    if group == Category.PASSIVE:
        if kind == SurveyKind.NPS:
            return _("Thank you. What would make it a 10? Write a few words, or tap Skip.")
        return _("Thank you. What could we do better? Write a few words, or tap Skip.")
    return _("Thank you! What did you like most? Write a few words, or tap Skip.")


def thanks() -> str:
    return _("Thank you for your feedback! It helps us get better.")


def thanks_for(survey: Survey, now: datetime, business: Business) -> str:
    """The last word after an answer. An unhappy one (the managers were alerted) is told that a
    person will come back, and when: the working hours are known."""
    if survey.score is None or survey.kind is None or not needs_alert(SurveyKind(survey.kind), survey.score):
        return thanks()
    opening = business.support.hours.next_opening(now, business.timezone)
    if opening is None:
        return _("We are sorry it was not good. A manager will write to you here within a few hours.")
    return _("We are sorry it was not good. A manager will write to you here {when}.").format(
        when=formatting.opening(opening, now, business)
    )


def check_back_answer(fixed: bool) -> str:
    if fixed:
        return _("We are glad it is sorted. Thank you for letting us know!")
    return _("We are sorry it is not fixed yet. A manager will get back to you.")


def score_line(kind: str | None, score: int | None, emoji: tuple[str, ...]) -> str:
    if score is None:
        return _("no answer")
    if kind == SurveyKind.NPS:
        return _("NPS {score} of 10").format(score=score)
    if kind == SurveyKind.RATING:
        return _("rating {emoji} ({score} of 5)").format(emoji=emoji[score - 1], score=score)
    return _("fixed: yes") if score == 1 else _("fixed: no")


def customer_name(customer: Customer) -> str:
    if customer.deleted_at is not None:  # erased at their request: the alert keeps no name
        return "🗑 " + _("Deleted customer #{id}").format(id=customer.id)
    name = " ".join(part for part in (customer.first_name, customer.last_name) if part) or "—"
    if customer.username:
        name += f" (@{customer.username})"
    return html.quote(name)


def alert(view: AlertView, business: Business) -> str:
    a, survey, customer = view.alert, view.survey, view.customer
    language = customer.language or customer.telegram_language or business.default_language
    tier = tier_for(business, customer.lifetime_spend)
    lines = [
        _("⚠️ <b>Unhappy customer</b> · alert #{id}").format(id=a.id),
        "👤 " + customer_name(customer) + (" · " + texts.card_line(customer) if customer.card_number else ""),
        _("Language: {language} · Tier: {tier} · Balance: {balance}").format(
            language=LANGUAGE_NAMES.get(language[:2], html.quote(language)),
            tier=texts.tier_name(tier),
            balance=texts.points(customer.balance),
        ),
        _("Answer: {score}").format(score=score_line(survey.kind, survey.score, business.surveys.rating_emoji)),
    ]
    if view.purchase is not None:
        line = _("After a purchase of {amount} on {when}").format(
            amount=formatting.money(view.purchase.amount or 0, business),
            when=formatting.when(view.purchase.created_at, business),
        )
        if view.cashier:
            line += " · " + _("cashier {name}").format(name=html.quote(view.cashier))
        lines.append(line)
    if business.chain:
        lines.append(_("🏪 Store: {store}").format(store=texts.store_name(business.store(a.store))))
    if survey.comment:
        lines.append(_("Comment: “{comment}”").format(comment=html.quote(survey.comment)))
    else:
        lines.append(_("No comment yet."))
    if a.repeats and view.latest is not None:
        latest = view.latest
        lines.append(
            ngettext(
                "🔁 {count} more unhappy answer while this alert is open; the latest: {score}",
                "🔁 {count} more unhappy answers while this alert is open; the latest: {score}",
                a.repeats,
            ).format(
                count=formatting.number(a.repeats),
                score=score_line(latest.kind, latest.score, business.surveys.rating_emoji),
            )
        )
        if latest.comment:
            lines.append(_("Comment: “{comment}”").format(comment=html.quote(latest.comment)))
    history = []
    if a.contacted_at is not None:
        history.append(
            _("💬 {name}: message to the customer, {when}").format(
                name=html.quote(a.contacted_by_name or ""), when=formatting.when(a.contacted_at, business)
            )
        )
    if a.bonus_entry_id is not None:
        history.append(
            _("🎁 Apology bonus of {points} from {name}").format(
                points=texts.points(business.surveys.apology_bonus), name=html.quote(a.bonus_by_name or "")
            )
        )
    if a.resolved_at is not None:
        history.append(
            _("✅ Resolved by {name}, {when}").format(
                name=html.quote(a.resolved_by_name or ""), when=formatting.when(a.resolved_at, business)
            )
        )
    if a.fixed is True:
        history.append(_("🙂 The customer says it is fixed."))
    elif a.fixed is False:
        history.append(_("🙁 The customer says it is not fixed. The alert is open again."))
    if a.status == AlertStatus.WITHDRAWN:
        history.append(_("↩️ The customer changed their answer; no action is needed."))
    if history:
        lines += [""] + history
    return "\n".join(lines)


def signed(value: int) -> str:
    return ("+" if value > 0 else "−" if value < 0 else "") + formatting.number(abs(value))


def nps_line(nps: NpsSummary) -> str:
    if nps.total == 0:
        return _("NPS: no answers yet")
    line = _("NPS: <b>{score}</b>").format(score=signed(nps.score or 0))
    if nps.margin is not None:
        line += " " + _("(margin of error ± {margin})").format(margin=formatting.number(nps.margin))
    counts = _("promoters {promoters} · passives {passives} · detractors {detractors}").format(
        promoters=formatting.number(nps.promoters),
        passives=formatting.number(nps.passives),
        detractors=formatting.number(nps.detractors),
    )
    return line + "\n" + counts


def rating_line(rating: RatingSummary) -> str:
    if rating.count == 0:
        return _("Ratings: no answers yet")
    return ngettext(
        "Ratings: CSAT {csat} · average {average} of 5 · {count} answer",
        "Ratings: CSAT {csat} · average {average} of 5 · {count} answers",
        rating.count,
    ).format(
        csat=formatting.percent((rating.csat or 0) * 100),
        average=formatting.decimal_tenths(rating.average_tenths or 0),
        count=formatting.number(rating.count),
    )


def period(report: Report, business: Business) -> str:
    start = format_date(report.since.astimezone(business.timezone).date(), format="medium", locale=formatting.locale())
    end = format_date(report.until.astimezone(business.timezone).date(), format="medium", locale=formatting.locale())
    return f"{start} – {end}"


def stats(report: Report, days: int, business: Business, store: str = "") -> str:
    lines = [
        ngettext("📊 <b>Feedback, last {days} day</b>", "📊 <b>Feedback, last {days} days</b>", days).format(days=days),
        period(report, business),
    ]
    if business.chain:
        if store:
            lines.append(_("🏪 Store: {store}").format(store=texts.store_name(business.store(store))))
        else:
            lines.append(_("🏪 All stores"))
    lines += [
        "",
        nps_line(report.nps),
        rating_line(report.rating),
    ]
    if report.asked:
        rate = formatting.percent(round(10_000 * report.answered / report.asked))
        lines.append(
            _("Response rate: {rate} ({answered} of {asked} surveys answered)").format(
                rate=rate, answered=formatting.number(report.answered), asked=formatting.number(report.asked)
            )
        )
    else:
        lines.append(_("No surveys were sent in this period."))
    if report.cashiers:
        lines += ["", _("<b>By cashier</b>")]
        for figures in report.cashiers:
            parts = [html.quote(figures.name)]
            if figures.nps.total:
                parts.append(
                    _("NPS {score} ({count})").format(
                        score=signed(figures.nps.score or 0), count=formatting.number(figures.nps.total)
                    )
                )
            if figures.rating.count:
                parts.append(
                    _("rating {average} ({count})").format(
                        average=formatting.decimal_tenths(figures.rating.average_tenths or 0),
                        count=formatting.number(figures.rating.count),
                    )
                )
            lines.append(" · ".join(parts))
    lines.append("")
    if report.open_alerts:
        count = len(report.open_alerts)
        lines.append(ngettext("<b>{count} open alert</b>", "<b>{count} open alerts</b>", count).format(count=count))
        for a, survey, customer in report.open_alerts[:10]:
            lines.append(
                _("#{id} {name} · {score} · since {when}").format(
                    id=a.id,
                    name=html.quote(customer.first_name or "—"),
                    score=score_line(survey.kind, survey.score, business.surveys.rating_emoji),
                    when=formatting.when(a.created_at, business),
                )
            )
    else:
        lines.append(_("No open alerts. 👏"))
    return "\n".join(lines)
