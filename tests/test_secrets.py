"""Secrets stay out of logs; secrets are compared in constant time; SQL injection strings are data.

The log test runs the bot (polling, a failing send, a crashing job whose error names the token), the
webhook app (right, wrong and non-ASCII secrets), the ingest and order endpoints (right and wrong
tokens) with real-looking secrets, captures every record at DEBUG through the production JSON
formatter, and greps the output. The fake server's own request log is allowed to hold the token: it
is Telegram's URL (/bot<token>/method), not our log.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

import bot.security
import web.ingest
import web.orders
from bot.runners import make_bot, make_webhook_app, run_polling
from commerce.campaigns import Campaign, CampaignRepository
from core.domain import Course, Ingredient
from core.repos import CatalogRepository, CouponRepository, EventRepository, UserRepository
from core.repos.catalog import CatalogBundle
from core.settings import load_settings
from core.store import Store
from jobs.registry import JobSpec
from jobs.scheduler import JobRunner
from listening.ingest import PostIngestor
from tests.fakebot import FakeBotAPI
from tests.hardening_helpers import captured_logs, hash_app
from web.ingest import make_ingest_app
from web.orders import make_order_webhook_app
from xianke.bot_wiring import build_runtime

pytestmark = pytest.mark.timeout(120)

TOKEN = "7391846250:AAHq3xZ_secretPART-9fK2LmN0pQrStUvWxYz"
WEBHOOK_SECRET = "wh_Secret-4f9a8b7c6d5e"
INGEST_TOKEN = "ingest-Tok3n-a8f7e6d5c4b3"
ORDERS_TOKEN = "orders-Tok3n-1a2b3c4d5e6f"
AUTHOR_SALT = "salt-9988776655-privacy"
SECRETS = [TOKEN, TOKEN.split(":", 1)[1], WEBHOOK_SECRET, INGEST_TOKEN, ORDERS_TOKEN, AUTHOR_SALT]
INJECTIONS = [
    "'); DROP TABLE users; --",
    "Robert'); DROP TABLE posts;--",
    "\" OR \"1\"=\"1",
    "1; DELETE FROM coupons WHERE 1=1; --",
    "x' UNION SELECT sqlite_version(), name FROM sqlite_master --",
    "%'; UPDATE users SET banned = 1; --",
]


def leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def test_settings_never_print_their_secrets(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, telegram_token=TOKEN, webhook_secret=WEBHOOK_SECRET, ingest_token=INGEST_TOKEN,
        orders_token=ORDERS_TOKEN, author_salt=AUTHOR_SALT,
    )
    assert leaked(repr(settings)) == [] and leaked(str(settings)) == []
    assert leaked(json.dumps(settings.model_dump(mode="json"), default=str)) == []


async def test_bot_webhook_ingest_orders_and_jobs_never_log_a_secret(tmp_path: Path) -> None:
    app = hash_app(tmp_path, telegram_token=TOKEN, webhook_secret=WEBHOOK_SECRET, ingest_token=INGEST_TOKEN,
                   orders_token=ORDERS_TOKEN, author_salt=AUTHOR_SALT)
    with captured_logs(logging.DEBUG) as logs:
        # 1. the bot on long polling, with a failing send (error handler + trace) and a 429
        runtime = build_runtime(app, index_dir=tmp_path / "index")
        async with FakeBotAPI(token=TOKEN) as api:
            bot = make_bot(TOKEN, api.base_url)
            task = asyncio.create_task(run_polling(bot, runtime.dispatcher, handle_signals=False, polling_timeout=1))
            await api.wait_for_poll(timeout=30)
            api.fail_next("sendMessage", 400, "Bad Request: chat not found")
            for n, text in enumerate(["/start", "想学川菜", f"my token is {TOKEN}", "/mydata"]):
                target = runtime.stats.processed + 1
                api.push_message(5000 + n, text)
                await runtime.stats.wait_processed(target, timeout=30)
            api.fail_next("sendMessage", 429, retry_after=1)
            target = runtime.stats.processed + 1
            api.push_message(5100, "/help")
            await runtime.stats.wait_processed(target, timeout=30)
            await runtime.dispatcher.stop_polling()
            await task
            assert any(TOKEN in c.params.get("text", "") for c in api.calls("sendMessage")) is False
            assert runtime.stats.errors, "the failing send should have reached the error handler"

            # 2. the webhook app: right, wrong, missing and non-ASCII secrets
            web_app = make_webhook_app(bot, runtime.dispatcher, url="https://bot.example.com/tg", path="/tg",
                                       secret=WEBHOOK_SECRET)
            server = TestServer(web_app)
            await server.start_server()
            update = {"update_id": 900001, "message": {"message_id": 1, "date": 1790000000,
                      "chat": {"id": 5200, "type": "private"}, "from": {"id": 5200, "is_bot": False, "first_name": "W"},
                      "text": "/help"}}
            statuses = {}
            async with ClientSession() as client:
                for name, header in (("right", WEBHOOK_SECRET), ("wrong", WEBHOOK_SECRET + "x"), ("missing", None),
                                     ("non-ascii", "sécret-é")):
                    headers = {"X-Telegram-Bot-Api-Secret-Token": header} if header is not None else {}
                    update["update_id"] += 1
                    async with client.post(server.make_url("/tg"), json=update, headers=headers) as resp:
                        statuses[name] = resp.status
                async with client.get(server.make_url("/healthz")) as resp:
                    assert resp.status == 200
                async with client.get(server.make_url("/metrics")) as resp:
                    body = await resp.text()
                    assert resp.status == 200 and "xianke_updates_total" in body and leaked(body) == []
            await server.close()
            assert statuses == {"right": 200, "wrong": 401, "missing": 401, "non-ascii": 401}
            await bot.session.close()
        runtime.close()

        # 3. ingest and order endpoints with right and wrong tokens
        for factory, token, path, body in (
            (lambda: make_ingest_app(lambda: Store(app.settings.database_path), INGEST_TOKEN, salt=AUTHOR_SALT.encode()),
             INGEST_TOKEN, "/v1/posts",
             [{"source": "weibo", "external_id": "1", "text": "好吃", "created_at": "2026-11-20", "author": "a"}]),
            (lambda: make_order_webhook_app(lambda: Store(app.settings.database_path), ORDERS_TOKEN),
             ORDERS_TOKEN, "/v1/orders", {"external_id": "o-1", "user_id": 5000, "total_cents": 100}),
        ):
            server = TestServer(factory())
            await server.start_server()
            async with ClientSession() as client:
                for header in (f"Bearer {token}", f"Bearer {token[:-1]}", f"Bearer {TOKEN}"):
                    async with client.post(server.make_url(path), json=body, headers={"Authorization": header}) as resp:
                        assert resp.status in (200, 401, 422)
            await server.close()

        # 4. a job that fails with the token in its error message (a realistic URL in an exception)
        def failing(ctx: Any) -> dict[str, int]:
            raise RuntimeError(f"cannot reach https://api.telegram.org/bot{TOKEN}/getMe (token={INGEST_TOKEN})")

        runner = JobRunner(app.settings, app.open_store, specs={"boom": JobSpec(failing, None, "x")})  # type: ignore[arg-type]
        assert runner.run("boom").status == "error"
    text = logs.text()
    assert len(logs.lines) > 20, "the scenario should have produced plenty of log lines"
    assert "update failed" in text and "job failed" in text
    assert leaked(text) == [], [line for line in logs.lines if leaked(line)][:3]


def test_every_secret_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each endpoint's check goes through hmac.compare_digest (spied), for right and wrong secrets."""
    calls: list[str] = []
    real = __import__("hmac").compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append(type(a).__name__)
        return real(a, b)

    for module in (bot.security, web.ingest):
        monkeypatch.setattr(module.hmac, "compare_digest", spy)
    assert bot.security.secret_matches("abc", "abc") and not bot.security.secret_matches("abd", "abc")
    assert not bot.security.secret_matches("é", "abc") and not bot.security.secret_matches(None, "abc")

    class FakeRequest:
        def __init__(self, header: str) -> None:
            self.headers = {"Authorization": header}

    assert web.ingest.bearer_matches(FakeRequest(f"Bearer {ORDERS_TOKEN}"), ORDERS_TOKEN.encode())  # type: ignore[arg-type]
    assert not web.ingest.bearer_matches(FakeRequest("Bearer nope"), ORDERS_TOKEN.encode())  # type: ignore[arg-type]
    assert len(calls) == 6 and set(calls) == {"bytes"}
    # Both webhooks (ingest, orders) authorise through the one shared reader, never with == / !=.
    import inspect

    for endpoint in (web.ingest.make_ingest_app, web.orders.make_order_webhook_app):
        source = inspect.getsource(endpoint)
        assert "read_authorized_json(" in source and "== expected" not in source and "!= expected" not in source


