"""`xianke serve`: the customer bot on Telegram, by long polling (default) or a webhook."""

from __future__ import annotations

import asyncio
from urllib.parse import urlparse

import typer

from xianke.context import console, fail, get_app

DEFAULT_WEBHOOK_PATH = "/telegram/webhook"


def serve(
    webhook: bool = typer.Option(
        False, "--webhook",
        help="Serve a webhook (XIANKE_WEBHOOK_URL, XIANKE_WEBHOOK_SECRET, XIANKE_WEBHOOK_HOST/PORT) "
        "instead of long polling.",
    ),
    with_scheduler: bool = typer.Option(
        True, "--with-scheduler/--without-scheduler",
        help="Also run the scheduled jobs (ingest, analysis, digests, alerts …) in this process, sending "
        "through this bot. Turn off when `xianke jobs start` runs elsewhere: run one scheduler only.",
    ),
) -> None:
    """Run the customer bot. Needs XIANKE_TELEGRAM_TOKEN; XIANKE_TELEGRAM_API_BASE points at a self-hosted Bot API."""
    from aiohttp import web

    from bot.runners import make_webhook_app, run_polling
    from xianke.bot_wiring import BotConfigError, build_runtime, make_bot_from

    app = get_app()
    settings = app.settings
    try:
        bot = make_bot_from(settings)
    except BotConfigError as exc:
        raise fail(str(exc)) from None
    if webhook and not settings.webhook_url:
        raise fail("--webhook needs XIANKE_WEBHOOK_URL: the public https:// address Telegram will post to")
    if webhook and settings.webhook_secret is None:
        raise fail("--webhook needs XIANKE_WEBHOOK_SECRET: 1-256 characters of A-Z a-z 0-9 _ - (checked on every post)")
    runtime = build_runtime(app)
    if with_scheduler:
        from xianke.commands.jobs import make_runner
        from xianke.notify_wiring import run_scheduler_with_bot

        run_scheduler_with_bot(runtime.dispatcher, settings, lambda outbox: make_runner(outbox=outbox))
    try:
        if webhook:
            assert settings.webhook_url is not None and settings.webhook_secret is not None
            path = urlparse(settings.webhook_url).path or DEFAULT_WEBHOOK_PATH
            web_app = make_webhook_app(
                bot, runtime.dispatcher, url=settings.webhook_url, path=path,
                secret=settings.webhook_secret.get_secret_value(),
            )
            console.print(f"webhook: {settings.webhook_url} → http://{settings.webhook_host}:{settings.webhook_port}{path}")
            web.run_app(web_app, host=settings.webhook_host, port=settings.webhook_port, print=None)
        else:
            console.print("long polling… (Ctrl+C to stop)")
            asyncio.run(run_polling(bot, runtime.dispatcher))
    finally:
        runtime.close()
