"""Scheduled support work: SLA reminders in the ticket's topic and auto-closing idle consultations.

The selections are pure functions of the store and a clock (`due_reminders`, `idle_tickets`) so they
are tested directly; the jobs (jobs/tasks.py) deliver through the context's notifier (core.notify), never through
the bot package. Texts live here because jobs must not import bot.texts; the customer notice follows
the customer's language.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from html import escape
from typing import Any

from core.logging import log_event
from core.notify import DeliveryError, DeliveryUnknown, Notifier, Outgoing, RecipientBlocked
from core.repos.tickets import TicketRepository, parse_utc, utc_text
from core.store import Store

log = logging.getLogger(__name__)

TEXTS = {
    "sla": "⏰ 客户已经等了 {minutes} 分钟还没有回复（工单 #{ticket}）{who}，请尽快处理。",
    "sla_general": "⏰ 工单 #{ticket} 的客户已经等了 {minutes} 分钟（话题不可用，客户再发消息时会自动新建话题）。",
    "closed_staff": "⌛ 工单 #{ticket} 已因 {hours} 小时没有新消息自动关闭，{notified}",
    "notified": "已通知客户。",
    "not_notified": "客户没有收到通知：{error}",
    "closed_customer_zh": "⌛ 由于一段时间没有新消息，本次咨询已自动结束。还需要帮助的话，随时发 /consult 找我们～",
    "closed_customer_en": (
        "⌛ This chat was closed after a while without new messages. Need more help? Send /consult anytime."
    ),
}


def due_reminders(store: Store, now: datetime, sla_minutes: int) -> list[dict[str, Any]]:
    """Open tickets whose customer has waited longer than `sla_minutes` since their first unanswered
    message, and who were not reminded about in this waiting episode yet."""
    cutoff = utc_text(now - timedelta(minutes=sla_minutes))
    rows = store.query(
        """SELECT id, user_id, thread_id, assignee_id, assignee_name, waiting_since FROM tickets
           WHERE status <> 'closed' AND waiting_since IS NOT NULL AND waiting_since <= ?
             AND (sla_reminded_at IS NULL OR sla_reminded_at < waiting_since)
           ORDER BY waiting_since""",
        [cutoff],
    )
    for row in rows:
        row["waited_minutes"] = int((now - parse_utc(row["waiting_since"])).total_seconds() // 60)
    return rows


def idle_tickets(store: Store, now: datetime, hours: int) -> list[dict[str, Any]]:
    """Open tickets with no message either way (nor the opening itself) for `hours` hours."""
    cutoff = utc_text(now - timedelta(hours=hours))
    return store.query(
        """SELECT * FROM tickets WHERE status <> 'closed'
             AND max(opened_at, coalesce(last_customer_at, ''), coalesce(last_staff_at, '')) <= ?
           ORDER BY id""",
        [cutoff],
    )


async def send_reminders(
    notifier: Notifier, staff_chat_id: int, store: Store, reminders: list[dict[str, Any]], *,
    now: datetime | None = None,
) -> dict[str, int]:
    tickets = TicketRepository(store)
    counts = {"reminded": 0, "failed": 0}
    for row in reminders:
        who = ""
        if row["assignee_id"]:
            name = escape(row["assignee_name"] or str(row["assignee_id"]), quote=False)
            who = f'，<a href="tg://user?id={int(row["assignee_id"])}">{name}</a>'
        text = TEXTS["sla"].format(minutes=row["waited_minutes"], ticket=row["id"], who=who)
        try:  # one attempt: the Bot session already waited out short 429s (bot/retry.py)
            await notifier.send(Outgoing(staff_chat_id, text, thread_id=row["thread_id"]))
        except DeliveryUnknown as exc:  # it may be in the topic already: no second copy in General
            log_event(log, "sla reminder outcome unknown", logging.WARNING, ticket=row["id"], error=str(exc))
        except DeliveryError as exc:
            # Deleted topic or similar: say it in the General topic rather than not at all.
            log_event(log, "sla reminder not posted in topic", logging.WARNING, ticket=row["id"], error=str(exc))
            general = TEXTS["sla_general"].format(minutes=row["waited_minutes"], ticket=row["id"])
            try:
                await notifier.send(Outgoing(staff_chat_id, general))
            except DeliveryError as again:
                log_event(log, "sla reminder not delivered", logging.ERROR, ticket=row["id"], error=str(again))
                tickets.mark_delivery_error(row["id"], f"sla reminder: {again}")
                counts["failed"] += 1
                continue
        tickets.mark_reminded(row["id"], now=now)
        counts["reminded"] += 1
    return counts


async def close_idle(
    notifier: Notifier, staff_chat_id: int, store: Store, idle: list[dict[str, Any]], hours: int, *,
    now: datetime | None = None,
) -> dict[str, int]:
    tickets = TicketRepository(store)
    counts = {"closed": 0, "notified": 0}
    for row in idle:
        closed = tickets.close(row["id"], "idle", now=now)
        if closed is None:  # closed meanwhile by staff or the customer
            continue
        counts["closed"] += 1
        language = store.scalar("SELECT language FROM users WHERE id = ?", [closed.user_id])
        text = TEXTS["closed_customer_en" if language == "en" else "closed_customer_zh"]
        try:
            await notifier.send(Outgoing(closed.user_id, text))
            counts["notified"] += 1
            notified = TEXTS["notified"]
        except DeliveryError as exc:
            tickets.mark_delivery_error(closed.id, f"auto-close notice: {exc}")
            if isinstance(exc, RecipientBlocked):
                store.db.execute("UPDATE users SET blocked_bot = 1 WHERE id = ?", [closed.user_id])
            notified = TEXTS["not_notified"].format(error=escape(str(exc)[:200], quote=False))
        log_event(log, "consultation auto-closed", ticket=closed.id, hours=hours)
        staff_text = TEXTS["closed_staff"].format(ticket=closed.id, hours=hours, notified=notified)
        try:
            await notifier.send(Outgoing(staff_chat_id, staff_text, thread_id=closed.thread_id))
        except DeliveryError as exc:
            log_event(log, "auto-close notice not posted", logging.WARNING, ticket=closed.id, error=str(exc))
    return counts
