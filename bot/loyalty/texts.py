"""Words people read, built for the current locale. Every string goes through gettext here or
in the handlers; numbers, money and dates are formatted by Babel."""

from __future__ import annotations

from datetime import date

from aiogram import html
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from babel.dates import format_date
from babel.lists import format_list

from bot.business import Business, Store, Tier
from bot.core.formatting import decimal_tenths, locale, money, number, percent, when
from bot.loyalty.analytics import LoyaltyReport, Segment
from bot.loyalty.rules import CardNumberError, CardNumberProblem, format_card_number, next_tier, tier_for
from bot.loyalty.service import Refusal, detail_number
from storage.models import Customer, EntryKind, LedgerEntry, Operation, OperationStatus


def points(value: int) -> str:
    """`1 point`, `2 балла`, `5 punktów`: the plural form follows the number."""
    return ngettext("{count} point", "{count} points", abs(value)).format(count=number(value))


def signed_points(value: int) -> str:
    sign = "+" if value > 0 else "−" if value < 0 else ""
    return sign + points(abs(value))


def tier_name(tier: Tier) -> str:
    return html.quote(tier.name.get(locale()))


def store_name(store: Store) -> str:
    return html.quote(store.name.get(locale()))


def card_line(customer: Customer) -> str:
    return _("Card number: {number}").format(number=format_card_number(customer.card_number or ""))


def card_details(customer: Customer, business: Business) -> str:
    """The customer's own view of their card: number, balance, tier and the way to the next."""
    tier = tier_for(business, customer.lifetime_spend)
    lines = [
        _("<b>{business} loyalty card</b>").format(business=html.quote(business.name)),
        card_line(customer),
        _("Balance: {points}").format(points=points(customer.balance)),
        _("Tier: {tier}").format(tier=tier_name(tier)),
    ]
    ahead = next_tier(business, customer.lifetime_spend)
    if ahead is None:
        lines.append(_("You are at the top tier. Thank you for being with us!"))
    else:
        following, missing = ahead
        lines.append(
            _("Spend {amount} more to reach {tier}.").format(amount=money(missing, business), tier=tier_name(following))
        )
    return "\n".join(lines)


def card_caption(customer: Customer, business: Business, *, used: bool = False) -> str:
    """The card message's caption: the card, and what its code is good for now."""
    if used:
        status = _("This code has been used. Tap “🔄 Refresh code” for your next visit.")
    else:
        minutes = business.code_ttl_seconds // 60
        status = ngettext(
            "Show this code at the till. It works once, for {count} minute.",
            "Show this code at the till. It works once, for {count} minutes.",
            minutes,
        ).format(count=number(minutes))
    return card_details(customer, business) + "\n\n" + status


def cashier_card_view(customer: Customer, business: Business) -> str:
    tier = tier_for(business, customer.lifetime_spend)
    return "\n".join(
        [
            _("<b>{name}</b> · {tier}").format(name=html.quote(customer.first_name or "—"), tier=tier_name(tier)),
            card_line(customer),
            _("Balance: {points}").format(points=points(customer.balance)),
        ]
    )


def entry_reason(entry: LedgerEntry, business: Business) -> str:
    kind = EntryKind(entry.kind)
    if kind == EntryKind.WELCOME:
        return _("Welcome bonus")
    if kind == EntryKind.PURCHASE:
        return _("Purchase of {amount}").format(amount=money(entry.amount or 0, business))
    if kind == EntryKind.REDEMPTION:
        return _("Paid with points on a {amount} receipt").format(amount=money(entry.amount or 0, business))
    if kind == EntryKind.REVERSAL:
        if entry.reason:
            return _("Cancellation: {reason}").format(reason=html.quote(entry.reason))
        return _("Cancellation")
    if kind == EntryKind.APOLOGY:
        return _("Apology bonus from our team")
    if kind == EntryKind.BIRTHDAY:
        return _("Birthday bonus")
    if kind == EntryKind.REFERRAL:
        return _("Bonus for inviting a friend")
    if kind == EntryKind.EXPIRY:
        return _("Points expired")
    if kind == EntryKind.FORFEIT:
        return _("Balance given up when the data was deleted")
    if entry.reason:
        return _("Adjustment: {reason}").format(reason=html.quote(entry.reason))
    return _("Adjustment")


