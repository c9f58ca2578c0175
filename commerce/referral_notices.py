"""Tell both sides of a rewarded referral about their coupon, through core.notify (jobs never import
the bot). The reward itself is decided while the order is imported (commerce/orders.py); this job only
delivers the messages, so a Telegram outage delays a notice but never loses a coupon.

Each notice is marked once delivered (or once the user turns out to have blocked the bot), so a
re-run sends only what is still pending.
"""

from __future__ import annotations

import logging

from commerce.referrals import ReferralProgram, ReferralRules
from core.delivery import deliver
from core.logging import log_event
from core.notify import Notifier, Outgoing
from core.repos.users import UserRepository
from core.store import Store

log = logging.getLogger(__name__)


async def send_referral_notices(
    notifier: Notifier, store: Store, *, limit: int = 200
) -> dict[str, int]:
    """Deliver pending reward notices; returns counts by delivery status (sent, blocked, unknown …).
    A notice whose delivery is unknown counts as delivered: it may have arrived, and a second
    copy of a coupon notice is worse than a missing one (the coupon is listed under /coupons either way)."""
    # Rules only shape new rewards; delivering existing ones needs none from the environment.
    program = ReferralProgram(store, rules=ReferralRules())
    counts = {"sent": 0, "blocked": 0, "failed": 0}
    for notice in program.pending_notices(limit):
        delivery = await deliver(notifier, [Outgoing(notice.user_id, notice.text)])
        counts[delivery.status] = counts.get(delivery.status, 0) + 1
        if delivery.status == "blocked":
            UserRepository(store).set_flag(notice.user_id, "blocked_bot", True)
        if delivery.final:
            program.mark_notified(notice)
        else:
            log_event(
                log, "referral notice not delivered", logging.WARNING,
                user_id=notice.user_id, role=notice.role, error=delivery.error,
            )
    return counts


def pending_notice_count(store: Store) -> int:
    """Reward notices not delivered yet (the job reports them while no notifier is wired)."""
    return len(ReferralProgram(store, rules=ReferralRules()).pending_notices())
