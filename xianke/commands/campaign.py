"""`xianke campaign …`: create and list campaigns, show their effects, print QR codes, list segments,
plan and send broadcasts."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, time, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from commerce.campaigns import (
    CHANNELS,
    Campaign,
    CampaignError,
    CampaignRepository,
    SegmentRule,
    deep_link,
)
from core.domain import format_price
from core.validation import finite_float, moment_reason
from xianke.context import console, err_console, fail, get_app

if TYPE_CHECKING:
    from core.notify import Notifier
    from xianke.app import App

app = typer.Typer(
    help="营销活动 Campaigns: create, list, show effects, QR codes, segments and broadcasts.", no_args_is_help=True
)

# Which command-line option sets which field, so a validation error names what to fix.
MAX_YUAN = 100_000_000  # no campaign or coupon of this shop costs more
OPTION_OF = {
    "slug": "--slug",
    "name": "--name",
    "channel": "--channel",
    "starts_at": "--starts",
    "ends_at": "--ends",
    "cost_cents": "--cost",
    "segment": "--segment-rule",
    "segment.segment": "--segment",
    "keywords": "--keywords",
    "holdout_pct": "--holdout",
    "coupon_rule": "--coupon-discount / --coupon-min-spend",
    "coupon_rule.trigger": "--coupon-trigger",
    "coupon_rule.target_type": "--coupon-target",
    "coupon_rule.discount_cents": "--coupon-discount",
    "coupon_rule.min_spend_cents": "--coupon-min-spend",
    "coupon_rule.days_valid": "--coupon-days",
    "attribution_days": "--attribution-days",
    "broadcast_text": "--text",
}


def _option_for(field: str) -> str:
    if field in OPTION_OF:
        return OPTION_OF[field]
    if field.startswith("segment."):
        return "--segment-rule"
    return OPTION_OF.get(field.split(".", 1)[0], field)


def _campaign_fail(exc: CampaignError) -> typer.Exit:
    return fail(f"{_option_for(exc.field)}: {exc}")


def _moment(text: str | None, zone: tzinfo, option: str, *, end_of_day: bool = False) -> datetime | None:
    """2026-12-01 or 2026-12-01T09:00 in the shop's time zone; a bare end date means the whole day."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("/", "-").replace(" ", "T"))
    except ValueError:
        raise fail(f"{option}: {text!r} 不是日期（例如 2026-12-01 或 2026-12-01T09:00）") from None
    if end_of_day and len(text.strip()) <= 10:
        moment = datetime.combine(moment.date(), time(23, 59, 59, 999000))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=zone)
    outside = moment_reason(moment, option)
    if outside:
        raise fail(outside)
    return moment


def _cents(yuan: float | None, option: str) -> int | None:
    """Yuan → cents; nan, inf and amounts over 100 million yuan stop the command with a clear line."""
    if yuan is None:
        return None
    checked = finite_float(yuan, option, 0, MAX_YUAN)
    if isinstance(checked, str):
        raise fail(checked)
    return round(checked * 100)


def _segment_rule(segment: str | None, rule_json: str | None) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if rule_json:
        try:
            rule = json.loads(rule_json)
        except json.JSONDecodeError as exc:
            raise fail(f'--segment-rule: 不是合法的 JSON（{exc.msg}），例如 {{"min_orders": 1, "diet": "素食"}}') from None
        if not isinstance(rule, dict):
            raise fail('--segment-rule: 需要一个 JSON 对象，例如 {"last_active_days": 30}')
    if segment:
        rule["segment"] = segment
    return rule