def history(entries: list[LedgerEntry], business: Business) -> str:
    if not entries:
        return _("No points yet. Show your card at the till to earn points.")
    lines = [_("<b>Your points history</b>")]
    for entry in entries:
        moved = signed_points(entry.points)
        lines.append(f"{when(entry.created_at, business)} · {entry_reason(entry, business)} · <b>{moved}</b>")
    return "\n".join(lines)


def balance_change(entry: LedgerEntry, business: Business) -> str:
    """What the customer reads when their balance moves."""
    kind = EntryKind(entry.kind)
    balance = points(entry.balance_after)
    if kind == EntryKind.PURCHASE:
        text = _("{points} for your purchase of {amount}. Balance: {balance}.").format(
            points=signed_points(entry.points), amount=money(entry.amount or 0, business), balance=balance
        )
    elif kind == EntryKind.REDEMPTION:
        text = _("To pay: {to_pay}\nPaid with points: {points} for the receipt of {amount}\nBalance: {balance}").format(
            to_pay=money(to_pay(entry.amount or 0, -entry.points, business), business),
            points=points(-entry.points),
            amount=money(entry.amount or 0, business),
            balance=balance,
        )
    elif kind == EntryKind.WELCOME:
        text = _("{points}: your welcome bonus. Balance: {balance}.").format(
            points=signed_points(entry.points), balance=balance
        )
    else:  # reversals and adjustments carry their reason
        text = _("{points}: {reason}. Balance: {balance}.").format(
            points=signed_points(entry.points), reason=entry_reason(entry, business), balance=balance
        )
    return text


def tier_reached(lifetime_before: int, lifetime_after: int, business: Business) -> str | None:
    """A congratulation when a purchase lifts the customer into a higher tier."""
    before, after = tier_for(business, lifetime_before), tier_for(business, lifetime_after)
    if after.min_spend <= before.min_spend:
        return None
    return _("Congratulations! You have reached the {tier} tier: you now earn {share} in points.").format(
        tier=tier_name(after), share=percent(after.earn_basis_points)
    )


