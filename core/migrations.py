"""Versioned schema migrations. Append new ones; never edit an applied one.

Each migration is a list of statements run in one transaction and recorded in
`schema_migrations`, so start-up can apply pending ones idempotently.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


_CATALOG = (
    """CREATE TABLE courses (
        id INTEGER PRIMARY KEY,
        slug TEXT NOT NULL UNIQUE CHECK (slug LIKE 'course/%'),
        title TEXT NOT NULL,
        summary TEXT NOT NULL DEFAULT '',
        cuisine TEXT NOT NULL DEFAULT '',
        level TEXT NOT NULL DEFAULT 'beginner' CHECK (level IN ('beginner','intermediate','advanced')),
        diet_tags TEXT NOT NULL DEFAULT '[]',
        lecturer TEXT NOT NULL DEFAULT '',
        price_cents INTEGER NOT NULL DEFAULT 0 CHECK (price_cents >= 0),
        duration_min INTEGER NOT NULL DEFAULT 0 CHECK (duration_min >= 0),
        outline TEXT NOT NULL DEFAULT '[]',
        tags TEXT NOT NULL DEFAULT '[]',
        active INTEGER NOT NULL DEFAULT 1,
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    )""",
    """CREATE TABLE lessons (
        id INTEGER PRIMARY KEY,
        course_id INTEGER NOT NULL REFERENCES courses(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        title TEXT NOT NULL,
        UNIQUE (course_id, position)
    )""",
    """CREATE TABLE ingredients (
        id INTEGER PRIMARY KEY,
        slug TEXT NOT NULL UNIQUE CHECK (slug LIKE 'ingredient/%'),
        name TEXT NOT NULL,
        category TEXT NOT NULL DEFAULT '',
        unit TEXT NOT NULL DEFAULT '份',
        price_cents INTEGER NOT NULL DEFAULT 0 CHECK (price_cents >= 0),
        stock INTEGER NOT NULL DEFAULT 0 CHECK (stock >= 0),
        season TEXT NOT NULL DEFAULT '[]',
        allergens TEXT NOT NULL DEFAULT '[]',
        aliases TEXT NOT NULL DEFAULT '[]',
        shelf_life_days INTEGER,
        description TEXT NOT NULL DEFAULT '',
        active INTEGER NOT NULL DEFAULT 1,
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    )""",
    """CREATE TABLE recipes (
        id INTEGER PRIMARY KEY,
        slug TEXT NOT NULL UNIQUE CHECK (slug LIKE 'recipe/%'),
        title TEXT NOT NULL,
        course_id INTEGER REFERENCES courses(id) ON DELETE SET NULL,
        cuisine TEXT NOT NULL DEFAULT '',
        diet_tags TEXT NOT NULL DEFAULT '[]',
        summary TEXT NOT NULL DEFAULT ''
    )""",
    """CREATE TABLE recipe_ingredients (
        recipe_id INTEGER NOT NULL REFERENCES recipes(id) ON DELETE CASCADE,
        ingredient_id INTEGER NOT NULL REFERENCES ingredients(id) ON DELETE CASCADE,
        quantity TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (recipe_id, ingredient_id)
    )""",
    """CREATE TABLE kits (
        id INTEGER PRIMARY KEY,
        slug TEXT NOT NULL UNIQUE CHECK (slug LIKE 'kit/%'),
        title TEXT NOT NULL,
        course_id INTEGER REFERENCES courses(id) ON DELETE SET NULL,
        price_cents INTEGER NOT NULL DEFAULT 0 CHECK (price_cents >= 0),
        servings INTEGER NOT NULL DEFAULT 2,
        description TEXT NOT NULL DEFAULT '',
        diet_tags TEXT NOT NULL DEFAULT '[]',
        active INTEGER NOT NULL DEFAULT 1,
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    )""",
    """CREATE TABLE kit_items (
        kit_id INTEGER NOT NULL REFERENCES kits(id) ON DELETE CASCADE,
        ingredient_id INTEGER NOT NULL REFERENCES ingredients(id) ON DELETE RESTRICT,
        quantity TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (kit_id, ingredient_id)
    )""",
)

_PEOPLE = (
    """CREATE TABLE users (
        id INTEGER PRIMARY KEY,               -- Telegram user id
        username TEXT,
        first_name TEXT NOT NULL DEFAULT '',
        language TEXT NOT NULL DEFAULT 'zh',
        profile TEXT NOT NULL DEFAULT '{}',   -- diet, taste, level, allergens, budget
        consents TEXT NOT NULL DEFAULT '{}',
        roles TEXT NOT NULL DEFAULT '[]',
        referral_code TEXT UNIQUE,
        referred_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
        opted_out INTEGER NOT NULL DEFAULT 0,
        blocked_bot INTEGER NOT NULL DEFAULT 0,
        banned INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    )""",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
        kind TEXT NOT NULL,
        item_slug TEXT,
        campaign_id INTEGER REFERENCES campaigns(id) ON DELETE SET NULL,
        payload TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    )""",
    "CREATE INDEX events_user ON events(user_id, created_at)",
    "CREATE INDEX events_kind ON events(kind, created_at)",
    # Events are append-only: history is evidence for campaign effects.
    """CREATE TRIGGER events_no_update BEFORE UPDATE OF kind, item_slug, payload, created_at ON events
       BEGIN SELECT RAISE(ABORT, 'events are append-only'); END""",
    """CREATE TABLE processed_updates (
        update_id INTEGER PRIMARY KEY,
        processed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    )""",
    """CREATE TABLE fsm_state (
        key TEXT PRIMARY KEY,
        state TEXT,
        data TEXT NOT NULL DEFAULT '{}',
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    )""",
)

