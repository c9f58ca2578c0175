"""Every sentence the customer sees, in Simplified Chinese (default) and English.

Texts are Telegram HTML. `Texts.__call__` escapes every keyword value unless it is wrapped in
`Html` (already-rendered markup such as a card), so user-supplied names can never inject tags.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from bot.checkout_texts import CHECKOUT_EN, CHECKOUT_ZH

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
        "/profile 修改口味和预算\n/coupons 我的优惠券\n/invite 邀请好友，一起得券\n/consult 找人工客服\n"
        "/privacy 我们保存了什么\n/lang 切换 English"
    ),
    "privacy": (
        "<b>我们保存的数据和用途</b>\n"
        "• Telegram 账号 id、昵称、语言：用来识别你、用你的语言回复\n"
        "• 口味资料（饮食、口味、水平、过敏原、预算）：让推荐更合适，过敏原一定会被过滤\n"
        "• 你发的问题和按钮操作（👍/👎/不感兴趣/领券）：改进推荐，不再推荐你不喜欢的\n"
        "• 优惠券和订单：发券、核销和统计活动效果\n\n"
        "我们不会把数据卖给任何人，也不会用它给你发垃圾消息。\n"
        "/mydata 导出我们保存的你的全部数据 · /forget 删除你的数据 · 停止推送请发 /consult。"
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
    "btn_save_constraints": "💾 记住：{labels}",
    "constraints_saved": "已保存到你的资料：{labels}。以后的推荐都会遵守。",
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
    "button_expired": "这条消息已过期，重新发一句想找的吧～",
    "stale_page": "这组推荐已经过期了，重新发一句想找的吧～",
    "item_gone": "这个商品已经下架或不存在了，看看别的吧～",
    "kit_for": "📦 《{title}》的配套食材包：",
    "kit_none": "《{title}》暂时没有配套食材包，可以看看下面这些食材～",
    "kit_none_plain": "暂时没有找到相关的食材包。",
    "kit_items": "包含：{items}",
    "buy_kit": "🛒 <b>{title}</b> {price}\n{items}\n\n点「🛒 加购」放进购物车，在聊天里直接下单；也可以先领券，或找人工客服。",
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
    # -- live consultation (issue 5): customer side -------------------------------------------
    "consult_unavailable": "抱歉，在线人工客服暂未开通 🙏 你的需求已经记录，我们的同事会尽快跟进。",
    "sup_opened": (
        "✅ 已为你接通人工客服（工单 #{ticket}）。\n"
        "直接在这里发消息就好，文字、图片、语音、文件都可以，工作时间（9:00–21:00）内会尽快回复你。\n"
        "问题解决了可以点「结束咨询」。"
    ),
    "sup_status_open": "⏳ 你的咨询（工单 #{ticket}）正在等待客服接待，消息都已转给客服，请稍候～",
    "sup_status_assigned": "👩‍💼 客服{name}正在处理你的咨询（工单 #{ticket}），消息都已转达，请稍候～",
    "sup_assigned_customer": "👩‍💼 客服{name}已接手你的咨询，会在这里回复你。",
    "sup_btn_end": "结束咨询",
    "sup_closed_customer": "✅ 本次咨询已结束，谢谢你的耐心！\n能为这次服务打个分吗？（1 = 很不满意，5 = 非常满意）",
    "sup_rate_thanks": "谢谢你的评价：{stars}\n想再说几句吗？直接发给我就好，或点「跳过」。",
    "sup_btn_skip": "跳过",
    "sup_comment_thanks": "收到你的反馈，谢谢！🙏 以后有需要随时发 /consult 找我们。",
    "sup_comment_skipped": "好的，谢谢你！",
    "sup_rate_stale": "这次咨询已经不能评价了～",
    "sup_reopened_customer": "🔄 客服重新打开了你的咨询（工单 #{ticket}），可以继续在这里留言。",
    "sup_not_delivered": "抱歉，这条消息没能转给客服 🙏 请稍后再发一次。",
    "sup_not_confirmed": "网络不太稳定，这条消息可能没有转给客服 🙏 如果一会儿没有回复，请再发一次。",
    "sup_unsupported": "这种消息暂时没法转给客服，换成文字、图片、语音或文件试试～",
    "sup_staff_only": "这个命令仅限客服在工单话题里使用哦～需要帮助请发 /consult。",
    "sup_no_ticket": "你目前没有进行中的咨询。需要帮助请发 /consult。",
    "sup_open_failed": "抱歉，暂时无法接通人工客服 🙏 请稍后再试。",
    # -- live consultation: the staff forum topic ------------------------------------------
    "sup_h_title": "🧾 <b>工单 #{ticket}</b> · {reason}",
    "sup_h_user": "👤 {name}{username} · id <code>{user_id}</code> · {lang}",
    "sup_h_profile": "<b>口味资料</b>\n{summary}",
    "sup_h_recs": "<b>最近推荐</b>\n{lines}",
    "sup_h_events": "<b>最近动态</b>\n{lines}",
    "sup_h_coupons": "<b>可用优惠券</b>\n{lines}",
    "sup_h_history": "<b>历史工单</b>：{count} 次{rating}",
    "sup_h_rating": "，平均评分 {mean}",
    "sup_h_none": "无",
    "sup_h_recreated": "⚠️ 原话题已被删除，已为这位客户新建话题。",
    "sup_h_help": "直接发消息即回复客户 · /assign 接手 · /canned 快捷回复 · /close 结束 · /history 历史 · /ban 封禁",
    "sup_lang_zh": "中文",
    "sup_lang_en": "英文",
    "sup_r_complaint": "投诉",
    "sup_r_refund": "退款/售后",
    "sup_r_delivery": "物流",
    "sup_r_handoff": "转人工",
    "sup_r_unclear": "找人工",
    "sup_r_order": "下单",
    "sup_r_command": "/consult",
    "sup_s_open": "待接待",
    "sup_s_assigned": "处理中",
    "sup_s_closed": "已关闭",
    "sup_t_assigned": "✅ {name} 接手了工单 #{ticket}",
    "sup_t_closed": "✅ 工单 #{ticket} 已由 {name} 关闭，已请客户评分。",
    "sup_t_closed_by_customer": "🙋 客户结束了咨询，工单 #{ticket} 已关闭。",
    "sup_t_already_closed": "工单 #{ticket} 已经关闭。发送 /reopen 可以重新打开。",
    "sup_t_reopened": "🔄 工单 #{ticket} 已重新打开。",
    "sup_t_reopen_conflict": "客户已有进行中的工单 #{other}，无法重新打开 #{ticket}。",
    "sup_t_not_closed": "工单 #{ticket} 还没有关闭。",
    "sup_t_rating": "⭐ 客户评分：{stars}（{rating}/5）",
    "sup_t_comment": "💬 客户评价：{comment}",
    "sup_t_blocked": "⚠️ 消息未送达：客户已屏蔽机器人（工单 #{ticket} 已标记）。",
    "sup_t_failed": "⚠️ 消息未送达客户（工单 #{ticket} 已标记）：{error}",
    "sup_t_rate_limited": "⚠️ Telegram 限流，这条消息没有送达客户，请稍后重发。",
    "sup_t_unknown": "⚠️ 网络中断，无法确认这条消息是否已送达客户（工单 #{ticket}）；为免重复没有自动重发，如客户没有回应请再发一次。",
    "sup_t_canned_list": "<b>快捷回复</b>\n{lines}\n\n用法：/canned 关键字",
    "sup_t_canned_empty": "还没有快捷回复。管理员可以用 /canned add 关键字 内容 添加。",
    "sup_t_canned_unknown": "没有叫「{key}」的快捷回复，发 /canned 查看列表。",
    "sup_t_canned_sent": "📤 已发送快捷回复「{key}」：\n{text}",
    "sup_t_canned_saved": "✅ 快捷回复「{key}」已保存。",
    "sup_t_canned_deleted": "🗑 快捷回复「{key}」已删除。",
    "sup_t_canned_admin_only": "只有管理员可以修改快捷回复。",
    "sup_t_canned_usage": "用法：/canned add 关键字 内容，或 /canned del 关键字",
    "sup_t_canned_bad": "快捷回复没有保存：{error}",
    "sup_t_history": "<b>这位客户的工单</b>\n{lines}",
    "sup_t_history_line": "#{ticket} · {opened} · {status}{rating} · {messages} 条消息",
    "sup_t_banned": "🚫 已封禁这位客户，机器人不再回复 TA。发送 /unban 解除。",
    "sup_t_unbanned": "✅ 已解除封禁。",
    "sup_t_refused": "抱歉，只有客服团队成员可以使用这个命令。",
    "sup_t_not_ticket": "这里不是客户的工单话题，请在对应客户的话题里使用命令。",
    "sup_t_unknown_command": "未知命令，没有转给客户。可用：/assign /canned /close /reopen /history /ban /unban",
    "sup_t_unsupported": "这种消息无法转给客户。",
    "sup_t_closed_no_relay": "工单 #{ticket} 已关闭，这条消息没有转给客户。发送 /reopen 可重新打开。",
    "sup_t_customer_failed": "⚠️ 客户的一条消息没能转到这里：{error}",
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
    # -- referrals (推荐有奖) --------------------------------------------------------------------
    "btn_invite": "🎁 邀请好友得券",
    "btn_share": "📤 转发给好友",
    "invite": (
        "🎁 <b>邀请好友，一起得券</b>\n"
        "你的专属邀请链接：\n{link}\n\n"
        "好友通过链接进来、完成口味设置并首次下单后：\n"
        "• 你得到一张 {reward} 优惠券\n"
        "• 好友得到一张 {welcome} 新人券\n"
        "（每位好友只奖励一次，每天最多奖励 {cap} 位）\n\n"
        "点下面的按钮转发，或直接把下一条消息发给朋友 👇"
    ),
    "invite_card": (
        "🍳 我在用「鲜课」学做菜、买新鲜食材，推荐给你！\n"
        "点链接进来，设置好口味后首单送你 {welcome} 优惠券 🎁\n{link}"
    ),
    "ref_joined": (
        "🎁 欢迎！你是受{name}邀请来的～先点「设置口味」花 30 秒完成设置，"
        "首次下单后你会得到一张 {welcome} 新人券，{name}也会收到一份感谢券。"
    ),
    "ref_joined_ready": "🎁 欢迎！你是受{name}邀请来的～首次下单后你会得到一张 {welcome} 新人券，{name}也会收到一份感谢券。",
    "ref_already_joined": "你已经接受过{name}的邀请啦，完成口味设置并首次下单后就能领券～",
    "ref_self": "这是你自己的邀请链接哦 😄 把它转发给朋友，朋友完成设置并首单后，你们都能得到优惠券。",
    "ref_circular": "你们俩已经互相邀请过啦，邀请奖励只算一次～欢迎随便逛逛！",
    "ref_already_referred": "你之前已经接受过其他朋友的邀请啦，邀请奖励每人只能领一次～",
    "ref_existing_customer": "你已经是鲜课的老朋友啦 😊 邀请奖励是给第一次来的新朋友的，欢迎回来！",
    "ref_someone": "好友",
    # -- marketers: 判断有误 (sentiment corrections) ----------------------------------------------
    "sfix_ask": "📝 <b>纠正情感判断</b>\n{quote}\n模型判断：{model}\n这条帖子的情感应该是？",
    "sfix_done": "✅ 已记录：这条帖子应为「{label}」。谢谢！每周重训情感模型时会用上。",
    "sfix_toast": "已记录，谢谢！",
    "sfix_cancelled": "已取消，没有做任何修改。",
    "sfix_gone": "这条帖子已经不存在了。",
    "sfix_denied": "只有市场部同事可以纠正情感判断。",
    "sfix_unanalysed": "尚未分析",
    "sfix_positive": "😊 正面",
    "sfix_neutral": "😐 中性",
    "sfix_negative": "😠 负面",
    "sfix_cancel": "取消",
    # -- marketer desk (/campaigns, /campaign <slug>, the /campaign wizard) -------------------
    "mk_refused": (
        "抱歉，活动管理只对鲜课的营销同事开放 🙏 想学做菜、买食材，直接告诉我就好～\n"
        "（如果你是营销同事，请把你的 Telegram id {user_id} 发给管理员开通。）"
    ),
    "mk_refused_short": "这个按钮只对营销同事开放",
    "mk_list": "<b>营销活动</b>（最近 {n} 个）\n{lines}\n\n发 /campaign 活动代码 看详情和效果；发 /campaign 新建活动。",
    "mk_list_line": (
        "• <b>{name}</b> <code>{slug}</code> · {status} · {channel}\n"
        "   进入 {entrants} 人（活动组 {treatment} / 对照组 {holdout}）· 券 发 {issued} / 用 {redeemed} · 归因订单 {orders}"
    ),
    "mk_list_empty": "还没有活动。发 /campaign 新建一个。",
    "mk_status_running": "🟢 进行中",
    "mk_status_scheduled": "⏳ 未开始",
    "mk_status_ended": "⚪ 已结束",
    "mk_not_found": "没有代码为 {slug} 的活动。发 /campaigns 看全部活动。",
    "mk_details": (
        "<b>{name}</b> {status}\n{description}\n\n"
        "进入 {entries} 次 / {entrants} 人 · 活动组 {treatment} · 对照组 {holdout}\n"
        "券：发出 {issued}，已用 {redeemed} · 归因订单 {orders} 笔 {revenue}\n链接：{link}"
    ),
    "mk_estimates": "<b>效果评估</b>\n{text}",
    "mk_estimates_stored": "<b>效果评估</b>（{when} UTC 的评估）\n{text}",
    "mk_no_estimates": "还没有效果评估：系统每天自动评估一次，数据够了就会出现在这里和日报里。",
    "mk_wiz_name": "🆕 新建活动 1/9\n活动叫什么名字？（例如：秋季食材包扫码礼）\n随时发 /cancel 取消。",
    "mk_wiz_slug": (
        "2/9 活动代码：会出现在链接 ?start= 后面和二维码里，只能用英文字母、数字、_ 或 -。\n"
        "建议用 <code>{suggestion}</code>，点按钮直接使用，或发一个你喜欢的。"
    ),
    "mk_btn_use_slug": "用 {suggestion}",
    "mk_wiz_slug_taken": "活动代码：{slug} 已被使用，请换一个（大小写不同也算重复）",
    "mk_wiz_channel": "3/9 这个活动在哪个渠道投放？",
    "mk_wiz_starts": "4/9 哪天开始？点按钮，或发日期，例如 2026-12-01。",
    "mk_wiz_ends": "5/9 哪天结束？点按钮，或发日期（例如 2026-12-31，当天全天有效）。",
    "mk_btn_today": "今天",
    "mk_btn_tomorrow": "明天",
    "mk_btn_7d": "7 天后",
    "mk_btn_30d": "30 天后",
    "mk_btn_open_end": "长期",
    "mk_wiz_cost": "6/9 活动成本多少元？（用来算投资回报率，例如 800；没有成本发 0）",
    "mk_wiz_holdout": (
        "7/9 留多少比例的人做对照组？对照组的人不会收到券或消息，用来衡量活动的真实效果。"
        "建议 10–30%（可填 0–50）。"
    ),
    "mk_wiz_coupon": "8/9 发什么券？",
    "mk_btn_coupon_entry_course": "进店领课程券",
    "mk_btn_coupon_kit_course": "买食材包送课程券",
    "mk_btn_coupon_course_kit": "买课程送食材包折扣",
    "mk_btn_coupon_none": "不发券",
    "mk_wiz_coupon_amount": "「{rule}」优惠多少元？发金额（例如 20），或用「满100减20」设置门槛。",
    "mk_wiz_keywords": "9/9 在社交媒体上监测哪些关键词？用逗号分隔（例如：秋季食材包,鲜课），没有就点「跳过」。",
    "mk_btn_skip": "跳过",
    "mk_wiz_confirm": "请确认：\n\n{summary}\n\n没问题就点「创建」。",
    "mk_btn_create": "✅ 创建",
    "mk_btn_restart": "🔄 重填",
    "mk_btn_cancel": "取消",
    "mk_wiz_created": (
        "✅ 活动已创建：<b>{name}</b>\n链接：{link}\n"
        "二维码在下一条消息里，印在包装或海报上即可。进入的人会随机分到活动组或对照组（对照 {holdout}%）。\n"
        "随时发 /campaign {slug} 查看效果。"
    ),
    "mk_wiz_created_no_link": (
        "✅ 活动已创建：<b>{name}</b>（代码 {slug}）。\n"
        "还不知道机器人的用户名，暂时无法生成链接和二维码：请设置 XIANKE_BOT_USERNAME。"
    ),
    "mk_qr_caption": "{name}：{link}",
    "mk_wiz_invalid": "⚠️ {error}\n请重新输入。",
    "mk_wiz_bad_date": "日期：没看懂，请发「今天」「明天」或 2026-12-01 这样的日期",
    "mk_wiz_end_past": "结束时间：已经过去了，请选今天或以后的日期",
    "mk_wiz_bad_money": "活动成本：请发一个金额（元），例如 800 或 0",
    "mk_wiz_bad_percent": "对照组比例：请发 0 到 50 之间的数字，例如 20",
    "mk_wiz_bad_amount": "优惠金额：请发金额（例如 20）或「满100减20」",
    "mk_wiz_pick_button": "请点上面的按钮选择",
    "mk_wiz_cancelled": "已取消，没有创建活动。",
    "mk_wiz_stale": "这一步已经过去了，请回答最新的问题，或发 /campaign 重新开始。",
    "mk_wiz_failed": "⚠️ 没能创建：{error}",
    "mk_wiz_group_hint": "（群聊里请回复这条消息）",
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
        "/profile edit tastes and budget\n/coupons my coupons\n/invite invite friends, both get coupons\n"
        "/consult talk to a human\n"
        "/privacy what we store\n/lang 切换中文"
    ),
    "privacy": (
        "<b>What we store and why</b>\n"
        "• Telegram id, name, language: to recognise you and answer in your language\n"
        "• Taste profile (diet, cuisines, level, allergens, budget): better suggestions; allergens are always filtered\n"
        "• Your questions and button presses (👍/👎/not interested/coupons): to improve suggestions and never "
        "show what you disliked again\n"
        "• Coupons and orders: to issue and redeem coupons and measure campaigns\n\n"
        "We never sell your data or spam you.\n"
        "/mydata exports everything we store about you · /forget deletes it · to stop messages, send /consult."
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
    "btn_save_constraints": "💾 Remember: {labels}",
    "constraints_saved": "Saved to your profile: {labels}. Every recommendation will respect it.",
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
    "button_expired": "This message has expired. Just ask me again.",
    "stale_page": "These suggestions have expired. Just ask me again.",
    "item_gone": "This item is no longer available. Have a look at others.",
    "kit_for": "📦 Kit for \"{title}\":",
    "kit_none": "\"{title}\" has no kit yet; here are related ingredients.",
    "kit_none_plain": "No related kit found yet.",
    "kit_items": "Contains: {items}",
    "buy_kit": (
        "🛒 <b>{title}</b> {price}\n{items}\n\nTap 「🛒 Add」 to put it in your cart and order right here in "
        "the chat; or grab a coupon first, or ask a human."
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
    "consult_unavailable": (
        "Sorry, live chat with a human isn't available yet 🙏 We've noted your request and a colleague "
        "will follow up."
    ),
    "sup_opened": (
        "✅ You're connected to a human colleague (ticket #{ticket}).\n"
        "Just write here — text, photos, voice messages and files all work. We reply during opening hours "
        "(9:00–21:00).\nTap \"End chat\" once your question is solved."
    ),
    "sup_status_open": "⏳ Your request (ticket #{ticket}) is waiting for a colleague; all your messages were passed on.",
    "sup_status_assigned": "👩‍💼 {name} is handling your request (ticket #{ticket}); your messages were passed on.",
    "sup_assigned_customer": "👩‍💼 {name} has taken your request and will reply here.",
    "sup_btn_end": "End chat",
    "sup_closed_customer": (
        "✅ This chat is closed, thank you for your patience!\nHow would you rate our help? "
        "(1 = very unhappy, 5 = very happy)"
    ),
    "sup_rate_thanks": "Thanks for rating us {stars}\nAnything to add? Just write it here, or tap Skip.",
    "sup_btn_skip": "Skip",
    "sup_comment_thanks": "Thanks for your feedback! 🙏 Send /consult whenever you need us again.",
    "sup_comment_skipped": "OK, thank you!",
    "sup_rate_stale": "This chat can't be rated any more.",
    "sup_reopened_customer": "🔄 Our colleague reopened your request (ticket #{ticket}); feel free to keep writing here.",
    "sup_not_delivered": "Sorry, this message couldn't be passed on to our staff 🙏 Please send it again later.",
    "sup_not_confirmed": "The connection was unstable, so this message may not have reached our staff 🙏 If nobody answers soon, please send it again.",
    "sup_unsupported": "This kind of message can't be passed on; try text, a photo, a voice message or a file.",
    "sup_staff_only": "That command is for our staff inside a ticket topic. Need help? Send /consult.",
    "sup_no_ticket": "You have no open request right now. Need help? Send /consult.",
    "sup_open_failed": "Sorry, we can't connect you to a human right now 🙏 Please try again later.",
    "sup_h_title": "🧾 <b>Ticket #{ticket}</b> · {reason}",
    "sup_h_user": "👤 {name}{username} · id <code>{user_id}</code> · {lang}",
    "sup_h_profile": "<b>Taste profile</b>\n{summary}",
    "sup_h_recs": "<b>Recent recommendations</b>\n{lines}",
    "sup_h_events": "<b>Recent activity</b>\n{lines}",
    "sup_h_coupons": "<b>Open coupons</b>\n{lines}",
    "sup_h_history": "<b>Earlier tickets</b>: {count}{rating}",
    "sup_h_rating": ", average rating {mean}",
    "sup_h_none": "none",
    "sup_h_recreated": "⚠️ The previous topic was deleted; a new one was created for this customer.",
    "sup_h_help": (
        "Write to reply to the customer · /assign take · /canned replies · /close end · /history · /ban"
    ),
    "sup_lang_zh": "Chinese",
    "sup_lang_en": "English",
    "sup_r_complaint": "complaint",
    "sup_r_refund": "refund / after-sales",
    "sup_r_delivery": "delivery",
    "sup_r_handoff": "asked for a human",
    "sup_r_unclear": "asked for a human",
    "sup_r_order": "order",
    "sup_r_command": "/consult",
    "sup_s_open": "waiting",
    "sup_s_assigned": "in progress",
    "sup_s_closed": "closed",
    "sup_t_assigned": "✅ {name} took ticket #{ticket}",
    "sup_t_closed": "✅ Ticket #{ticket} closed by {name}; the customer was asked for a rating.",
    "sup_t_closed_by_customer": "🙋 The customer ended the chat; ticket #{ticket} is closed.",
    "sup_t_already_closed": "Ticket #{ticket} is already closed. Send /reopen to reopen it.",
    "sup_t_reopened": "🔄 Ticket #{ticket} reopened.",
    "sup_t_reopen_conflict": "The customer already has open ticket #{other}; #{ticket} can't be reopened.",
    "sup_t_not_closed": "Ticket #{ticket} is not closed.",
    "sup_t_rating": "⭐ Customer rating: {stars} ({rating}/5)",
    "sup_t_comment": "💬 Customer feedback: {comment}",
    "sup_t_blocked": "⚠️ Not delivered: the customer blocked the bot (ticket #{ticket} marked).",
    "sup_t_failed": "⚠️ Not delivered to the customer (ticket #{ticket} marked): {error}",
    "sup_t_rate_limited": "⚠️ Telegram rate limit: this message did not reach the customer; please resend later.",
    "sup_t_unknown": (
        "⚠️ Connection lost: it is not known whether this message reached the customer (ticket #{ticket}); "
        "it was not resent automatically to avoid a duplicate. Resend it if the customer does not answer."
    ),
    "sup_t_canned_list": "<b>Canned replies</b>\n{lines}\n\nUsage: /canned key",
    "sup_t_canned_empty": "No canned replies yet. Admins add one with /canned add key text.",
    "sup_t_canned_unknown": "No canned reply called \"{key}\"; send /canned for the list.",
    "sup_t_canned_sent": "📤 Canned reply \"{key}\" sent:\n{text}",
    "sup_t_canned_saved": "✅ Canned reply \"{key}\" saved.",
    "sup_t_canned_deleted": "🗑 Canned reply \"{key}\" deleted.",
    "sup_t_canned_admin_only": "Only admins can change canned replies.",
    "sup_t_canned_usage": "Usage: /canned add key text, or /canned del key",
    "sup_t_canned_bad": "Canned reply not saved: {error}",
    "sup_t_history": "<b>This customer's tickets</b>\n{lines}",
    "sup_t_history_line": "#{ticket} · {opened} · {status}{rating} · {messages} messages",
    "sup_t_banned": "🚫 Customer banned; the bot will ignore them. Send /unban to undo.",
    "sup_t_unbanned": "✅ Ban lifted.",
    "sup_t_refused": "Sorry, only members of the support team can use this command.",
    "sup_t_not_ticket": "This is not a customer's ticket topic; use commands inside a customer's topic.",
    "sup_t_unknown_command": (
        "Unknown command, not sent to the customer. Available: /assign /canned /close /reopen /history /ban /unban"
    ),
    "sup_t_unsupported": "This kind of message can't be passed on to the customer.",
    "sup_t_closed_no_relay": "Ticket #{ticket} is closed; this message was not sent. Send /reopen to reopen it.",
    "sup_t_customer_failed": "⚠️ A customer message could not be copied here: {error}",
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
    "btn_invite": "🎁 Invite friends",
    "btn_share": "📤 Share with a friend",
    "invite": (
        "🎁 <b>Invite friends, both get coupons</b>\n"
        "Your personal invite link:\n{link}\n\n"
        "When a friend joins through it, sets up their tastes and places a first order:\n"
        "• you get a {reward} coupon\n"
        "• your friend gets a {welcome} welcome coupon\n"
        "(one reward per friend, at most {cap} friends a day)\n\n"
        "Tap the button below to share, or forward the next message 👇"
    ),
    "invite_card": (
        "🍳 I learn cooking and buy fresh ingredients with XianKe — try it!\n"
        "Open the link, set up your tastes and get {welcome} off your first order 🎁\n{link}"
    ),
    "ref_joined": (
        "🎁 {name} invited you! Tap \"Set my tastes\" (30 s); after your first order you get a {welcome} "
        "welcome coupon, and {name} gets a thank-you coupon too."
    ),
    "ref_joined_ready": "🎁 {name} invited you! After your first order you get a {welcome} welcome coupon, and {name} gets a thank-you coupon too.",
    "ref_already_joined": "You already joined through {name}'s invite: set up your tastes and order to get your coupon.",
    "ref_self": "That's your own invite link 😄 Share it with friends: once they set up and order, you both get coupons.",
    "ref_circular": "You two have already invited each other; the reward counts once. Enjoy browsing!",
    "ref_already_referred": "You already accepted another friend's invite; the reward can be claimed once per person.",
    "ref_existing_customer": "You're already a XianKe regular 😊 Invite rewards are for first-time visitors. Welcome back!",
    "ref_someone": "A friend",
    "sfix_ask": "📝 <b>Correct the sentiment</b>\n{quote}\nModel said: {model}\nWhat is the right sentiment?",
    "sfix_done": "✅ Saved: this post is {label}. Thanks! The weekly retrain will learn from it.",
    "sfix_toast": "Saved, thanks!",
    "sfix_cancelled": "Cancelled; nothing changed.",
    "sfix_gone": "This post no longer exists.",
    "sfix_denied": "Only marketing staff can correct sentiment.",
    "sfix_unanalysed": "not analysed yet",
    "sfix_positive": "😊 Positive",
    "sfix_neutral": "😐 Neutral",
    "sfix_negative": "😠 Negative",
    "sfix_cancel": "Cancel",
    "mk_refused": (
        "Sorry, campaign management is for XianKe's marketing team only 🙏 Just tell me what you'd like "
        "to cook or buy.\n(If you are on the team, send your Telegram id {user_id} to an admin.)"
    ),
    "mk_refused_short": "This button is for the marketing team",
    "mk_list": (
        "<b>Campaigns</b> (latest {n})\n{lines}\n\n"
        "Send /campaign CODE for details and effects; /campaign alone to create one."
    ),
    "mk_list_line": (
        "• <b>{name}</b> <code>{slug}</code> · {status} · {channel}\n"
        "   {entrants} entered (campaign {treatment} / holdout {holdout}) · coupons {issued} issued / "
        "{redeemed} used · {orders} attributed orders"
    ),
    "mk_list_empty": "No campaigns yet. Send /campaign to create one.",
    "mk_status_running": "🟢 running",
    "mk_status_scheduled": "⏳ scheduled",
    "mk_status_ended": "⚪ ended",
    "mk_not_found": "No campaign with code {slug}. Send /campaigns to see them all.",
    "mk_details": (
        "<b>{name}</b> {status}\n{description}\n\n"
        "{entries} entries / {entrants} people · campaign group {treatment} · holdout {holdout}\n"
        "Coupons: {issued} issued, {redeemed} used · {orders} attributed orders {revenue}\nLink: {link}"
    ),
    "mk_estimates": "<b>Effect estimates</b>\n{text}",
    "mk_estimates_stored": "<b>Effect estimates</b> (as of {when} UTC)\n{text}",
    "mk_no_estimates": "No estimates yet: they are computed daily and appear here and in the digest.",
    "mk_wiz_name": "🆕 New campaign 1/9\nWhat is it called? (e.g. 秋季食材包扫码礼)\nSend /cancel at any time.",
    "mk_wiz_slug": (
        "2/9 Campaign code, used in the link after ?start= and in the QR code: letters, digits, _ or - only.\n"
        "Suggested: <code>{suggestion}</code> (tap the button), or send your own."
    ),
    "mk_btn_use_slug": "Use {suggestion}",
    "mk_wiz_slug_taken": "Campaign code: {slug} is taken, please choose another (case does not matter)",
    "mk_wiz_channel": "3/9 Which channel does it run in?",
    "mk_wiz_starts": "4/9 When does it start? Tap a button or send a date, e.g. 2026-12-01.",
    "mk_wiz_ends": "5/9 When does it end? Tap a button or send a date (e.g. 2026-12-31, the whole day counts).",
    "mk_btn_today": "Today",
    "mk_btn_tomorrow": "Tomorrow",
    "mk_btn_7d": "In 7 days",
    "mk_btn_30d": "In 30 days",
    "mk_btn_open_end": "No end",
    "mk_wiz_cost": "6/9 What does it cost, in yuan? (for ROI, e.g. 800; 0 if nothing)",
    "mk_wiz_holdout": (
        "7/9 What share of people go to the holdout? They get no coupon or message, which is how the "
        "real effect is measured. 10–30% is typical (0–50 allowed)."
    ),
    "mk_wiz_coupon": "8/9 Which coupon?",
    "mk_btn_coupon_entry_course": "Course coupon on entry",
    "mk_btn_coupon_kit_course": "Buy a kit, get a course coupon",
    "mk_btn_coupon_course_kit": "Buy a course, get a kit discount",
    "mk_btn_coupon_none": "No coupon",
    "mk_wiz_coupon_amount": "How many yuan off for \"{rule}\"? Send an amount (e.g. 20) or 满100减20 for a threshold.",
    "mk_wiz_keywords": "9/9 Keywords to track on social media, comma-separated (e.g. 秋季食材包,鲜课), or tap Skip.",
    "mk_btn_skip": "Skip",
    "mk_wiz_confirm": "Please check:\n\n{summary}\n\nTap Create if it is right.",
    "mk_btn_create": "✅ Create",
    "mk_btn_restart": "🔄 Start over",
    "mk_btn_cancel": "Cancel",
    "mk_wiz_created": (
        "✅ Campaign created: <b>{name}</b>\nLink: {link}\n"
        "The QR code follows; print it on packaging or posters. People who enter are randomly split into "
        "the campaign group and the holdout ({holdout}% holdout).\nSend /campaign {slug} to see its effect."
    ),
    "mk_wiz_created_no_link": (
        "✅ Campaign created: <b>{name}</b> (code {slug}).\n"
        "The bot's username is unknown, so no link or QR code yet: set XIANKE_BOT_USERNAME."
    ),
    "mk_qr_caption": "{name}: {link}",
    "mk_wiz_invalid": "⚠️ {error}\nPlease try again.",
    "mk_wiz_bad_date": "Date: not understood; send 今天 / today, 明天 / tomorrow or a date like 2026-12-01",
    "mk_wiz_end_past": "End: that is in the past; choose today or later",
    "mk_wiz_bad_money": "Cost: send an amount in yuan, e.g. 800 or 0",
    "mk_wiz_bad_percent": "Holdout: send a number from 0 to 50, e.g. 20",
    "mk_wiz_bad_amount": "Discount: send an amount (e.g. 20) or 满100减20",
    "mk_wiz_pick_button": "Please tap one of the buttons above",
    "mk_wiz_cancelled": "Cancelled; no campaign was created.",
    "mk_wiz_stale": "That step is over; answer the latest question, or send /campaign to start again.",
    "mk_wiz_failed": "⚠️ Could not create it: {error}",
    "mk_wiz_group_hint": "(in a group, reply to this message)",
}

# Privacy (issue 8): /mydata sends the export as a JSON file, /forget asks once, then forgets.
ZH.update({
    "mydata_caption": "这是我们保存的关于你的全部数据（JSON 文件）：资料、操作记录、优惠券、订单、客服对话、推荐记录。",
    "mydata_failed": "导出没有成功，请稍后再试，或发 /consult 联系人工客服。",
    "forget_confirm": (
        "<b>确定要删除你的数据吗？</b>\n"
        "会删除：昵称、口味资料、对话状态；操作记录、优惠券和订单会与你的账号解除关联，"
        "客服对话的内容会被清除。已领的优惠券将无法在这里查看。\n此操作不能撤销。"
    ),
    "btn_forget_yes": "🗑 确定删除",
    "btn_forget_no": "取消",
    "forget_done": "已删除。我们不再保存能识别你的数据。以后再发消息，会作为新用户重新开始。",
    "forget_cancelled": "已取消，什么都没有删除。",
    "forget_stale": "这个按钮已经过期了，请重新发 /forget。",
})
EN.update({
    "mydata_caption": "Everything we store about you (a JSON file): profile, activity, coupons, orders, support chats, referrals.",
    "mydata_failed": "The export did not work; please try again later or send /consult.",
    "forget_confirm": (
        "<b>Delete your data?</b>\n"
        "Your name, taste profile and conversation state are deleted; activity, coupons and orders are "
        "unlinked from your account; support chat texts are erased. Coupons will no longer show here.\n"
        "This cannot be undone."
    ),
    "btn_forget_yes": "🗑 Delete",
    "btn_forget_no": "Cancel",
    "forget_done": "Done. We no longer keep data that identifies you. If you write again, you start as a new customer.",
    "forget_cancelled": "Cancelled; nothing was deleted.",
    "forget_stale": "That button has expired; send /forget again.",
})

# Checkout in the chat (issue 14): cart, invoices, receipts, /orders and the staff's order notices.
ZH.update(CHECKOUT_ZH)
EN.update(CHECKOUT_EN)

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
