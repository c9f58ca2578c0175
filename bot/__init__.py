"""bot: the aiogram 3 front door.

- `dialogue.DialogueService` — the customer conversation without Telegram (also behind `xianke chat`)
- `customer/` — routers by conversation area (start, profile/onboarding, shopping, support, fallback)
- `callbacks`, `keyboards`, `texts` (zh-CN + en), `cards` — what the user sees and presses
- `middlewares` — idempotent updates, throttling, services injection, kind error replies
- `storage.SQLiteStorage` — FSM state in SQLite; `runners` — polling and webhook
"""
