"""推荐有奖 in the marketer digest: the referral funnel of the period (shared → joined → onboarded →
bought → rewarded), compared with the period before, refusals by reason and the top referrers.

Registered by listening/digest.py (`add_section("weekly" / "daily", …)`). A daily digest leaves the section out when nothing happened in either period.
"""

from __future__ import annotations

import html
from typing import Any

from commerce.referrals import REFUSAL_REASONS_ZH, Funnel, ReferralProgram, ReferralRules
from core.store import Store
from listening.digest_period import Period, Section

TITLE = "推荐有奖"


def _pct(part: int, whole: int) -> str:
    return f"{part / whole * 100:.0f}%" if whole else "—"


def _delta(now: int, before: int) -> str:
    return f"{now - before:+d}"


def funnel_lines(now: Funnel, before: Funnel | None = None, versus: str = "较上期") -> list[str]:
    """Telegram HTML lines for a funnel (names escaped)."""
    lines = [
        f"分享链接 <b>{now.shared}</b> 人 → 好友加入 <b>{now.joined}</b> → 完成设置 {now.onboarded}"
        f"（{_pct(now.onboarded, now.joined)}）→ 首单 {now.bought}（{_pct(now.bought, now.joined)}）"
        f"→ 双方得券 <b>{now.rewarded}</b>",
    ]
    if before is not None and not before.empty:
        lines.append(
            f"{versus}：加入 {_delta(now.joined, before.joined)}，首单 {_delta(now.bought, before.bought)}，"
            f"得券 {_delta(now.rewarded, before.rewarded)}"
        )
    if now.refused:
        parts = [f"{REFUSAL_REASONS_ZH.get(r, r)} {n}" for r, n in now.refused.items()]
        lines.append(f"未发奖 {sum(now.refused.values())} 次：" + "、".join(parts))
    top = [t for t in now.top_referrers if t["joined"]][:3]
    if top:
        names = [
            f"{html.escape((t['name'] or '').strip()[:20]) or '用户' + str(t['referrer_id'])[-4:]}"
            f"（加入 {t['joined']}，得券 {t['rewarded']}）"
            for t in top
        ]
        lines.append("邀请最多：" + "、".join(names))
    return lines


def referral_section(store: Store, period: Period) -> Section | None:
    program = ReferralProgram(store, rules=ReferralRules())  # the funnel reads the store, not the rules
    now = program.funnel(period.start, period.end)
    before = program.funnel(period.prev_start, period.prev_end)
    if now.empty and before.empty:
        if period.kind == "daily":
            return None  # a quiet day: no line of zeros in every daily digest
        return Section("referrals", TITLE, ["本期没有邀请活动。顾客发 /invite 即可拿到自己的邀请链接。"],
                       {"funnel": now.to_dict(), "prev_funnel": before.to_dict()})
    data: dict[str, Any] = {"funnel": now.to_dict(), "prev_funnel": before.to_dict()}
    return Section("referrals", TITLE, funnel_lines(now, before, period.versus_zh), data)
