"""`xianke orders …`: import shop orders from a file, or receive them on an HTTP webhook."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from commerce.orders import import_orders
from core.validation import FileRejected
from xianke.context import console, err_console, fail, get_app

app = typer.Typer(help="Shop orders: import CSV/JSON exports or run the order webhook.", no_args_is_help=True)


@app.command("import")
def import_cmd(
    file: Path = typer.Argument(
        ...,
        help="A .csv (one row per order line: external_id,user_id,coupon_code,created_at,item_slug,quantity,"
        "price_cents), .json ([order, …] or {\"orders\": […]}) or .jsonl file. Times without a zone are "
        "read in XIANKE_TIMEZONE.",
    ),
) -> None:
    """Import orders. Good rows are stored even when others are bad; importing the same file again adds nothing.

    Coupon codes on orders are redeemed; purchases are attributed to the customer's latest campaign entry
    within that campaign's attribution window; purchase rules (e.g. buy a kit → course coupon) hand out coupons.
    """
    if not file.is_file():
        raise fail(f"{file} is not a file: give a .csv, .json or .jsonl export")
    xk = get_app()
    try:
        report = import_orders(xk.store, file, zone=xk.settings.zone)
    except FileRejected as exc:
        raise fail(f"{file.name}: {exc}") from None
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}") from None
    c = report.counts()
    console.print(
        f"新增 {c['added']} 笔，已存在跳过 {c['duplicates']}，有问题 {c['rejected']}；"
        f"核销券 {c['coupons_redeemed']}，归因到活动 {c['attributed']}，发出新券 {c['coupons_issued']}"
    )
    for problem in report.rejected[:50]:
        console.print(f"[red]✗[/red] {problem.where} {escape(problem.external_id or '')}：{escape('；'.join(problem.reasons))}")
    for problem in report.warnings[:50]:
        console.print(f"[yellow]![/yellow] {problem.where} {escape(problem.external_id or '')}：{escape('；'.join(problem.reasons))}")
    if report.rejected:
        console.print("改好有问题的行后重新导入同一个文件即可：已导入的订单不会重复。")
        stored = c["added"] + c["duplicates"]
        err_console.print(f"{c['rejected']} 笔订单被拒绝，{stored} 笔已保存或已存在 / {c['rejected']} order(s) rejected")
        raise typer.Exit(1 if stored else 2)


@app.command("serve-webhook")
def serve_webhook(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 for all)."),
    port: int = typer.Option(8091, min=1, max=65535, help="TCP port."),
    max_kb: int = typer.Option(1024, min=1, max=64 * 1024, help="Largest accepted request body, in KiB."),
) -> None:
    """Run the order webhook: POST /v1/orders with `Authorization: Bearer $XIANKE_ORDERS_TOKEN`."""
    from aiohttp import web

    from web.orders import make_order_webhook_app

    xk = get_app()
    token = getattr(xk.settings, "orders_token", None)
    secret = token.get_secret_value() if hasattr(token, "get_secret_value") else (token or "")
    if not secret:
        raise fail("set XIANKE_ORDERS_TOKEN (a long random string) before starting the order webhook")
    web_app = make_order_webhook_app(xk.open_store, secret, max_kb * 1024, zone=xk.settings.zone)
    console.print(f"order webhook on http://{host}:{port}/v1/orders (health: /healthz); Ctrl-C stops")
    web.run_app(web_app, host=host, port=port, print=None)