_COMMERCE = (
    """CREATE TABLE campaigns (
        id INTEGER PRIMARY KEY,
        slug TEXT NOT NULL UNIQUE CHECK (length(slug) BETWEEN 1 AND 64),
        name TEXT NOT NULL,
        channel TEXT NOT NULL DEFAULT 'qr',
        starts_at TEXT,
        ends_at TEXT,
        cost_cents INTEGER NOT NULL DEFAULT 0 CHECK (cost_cents >= 0),
        segment TEXT NOT NULL DEFAULT '{}',
        keywords TEXT NOT NULL DEFAULT '[]',
        holdout_pct REAL NOT NULL DEFAULT 0 CHECK (holdout_pct >= 0 AND holdout_pct < 100),
        coupon_rule TEXT NOT NULL DEFAULT '{}',
        attribution_days INTEGER NOT NULL DEFAULT 7,
        created_by INTEGER,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    )""",
    """CREATE TABLE campaign_assignments (
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        arm TEXT NOT NULL CHECK (arm IN ('treatment','holdout')),
        assigned_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        send_status TEXT NOT NULL DEFAULT 'pending',
        sent_at TEXT,
        PRIMARY KEY (campaign_id, user_id)
    )""",
    """CREATE TABLE coupons (
        id INTEGER PRIMARY KEY,
        code TEXT NOT NULL UNIQUE,
        user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
        campaign_id INTEGER REFERENCES campaigns(id) ON DELETE SET NULL,
        rule TEXT NOT NULL DEFAULT '',
        target_type TEXT NOT NULL DEFAULT 'any' CHECK (target_type IN ('any','course','kit','ingredient')),
        discount_cents INTEGER NOT NULL DEFAULT 0,
        min_spend_cents INTEGER NOT NULL DEFAULT 0,
        issued_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        expires_at TEXT,
        redeemed_at TEXT,
        order_id INTEGER REFERENCES orders(id) ON DELETE SET NULL,
        status TEXT NOT NULL DEFAULT 'issued' CHECK (status IN ('issued','redeemed','expired','revoked'))
    )""",
    "CREATE UNIQUE INDEX coupons_one_per_campaign ON coupons(user_id, campaign_id) WHERE campaign_id IS NOT NULL",
    """CREATE TABLE orders (
        id INTEGER PRIMARY KEY,
        external_id TEXT NOT NULL UNIQUE,
        user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
        coupon_code TEXT,
        total_cents INTEGER NOT NULL DEFAULT 0 CHECK (total_cents >= 0),
        source TEXT NOT NULL DEFAULT 'import',
        created_at TEXT NOT NULL
    )""",
    "CREATE INDEX orders_user ON orders(user_id, created_at)",
    """CREATE TABLE order_items (
        order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
        item_slug TEXT NOT NULL,
        quantity INTEGER NOT NULL DEFAULT 1 CHECK (quantity > 0),
        price_cents INTEGER NOT NULL DEFAULT 0 CHECK (price_cents >= 0),
        PRIMARY KEY (order_id, item_slug)
    )""",
)

