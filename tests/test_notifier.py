"""The Notifier adapter against the fake Bot API: errors become the types jobs understand."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.notify import Button, DeliveryError, Outgoing, RecipientBlocked, RetryLater
from tests.fakebot import FakeBotAPI
from xianke.notifier import AiogramNotifier

pytestmark = pytest.mark.asyncio


async def test_text_photo_and_errors(tmp_path: Path) -> None:
    png = tmp_path / "chart.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 64)
    async with FakeBotAPI() as api:
        notifier = AiogramNotifier(api.make_bot())
        mid = await notifier.send(Outgoing(-100123, "<b>日报</b>", buttons=[[Button("判断有误", "fix:1")]]))
        assert mid > 0 and api.last_message(-100123)["text"] == "日报"
        await notifier.send(Outgoing(-100123, "图表", photo=png))
        assert api.calls("sendPhoto")[-1].files
        api.fail_next("sendMessage", 429, retry_after=3)
        with pytest.raises(RetryLater) as info:
            await notifier.send(Outgoing(5, "hi"))
        assert info.value.seconds == 3
        api.block_user(6)
        with pytest.raises(RecipientBlocked):
            await notifier.send(Outgoing(6, "hi"))
        api.fail_next("sendMessage", 400, description="Bad Request: chat not found")
        with pytest.raises(DeliveryError):
            await notifier.send(Outgoing(7, "hi"))
