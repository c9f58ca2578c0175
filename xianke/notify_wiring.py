"""How jobs and CLI commands reach Telegram: the composition root's notifier wiring, in one place.

Two situations:

- Short-lived CLI commands (`xianke digest --send`, `xianke campaign broadcast`, `xianke jobs run|start`):
  `open_notifier(app)` builds a Bot from the settings and runs it on a private event loop in a
  background thread. An aiohttp session belongs to the loop that created it, while the commands call
  `asyncio.run(...)` (a new loop each time) and scheduler jobs run in worker threads — so every send
  is forwarded to that one loop, and `close()` closes the session there.
- The long-running `xianke serve` process: the scheduler shares the bot's own loop and Bot
  (`run_scheduler_with_bot`), so there is one session, one token user, and nothing extra to close.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.logging import log_event
from core.notify import Notifier, Outgoing
from jobs.registry import Outbox
from xianke.bot_wiring import BotConfigError, make_bot_from
from xianke.notifier import AiogramNotifier

if TYPE_CHECKING:
    from aiogram import Bot, Dispatcher

    from core.settings import Settings
    from xianke.app import App

log = logging.getLogger(__name__)

RUN_ASYNC_TIMEOUT_S = 15 * 60  # a digest or an alert batch; a broadcast runs in its own command
RunAsync = Callable[[Coroutine[Any, Any, Any]], Any]


class LoopNotifier:
    """A Notifier that may be awaited from any event loop: sends run on the loop owning the Bot."""

    def __init__(self, inner: Notifier, loop: asyncio.AbstractEventLoop):
        self.inner = inner
        self.loop = loop

    async def send(self, message: Outgoing) -> int:
        if asyncio.get_running_loop() is self.loop:
            return await self.inner.send(message)
        future = asyncio.run_coroutine_threadsafe(self.inner.send(message), self.loop)
        return await asyncio.wrap_future(future)  # RetryLater / RecipientBlocked pass through unchanged


@dataclass
class NotifierHandle:
    """(notifier, run_async, close); unpacks like a tuple."""

    notifier: Notifier
    run_async: RunAsync
    close: Callable[[], None]

    def __iter__(self) -> Iterator[Any]:
        return iter((self.notifier, self.run_async, self.close))

    def outbox(self) -> Outbox:
        """What JobRunner hands every job (jobs.registry.Outbox)."""
        return Outbox(self.notifier, self.run_async)


def open_notifier(app: App, *, timeout_s: float = RUN_ASYNC_TIMEOUT_S) -> NotifierHandle:
    """A Notifier over a Bot built from the settings (XIANKE_TELEGRAM_TOKEN, XIANKE_TELEGRAM_API_BASE),
    on its own loop thread. Raises BotConfigError (a RuntimeError) when no token is configured."""
    bot = make_bot_from(app.settings)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="xianke-notifier", daemon=True)
    thread.start()

    def run_async(coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout_s)

    closed = threading.Event()

    def close() -> None:
        if closed.is_set():
            return
        closed.set()
        try:
            run_async(bot.session.close())
        except Exception as exc:  # closing must never hide the command's own result
            log_event(log, "notifier close failed", logging.WARNING, error=repr(exc))
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            if not thread.is_alive():
                loop.close()

    return NotifierHandle(LoopNotifier(AiogramNotifier(bot), loop), run_async, close)


def close_when_done(close: Callable[[], None]) -> None:
    """Close at the end of the current CLI command (click context), else when the process exits."""
    import click

    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(close)
    else:
        atexit.register(close)


def cli_notifier(app: App) -> Notifier:
    """The CLI commands' make_notifier hook: a notifier closed when the command ends.
    Raises BotConfigError (a RuntimeError naming XIANKE_TELEGRAM_TOKEN) when there is no token."""
    handle = open_notifier(app)
    close_when_done(handle.close)
    return handle.notifier


def cli_job_outbox(app: App) -> Outbox | None:
    """The JobRunner outbox for `xianke jobs run|start`: the notifier when a token is configured;
    without one the digest and alert jobs store their results and log that nothing was sent."""
    try:
        handle = open_notifier(app)
    except BotConfigError:
        return None
    close_when_done(handle.close)
    return handle.outbox()


# -- the scheduler inside `xianke serve` ---------------------------------------------------------


def bot_loop_outbox(bot: Bot, loop: asyncio.AbstractEventLoop, *, timeout_s: float = RUN_ASYNC_TIMEOUT_S) -> Outbox:
    """Jobs run in the scheduler's worker thread; their sends go to the running bot's loop."""
    return Outbox(
        AiogramNotifier(bot),
        lambda coroutine: asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout_s),
    )


def run_scheduler_with_bot(
    dispatcher: Dispatcher, settings: Settings, make_runner: Callable[[Outbox], Any]
) -> None:
    """Start the APScheduler BackgroundScheduler when the dispatcher starts (polling or webhook) and
    stop it when it shuts down, with an outbox bound to the bot's loop. `make_runner(outbox)` builds the
    JobRunner (the CLI's, so the serve process runs exactly the jobs `xianke jobs start` would)."""
    running: dict[str, Any] = {}

    async def start_scheduler(bot: Bot) -> None:
        from jobs.scheduler import build_scheduler

        scheduler = build_scheduler(settings, make_runner(bot_loop_outbox(bot, asyncio.get_running_loop())))
        scheduler.start()
        running["scheduler"] = scheduler
        log_event(log, "scheduler started with the bot", jobs=len(scheduler.get_jobs()))

    async def stop_scheduler() -> None:
        scheduler = running.pop("scheduler", None)
        if scheduler is not None:
            # Off the loop: a running job may be waiting in run_async for this very loop to send.
            await asyncio.to_thread(scheduler.shutdown, True)

    dispatcher.startup.register(start_scheduler)
    dispatcher.shutdown.register(stop_scheduler)