_LISTENING = (
    """CREATE TABLE posts (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        external_id TEXT NOT NULL,
        text TEXT NOT NULL,
        text_norm TEXT NOT NULL DEFAULT '',
        text_hash TEXT NOT NULL,
        author_hash TEXT,
        tags TEXT NOT NULL DEFAULT '[]',
        lang TEXT,
        created_at TEXT NOT NULL,
        ingested_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        sentiment TEXT CHECK (sentiment IN ('positive','neutral','negative')),
        sentiment_score REAL,
        aspects TEXT NOT NULL DEFAULT '[]',
        topic_id INTEGER REFERENCES topics(id) ON DELETE SET NULL,
        embedding BLOB,
        analyzed_at TEXT,
        UNIQUE (source, external_id)
    )""",
    "CREATE UNIQUE INDEX posts_text_hash ON posts(text_hash)",
    "CREATE INDEX posts_created ON posts(created_at)",
    """CREATE TABLE topics (
        id INTEGER PRIMARY KEY,
        label TEXT NOT NULL,
        keywords TEXT NOT NULL DEFAULT '[]',
        centroid BLOB,
        size INTEGER NOT NULL DEFAULT 0,
        first_run_id INTEGER,
        last_run_id INTEGER,
        emerging INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE topic_runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        n_posts INTEGER NOT NULL DEFAULT 0,
        n_topics INTEGER NOT NULL DEFAULT 0,
        params TEXT NOT NULL DEFAULT '{}'
    )""",
    """CREATE TABLE sentiment_corrections (
        id INTEGER PRIMARY KEY,
        post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
        label TEXT NOT NULL CHECK (label IN ('positive','neutral','negative')),
        marketer_id INTEGER,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        UNIQUE (post_id, marketer_id)
    )""",
    """CREATE TABLE ingest_files (
        path TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL,
        rows_done INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'running',
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    )""",
)

_SUPPORT_AND_OPS = (
    """CREATE TABLE tickets (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open','assigned','closed')),
        thread_id INTEGER,
        assignee_id INTEGER,
        opened_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        first_response_at TEXT,
        closed_at TEXT,
        last_customer_at TEXT,
        last_staff_at TEXT,
        sla_reminded_at TEXT,
        rating INTEGER CHECK (rating BETWEEN 1 AND 5),
        rating_comment TEXT,
        delivery_error TEXT
    )""",
    "CREATE INDEX tickets_user ON tickets(user_id, status)",
    """CREATE TABLE ticket_messages (
        id INTEGER PRIMARY KEY,
        ticket_id INTEGER NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
        direction TEXT NOT NULL CHECK (direction IN ('in','out')),
        customer_message_id INTEGER,
        staff_message_id INTEGER,
        kind TEXT NOT NULL DEFAULT 'text',
        text TEXT,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    )""",
    "CREATE INDEX ticket_messages_staff ON ticket_messages(staff_message_id)",
    "CREATE INDEX ticket_messages_customer ON ticket_messages(customer_message_id)",
    """CREATE TABLE canned_replies (
        key TEXT PRIMARY KEY,
        text TEXT NOT NULL,
        updated_by INTEGER,
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    )""",
    """CREATE TABLE digests (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('daily','weekly','adhoc')),
        period_start TEXT NOT NULL,
        period_end TEXT NOT NULL,
        text TEXT NOT NULL,
        chart_path TEXT,
        payload TEXT NOT NULL DEFAULT '{}',
        sent_at TEXT
    )""",
    """CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        dedupe_key TEXT NOT NULL UNIQUE,
        fired_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        payload TEXT NOT NULL DEFAULT '{}',
        sent_at TEXT
    )""",
    """CREATE TABLE job_runs (
        id INTEGER PRIMARY KEY,
        job TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running','ok','error')),
        counts TEXT NOT NULL DEFAULT '{}',
        error TEXT
    )""",
    "CREATE INDEX job_runs_job ON job_runs(job, started_at)",
)