def test_sql_injection_strings_are_stored_and_returned_verbatim(store: Store) -> None:
    tables_before = sorted(r[0] for r in store.db.execute("SELECT name FROM sqlite_master"))
    users, events = UserRepository(store), EventRepository(store)
    coupons = CouponRepository(store, events)
    for n, evil in enumerate(INJECTIONS, start=1):
        # user names
        row = users.ensure(n, first_name=evil, username=evil)
        assert (row["first_name"], row["username"]) == (evil, evil)
        # coupon codes in redemption attempts: refused as unknown, nothing touched
        result = coupons.redeem(evil, user_id=n, spend_cents=10_000)
        assert not result.ok and result.reason == "unknown"
        # campaign names
        campaign = CampaignRepository(store).create(Campaign.build(slug=f"inj{n}", name=evil[:100]))
        assert CampaignRepository(store).get(campaign.campaign_id).name == evil[:100]  # type: ignore[union-attr]
    # post texts
    report = PostIngestor(store, b"salt").ingest_records(
        [{"source": "weibo", "external_id": f"e{n}", "text": f"{evil} 第{n}条", "created_at": "2026-11-20T10:00:00+08:00",
          "author": evil} for n, evil in enumerate(INJECTIONS)]
    )
    assert report.added == len(INJECTIONS)
    assert [r["text"] for r in store.query("SELECT text FROM posts ORDER BY id")] == [
        f"{evil} 第{n}条" for n, evil in enumerate(INJECTIONS)]
    # catalog fields
    catalog = CatalogRepository(store)
    catalog.upsert(CatalogBundle(
        courses=[Course(slug=f"course/inj-{n}", title=evil, summary=evil, lecturer=evil[:80], tags=[evil])
                 for n, evil in enumerate(INJECTIONS)],
        ingredients=[Ingredient(slug=f"ingredient/inj-{n}", name=evil, description=evil) for n, evil in enumerate(INJECTIONS)],
    ))
    assert [c["title"] for c in catalog.courses()] == INJECTIONS
    assert {c["tags"][0] for c in catalog.courses()} == set(INJECTIONS)
    assert [i["name"] for i in catalog.ingredients()] == INJECTIONS
    # nothing was dropped, deleted or altered
    assert sorted(r[0] for r in store.db.execute("SELECT name FROM sqlite_master")) == tables_before
    assert store.scalar("SELECT count(*) FROM users") == len(INJECTIONS)
    assert store.scalar("SELECT count(*) FROM users WHERE banned = 1") == 0
    assert store.integrity_problems() == []
