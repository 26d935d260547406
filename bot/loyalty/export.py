"""The loyalty report as a CSV file that Excel opens correctly in each language: one figure a
row, then the cohort table."""

from __future__ import annotations

import csv
import io

from aiogram.utils.i18n import gettext as _

from bot.business import Business
from bot.loyalty.analytics import LoyaltyReport
from bot.surveys.export import DELIMITERS, plain_amount


def report_csv(report: LoyaltyReport, business: Business, language: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=DELIMITERS.get(language, ";"), lineterminator="\r\n")

    def money(minor: int) -> str:
        return plain_amount(minor, business, language)

    zone = business.timezone
    now, before = report.now, report.before
    store = business.store(report.store).name.get(language) if report.store else _("all stores")
    rows: list[tuple[str, object]] = [
        (_("From"), report.since.astimezone(zone).strftime("%Y-%m-%d %H:%M")),
        (_("To"), report.until.astimezone(zone).strftime("%Y-%m-%d %H:%M")),
        (_("Store"), store),
        (_("Members"), report.members),
        (_("New members"), report.new_members),
        (_("Active members"), now.active),
        (_("Active members with two or more purchases"), now.repeat),
        (_("Purchases"), now.visits),
        (_("Revenue from members, {currency}").format(currency=business.currency), money(now.revenue)),
        (_("Active members, the period before"), before.active),
        (_("Lapsed: active the period before, no purchase now"), report.churned),
        (_("Lapsed, one period earlier"), report.churned_before),
        (_("Active members, two periods before"), report.active_before_before),
        (_("Members counted for lifetime spend"), report.lifetime_members),
        (_("Their lifetime spend, {currency}").format(currency=business.currency), money(report.lifetime_spend)),
    ]
    for tier, segment in zip(business.tiers, report.by_tier, strict=True):
        rows.append((_("Level {name}: members").format(name=tier.name.get(language)), segment.members))
        rows.append(
            (
                _("Level {name}: lifetime spend, {currency}").format(
                    name=tier.name.get(language), currency=business.currency
                ),
                money(segment.spend),
            )
        )
    rows += [
        (_("Points owed to members"), report.outstanding),
        (_("Their value, {currency}").format(currency=business.currency), money(report.liability)),
        (_("Points expiring in the next 30 days"), report.expiring),
        (_("Points earned"), report.earned),
        (_("Points paid with"), report.redeemed),
        (_("Points expired"), report.expired),
        (_("Invite links opened"), report.referrals_opened),
        (_("…of whom joined"), report.referrals_joined),
        (_("…of whom bought"), report.referrals_bought),
        (_("Birthday bonuses"), report.birthday_given),
        (_("…bought afterwards"), report.birthday_came),
        (_("Apology bonuses"), report.apology_given),
        (_("…bought afterwards"), report.apology_came),
        (_("Letters to the owner"), sum(report.letters.values())),
        (_("…still open"), report.letters.get("open", 0)),
        (_("…answered"), report.letters.get("answered", 0)),
        (_("…closed"), report.letters.get("closed", 0)),
    ]
    writer.writerow([_("Figure"), _("Value")])
    writer.writerows(rows)
    writer.writerow([])
    width = max((len(active) for _, _, active in report.cohorts), default=0)
    writer.writerow([_("Joined in"), _("Members"), *[_("Month {n}").format(n=k) for k in range(width)]])
    for month, size, active in report.cohorts:
        writer.writerow([month, size, *active])
    # The byte order mark tells Excel the file is UTF-8; without it Cyrillic and Polish letters break.
    return buffer.getvalue().encode("utf-8-sig")