# Listening pipeline, part 2: where a post came from, which encoder made its vector (vectors from
# another model must be recomputed), example posts per topic, APScheduler's persistent job store
# (same columns as APScheduler's own SQLAlchemy store, so the layout is familiar) and run durations.
_LISTENING_PIPELINE = (
    "ALTER TABLE posts ADD COLUMN url TEXT",
    "ALTER TABLE posts ADD COLUMN embedding_model TEXT",
    "CREATE INDEX posts_unanalyzed ON posts(id) WHERE analyzed_at IS NULL",
    "CREATE INDEX posts_topic ON posts(topic_id)",
    "ALTER TABLE topics ADD COLUMN examples TEXT NOT NULL DEFAULT '[]'",
    """CREATE TABLE scheduler_jobs (
        id TEXT PRIMARY KEY,
        next_run_time REAL,
        job_state BLOB NOT NULL
    )""",
    "CREATE INDEX scheduler_jobs_next ON scheduler_jobs(next_run_time)",
    "ALTER TABLE job_runs ADD COLUMN duration_s REAL",
)

# Digests and alerts (issue 7): one scheduled digest per (kind, period) even if two schedulers race,
# and per-chat delivery records so a re-run only retries the chats that did not get the message.
_DIGESTS_V2 = (
    """CREATE UNIQUE INDEX digests_kind_period ON digests(kind, period_start, period_end)
       WHERE kind <> 'adhoc'""",
    "ALTER TABLE digests ADD COLUMN deliveries TEXT NOT NULL DEFAULT '{}'",
    "ALTER TABLE alerts ADD COLUMN deliveries TEXT NOT NULL DEFAULT '{}'",
    "CREATE INDEX alerts_fired ON alerts(fired_at)",
)

# Campaigns, part 2 (issue 7): the broadcast text is stored with the campaign so an interrupted send
# resumes with the same message; each assignment remembers how it was made (deep-link entry,
# broadcast plan, purchase rule), when its send was claimed, the Telegram message id and the last
# delivery error. Reports are kept so the CLI, the bot and digests show the latest estimates without
# refitting. The indexes serve the broadcaster's pending walk, attribution lookups and coupon expiry.
_CAMPAIGNS_V2 = (
    "ALTER TABLE campaigns ADD COLUMN broadcast_text TEXT",
    "ALTER TABLE campaigns ADD COLUMN broadcast_html INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE campaigns ADD COLUMN updated_at TEXT",
    "ALTER TABLE campaign_assignments ADD COLUMN source TEXT NOT NULL DEFAULT 'broadcast'",
    "ALTER TABLE campaign_assignments ADD COLUMN claimed_at TEXT",
    "ALTER TABLE campaign_assignments ADD COLUMN message_id INTEGER",
    "ALTER TABLE campaign_assignments ADD COLUMN send_error TEXT",
    "CREATE INDEX campaign_assignments_status ON campaign_assignments(campaign_id, send_status, user_id)",
    "CREATE INDEX events_campaign ON events(campaign_id, kind, created_at)",
    "CREATE INDEX events_user_kind ON events(user_id, kind, created_at)",
    "CREATE INDEX coupons_due ON coupons(status, expires_at)",
    "CREATE INDEX orders_created ON orders(created_at)",
    """CREATE TABLE campaign_reports (
        id INTEGER PRIMARY KEY,
        campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        computed_at TEXT NOT NULL,
        payload TEXT NOT NULL DEFAULT '{}'
    )""",
    "CREATE INDEX campaign_reports_latest ON campaign_reports(campaign_id, computed_at)",
)