def _keywords(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [w.strip() for w in text.replace("，", ",").replace("、", ",").split(",") if w.strip()]


@app.command("create")
def create(
    slug: str = typer.Option(..., "--slug", help="Deep-link code printed in the QR code: 1–64 of A-Z a-z 0-9 _ - "
                             "(not starting with ref_), e.g. spring_qr."),
    name: str = typer.Option(..., "--name", help="活动名称 shown to marketers, e.g. 春季包装二维码."),
    channel: str = typer.Option("qr", "--channel", help="Where it runs: " + ", ".join(CHANNELS) + "."),
    starts: str | None = typer.Option(None, "--starts", help="Start, shop time zone: 2026-12-01 or 2026-12-01T09:00."),
    ends: str | None = typer.Option(None, "--ends", help="End; a bare date includes that whole day."),
    cost: float = typer.Option(0.0, "--cost", help="What the campaign costs, in yuan (used for ROI)."),
    segment: str | None = typer.Option(None, "--segment", help="Target segment name from `xianke campaign segments`, e.g. 课程党."),
    segment_rule: str | None = typer.Option(
        None, "--segment-rule",
        help='Extra filters as JSON: {"min_orders": 1, "last_active_days": 30, "diet": "素食", "bought": "kit"}.',
    ),
    keywords: str | None = typer.Option(None, "--keywords", help="Brands/keywords to track in social posts, comma-separated."),
    holdout: float = typer.Option(10.0, "--holdout", help="Percent kept as a holdout that gets no message or coupon (0–50)."),
    coupon_trigger: str | None = typer.Option(
        None, "--coupon-trigger", help="When to give a coupon: entry, broadcast, purchase_kit, purchase_course (omit: none)."
    ),
    coupon_target: str = typer.Option("any", "--coupon-target", help="What it discounts: any, course, kit, ingredient."),
    coupon_discount: float = typer.Option(0.0, "--coupon-discount", help="Coupon value in yuan."),
    coupon_min_spend: float = typer.Option(0.0, "--coupon-min-spend", help="Minimum spend on the target, in yuan."),
    coupon_days: int = typer.Option(14, "--coupon-days", help="Days a coupon stays valid."),
    attribution_days: int = typer.Option(7, "--attribution-days", help="Orders this many days after an entry count for it."),
    created_by: int | None = typer.Option(None, "--created-by", help="Telegram id of the marketer (optional)."),
) -> None:
    """Create a campaign. Then print its QR code with `xianke campaign qr SLUG`."""
    xk = get_app()
    zone = xk.settings.zone
    rule = None
    if coupon_trigger:
        rule = {
            "trigger": coupon_trigger, "target_type": coupon_target, "discount_cents": _cents(coupon_discount, "--coupon-discount"),
            "min_spend_cents": _cents(coupon_min_spend, "--coupon-min-spend"), "days_valid": coupon_days,
        }
    try:
        campaign = Campaign.build(
            slug=slug, name=name, channel=channel,
            starts_at=_moment(starts, zone, "--starts"), ends_at=_moment(ends, zone, "--ends", end_of_day=True),
            cost_cents=_cents(cost, "--cost"), segment=_segment_rule(segment, segment_rule), keywords=_keywords(keywords) or [],
            holdout_pct=holdout, coupon_rule=rule, attribution_days=attribution_days, created_by=created_by,
        )
        saved = CampaignRepository(xk.store).create(campaign)
    except CampaignError as exc:
        raise _campaign_fail(exc) from None
    console.print(f"[green]✓[/green] 活动已创建\n{saved.describe_zh()}")
    console.print(f"下一步：xianke campaign qr {saved.slug}")


@app.command("update")
def update(
    slug: str = typer.Argument(..., help="The campaign's code."),
    name: str | None = typer.Option(None, "--name"),
    starts: str | None = typer.Option(None, "--starts", help="2026-12-01 or 2026-12-01T09:00 (shop time zone)."),
    ends: str | None = typer.Option(None, "--ends", help="A bare date includes that whole day."),
    cost: float | None = typer.Option(None, "--cost", help="Cost in yuan (used for ROI)."),
    holdout: float | None = typer.Option(None, "--holdout", help="Percent kept as holdout (0–50); affects new people only."),
    keywords: str | None = typer.Option(None, "--keywords", help="Replaces the tracked keywords (comma-separated)."),
    segment: str | None = typer.Option(None, "--segment", help="Target segment name."),
    segment_rule: str | None = typer.Option(None, "--segment-rule", help="Replaces the filters (JSON)."),
    attribution_days: int | None = typer.Option(None, "--attribution-days"),
) -> None:
    """Change a campaign (the code itself cannot change: it is printed in QR codes)."""
    xk = get_app()
    zone = xk.settings.zone
    changes: dict[str, Any] = {
        "name": name, "starts_at": _moment(starts, zone, "--starts"),
        "ends_at": _moment(ends, zone, "--ends", end_of_day=True), "cost_cents": _cents(cost, "--cost"), "holdout_pct": holdout,
        "keywords": _keywords(keywords), "attribution_days": attribution_days,
    }
    if segment is not None or segment_rule is not None:
        changes["segment"] = _segment_rule(segment, segment_rule)
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise fail("nothing to change: give at least one option (see --help)")
    try:
        saved = CampaignRepository(xk.store).update(slug, **changes)
    except CampaignError as exc:
        raise _campaign_fail(exc) from None
    console.print(f"[green]✓[/green] 已更新\n{saved.describe_zh()}")


@app.command("list")
def list_cmd() -> None:
    """All campaigns, newest first, with entries, arms, coupons and attributed orders."""
    repo = CampaignRepository(get_app().store)
    table = Table(title="campaigns")
    table.add_column("slug", no_wrap=True)  # what marketers type next: never cut it
    for column in ("名称", "渠道", "时间", "成本", "对照", "进入", "活动组/对照组", "券 发/用", "归因订单"):
        table.add_column(column)
    for c in repo.list():
        s = repo.stats(c.campaign_id)
        period = f"{c.starts_at:%m-%d}" if c.starts_at else "—"
        period += f"~{c.ends_at:%m-%d}" if c.ends_at else "~"
        table.add_row(
            c.slug, c.name, CHANNELS.get(c.channel, c.channel), period, format_price(c.cost_cents),
            f"{c.holdout_pct:g}%", str(s["entrants"]), f"{s['treatment']}/{s['holdout']}",
            f"{s['coupons_issued']}/{s['coupons_redeemed']}", f"{s['attributed_orders']}",
        )
    console.print(table)


@app.command("show")
def show(
    slug: str = typer.Argument(..., help="The campaign's code."),
    refresh: bool = typer.Option(False, "--refresh", help="Re-estimate the effects now (and store the result)."),
    as_json: bool = typer.Option(False, "--json", help="Print the stored report as JSON."),
) -> None:
    """Details, counts and the latest effect estimates, each with its sentence in Chinese."""
    xk = get_app()
    repo = CampaignRepository(xk.store)
    campaign = repo.get_by_slug(slug)
    if campaign is None:
        raise fail(f"no campaign {slug!r}; see `xianke campaign list`")
    if refresh:
        from analytics.campaign_report import estimate_campaign

        with console.status("estimating effects…"):
            estimate_campaign(xk.store, campaign.campaign_id, zone=xk.settings.zone, save=True)
    report = repo.latest_report(campaign.campaign_id)
    if as_json:
        console.print_json(json.dumps(report or {}, ensure_ascii=False))
        return
    console.print(campaign.describe_zh())
    s = repo.stats(campaign.campaign_id)
    sends = ", ".join(f"{k} {v}" for k, v in sorted(s["send_status"].items())) or "—"
    console.print(
        f"进入 {s['entries']} 次 / {s['entrants']} 人 · 活动组 {s['treatment']} · 对照组 {s['holdout']} · 发送状态：{sends}\n"
        f"券：发出 {s['coupons_issued']}，已用 {s['coupons_redeemed']} · 归因订单 {s['attributed_orders']} 笔 "
        f"{format_price(s['attributed_revenue_cents'])}"
    )
    if report is None:
        console.print("还没有效果评估：运行 xianke campaign show " + slug + " --refresh")
        return
    from analytics.campaign_report import ESTIMATE_ZH

    console.print(f"\n[b]效果评估[/b]（{report['computed_at']}）")
    for estimate in report.get("estimates", []):
        console.print(f"• {ESTIMATE_ZH.get(estimate['name'], estimate['name'])}：{estimate['sentence_zh']}")
    for note in report.get("notes_zh", []):
        console.print(f"[dim]（{note}）[/dim]")


def bot_username(xk: App, given: str | None) -> str:
    name = given or getattr(xk.settings, "bot_username", None)
    if not name:
        raise fail("--bot-username: 请提供机器人用户名（或设置 XIANKE_BOT_USERNAME），例如 XianKeBot")
    return str(name)


@app.command("qr")
def qr(
    slug: str = typer.Argument(..., help="The campaign's code."),
    out: Path | None = typer.Option(None, "--out", help="PNG file to write; default <data_dir>/qr/<slug>.png."),
    bot: str | None = typer.Option(None, "--bot-username", help="The bot's @username; default XIANKE_BOT_USERNAME."),
    scale: int = typer.Option(10, "--scale", min=1, max=50, help="Pixels per QR module (10 ≈ 4 cm at 300 dpi)."),
) -> None:
    """Write a PNG QR code of https://t.me/<bot>?start=<slug>; people who scan it are attributed to the campaign."""

    xk = get_app()
    campaign = CampaignRepository(xk.store).get_by_slug(slug)
    if campaign is None:
        raise fail(f"no campaign {slug!r}: create it first (`xianke campaign create --slug {slug} …`)")
    try:
        url = deep_link(bot_username(xk, bot), campaign.slug)
    except CampaignError as exc:
        raise fail(f"--bot-username: {exc}") from None
    path = out or xk.settings.data_dir / "qr" / f"{campaign.slug}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_qr(url, path, scale=scale)
    console.print(f"[green]✓[/green] {path}  →  {url}")


def write_qr(url: str, path: Path, *, scale: int = 10) -> None:
    """Error correction M (survives a crease or a smudge on packaging) and the standard 4-module quiet zone."""
    import segno

    segno.make(url, error="m", micro=False).save(str(path), kind="png", scale=scale, border=4)


@app.command("segments")
def segments(
    k: int = typer.Option(5, "--k", min=1, max=12, help="Number of clusters."),
    seed: int = typer.Option(7, "--seed", help="Random seed (same data + seed = same segments)."),
) -> None:
    """User segments from purchase recency / frequency / spend, course vs kit share and likes."""
    from commerce.segments import segment_users

    result = segment_users(get_app().store, k=k, seed=seed)
    if not result.segments:
        console.print("还没有用户")
        return
    table = Table(title="segments")
    for column in ("人群", "人数", "画像"):
        table.add_column(column)
    for s in result.segments:
        table.add_row(s.name, str(s.size), s.describe_zh())
    console.print(table)
    console.print('在活动里使用：--segment 课程党，或再加过滤 --segment-rule \'{"last_active_days": 30}\'')


def make_notifier(xk: App) -> Notifier:
    """Composition-root hook: the Notifier wired to the aiogram Bot (XIANKE_TELEGRAM_TOKEN), closed
    when the command ends. Without a token it names the missing setting and raises NotImplementedError."""
    from xianke.bot_wiring import BotConfigError
    from xianke.notify_wiring import cli_notifier

    try:
        return cli_notifier(xk)
    except BotConfigError as exc:  # `broadcast` then keeps the stored plan and exits 1
        err_console.print(f"[yellow]{exc}[/yellow]")
        raise NotImplementedError(str(exc)) from None


@app.command("broadcast")
def broadcast(
    slug: str = typer.Argument(..., help="The campaign's code."),
    segment: str | None = typer.Option(None, "--segment", help="Segment name (default: the campaign's own target)."),
    text: str | None = typer.Option(None, "--text", help="Message; {name}, {code}, {discount}, {expires} are filled in. "
                                    "Default: the text stored by an earlier run."),
    html_text: bool = typer.Option(False, "--html", help="The text uses Telegram HTML (<b>, <i>, <a href>)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count who would get it (treatment / holdout); write nothing."),
    rate: float = typer.Option(25.0, "--rate", min=1, max=30, help="Messages per second (Telegram allows ~30)."),
    button: str | None = typer.Option("查看详情", "--button", help="Label of a button opening the campaign link ('' for none)."),
    resend_unknown: bool = typer.Option(
        False, "--resend-unknown", help="Also resend to people whose earlier delivery was interrupted (may duplicate)."
    ),
) -> None:
    """Plan the segment into treatment / holdout (stored, so re-running resumes) and send to the treatment arm."""
    from commerce.broadcast import Broadcaster

    xk = get_app()
    repo = CampaignRepository(xk.store)
    campaign = repo.get_by_slug(slug)
    if campaign is None:
        raise fail(f"no campaign {slug!r}; see `xianke campaign list`")
    try:
        rule = SegmentRule.model_validate({**campaign.segment.model_dump(exclude_none=True),
                                           **({"segment": segment} if segment else {})})
    except ValueError as exc:
        raise fail(f"--segment: {exc}") from None
    if text is None and not campaign.broadcast_text and not dry_run:
        raise fail("--text: 请提供群发文案")
    if text is not None and not 1 <= len(text.strip()) <= 4096:
        raise fail("--text: 文案不能为空，也不能超过 4096 个字符（Telegram 的上限）")
    if text is not None and campaign.broadcast_text and text != campaign.broadcast_text:
        sent = repo.stats(campaign.campaign_id)["send_status"].get("sent", 0)
        if sent:
            err_console.print(f"[yellow]注意[/yellow]：已有 {sent} 人收到旧文案，剩下的人将收到新文案")
    planner = Broadcaster(xk.store, _NoNotifier(), rate)
    try:
        plan = planner.plan(campaign, rule, text=text, html_text=html_text, dry_run=dry_run)
    except ValueError as exc:
        raise fail(f"--segment: {exc}") from None
    finally:
        planner.close()
    console.print(f"目标人群：{rule.describe_zh()}\n{plan.summary_zh()}")
    if dry_run:
        return
    try:
        notifier = make_notifier(xk)
    except NotImplementedError:
        raise fail("sending is not wired to Telegram yet; the plan is stored — use --dry-run meanwhile", code=1) from None
    campaign = repo.get(campaign.campaign_id) or campaign
    buttons = _link_button(xk, campaign, button)
    sender = Broadcaster(xk.store, notifier, rate, progress=_progress_printer())
    if resend_unknown:
        console.print(f"重新排队结果未知的用户：{sender.requeue_unknown(campaign.campaign_id)} 人")
    try:
        report = asyncio.run(sender.send(campaign, buttons=buttons))
    finally:
        sender.close()
    console.print(report.summary_zh())


class _NoNotifier:
    async def send(self, message: Any) -> int:  # planning never sends
        raise RuntimeError("planning does not send")


def _link_button(xk: App, campaign: Campaign, label: str | None) -> list[list[Any]]:
    from core.notify import Button

    name = getattr(xk.settings, "bot_username", None)
    if not label or not name:
        return []
    return [[Button(label, url=deep_link(str(name), campaign.slug))]]


def _progress_printer() -> Any:
    last = {"shown": -1}

    def show(stage: str, done: int, total: int | None) -> None:
        step = max(1, (total or 1) // 20)
        if done == total or done - last["shown"] >= step:
            last["shown"] = done
            console.print(f"{stage}: {done}/{total}", highlight=False)

    return show
