"""`xianke referrals …`: the referral programme (推荐有奖) from the terminal.

Registered by the CLI's composition (xianke/cli.py):
    app.add_typer(referrals.app, name="referrals")
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import typer
from rich.table import Table

from xianke.context import console, get_app

app = typer.Typer(help="Referral programme 推荐有奖: funnel and rules.", no_args_is_help=True)


@app.command("stats")
def stats(
    days: int = typer.Option(7, "--days", min=1, max=3650, help="Look back this many days from now."),
) -> None:
    """Referral funnel of the last N days: links shared → friends joined → onboarded → first order →
    both rewarded, refusals by reason and the top referrers. Prints a table, then one JSON line."""
    from commerce.referrals import REFUSAL_REASONS_ZH, ReferralProgram, ReferralRules

    xk = get_app()
    rules = ReferralRules.from_settings(xk.settings)
    end = datetime.now(UTC)
    start = end - timedelta(days=days)
    funnel = ReferralProgram(xk.store, rules=rules).funnel(start, end)
    local = xk.settings.zone
    table = Table(title=f"推荐有奖 / referrals: {start.astimezone(local):%Y-%m-%d} – {end.astimezone(local):%Y-%m-%d}")
    table.add_column("步骤 / step")
    table.add_column("人数 / people", justify="right")
    table.add_column("占加入 / of joined", justify="right")
    steps = (
        ("分享链接 / shared", funnel.shared, None),
        ("好友加入 / joined", funnel.joined, None),
        ("完成设置 / onboarded", funnel.onboarded, funnel.rate("onboarded")),
        ("首单 / bought", funnel.bought, funnel.rate("bought")),
        ("双方得券 / rewarded", funnel.rewarded, funnel.rate("rewarded")),
    )
    for name, value, rate in steps:
        table.add_row(name, str(value), "—" if rate is None else f"{rate:.0%}")
    for reason, n in funnel.refused.items():
        table.add_row(f"未发奖 / refused: {REFUSAL_REASONS_ZH.get(reason, reason)}", str(n), "")
    console.print(table)
    if funnel.top_referrers:
        top = Table(title="邀请最多 / top referrers")
        for column in ("user id", "name", "joined", "rewarded"):
            top.add_column(column)
        for row in funnel.top_referrers:
            top.add_row(str(row["referrer_id"]), row["name"] or "", str(row["joined"]), str(row["rewarded"]))
        console.print(top)
    console.print(
        f"规则 / rules: 邀请人 {rules.reward_cents / 100:g} 元，好友 {rules.welcome_cents / 100:g} 元，"
        f"每位邀请人每天最多 {rules.daily_cap} 次奖励"
    )
    print(json.dumps({"days": days, **funnel.to_dict()}, ensure_ascii=False))