# Referrals (推荐有奖): one row per referred friend (the primary key is the one-reward-per-friend
# guarantee), with each funnel step's time, the outcome and both coupons; notices are marked when sent.
_REFERRALS = (
    """CREATE TABLE referrals (
        friend_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        referrer_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        code TEXT NOT NULL,
        joined_at TEXT NOT NULL,
        onboarded_at TEXT,
        purchased_at TEXT,
        order_id INTEGER REFERENCES orders(id) ON DELETE SET NULL,
        status TEXT NOT NULL DEFAULT 'joined' CHECK (status IN ('joined','rewarded','refused')),
        refused_reason TEXT,
        decided_at TEXT,
        referrer_coupon TEXT,
        friend_coupon TEXT,
        referrer_notified_at TEXT,
        friend_notified_at TEXT,
        CHECK (friend_id <> referrer_id)
    )""",
    "CREATE INDEX referrals_referrer ON referrals(referrer_id, status, decided_at)",
    "CREATE INDEX referrals_joined ON referrals(joined_at)",
    "CREATE INDEX users_referred_by ON users(referred_by)",
    "CREATE INDEX sentiment_corrections_post ON sentiment_corrections(post_id, created_at)",
)

# Support, part 2 (issue 5): at most one open ticket per customer (the partial unique index is the
# guarantee, not application code), lookups by forum topic, the SLA scan's "waiting since" episode,
# who closed a ticket and why it was opened, when the customer last saw a status line, the rating time,
# and the message-id map read per ticket in order.
_SUPPORT_V2 = (
    "CREATE UNIQUE INDEX tickets_one_open ON tickets(user_id) WHERE status <> 'closed'",
    "CREATE INDEX tickets_thread ON tickets(thread_id)",
    "ALTER TABLE tickets ADD COLUMN reason TEXT NOT NULL DEFAULT 'handoff'",
    "ALTER TABLE tickets ADD COLUMN assignee_name TEXT",
    "ALTER TABLE tickets ADD COLUMN waiting_since TEXT",
    "ALTER TABLE tickets ADD COLUMN closed_by TEXT",
    "ALTER TABLE tickets ADD COLUMN rated_at TEXT",
    "ALTER TABLE tickets ADD COLUMN customer_status TEXT",
    "ALTER TABLE tickets ADD COLUMN customer_status_at TEXT",
    "CREATE INDEX tickets_waiting ON tickets(waiting_since) WHERE status <> 'closed'",
    "CREATE INDEX tickets_opened ON tickets(opened_at)",
    "CREATE INDEX ticket_messages_ticket ON ticket_messages(ticket_id, id)",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "catalog", _CATALOG),
    Migration(2, "people_and_events", _PEOPLE),
    Migration(3, "commerce", _COMMERCE),
    Migration(4, "listening", _LISTENING),
    Migration(5, "support_and_ops", _SUPPORT_AND_OPS),
    Migration(6, "listening_pipeline", _LISTENING_PIPELINE),
    Migration(7, "campaigns_v2", _CAMPAIGNS_V2),
    Migration(8, "digests_v2", _DIGESTS_V2),
    Migration(9, "support_v2", _SUPPORT_V2),
    Migration(11, "referrals", _REFERRALS),
)

# Privacy and retention (issue 8). /forget must be able to anonymise history that is otherwise
# append-only: the replaced trigger still rejects every change of an event's content, except the two
# anonymising updates core.privacy makes — clearing user_id together with the payload (the person's
# own events), or nulling the customer-id keys inside another person's payload (e.g. a referrer's
# reward event naming the friend). Kind, item and time never change, so aggregates survive.
# `posts.purged_at` marks raw text removed by the retention job (sentiment, topic and time are kept
# for trends); `users.forgotten_at` marks the tombstone row that keeps a forgotten customer's support
# tickets (text scrubbed) countable without any personal data.
_PRIVACY = (
    "DROP TRIGGER events_no_update",
    """CREATE TRIGGER events_no_update BEFORE UPDATE OF kind, item_slug, payload, created_at ON events
       WHEN NOT (
           NEW.kind IS OLD.kind AND NEW.item_slug IS OLD.item_slug AND NEW.created_at IS OLD.created_at
           AND (
               (NEW.user_id IS NULL AND NEW.payload = '{}')
               OR (NEW.user_id IS OLD.user_id AND json_valid(OLD.payload) AND NEW.payload = json_replace(
                   OLD.payload, '$.user_id', NULL, '$.friend_id', NULL, '$.referrer_id', NULL,
                   '$.customer_id', NULL))
           )
       )
       BEGIN SELECT RAISE(ABORT, 'events are append-only (only anonymisation may clear them)'); END""",
    "ALTER TABLE posts ADD COLUMN purged_at TEXT",
    "CREATE INDEX posts_unpurged ON posts(created_at) WHERE purged_at IS NULL",
    "ALTER TABLE users ADD COLUMN forgotten_at TEXT",
)

