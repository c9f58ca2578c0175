"""The bot's front doors besides Telegram: console chat, `xianke serve` errors, the Bot API base setting."""

from __future__ import annotations

import io

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from bot.console import html_to_rich, run_conversation
from bot.runners import make_bot
from tests.bot_fixtures import *  # noqa: F403
from tests.bot_fixtures import BotEnv
from tests.fakebot import FakeBotAPI
from xianke.commands.chat import DEMO_SCRIPT


def test_console_runs_the_demo_script_like_the_bot(bot_env: BotEnv) -> None:
    out = io.StringIO()
    run_conversation(bot_env.dialogue, bot_env.open_store(), 4242, DEMO_SCRIPT, Console(file=out, width=120))
    text = out.getvalue()
    assert "设置好了" in text and "为你挑了这几样" in text and "牛腩 配什么" in text
    assert "XK-" in text and "人工客服" in text and "不客气" in text
    assert "没有找到按钮" not in text
    assert bot_env.dialogue.users.profile(4242).taste == ["川菜"]
    disliked = bot_env.store.query("SELECT item_slug FROM events WHERE user_id = 4242 AND kind = 'dislike'")
    assert len(disliked) == 1


def test_html_to_rich_escapes_user_markup() -> None:
    assert html_to_rich("<b>课</b> &lt;b&gt;[red]x[/red]") == "[bold]课[/bold] <b>\\[red]x\\[/red]"


def test_serve_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from xianke import context
    from xianke.commands import serve

    monkeypatch.delenv("XIANKE_TELEGRAM_TOKEN", raising=False)
    monkeypatch.setattr(context, "_app", None)
    monkeypatch.setattr(context, "configure_logging", lambda *args, **kwargs: None)
    monkeypatch.chdir("/")  # no .env with a token
    cli = typer.Typer()
    cli.command()(serve.serve)
    result = CliRunner().invoke(cli, [])
    assert result.exit_code == 2
    assert "XIANKE_TELEGRAM_TOKEN" in result.output


@pytest.mark.asyncio
async def test_bot_uses_the_configured_api_base() -> None:
    async with FakeBotAPI() as api:
        bot = make_bot(api.token, api.base_url + "/")
        try:
            assert (await bot.get_me()).username == "xianke_test_bot"
        finally:
            await bot.session.close()
    assert make_bot(api.token, "https://api.telegram.org").session.api.base.startswith("https://api.telegram.org")
