"""Synthetic labelled posts about what a cooking school and fresh shop hear besides taste.

The shared train split holds food reviews only (takeaway, fruit, dairy); social posts about XianKe also
judge lecturers, delivery, customer service, prices, the app and refunds. Two *separate* banks of
templates live here, written before any tuning and never mixed:

- `augmentation_rows`: training augmentation (aspect templates and posts with a star rating whose
  weak label comes from the rating: 4–5 stars positive, 1–2 negative, 3 dropped);
- `ood_proxy_rows`: the out-of-domain proxy (tests/data/sentiment_ood_proxy.csv), with its own
  subjects, opinion phrases, fillers and sentence shapes, some long enough (> 160 characters) to
  exercise head+tail truncation. It was meant as pure evaluation, but it was looked at once during
  development, so it became the out-of-domain *dev* set that picked the model;
- `ood_holdout_rows`: a third bank written after that look (tests/data/sentiment_ood_holdout.csv),
  never used for a choice: the held-out out-of-domain number.

No opinion phrase of one bank appears in another (tests/test_sentiment_synth.py checks that), so
scoring on a proxy is not scoring on training text.

Labels come from the template (1 = positive, 0 = negative), never from a model.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from nlp.sentiment_train import LabelledText

Bank = dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]  # aspect → subjects, pos, neg

# -- training bank -----------------------------------------------------------------------------

AUGMENT: Bank = {
    "lecturer": (
        ("老师", "讲师", "主讲老师", "大厨老师", "助教"),
        ("讲得很透彻", "特别有耐心", "示范很清楚", "讲解细致", "很专业", "答疑很及时"),
        ("讲得太快了", "照本宣科", "敷衍了事", "一问三不知", "口音太重听不懂", "不够专业"),
    ),
    "delivery": (
        ("快递", "物流", "配送", "送货小哥", "冷链配送"),
        ("很快", "第二天就到了", "准时送达", "送得比预期还快", "很给力"),
        ("太慢了", "送了一个星期", "送到的时候都坏了", "送错地址了", "一直不更新", "又超时了"),
    ),
    "service": (
        ("客服", "售后", "店家", "商家客服", "在线客服"),
        ("态度很好", "回复很快", "很耐心地帮我解决了问题", "处理得很周到", "很热情"),
        ("态度很差", "根本不回消息", "一直推脱", "互相踢皮球", "爱答不理", "让人很生气"),
    ),
    "price": (
        ("价格", "价钱", "会员价", "这个价位", "课程价格"),
        ("很实惠", "很划算", "物超所值", "比超市便宜", "性价比很高"),
        ("太贵了", "不值这个价", "偷偷涨价", "比别家贵一倍", "性价比太低"),
    ),
    "app": (
        ("小程序", "App", "课程平台", "直播间", "下单页面"),
        ("很好用", "操作很方便", "界面清晰", "很流畅", "回看很方便"),
        ("老是闪退", "卡得要命", "根本打不开", "经常加载失败", "操作太复杂"),
    ),
    "refund": (
        ("退款", "退货流程", "售后退款", "退换"),
        ("很顺利", "当天就到账了", "很快就处理了", "没有任何刁难"),
        ("拖了半个月", "一直不给退", "到现在还没到账", "推三阻四", "扣了一大笔手续费"),
    ),
    "course": (
        ("这门课", "课程内容", "视频课", "直播课", "课程安排"),
        ("干货满满", "很实用", "安排合理", "学到了很多", "循序渐进"),
        ("内容空洞", "太水了", "全是广告", "跟宣传的不一样", "学不到东西"),
    ),
}
_AUG_OPENERS = ("", "这次", "上周买的课，", "报名之后发现", "总的来说", "实话实说，")
_AUG_TAILS = (("推荐", "还会再买", "给个好评", "很满意"), ("不会再来了", "差评", "很后悔", "太失望了"))
_AUG_SHAPES = ("{open}{subj}{pred}", "{open}{subj}{pred}，{tail}", "{subj}{pred}。{tail}！")


def _aug_clause(rng: random.Random, polarity: int) -> str:
    subjects, pos, neg = AUGMENT[rng.choice(sorted(AUGMENT))]
    return rng.choice(subjects) + rng.choice(pos if polarity else neg)


def augmentation_rows(n: int = 3000, seed: int = 5) -> list[LabelledText]:
    """Templated aspect posts (70%), contrast posts whose last clause decides (15%) and star-rated
    posts with a weak label from the rating (15%). Balanced classes; domain "aug"."""
    rng = random.Random(seed)
    out: list[LabelledText] = []
    while len(out) < n:
        label, kind = rng.randint(0, 1), rng.random()
        if kind < 0.7:
            subjects, pos, neg = AUGMENT[rng.choice(sorted(AUGMENT))]
            text = rng.choice(_AUG_SHAPES).format(
                open=rng.choice(_AUG_OPENERS),
                subj=rng.choice(subjects),
                pred=rng.choice(pos if label else neg),
                tail=rng.choice(_AUG_TAILS[0 if label else 1]),
            )
        elif kind < 0.85:  # 虽然 A，但是 B: B carries the verdict
            text = f"虽然{_aug_clause(rng, 1 - label)}，但是{_aug_clause(rng, label)}"
        else:
            stars = rng.randint(1, 5)
            if stars == 3:
                continue
            label = int(stars >= 4)
            text = f"评分{stars}星。{_aug_clause(rng, label)}，{_aug_clause(rng, label)}"
        out.append(LabelledText(text, label, "aug"))
    return out


# -- evaluation bank (out-of-domain proxy) -------------------------------------------------------

PROXY: Bank = {
    "lecturer": (
        ("授课老师", "王老师", "带课的师傅", "这期的讲师"),
        ("讲课生动有趣", "把火候讲得明明白白", "手把手地教", "每个细节都讲到了", "很会带课"),
        ("讲课拖沓", "全程念PPT", "答非所问", "水平一般还爱吹", "上课老迟到"),
    ),
    "delivery": (
        ("快递员", "这次的包裹", "送菜的", "生鲜配送"),
        ("隔天就送到了", "送货上门很及时", "冰袋都还没化", "一路冷链新鲜到家", "配送员很客气"),
        ("等了五天才到", "箱子都压扁了", "放在门口也不打电话", "派送延误好几次", "到手已经化成水了"),
    ),
    "service": (
        ("售后客服", "人工客服", "客服小姐姐", "店里的工作人员"),
        ("有问必答", "服务贴心", "很快帮我补发了", "解释得清清楚楚", "主动联系我道歉"),
        ("回复全是机器人", "问了三遍都不理", "说话很冲", "承诺的事情没做到", "把问题推给快递"),
    ),
    "price": (
        ("定价", "这次活动", "年卡", "食材包的价格"),
        ("活动价很香", "便宜又好", "真的良心", "优惠力度大", "花得值"),
        ("贵得离谱", "定价虚高", "优惠券根本用不了", "买完就降价", "收费不透明"),
    ),
    "app": (
        ("APP", "鲜课小程序", "上课的软件", "播放器"),
        ("下单很顺手", "视频加载很快", "功能很齐全", "设计得很贴心"),
        ("一直登录不上", "视频放一半就卡住", "付款老出错", "更新后更难用了"),
    ),
    "refund": (
        ("退款", "退货", "申请售后"),
        ("秒到账", "很爽快地给退了", "上门取件很方便"),
        ("没人理", "被驳回了三次", "要等一个月", "说不能退"),
    ),
}
_PROXY_CLOSING = (("五星好评", "值得推荐", "会推荐给朋友"), ("再也不买了", "劝大家慎重", "真的无语"))
_PROXY_SHAPES = (
    "说实话，{subj}{pred}。",
    "{subj}{pred}，{closing}",
    "第一次在鲜课报名，{subj}{pred}",
    "关于{subj}：{pred}。{closing}",
    "{subj}{pred}，{subj2}{pred2}",
)
# Narrative with no opinion: the middle of long posts, where head+tail truncation cuts.
_FILLER = (
    "上个月我在鲜课报了一门家常菜的课程，一共十二节，每节四十分钟左右，",
    "周末在家跟着视频一步一步做，先备菜再腌肉，厨房里摆满了碗碟，",
    "家里老人孩子都等着开饭，我一边看回放一边记笔记，顺便把调料都称好，",
    "后来又在店里下单了两份食材包，里面有排骨、土豆、青椒和一小袋香料，",
    "这次是和同事拼单一起买的，大家住得近，说好周六一起去取，",
)


def _proxy_clause(rng: random.Random, aspect: str, label: int) -> tuple[str, str]:
    subjects, pos, neg = PROXY[aspect]
    return rng.choice(subjects), rng.choice(pos if label else neg)


def ood_proxy_rows(per_aspect: int = 100, seed: int = 29) -> list[LabelledText]:
    """`per_aspect` balanced posts for each aspect (domain = aspect); one in five is long (a
    narrative of 3–5 filler sentences, then the verdict, then a second verdict at the very end)."""
    rng = random.Random(seed)
    out: list[LabelledText] = []
    for aspect in PROXY:
        for i in range(per_aspect):
            label = i % 2
            subj, pred = _proxy_clause(rng, aspect, label)
            other = rng.choice(sorted(set(PROXY) - {aspect}))
            subj2, pred2 = _proxy_clause(rng, other, label)
            closing = rng.choice(_PROXY_CLOSING[0 if label else 1])
            text = rng.choice(_PROXY_SHAPES).format(
                subj=subj, pred=pred, subj2=subj2, pred2=pred2, closing=closing
            )
            if i % 5 == 4:
                narrative = "".join(rng.sample(_FILLER, rng.randint(3, 5)))
                text = f"{subj}{pred}。{narrative}{subj2}{pred2}，{closing}。"
            out.append(LabelledText(text, label, aspect))
    return out


# -- a second, held-out proxy ------------------------------------------------------------------
# Written after the first proxy had been looked at once (it then became the out-of-domain *dev* set
# that selected the model); this bank was never used for any choice. Own subjects, phrases, shapes.

HOLDOUT: Bank = {
    "lecturer": (
        ("李师傅", "这位主厨", "烘焙课的老师", "线上课的讲师"),
        ("讲得通俗易懂", "连刀工都一点点纠正", "课后还单独回答问题", "经验特别丰富"),
        ("一节课都在卖货", "示范的时候自己都做失败了", "问问题从来不回", "讲得乱七八糟"),
    ),
    "delivery": (
        ("顺丰", "同城配送", "冷链车", "送货的师傅"),
        ("当天下午就送来了", "保温箱里还冰冰凉凉的", "提前打电话确认", "一点磕碰都没有"),
        ("晚了整整三天", "鸡蛋碎了一半", "送到别的小区去了", "海鲜到的时候已经臭了"),
    ),
    "service": (
        ("店铺客服", "售后专员", "群里的管理员", "接电话的小哥"),
        ("耐心又专业", "半夜都在回复", "二话不说就补偿了", "把流程讲得很清楚"),
        ("敷衍得要命", "一句抱歉都没有", "态度傲慢", "让我自己去找快递"),
    ),
    "price": (
        ("会员年费", "这套课的价钱", "礼盒的定价", "秒杀价"),
        ("比线下便宜一大半", "算下来很值", "学生党也负担得起", "买一送一太划算了"),
        ("跟抢钱一样", "比外面贵了三成", "隐藏收费太多", "根本不值"),
    ),
    "app": (
        ("手机客户端", "鲜课的网页版", "课程回放功能", "购物车"),
        ("用起来很丝滑", "找课特别方便", "缓存下载很贴心", "结算一步到位"),
        ("三天两头崩溃", "声音和画面对不上", "优惠总是算错", "广告弹窗关不掉"),
    ),
    "refund": (
        ("退课", "退差价", "取消订单"),
        ("半小时就处理完了", "钱原路退回很快", "没问原因就同意了"),
        ("拖了一个多月", "要我寄回原包装才给退", "至今没有结果"),
    ),
}
_HOLDOUT_CLOSING = (("整体很满意", "下次还来", "给满分"), ("太糟心了", "不推荐", "后悔下单"))
_HOLDOUT_SHAPES = (
    "{subj}{pred}，{closing}。",
    "必须说一句：{subj}{pred}",
    "买了半年了，{subj}{pred}，{subj2}也{pred2}",
    "{closing}！{subj}{pred}",
)
_HOLDOUT_FILLER = (
    "国庆在家没出门，报了两门课打发时间，顺便给孩子做点零食，",
    "我家三口人，平时工作忙，周末才有空下厨，一般提前一天备好食材，",
    "这次是看朋友圈推荐才注意到的，对比了好几家，最后选了这里，",
    "课程分成基础和进阶两部分，每周更新两节，配套的食材包单独下单，",
)


def ood_holdout_rows(per_aspect: int = 60, seed: int = 41) -> list[LabelledText]:
    """The held-out out-of-domain proxy (tests/data/sentiment_ood_holdout.csv): like
    `ood_proxy_rows`, from the `HOLDOUT` bank; one in four posts is long."""
    rng = random.Random(seed)
    out: list[LabelledText] = []
    for aspect, (subjects, pos, neg) in HOLDOUT.items():
        for i in range(per_aspect):
            label = i % 2
            other = HOLDOUT[rng.choice(sorted(set(HOLDOUT) - {aspect}))]
            fill = {
                "subj": rng.choice(subjects),
                "pred": rng.choice(pos if label else neg),
                "subj2": rng.choice(other[0]),
                "pred2": rng.choice(other[1] if label else other[2]),
                "closing": rng.choice(_HOLDOUT_CLOSING[0 if label else 1]),
            }
            text = rng.choice(_HOLDOUT_SHAPES).format(**fill)
            if i % 4 == 3:
                narrative = "".join(rng.sample(_HOLDOUT_FILLER, rng.randint(2, 4)))
                text = f"{narrative}{text}"
            out.append(LabelledText(text, label, aspect))
    return out


def write_csv(rows: list[LabelledText], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["domain", "label", "text"])
        writer.writerows((r.domain, r.label, r.text) for r in rows)