MIGRATIONS = (*MIGRATIONS, Migration(12, "privacy_and_retention", _PRIVACY))

# Checkout in the chat (issue 14). A cart per customer (lines by catalog slug, an applied coupon), a
# checkout per invoice sent (its priced lines frozen, so pre-checkout can tell a price change), short
# stock holds for perishable ingredients between pre-checkout and payment, course enrolments, and on
# orders: a status (paid → packed → shipped → delivered, enrolled for courses, refund_due when a paid
# order cannot be fulfilled), the currency and amount actually paid, and Telegram's charge ids (the
# unique index is the idempotency guarantee for a successful_payment delivered twice). Courses get a
# Stars price (XTR) for Telegram's digital-goods rule; existing rows are backfilled from the yuan price.
_CHECKOUT = (
    "ALTER TABLE courses ADD COLUMN stars_price INTEGER CHECK (stars_price IS NULL OR stars_price > 0)",
    "UPDATE courses SET stars_price = max(1, (price_cents * 7 + 99) / 100) WHERE stars_price IS NULL",
    """CREATE TABLE carts (
        user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        coupon_code TEXT,
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    )""",
    """CREATE TABLE cart_items (
        user_id INTEGER NOT NULL REFERENCES carts(user_id) ON DELETE CASCADE,
        item_slug TEXT NOT NULL,
        quantity INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 99),
        added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        PRIMARY KEY (user_id, item_slug)
    )""",
    """CREATE TABLE checkouts (
        id INTEGER PRIMARY KEY,
        user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
        currency TEXT NOT NULL CHECK (currency IN ('CNY','XTR')),
        lines TEXT NOT NULL DEFAULT '[]',
        coupon_code TEXT,
        discount INTEGER NOT NULL DEFAULT 0 CHECK (discount >= 0),
        items_total INTEGER NOT NULL CHECK (items_total >= 0),
        status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open','paid','superseded')),
        order_id INTEGER REFERENCES orders(id) ON DELETE SET NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    )""",
    "CREATE INDEX checkouts_user ON checkouts(user_id, status)",
    """CREATE TABLE stock_holds (
        checkout_id INTEGER NOT NULL REFERENCES checkouts(id) ON DELETE CASCADE,
        ingredient_id INTEGER NOT NULL REFERENCES ingredients(id) ON DELETE CASCADE,
        quantity INTEGER NOT NULL CHECK (quantity > 0),
        expires_at TEXT NOT NULL,
        PRIMARY KEY (checkout_id, ingredient_id)
    )""",
    "CREATE INDEX stock_holds_ingredient ON stock_holds(ingredient_id, expires_at)",
    """CREATE TABLE enrolments (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        course_id INTEGER NOT NULL REFERENCES courses(id) ON DELETE CASCADE,
        order_id INTEGER REFERENCES orders(id) ON DELETE SET NULL,
        enrolled_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
        PRIMARY KEY (user_id, course_id)
    )""",
    "ALTER TABLE orders ADD COLUMN status TEXT NOT NULL DEFAULT 'paid'",
    "ALTER TABLE orders ADD COLUMN status_at TEXT",
    "ALTER TABLE orders ADD COLUMN currency TEXT NOT NULL DEFAULT 'CNY'",
    "ALTER TABLE orders ADD COLUMN paid_amount INTEGER",
    "ALTER TABLE orders ADD COLUMN telegram_charge_id TEXT",
    "ALTER TABLE orders ADD COLUMN provider_charge_id TEXT",
    "ALTER TABLE orders ADD COLUMN delivery TEXT NOT NULL DEFAULT '{}'",
    "CREATE UNIQUE INDEX orders_telegram_charge ON orders(telegram_charge_id) WHERE telegram_charge_id IS NOT NULL",
)

MIGRATIONS = (*MIGRATIONS, Migration(14, "checkout", _CHECKOUT))
