"""Every sentence the customer sees, in Simplified Chinese (default) and English.

Texts are Telegram HTML. `Texts.__call__` escapes every keyword value unless it is wrapped in
`Html` (already-rendered markup such as a card), so user-supplied names can never inject tags.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"


class Html(str):
    """A string that is already safe Telegram HTML (not escaped again)."""


def language_from_telegram(code: str | None) -> str:
    """zh-hans / zh-TW / None → zh; any other Telegram language → en (our second language)."""
    if not code or code.lower().startswith("zh"):
        return "zh"
    return "en"


ZH: dict[str, str] = {
    # -- start / help / privacy / language -------------------------------------------------
    "welcome": (
        "你好，{name}！👋 我是<b>鲜课</b>小助手。\n"
        "我可以帮你：\n"
        "🎓 找适合你的烹饪课程\n"
        "🥬 挑新鲜食材和配好的食材包\n"
        "🍲 回答「牛腩配什么」这类搭配问题\n\n"
        "花 30 秒告诉我你的口味，推荐会更合你心意～"
    ),
    "welcome_back": "欢迎回来，{name}！直接告诉我想学什么、想买什么就好～",
    "btn_onboard": "🍳 设置口味（30秒）",
    "btn_browse": "先随便看看",
    "btn_lang_en": "🌐 English",
    "btn_lang_zh": "🌐 中文",
    "help": (
        "<b>怎么用鲜课小助手</b>\n"
        "• 直接说需求，比如「零基础想学川菜」「300块以内的烘焙课」「想买新鲜三文鱼」\n"
        "• 问搭配：「牛腩配什么」\n"
        "• 卡片下的按钮：👍 喜欢 · 👎 不喜欢 · 不感兴趣 · 看食材包 · 领券 · 更多\n\n"
        "/profile 修改口味和预算\n/coupons 我的优惠券\n/consult 找人工客服\n"
        "/privacy 我们保存了什么\n/lang 切换 English"
    ),
    "privacy": (
        "<b>我们保存的数据和用途</b>\n"
        "• Telegram 账号 id、昵称、语言：用来识别你、用你的语言回复\n"
        "• 口味资料（饮食、口味、水平、过敏原、预算）：让推荐更合适，过敏原一定会被过滤\n"
        "• 你发的问题和按钮操作（👍/👎/不感兴趣/领券）：改进推荐，不再推荐你不喜欢的\n"
        "• 优惠券和订单：发券、核销和统计活动效果\n\n"
        "我们不会把数据卖给任何人，也不会用它给你发垃圾消息。想删除数据或停止推送，"
        "发 /consult 联系人工客服即可。"
    ),
    "lang_set": "已切换为中文。",
    # -- onboarding ------------------------------------------------------------------------
    "onb_diet": "1/5 🥗 你有什么饮食偏好？",
    "onb_taste": "2/5 🌶 喜欢哪些口味/菜系？可多选，选好点「完成」。",
    "onb_level": "3/5 👩‍🍳 你的厨艺水平是？",
    "onb_allergens": "4/5 ⚠️ 有需要避开的过敏原吗？可多选，选好点「完成」。",
    "onb_budget": "5/5 💰 一次课程或食材的预算大概多少？也可以直接打数字，比如 200。",
    "onb_done": "✅ 设置好了！\n{summary}\n\n现在直接告诉我想学什么、想买什么吧～",
    "onb_saved": "✅ 已更新：\n{summary}",
    "onb_stale": "这一步已经完成啦，想修改请发 /profile",
    "onb_pending": "（口味设置还没完成，点上面的按钮继续，或发 /profile 重新开始～）",
    "onb_budget_bad": "没看懂这个预算～请点按钮选择，或发一个数字，比如 200。",
    "btn_skip": "跳过",
    "btn_done": "完成 ✅",
    "btn_any": "不限",
    "profile": "<b>我的口味资料</b>\n{summary}\n\n点下面的按钮单独修改，或重新设置全部。",
    "profile_empty": "你还没有设置口味资料。设置后推荐会更准～",
    "btn_edit_all": "🔄 重新设置全部",
    "btn_edit_diet": "饮食",
    "btn_edit_taste": "口味",
    "btn_edit_level": "水平",
    "btn_edit_allergens": "过敏原",
    "btn_edit_budget": "预算",
    "sum_diet": "饮食：{value}",
    "sum_taste": "口味：{value}",
    "sum_level": "水平：{value}",
    "sum_allergens": "过敏原：{value}",
    "sum_budget": "预算：{value}",
    "sum_none": "未设置",
    "sum_no_allergens": "无",
    "sum_any_budget": "不限",
    "budget_within": "{price} 以内",
    # -- recommendations -------------------------------------------------------------------
    "rec_header": "为你挑了这几样：",
    "rec_more_header": "再给你看几样：",
    "rec_none": "暂时没有找到合适的推荐，换个说法试试？比如菜名、食材或想学的菜系。",
    "rec_no_more": "没有更多了～换个说法再问问我吧。",
    "btn_like": "👍",
    "btn_dislike": "👎",
    "btn_not_interested": "不感兴趣",
    "btn_kit": "看食材包",
    "btn_coupon": "领券",
    "btn_more": "更多 ▶",
    "btn_buy_kit": "🛒 买这个食材包 {price}",
    "toast_like": "收到 👍 以后多推荐类似的",
    "toast_dislike": "收到 👎 以后不再推荐它",
    "toast_not_interested": "好的，不再推荐它",
    "stale_button": "这个按钮已经失效了，重新发一句想找的吧～",
    "stale_page": "这组推荐已经过期了，重新发一句想找的吧～",
    "item_gone": "这个商品已经下架或不存在了，看看别的吧～",
    "kit_for": "📦 《{title}》的配套食材包：",
    "kit_none": "《{title}》暂时没有配套食材包，可以看看下面这些食材～",
    "kit_none_plain": "暂时没有找到相关的食材包。",
    "kit_items": "包含：{items}",
    "buy_kit": "🛒 <b>{title}</b> {price}\n{items}\n\n在线下单即将开放；现在可以先领券，或找人工客服帮你下单。",
    # -- coupons ---------------------------------------------------------------------------
    "coupon_new": "🎟 领到啦！\n{coupon}\n\n结账时出示券码即可使用。",
    "coupon_again": "你已经领过这张券啦：\n{coupon}",
    "coupon_line": "<code>{code}</code> · {what}满{min}减{discount} · 有效期至 {until}{status}",
    "coupon_target_course": "课程",
    "coupon_target_kit": "食材包",
    "coupon_target_ingredient": "食材",
    "coupon_target_any": "全场",
    "coupons": "<b>我的优惠券</b>\n{lines}",
    "coupons_none": "你还没有优惠券。看到喜欢的课程或食材包，点卡片下的「领券」就能领～",
    "coupon_status_redeemed": "（已使用）",
    "coupon_status_expired": "（已过期）",
    "coupon_status_revoked": "（已作废）",
    # -- pairing ---------------------------------------------------------------------------
    "pair_header": "🍲 <b>{name}</b> 配什么？",
    "pair_line": "{n}. {name}{flag} — {reason}",
    "pair_out_of_season": "（非当季）",
    "pair_recipes": "可以试试：",
    "pair_kit": "🛒 一次买齐：{title} {price}",
    "pair_unknown": "没找到这个食材～试试常见叫法，比如「牛腩配什么」「番茄配什么」。",
    # -- support / small talk / unclear --------------------------------------------------
    "complaint": "非常抱歉给你带来不好的体验 🙏 我们很重视你的反馈。点下面的按钮，人工客服会尽快跟进处理。",
    "refund": "退款/售后由人工客服处理 🙏 点下面的按钮并说明订单情况，我们会尽快帮你办理。",
    "delivery": "抱歉让你久等了 🙏 物流问题请点下面的按钮联系人工客服，附上订单号会更快。",
    "handoff_offer": "需要真人帮忙的话，点下面的按钮，人工客服会尽快联系你。",
    "handoff_done": "✅ 已通知人工客服，工作时间（9:00–21:00）内会尽快在这里回复你。可以先把问题和订单号发给我。",
    "btn_handoff": "👩‍💼 人工客服",
    "greeting": "你好呀 👋 想学什么菜、想买什么食材，直接告诉我～比如「零基础学川菜」或「牛腩配什么」。",
    "thanks": "不客气 😊 还有想学的、想买的，随时问我～",
    "small_talk": "哈哈，我是鲜课的做饭小助手 🍳 聊做菜我最在行：试试「周末给孩子烤个蛋糕」或「番茄配什么」。",
    "unclear": "我没太明白你想找什么 🤔 你是想……",
    "btn_q_course": "🎓 学做菜",
    "btn_q_ingredient": "🥬 买食材",
    "btn_q_kit": "📦 看食材包",
    "btn_q_human": "👩‍💼 找人工",
    # -- bad inputs ------------------------------------------------------------------------
    "non_text": "我现在只看得懂文字哦～直接打字告诉我想学什么、想买什么吧。",
    "sticker": "😄 收到你的表情！想找课程或食材，直接打字告诉我～",
    "voice": "🎙 语音我暂时还听不懂，麻烦打字告诉我吧～",
    "photo": "📷 图片我暂时还看不懂，用文字描述一下想找什么吧～",
    "unknown_command": "没有这个命令哦～发 /help 看看我能做什么。",
    "empty": "好像是空消息～直接告诉我想学什么、想买什么吧。",
    "throttled": "你发得太快啦，稍等几秒我再回复你～",
    "error": "抱歉，出了点小问题，我们已记录下来，请稍后再试 🙏",
}

EN: dict[str, str] = {
    "welcome": (
        "Hi {name}! 👋 I'm the <b>XianKe</b> assistant.\n"
        "I can help you:\n"
        "🎓 find cooking courses that suit you\n"
        "🥬 pick fresh ingredients and ready-made kits\n"
        "🍲 answer \"what goes with beef brisket?\"\n\n"
        "Take 30 seconds to tell me your tastes and my suggestions will fit better."
    ),
    "welcome_back": "Welcome back, {name}! Just tell me what you want to cook or buy.",
    "btn_onboard": "🍳 Set my tastes (30 s)",
    "btn_browse": "Just browsing",
    "btn_lang_en": "🌐 English",
    "btn_lang_zh": "🌐 中文",
    "help": (
        "<b>How to use the XianKe assistant</b>\n"
        "• Say what you need, e.g. \"Sichuan cooking for beginners\", \"baking class under 300\"\n"
        "• Ask for pairings: \"牛腩配什么\" (what goes with brisket)\n"
        "• Card buttons: 👍 like · 👎 dislike · not interested · kit · coupon · more\n\n"
        "/profile edit tastes and budget\n/coupons my coupons\n/consult talk to a human\n"
        "/privacy what we store\n/lang 切换中文"
    ),
    "privacy": (
        "<b>What we store and why</b>\n"
        "• Telegram id, name, language: to recognise you and answer in your language\n"
        "• Taste profile (diet, cuisines, level, allergens, budget): better suggestions; allergens are always filtered\n"
        "• Your questions and button presses (👍/👎/not interested/coupons): to improve suggestions and never "
        "show what you disliked again\n"
        "• Coupons and orders: to issue and redeem coupons and measure campaigns\n\n"
        "We never sell your data or spam you. To delete your data or stop messages, send /consult."
    ),
    "lang_set": "Switched to English.",
    "onb_diet": "1/5 🥗 Any dietary preference?",
    "onb_taste": "2/5 🌶 Which cuisines do you like? Pick several, then tap Done.",
    "onb_level": "3/5 👩‍🍳 How experienced are you in the kitchen?",
    "onb_allergens": "4/5 ⚠️ Any allergens to avoid? Pick several, then tap Done.",
    "onb_budget": "5/5 💰 Rough budget per course or order? You can also type a number, e.g. 200.",
    "onb_done": "✅ All set!\n{summary}\n\nNow tell me what you'd like to cook or buy.",
    "onb_saved": "✅ Updated:\n{summary}",
    "onb_stale": "That step is already done; send /profile to change it.",
    "onb_pending": "(Your taste setup isn't finished: tap the buttons above, or send /profile to restart.)",
    "onb_budget_bad": "I didn't get that budget. Tap a button or send a number, e.g. 200.",
    "btn_skip": "Skip",
    "btn_done": "Done ✅",
    "btn_any": "Any",
    "profile": "<b>My taste profile</b>\n{summary}\n\nTap a button to change one item, or start over.",
    "profile_empty": "You haven't set your tastes yet. It makes suggestions much better.",
    "btn_edit_all": "🔄 Start over",
    "btn_edit_diet": "Diet",
    "btn_edit_taste": "Cuisines",
    "btn_edit_level": "Level",
    "btn_edit_allergens": "Allergens",
    "btn_edit_budget": "Budget",
    "sum_diet": "Diet: {value}",
    "sum_taste": "Cuisines: {value}",
    "sum_level": "Level: {value}",
    "sum_allergens": "Allergens: {value}",
    "sum_budget": "Budget: {value}",
    "sum_none": "not set",
    "sum_no_allergens": "none",
    "sum_any_budget": "any",
    "budget_within": "up to {price}",
    "rec_header": "Here are some picks for you:",
    "rec_more_header": "A few more:",
    "rec_none": "Nothing suitable yet. Try other words: a dish, an ingredient or a cuisine.",
    "rec_no_more": "That's all for this question. Ask me in other words?",
    "btn_like": "👍",
    "btn_dislike": "👎",
    "btn_not_interested": "Not for me",
    "btn_kit": "Kit",
    "btn_coupon": "Coupon",
    "btn_more": "More ▶",
    "btn_buy_kit": "🛒 Buy this kit {price}",
    "toast_like": "Got 👍 — more like this",
    "toast_dislike": "Got 👎 — won't suggest it again",
    "toast_not_interested": "OK, won't suggest it again",
    "stale_button": "This button has expired. Just ask me again.",
    "stale_page": "These suggestions have expired. Just ask me again.",
    "item_gone": "This item is no longer available. Have a look at others.",
    "kit_for": "📦 Kit for \"{title}\":",
    "kit_none": "\"{title}\" has no kit yet; here are related ingredients.",
    "kit_none_plain": "No related kit found yet.",
    "kit_items": "Contains: {items}",
    "buy_kit": (
        "🛒 <b>{title}</b> {price}\n{items}\n\nOnline checkout is coming soon; grab a coupon now or ask a "
        "human to place the order for you."
    ),
    "coupon_new": "🎟 Here you go!\n{coupon}\n\nShow the code at checkout.",
    "coupon_again": "You already have this coupon:\n{coupon}",
    "coupon_line": "<code>{code}</code> · {discount} off {what} over {min} · valid until {until}{status}",
    "coupon_target_course": "courses",
    "coupon_target_kit": "kits",
    "coupon_target_ingredient": "ingredients",
    "coupon_target_any": "everything",
    "coupons": "<b>My coupons</b>\n{lines}",
    "coupons_none": "No coupons yet. Tap \"Coupon\" under a course or kit you like.",
    "coupon_status_redeemed": " (used)",
    "coupon_status_expired": " (expired)",
    "coupon_status_revoked": " (revoked)",
    "pair_header": "🍲 What goes with <b>{name}</b>?",
    "pair_line": "{n}. {name}{flag} — {reason}",
    "pair_out_of_season": " (out of season)",
    "pair_recipes": "Try:",
    "pair_kit": "🛒 Get everything at once: {title} {price}",
    "pair_unknown": "I don't know that ingredient yet. Try a common name, e.g. 牛腩配什么.",
    "complaint": "We're very sorry about this 🙏 Tap the button below and a human will follow up soon.",
    "refund": "Refunds are handled by our staff 🙏 Tap the button below and tell us about the order.",
    "delivery": "Sorry for the wait 🙏 Tap the button below to reach a human; an order number helps.",
    "handoff_offer": "If you'd like a human to help, tap the button below.",
    "handoff_done": (
        "✅ A human colleague has been notified and will reply here during opening hours (9:00–21:00). "
        "Feel free to send the details and your order number."
    ),
    "btn_handoff": "👩‍💼 Talk to a human",
    "greeting": "Hi there 👋 Tell me what you'd like to cook or buy, e.g. \"Sichuan for beginners\".",
    "thanks": "You're welcome 😊 Ask me anytime.",
    "small_talk": "Ha, I'm XianKe's cooking assistant 🍳 Try \"bake a birthday cake\" or \"番茄配什么\".",
    "unclear": "I'm not sure what you're looking for 🤔 Do you want to…",
    "btn_q_course": "🎓 Learn to cook",
    "btn_q_ingredient": "🥬 Buy ingredients",
    "btn_q_kit": "📦 See kits",
    "btn_q_human": "👩‍💼 Talk to a human",
    "non_text": "I can only read text for now. Just type what you'd like to cook or buy.",
    "sticker": "😄 Nice sticker! Type what you're looking for and I'll help.",
    "voice": "🎙 I can't listen to voice messages yet; please type instead.",
    "photo": "📷 I can't read pictures yet; please describe what you need.",
    "unknown_command": "I don't know that command. Send /help to see what I can do.",
    "empty": "That message looks empty. Tell me what you'd like to cook or buy.",
    "throttled": "You're going a bit fast; give me a few seconds.",
    "error": "Sorry, something went wrong on our side. We've logged it; please try again shortly 🙏",
}

# Profile options: (stored value, zh label, en label). Values are what the recommender matches.
DIET_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("素食", "🥦 素食", "🥦 Vegetarian"),
    ("低脂", "🥗 低脂减脂", "🥗 Low-fat"),
    ("高蛋白", "💪 高蛋白", "💪 High-protein"),
    ("清淡", "🍵 清淡", "🍵 Light"),
    ("控糖", "🍬 控糖", "🍬 Low-sugar"),
)
LEVEL_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("beginner", "🌱 零基础/入门", "🌱 Beginner"),
    ("intermediate", "🍳 有点基础", "🍳 Intermediate"),
    ("advanced", "👨‍🍳 进阶高手", "👨‍🍳 Advanced"),
)
ALLERGEN_EN = {
    "花生": "Peanut", "坚果": "Tree nuts", "乳制品": "Dairy", "鸡蛋": "Egg", "大豆": "Soy",
    "小麦/麸质": "Wheat/gluten", "鱼类": "Fish", "甲壳类": "Crustaceans", "贝类": "Shellfish", "芝麻": "Sesame",
}
TASTE_EN = {
    "川菜": "Sichuan", "粤菜": "Cantonese", "湘菜": "Hunan", "江浙菜": "Jiangzhe", "鲁菜": "Shandong",
    "家常菜": "Home-style", "烘焙": "Baking", "西餐": "Western", "日料": "Japanese", "东南亚": "SE Asian",
    "面点": "Dumplings & noodles", "甜品": "Desserts", "甜品饮品": "Desserts & drinks", "火锅": "Hotpot",
    "韩餐": "Korean", "东南亚菜": "SE Asian", "东北菜": "Dongbei", "西北面食": "Northwest noodles",
}
BUDGET_OPTIONS_YUAN: tuple[int, ...] = (100, 200, 500)


class Texts:
    """Looks up `key` in the user's language (falling back to Chinese) and fills it in safely."""

    def __init__(self, catalogs: Mapping[str, Mapping[str, str]] | None = None):
        self.catalogs = dict(catalogs or {"zh": ZH, "en": EN})

    def __call__(self, lang: str, key: str, /, **values: object) -> str:
        table = self.catalogs.get(lang) or self.catalogs[DEFAULT_LANGUAGE]
        template = table.get(key) or self.catalogs[DEFAULT_LANGUAGE][key]
        if not values:
            return template
        safe = {k: v if isinstance(v, Html) else escape(str(v), quote=False) for k, v in values.items()}
        return template.format(**safe)

    def label(self, lang: str, option: tuple[str, str, str]) -> str:
        return option[2] if lang == "en" else option[1]


def allergen_label(lang: str, allergen: str) -> str:
    return ALLERGEN_EN.get(allergen, allergen) if lang == "en" else allergen


def taste_label(lang: str, taste: str) -> str:
    return TASTE_EN.get(taste, taste) if lang == "en" else taste


def check_catalogs(catalogs: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Keys missing from a language (tests assert this is empty)."""
    base = set(catalogs[DEFAULT_LANGUAGE])
    return [f"{lang}:{key}" for lang, table in catalogs.items() for key in sorted(base - set(table))]
