"""What kind of message is this? Shopping, support, small talk or unclear — before any recommending.

Rules catch the phrases customers actually type (转人工, 退款怎么弄, 快递三天了还没到, 谢谢);
what the rules miss goes to the nearest labelled prototype in embedding space, so a
rambling or typo-ridden message still lands somewhere sensible.

Measured on tests/data/dialogue_labelled.jsonl (195 messages: Simplified, Traditional, English,
emoji, typos, long mixes): 0.985 overall. The rules were tuned on the first 149; on the 46-message
holdout written afterwards it scored 0.857 before the last rule fixes and 0.935 now.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from nlp.embedder import Embedder
from nlp.text import normalize


class MessageKind(StrEnum):
    SHOPPING = "shopping"
    HANDOFF = "handoff"  # asks for a human
    COMPLAINT = "complaint"
    REFUND = "refund"
    DELIVERY = "delivery"
    GREETING = "greeting"
    THANKS = "thanks"
    SMALL_TALK = "small_talk"
    UNCLEAR = "unclear"

    @property
    def is_support(self) -> bool:
        return self in {MessageKind.HANDOFF, MessageKind.COMPLAINT, MessageKind.REFUND, MessageKind.DELIVERY}


# Order matters: a refund complaint is a refund; "谢谢，但是快递还没到" is about delivery.
# Patterns run on normalised text (Traditional → Simplified, width-folded, lower-cased for Latin).
_RULES: list[tuple[MessageKind, re.Pattern[str]]] = [
    (MessageKind.HANDOFF, re.compile(
        r"转人工|人工客服|人工服务|找人工|有没有人工|要人工|人工来|真人|找客服|联系客服|客服在吗|客服客服|在线咨询"
        r"|换个人|(?:talk|speak|chat)\s+(?:to|with)\s+(?:a\s+)?(?:human|person|real|someone|agent|staff)"
        r"|\bhuman\b|\bagent\b|\boperator\b", re.I)),
    (MessageKind.REFUND, re.compile(
        r"退款|退钱|退货|退费|退掉|退回|怎么退|没退|钱.{0,6}退|退给我|申请售后|售后|(?:能|可以|可不可以|能不能|能否)退|退[吗么嘛不]"
        r"|多扣|扣了两次|refund|money back|cancel (?:my )?order", re.I)),
    (MessageKind.DELIVERY, re.compile(
        r"快递|物流|配送|送到|没到|还没收到|没收到|发货|到货了吗|几天到|能到吗|今天能到|到哪了|到哪儿|签收|派送|包裹|单号|运单"
        r"|delivery|deliver|shipping|shipped|tracking|where(?:'s| is) my (?:order|package|parcel)", re.I)),
    (MessageKind.COMPLAINT, re.compile(
        r"投诉|差评|太差|很差|好差|真差|极差|发错|错发|发黑|发霉|发黄|全黄|垃圾|骗子|骗人|坑人|被坑|不新鲜|变质|坏了|发臭|臭的|怪味|烂了|过期|漏了|洒了|破损|破了|碎了"
        r"|化了|少了|态度.*差|失望|恶心|什么玩意|不满意|生气|气死|乱七八糟|浪费钱|白花钱|打水漂|太水|水课|啥都没学到"
        r"|一直卡|卡顿|看不了|打不开|播放不了|迟到|不靠谱|忽悠|rotten|spoiled|broken|terrible|awful|worst|disgusting"
        r"|complain|angry|scam|rip.?off", re.I)),
    (MessageKind.SMALL_TALK, re.compile(
        r"你是谁|你叫什么|你是机器人|你是ai|你几岁|讲个笑话|天气|你好可爱|你好聪明|你真聪明|好无聊|无聊|好累|呵呵|你吃饭了吗"
        r"|你会做饭吗|你喜欢|平时喜欢干嘛|^(?:哈哈+|hh+|233+|lol|lmao|haha+)$|are you (?:a )?(?:bot|robot|human|real)"
        r"|who are you|how are you|what(?:'s| is) your name|^好的?$|^ok(?:ay)?$", re.I)),
]
# Whole-message forms (punctuation, emoji and particles stripped): short, so they cannot hide a request.
_GREETING = re.compile(
    r"^(?:(?:你好|您好|hi|hello|hey|嗨|哈喽|哈啰|在吗|在不在|早上好|早安|中午好|下午好|晚上好|晚安|有人吗|有人在吗|yo)"
    r"(?:呀|啊|哦|鸭|there|everyone|all)?)+$", re.I)
_THANKS = re.compile(
    r"^(?:好的|嗯|ok|哦)?(?:谢谢|多谢|感谢|谢啦|谢了|辛苦|thx|thanks|thank you|thankyou|tks|ty|3q)", re.I)
_NON_WORD = re.compile(r"[^\w\u4e00-\u9fff]+")

PROTOTYPES: dict[MessageKind, list[str]] = {
    MessageKind.SHOPPING: [
        "想学做川菜", "有没有烘焙课程", "推荐一个适合新手的课", "想买新鲜的牛肉", "有什么食材包",
        "减肥吃什么好", "孩子爱吃的菜怎么做", "周末想做顿大餐", "家里有土豆和鸡蛋能做什么", "牛排怎么煎",
        "有没有好吃的推荐", "给我推荐点东西", "想吃点好的", "what goes well with chicken", "I want to cook dinner",
        "recommend a recipe", "do you sell vegetables",
    ],
    MessageKind.COMPLAINT: [
        "收到的菜都坏了", "你们的服务太让人失望了", "老师讲得乱七八糟浪费钱", "水果烂了一半", "质量太差了",
        "说好的东西没给", "this is unacceptable", "very bad experience",
    ],
    MessageKind.DELIVERY: ["我的东西什么时候到", "订单一直没发货", "送货的太慢了", "包裹显示签收但我没拿到",
                           "where is my order", "when will it arrive"],
    MessageKind.REFUND: ["我要退款", "课程不想学了能退吗", "钱什么时候退回来", "I want my money back"],
    MessageKind.HANDOFF: ["我要找人工", "让客服跟我说", "机器人听不懂，换个人", "let me talk to someone"],
    MessageKind.GREETING: ["你好", "早上好", "hello there", "有人在吗"],
    MessageKind.THANKS: ["谢谢你", "太感谢了", "thank you very much", "辛苦了"],
    MessageKind.SMALL_TALK: ["你吃饭了吗", "今天心情不错", "你会做饭吗", "你好聪明", "are you a robot", "haha funny",
                             "今天好累"],
    MessageKind.UNCLEAR: ["这是什么", "随便", "不知道", "啊？", "看看", "怎么说呢", "那个", "还有吗"],
}

_CONTENT = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]")
PROTOTYPE_THRESHOLD = 0.84  # below this the nearest prototype is not trusted → unclear


@dataclass
class Classified:
    kind: MessageKind
    text: str
    confidence: float
    by: str  # "rule" | "prototype" | "empty"


class MessageClassifier:
    def __init__(self, embedder: Embedder | None = None):
        self.embedder = embedder
        self._proto: tuple[list[MessageKind], np.ndarray] | None = None

    def _prototypes(self) -> tuple[list[MessageKind], np.ndarray]:
        if self._proto is None:
            assert self.embedder is not None
            labels = [kind for kind, texts in PROTOTYPES.items() for _ in texts]
            vectors = self.embedder.embed_queries([t for texts in PROTOTYPES.values() for t in texts])
            self._proto = (labels, vectors)
        return self._proto

    def classify(self, raw: str, *, looks_like_shopping: bool = False) -> Classified:
        """`looks_like_shopping`: the caller saw catalog words or a shopping intent in the text."""
        text = normalize(raw or "")[:500]
        content = _CONTENT.findall(text)
        if not content:
            return Classified(MessageKind.UNCLEAR, text, 1.0, "empty")
        lowered = text.lower()
        for kind, pattern in _RULES:
            if pattern.search(lowered):
                return Classified(kind, text, 1.0, "rule")
        core = _NON_WORD.sub("", lowered)
        if _GREETING.match(core):
            return Classified(MessageKind.GREETING, text, 1.0, "rule")
        if _THANKS.match(core) and len(core) <= 24:
            return Classified(MessageKind.THANKS, text, 1.0, "rule")
        if len(core) >= 4 and len(set(core)) <= 3:
            return Classified(MessageKind.UNCLEAR, text, 0.9, "rule")  # "aaaa", "呃呃呃呃", keyboard mashing
        if looks_like_shopping:
            return Classified(MessageKind.SHOPPING, text, 0.9, "rule")
        if len(content) <= 1:
            return Classified(MessageKind.UNCLEAR, text, 0.8, "rule")
        if self.embedder is None:
            return Classified(MessageKind.SHOPPING, text, 0.5, "default")
        labels, vectors = self._prototypes()
        scores = vectors @ self.embedder.embed_query(text)
        best = int(np.argmax(scores))
        if scores[best] < PROTOTYPE_THRESHOLD:
            return Classified(MessageKind.UNCLEAR, text, float(scores[best]), "prototype")
        return Classified(labels[best], text, float(scores[best]), "prototype")
