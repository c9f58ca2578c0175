"""`xianke digest`: the marketers' listening digest in the terminal (and, with --send, in Telegram)."""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from xianke.context import console, fail, get_app


def make_notifier(app: Any) -> Any:
    """The composition root's Notifier (core.notify) for sending from the CLI (xianke.notify_wiring);
    without XIANKE_TELEGRAM_TOKEN --send stops with a message naming it instead of half-sending."""
    factory = getattr(app, "make_notifier", None)
    if factory is None:
        from xianke.bot_wiring import BotConfigError
        from xianke.notify_wiring import cli_notifier

        try:
            return cli_notifier(app)
        except BotConfigError as exc:  # the caller turns a RuntimeError into one clear line
            raise RuntimeError(f"no Telegram notifier for --send: {exc}") from None
    return factory()


def digest(
    now: bool = typer.Option(
        False, "--now", help="Build the digest now from the database (default: show the last stored one)."
    ),
    kind: str = typer.Option(
        "daily", "--kind", help="daily (yesterday), weekly (last Mon–Sun) or adhoc (last 24 h)."
    ),
    send: bool = typer.Option(
        False,
        "--send",
        help="Also send it to XIANKE_MARKETER_CHAT_IDS (chats that already have it are skipped).",
    ),
) -> None:
    """Listening digest 舆情日报/周报: volume and sentiment, share of voice, topics, most negative posts,
    campaign effects. Prints it here and writes the chart PNG under <data_dir>/charts."""
    from listening.digest import KINDS, build_for_settings, record_digest, send_digest

    if kind not in KINDS:
        raise fail(f"--kind must be one of {', '.join(KINDS)} (got {kind!r})")
    xk = get_app()
    store = xk.store
    if not now:
        row = store.query(
            "SELECT * FROM digests WHERE kind = ? ORDER BY period_end DESC, id DESC LIMIT 1", [kind]
        )
        if not row:
            raise fail(f"no {kind} digest stored yet; run `xianke digest --now --kind {kind}` to build one")
        from listening.digest import html_to_plain

        console.print(html_to_plain(row[0]["text"]), markup=False, highlight=False)
        console.print(f"chart: {row[0]['chart_path'] or '(none)'}  sent: {row[0]['sent_at'] or 'not yet'}")
        return
    with console.status("building the digest…"):
        result = build_for_settings(store, xk.settings, kind)
    console.print(result.text_plain, markup=False, highlight=False)
    console.print(f"\nchart: {result.chart_path}")
    if not send:
        return
    chat_ids = list(xk.settings.marketer_chat_ids)
    if not chat_ids:
        raise fail("XIANKE_MARKETER_CHAT_IDS is empty: set the marketers' chat ids to send the digest")
    try:
        notifier = make_notifier(xk)
    except RuntimeError as exc:
        raise fail(str(exc)) from None
    record_digest(store, result)
    deliveries = asyncio.run(send_digest(notifier, chat_ids, result, store=store))
    for d in deliveries:
        console.print(f"chat {d.chat_id}: {d.status}" + (f" ({d.error})" if d.error else ""))
    skipped = len(chat_ids) - len(deliveries)
    if skipped:
        console.print(f"{skipped} chat(s) already had this digest; not sent again")
    if any(d.status != "sent" for d in deliveries):
        raise typer.Exit(1)