def refusal(reason: Refusal, business: Business, details: dict[str, object] | None = None) -> str:
    details = details or {}
    match reason:
        case Refusal.NOT_A_MEMBER:
            return _("This person has not joined the loyalty programme.")
        case Refusal.CODE_UNKNOWN:
            return _("This code is not valid. Ask the customer to open /card and show the new code.")
        case Refusal.CODE_EXPIRED:
            return _("This code has expired. Ask the customer to tap “Refresh code” and scan again.")
        case Refusal.CODE_USED:
            return _("This code has already been used or replaced. Ask the customer to tap “Refresh code”.")
        case Refusal.INVITE_INVALID:
            return _(
                "This invitation link is not valid: it has expired or was already used. Ask the owner for a new one."
            )
        case Refusal.OWN_CARD:
            return _("You cannot add or redeem points on your own card. Ask a colleague.")
        case Refusal.CASHIER_LIMIT:
            limit = detail_number(details, "limit", business.guards.cashier_points_per_day)
            return _("This would take you over the {points} a cashier may add in a day. Ask the owner.").format(
                points=points(limit)
            )
        case Refusal.OVER_MAX_RECEIPT:
            return _("The receipt total is over the limit of {limit}. Check the amount.").format(
                limit=money(detail_number(details, "limit", business.max_receipt), business)
            )
        case Refusal.DAILY_LIMIT:
            limit = detail_number(details, "limit", business.max_operations_per_day)
            return ngettext(
                "This card has been used {count} time today, which is the daily limit. Try again tomorrow.",
                "This card has been used {count} times today, which is the daily limit. Try again tomorrow.",
                limit,
            ).format(count=number(limit))
        case Refusal.RECEIPT_USED:
            return _("Receipt {receipt} has already earned points.").format(
                receipt=html.quote(str(details.get("receipt_no", "")))
            )
        case Refusal.NOT_ENOUGH_POINTS:
            balance = details.get("balance")
            if balance is None:
                return _("Not enough points on the card.")
            return _("Not enough points: the card has {balance}.").format(
                balance=points(detail_number(details, "balance"))
            )
        case Refusal.OVER_CAP:
            cap = detail_number(details, "cap")
            return _("Points can pay at most {share} of a receipt. Most for this one: {points}.").format(
                share=percent(business.redeem_max_share_percent * 100), points=points(cap)
            )
        case Refusal.NOT_POSITIVE:
            return _("The number must be greater than zero.")
        case Refusal.OPERATION_UNKNOWN | Refusal.ENTRY_UNKNOWN:
            return _("Nothing found under this number.")
        case Refusal.NOT_YOURS:
            return _("This is not yours to change.")
        case Refusal.ALREADY_DONE:
            return _("This has already been done.")
        case Refusal.CANCELLED:
            return _("This operation was cancelled.")
        case Refusal.DECLINED:
            return _("The customer declined this redemption.")
        case Refusal.EXPIRED:
            return _("This request has expired.")
        case Refusal.UNDO_TOO_LATE:
            minutes = detail_number(details, "minutes", business.undo_seconds // 60)
            return ngettext(
                "Too late to undo: a cashier can undo within {count} minute. Ask the owner.",
                "Too late to undo: a cashier can undo within {count} minutes. Ask the owner.",
                minutes,
            ).format(count=number(minutes))
        case Refusal.ALREADY_REVERSED:
            return _("This operation has already been cancelled.")
        case Refusal.POINTS_ALREADY_SPENT:
            return _("Cannot cancel: the customer has already used these points.")
        case Refusal.NOTHING_TO_UNDO:
            return _("You have nothing to undo.")
        case Refusal.NOT_REVERSIBLE:
            return _("A cancellation cannot itself be cancelled. Make an adjustment with /adjust instead.")
    return _("This cannot be done.")


def card_number_error(error: CardNumberError) -> str:
    if error.problem == CardNumberProblem.CHECK_DIGIT:
        return _("This card number has a typo: a digit is wrong. Check it and send it again.")
    return _("A card number has 8 digits, like 1234 5678. Check it and send it again.")


# --- what the cashier reads about an operation -------------------------------------------------


def to_pay(amount: int, redeemed: int, business: Business) -> int:
    """What is left to pay, in minor units, of a receipt of `amount` after `redeemed` points."""
    return max(0, amount - redeemed * business.point_value)


def purchase_done(entry: LedgerEntry, customer: Customer) -> str:
    """The cashier's word on a sale. Entry numbers are for the owners' /void, not the till."""
    return _("✅ Added: {points}\nCustomer: {name}\nBalance: {balance}").format(
        points=signed_points(entry.points),
        name=html.quote(customer.first_name),
        balance=points(entry.balance_after),
    )


def undone(entry: LedgerEntry, customer: Customer) -> str:
    """The cashier's word on an undo: the reversal entry's movement."""
    return _("↩️ Undone: {points}\nCustomer: {name}\nBalance: {balance}").format(
        points=signed_points(entry.points),
        name=html.quote(customer.first_name),
        balance=points(entry.balance_after),
    )


def redemption_request(operation: Operation, business: Business) -> str:
    """The customer's question: what they would pay, in money, first."""
    return _(
        "To pay: {to_pay}\nPoints to use: {points} on your {amount} receipt at {business}\n\nPay with points?"
    ).format(
        to_pay=money(to_pay(operation.amount, operation.points, business), business),
        points=points(operation.points),
        amount=money(operation.amount, business),
        business=html.quote(business.name),
    )


def redemption_waiting(operation: Operation, customer: Customer, business: Business, seconds: int) -> str:
    """The cashier's screen while the customer decides: the money to take if they say yes."""
    return _(
        "To pay, if the customer confirms: {to_pay}\nPoints to use: {points}\nCustomer: {name}. "
        "Waiting for them to answer in their chat ({seconds}\u00a0s)…"
    ).format(
        to_pay=money(to_pay(operation.amount, operation.points, business), business),
        points=points(operation.points),
        name=html.quote(customer.first_name),
        seconds=number(seconds),
    )


def redemption_outcome(
    operation: Operation, entry: LedgerEntry | None, customer: Customer | None, business: Business
) -> str:
    """What the cashier reads when the customer answers a request to pay with points."""
    if entry is not None and customer is not None:
        return _("💰 To pay: {to_pay}\nPaid with points: {points}\nCustomer: {name}\nBalance: {balance}").format(
            to_pay=money(to_pay(operation.amount, -entry.points, business), business),
            points=points(-entry.points),
            name=html.quote(customer.first_name),
            balance=points(entry.balance_after),
        )
    if operation.status == OperationStatus.DECLINED:
        return _("The customer declined. Nothing was redeemed. To pay: {amount}.").format(
            amount=money(operation.amount, business)
        )
    if operation.status == OperationStatus.EXPIRED:
        return _("The customer did not confirm in time. Nothing was redeemed.")
    if operation.status == OperationStatus.CANCELLED:
        return _("The request was cancelled. Nothing was redeemed.")
    return _("Not enough points on the card any more. Nothing was redeemed.")


def staff_warning(reason: str, staff_name: str, count: int, customer: Customer | None) -> str:
    """What an owner reads when a staff member does something the limits watch for."""
    name = html.quote(staff_name)
    if reason == "credits_per_card" and customer is not None:
        return ngettext(
            "⚠️ {staff} has added points to {customer}'s card ({card}) {count} time today. If that is "
            "not what happened at the till, check /staff.",
            "⚠️ {staff} has added points to {customer}'s card ({card}) {count} times today. If that is "
            "not what happened at the till, check /staff.",
            count,
        ).format(
            staff=name,
            customer=html.quote(customer.first_name),
            card=format_card_number(customer.card_number or ""),
            count=number(count),
        )
    return ngettext(
        "⚠️ {staff} has opened {count} card today from a typed number or a photo instead of "
        "scanning the customer's QR code. If that is not what happened at the till, check /staff.",
        "⚠️ {staff} has opened {count} cards today from a typed number or a photo instead of "
        "scanning the customer's QR code. If that is not what happened at the till, check /staff.",
        count,
    ).format(staff=name, count=number(count))


def programme_facts(business: Business) -> dict[str, str]:
    """The programme's figures an FAQ answer may name (`bot.faq.rules.FACTS`), from the business
    file as it is now, in the current language. Each stands where the nominative is right in the
    answers ("Бонус: {birthday_bonus}"), so names and numbers never need another case."""
    tiers = business.tiers
    rates = [
        _("{tier}: {percent}").format(tier=tier_name(tier), percent=percent(tier.earn_basis_points)) for tier in tiers
    ]
    levels = [
        _("{tier}: {percent} back in points, from the first purchase").format(
            tier=tier_name(tier), percent=percent(tier.earn_basis_points)
        )
        if tier.min_spend == 0
        else _("{tier}: {percent} back in points, once you have spent {spend} in total").format(
            tier=tier_name(tier), percent=percent(tier.earn_basis_points), spend=money(tier.min_spend, business)
        )
        for tier in tiers
    ]
    rules = business.lifecycle
    months = rules.expiry_months
    days = rules.expiry_remind.days
    return {
        "business": html.quote(business.name),
        "welcome": _("Welcome bonus: {points}.").format(points=points(business.welcome_bonus)) + " "
        if business.welcome_bonus > 0
        else "",
        "welcome_bonus": points(business.welcome_bonus),
        "earn_rates": format_list(rates, locale=locale()),
        "tiers": "\n".join(f"• {level}" for level in levels),
        "point_value": money(business.point_value, business),
        "redeem_max_share": percent(business.redeem_max_share_percent * 100),
        "birthday_bonus": points(rules.birthday_bonus),
        "referral_bonus": points(rules.referral_bonus),
        "expiry_months": ngettext("{count}\u00a0month", "{count}\u00a0months", months).format(count=number(months)),
        "expiry_remind_days": ngettext("{count}\u00a0day", "{count}\u00a0days", days).format(count=number(days)),
    }


# --- the owner's loyalty report (/report) -------------------------------------------------------


def _share(part: int, whole: int) -> str:
    return percent(part * 10_000 // whole) if whole else "—"


def _dates(report: LoyaltyReport, business: Business) -> str:
    start = format_date(report.since.astimezone(business.timezone).date(), format="medium", locale=locale())
    end = format_date(report.until.astimezone(business.timezone).date(), format="medium", locale=locale())
    return f"{start} – {end}"


def _month(label: str) -> str:
    """`2026-03` as the reader's language names the month: `Mar 2026`, `мар. 2026`, `mar 2026`."""
    year, month = (int(part) for part in label.split("-"))
    return format_date(date(year, month, 1), format="LLL yyyy", locale=locale())


def _segment(name: str, segment: Segment, business: Business) -> str:
    if segment.average is None:
        return _("{name}: —").format(name=name)
    return _("{name}: {money} ({members})").format(
        name=name, money=money(segment.average, business), members=number(segment.members)
    )


def loyalty_report(report: LoyaltyReport, business: Business) -> str:
    """The report in the reader's language; every figure is defined in README."""
    now, before = report.now, report.before
    lines = [
        ngettext(
            "📈 <b>Loyalty programme, last {days} day</b>", "📈 <b>Loyalty programme, last {days} days</b>", report.days
        ).format(days=report.days),
        _dates(report, business),
    ]
    if business.chain:
        if report.store:
            lines.append(_("🏪 Store: {store}").format(store=store_name(business.store(report.store))))
        else:
            lines.append(_("🏪 All stores"))
    lines += [
        "",
        _("<b>Members</b>"),
        _("Members: {total} · new: {new} · active: {active}").format(
            total=number(report.members), new=number(report.new_members), active=number(now.active)
        ),
        _("Came twice or more: {share} of active members").format(share=_share(now.repeat, now.active)),
        _("Visits per active member: {visits} · average receipt: {receipt}").format(
            visits=decimal_tenths((now.visits * 10 + now.active // 2) // now.active) if now.active else "—",
            receipt=money((now.revenue + now.visits // 2) // now.visits, business) if now.visits else "—",
        ),
        _("Revenue from members: {money}").format(money=money(now.revenue, business)),
        _("Churn: {share} ({churned} of {active}); the period before: {before}").format(
            share=_share(report.churned, before.active),
            churned=number(report.churned),
            active=number(before.active),
            before=_share(report.churned_before, report.active_before_before),
        ),
        "",
        _("<b>Lifetime value</b>"),
        _("Average lifetime spend: {money} · members counted: {members}").format(
            money=money(report.average_lifetime_spend, business) if report.lifetime_members else "—",
            members=number(report.lifetime_members),
        ),
        _("By level: {levels}").format(
            levels=" · ".join(
                _segment(tier_name(tier), segment, business)
                for tier, segment in zip(business.tiers, report.by_tier, strict=True)
            )
        ),
    ]
    recent = [s for s in report.by_join_month if s.members][-6:]
    if recent:
        lines.append(
            _("By join month: {months}").format(
                months=" · ".join(_segment(_month(s.label), s, business) for s in recent)
            )
        )
    lines += [
        "",
        _("<b>Points</b>"),
        _("Owed to members: {points} (worth {money})").format(
            points=points(report.outstanding), money=money(report.liability, business)
        ),
        _("Expiring in the next 30 days: {points}").format(points=points(report.expiring)),
        _("Earned: {earned} · paid with: {redeemed} ({share}) · expired: {expired}").format(
            earned=points(report.earned),
            redeemed=points(report.redeemed),
            share=_share(report.redeemed, report.earned),
            expired=points(report.expired),
        ),
        "",
        _("<b>What the programme brings</b>"),
        _("Invite a friend: links opened {opened} → joined {joined} → bought {bought}").format(
            opened=number(report.referrals_opened),
            joined=number(report.referrals_joined),
            bought=number(report.referrals_bought),
        ),
        _("Birthday bonuses: {given} · bought afterwards: {came}").format(
            given=number(report.birthday_given), came=number(report.birthday_came)
        ),
        _("Apology bonuses: {given} · bought afterwards: {came}").format(
            given=number(report.apology_given), came=number(report.apology_came)
        ),
        _("Letters to the owner: {total} · open: {open} · answered: {answered} · closed: {closed}").format(
            total=number(sum(report.letters.values())),
            open=number(report.letters.get("open", 0)),
            answered=number(report.letters.get("answered", 0)),
            closed=number(report.letters.get("closed", 0)),
        ),
        "",
        _("What each figure means: README, “The loyalty report”."),
    ]
    return "\n".join(lines)
