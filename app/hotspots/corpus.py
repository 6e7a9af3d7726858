"""A labelled set of realistic reports, generated in code: for measuring the grouping
(`scripts/bench_hotspots.py`, the quality test) and for the demo district.

A problem is a topic at a place ("路灯不亮" at 翠苑一区) or a topic across the district
("老年人办社保卡难"). Each report of a problem is written anew: the place named one of several
ways, the object by a synonym, the trouble in one of several phrasings, with or without how
long and whom it affects, sometimes a typo (a homophone, as pinyin input makes them), its
coordinates near the place or missing. The same topic at two places is two problems, so the
place has to tell them apart. Noise reports are one-offs that belong to no problem.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# name, ways to name it, latitude, longitude (Hangzhou-like, spread over about 12 km)
PLACES: list[tuple[str, list[str], float, float]] = [
    (
        "翠苑一区",
        ["翠苑一区", "翠苑一区东门", "翠苑一区12幢附近", "翠苑小区一区"],
        30.2802,
        120.1320,
    ),
    ("文华路", ["文华路", "文华路58号门口", "文华路和学院路路口", "文华路上"], 30.2890, 120.1405),
    ("桃源村", ["桃源村", "桃源村村口", "桃源村文化礼堂旁", "桃源村三组"], 30.2101, 120.0502),
    ("青石社区", ["青石社区", "青石路3号", "青石社区菜场边", "青石新村"], 30.2205, 120.0611),
    ("东湖公园", ["东湖公园", "东湖公园南门", "东湖公园广场", "东湖公园里"], 30.2741, 120.1551),
    (
        "学院路小学",
        ["学院路小学", "学院路小学门口", "学院路小学东侧", "学院路小学附近"],
        30.2950,
        120.1290,
    ),
    ("古荡新村", ["古荡新村", "古荡新村5幢", "古荡新村北门", "古荡新村小区"], 30.2705, 120.1188),
    ("西溪花园", ["西溪花园", "西溪花园二期", "西溪花园南区", "西溪花园小区"], 30.2580, 120.0890),
    ("三墩老街", ["三墩老街", "三墩老街口", "三墩老街菜场", "三墩老街中段"], 30.3230, 120.0950),
    (
        "蒋村商业街",
        ["蒋村商业街", "蒋村商业街北口", "蒋村商业街一带", "蒋村步行街"],
        30.2630,
        120.0700,
    ),
    (
        "留下镇中心",
        ["留下镇中心", "留下镇政府对面", "留下镇老街", "留下镇中心菜场"],
        30.2430,
        120.0520,
    ),
    ("北山街", ["北山街", "北山街公交站", "北山街沿线", "北山街中段"], 30.2600, 120.1450),
]


@dataclass(frozen=True)
class Topic:
    key: str
    category: str
    objects: list[str]
    troubles: list[str]
    titles: list[str]  # "{p}" place, "{o}" object
    local: bool = True


TOPICS: list[Topic] = [
    Topic(
        "streetlight",
        "municipal",
        ["路灯", "路灯", "街灯", "照明灯"],
        ["不亮了", "坏了一直没人修", "晚上黑漆漆的全不亮", "一闪一闪的经常熄灭", "好几盏都坏了"],
        ["{p}路灯不亮", "{p}{o}坏了", "{p}晚上没有照明", "{o}不亮请修复"],
    ),
    Topic(
        "manhole",
        "municipal",
        ["井盖", "窨井盖", "下水道井盖"],
        ["破损塌陷", "松动一踩就响", "缺了一块很危险", "被压坏了没有更换", "翘起来绊倒行人"],
        ["{p}井盖破损", "{p}{o}松动有隐患", "{o}破了很危险"],
    ),
    Topic(
        "pothole",
        "municipal",
        ["路面", "马路", "道路"],
        ["坑坑洼洼", "坑洼不平积水", "破损严重有大坑", "塌陷出现深坑", "开裂起伏电动车容易摔"],
        ["{p}路面坑洼", "{p}{o}破损有坑", "{o}坑洼不平"],
    ),
    Topic(
        "drainage",
        "municipal",
        ["排水", "下水道", "雨水管"],
        ["一下雨就积水", "堵塞下雨内涝", "不通畅路面积水很深", "堵了污水漫出来"],
        ["{p}下雨积水", "{p}{o}堵塞", "{o}不畅积水严重"],
    ),
    Topic(
        "garbage",
        "environment",
        ["垃圾", "生活垃圾", "垃圾桶"],
        ["堆积没人清运", "好几天不清理发臭", "满了溢出来也没人收", "乱堆乱放臭气熏天"],
        ["{p}垃圾堆积", "{p}{o}无人清运", "{o}发臭没人管"],
    ),
    Topic(
        "dance_noise",
        "environment",
        ["广场舞", "广场舞音响", "跳舞的音乐"],
        ["声音太大扰民", "音响开到很晚吵得睡不着", "噪音大影响休息", "每天晚上吵到十点多"],
        ["{p}广场舞扰民", "{p}{o}噪音太大", "{o}太吵"],
    ),
    Topic(
        "cooking_fumes",
        "environment",
        ["油烟", "饭店油烟", "烧烤油烟"],
        ["直排熏到楼上住户", "呛得不能开窗", "味道很大没有净化", "排到居民楼里"],
        ["{p}饭店油烟扰民", "{p}{o}直排", "{o}呛人"],
    ),
    Topic(
        "construction_noise",
        "environment",
        ["工地", "施工", "夜间施工"],
        ["半夜还在施工很吵", "噪声扰民到凌晨", "机器轰鸣影响睡觉", "夜里打桩吵得没法休息"],
        ["{p}工地夜间施工扰民", "{p}{o}噪声大", "{o}半夜吵"],
    ),
    Topic(
        "parking",
        "traffic",
        ["乱停车", "违停车辆", "机动车乱停"],
        ["占用消防通道", "把人行道都占满了", "堵住小区出入口", "停在路边造成拥堵"],
        ["{p}乱停车", "{p}{o}占道", "{o}堵路"],
    ),
    Topic(
        "bikes",
        "traffic",
        ["共享单车", "共享电单车", "单车"],
        ["乱停乱放堵住人行道", "堆成一片没人管", "倒了一地挡路", "停满了盲道"],
        ["{p}共享单车乱停放", "{p}{o}堆积", "{o}乱放"],
    ),
    Topic(
        "bus_stop",
        "traffic",
        ["公交站", "公交车站", "站台"],
        ["没有遮雨棚", "站牌损坏看不清", "缺少座椅老人等车累", "离得太远不方便"],
        ["{p}公交站设施差", "{p}{o}没有雨棚", "{o}需要改善"],
    ),
    Topic(
        "elevator",
        "housing",
        ["加装电梯", "电梯", "老楼电梯"],
        ["申请了很久没有进展", "审批卡住了", "一直装不起来老人上楼难", "方案迟迟定不下来"],
        ["{p}加装电梯进展慢", "{p}{o}审批难", "{o}迟迟没动静"],
    ),
    Topic(
        "property",
        "housing",
        ["物业", "物业公司", "物业服务"],
        ["收费不干活", "不作为楼道脏乱", "服务差报修没人来", "乱收费还不公示"],
        ["{p}物业服务差", "{p}{o}不作为", "{o}乱收费"],
    ),
    Topic(
        "water_leak",
        "housing",
        ["楼顶", "屋顶", "外墙"],
        ["漏水家里墙面发霉", "渗水下雨天滴水", "漏雨好几年没修", "防水坏了家里漏水"],
        ["{p}楼顶漏水", "{p}{o}渗水", "{o}漏雨"],
    ),
    Topic(
        "school_traffic",
        "education",
        ["学校门口", "校门口", "放学时段"],
        ["接送车辆拥堵", "堵得水泄不通孩子过马路危险", "家长车乱停很危险", "没有交警疏导"],
        ["{p}学校门口拥堵", "{p}{o}交通混乱", "{o}堵车"],
    ),
    Topic(
        "clinic",
        "health",
        ["社区医院", "卫生服务站", "社区卫生服务中心"],
        ["看病排队太久", "药品不全经常缺药", "医生太少挂不上号", "周末不开门"],
        ["{p}社区医院看病难", "{p}{o}缺药", "{o}排队久"],
    ),
    Topic(
        "canteen",
        "social_security",
        ["老年食堂", "助餐点", "老人食堂"],
        ["饭菜太贵吃不起", "离家太远老人走不动", "名额太少订不上", "饭菜不合口味质量差"],
        ["{p}老年食堂不方便", "{p}{o}价格高", "{o}名额少"],
    ),
    Topic(
        "fire_exit",
        "safety",
        ["消防通道", "楼道", "安全通道"],
        ["堆满杂物", "被电动车堵死", "堆放纸箱存在火灾隐患", "有人私拉电线充电"],
        ["{p}消防通道堵塞", "{p}{o}堆物", "{o}有火灾隐患"],
    ),
    Topic(
        "ebike_charging",
        "safety",
        ["电动车充电", "电瓶车充电", "充电桩"],
        ["充电桩太少只能飞线", "没有充电桩楼道里充电危险", "充电桩坏了没人修", "飞线充电很危险"],
        ["{p}电动车充电难", "{p}{o}不足", "{o}飞线"],
    ),
    Topic(
        "stray_dogs",
        "safety",
        ["流浪狗", "流浪犬", "野狗"],
        ["成群结队吓到小孩", "咬伤了路人", "晚上乱叫追人", "越来越多没人管"],
        ["{p}流浪狗伤人", "{p}{o}太多", "{o}追人"],
    ),
    Topic(
        "greenery",
        "environment",
        ["绿化带", "树木", "行道树"],
        ["枯死很久没补种", "树枝太长挡住窗户", "杂草丛生蚊虫多", "被毁了光秃秃的"],
        ["{p}绿化带缺管护", "{p}{o}枯死", "{o}杂草多"],
    ),
    # Across the district: the same problem wherever it is raised.
    Topic(
        "social_card",
        "social_security",
        ["社保卡", "医保卡", "社会保障卡"],
        ["老年人办理太难要跑好几趟", "补办流程太复杂老人不会用手机预约", "线上办理老年人不会操作"],
        ["老年人办理社保卡难", "{o}补办太麻烦", "希望简化{o}办理"],
        local=False,
    ),
    Topic(
        "bus_line",
        "traffic",
        ["公交线路", "公交班次", "夜班公交"],
        ["太少等车要半小时", "末班车太早晚归没车", "班次间隔太长希望加密"],
        ["公交班次太少", "希望加密{o}", "{o}末班太早"],
        local=False,
    ),
    Topic(
        "kindergarten",
        "education",
        ["幼儿园", "普惠幼儿园", "托育机构"],
        ["学位太紧张报不上名", "收费太高负担重", "太少孩子入园难"],
        ["入园难", "{o}学位紧张", "希望增加{o}"],
        local=False,
    ),
    Topic(
        "sorting",
        "environment",
        ["垃圾分类", "分类垃圾桶", "垃圾分类督导"],
        ["定时定点投放时间太短上班族来不及", "投放时间不合理", "撤桶后投放不方便"],
        ["垃圾分类投放时间不合理", "{o}时间太短", "{o}不方便"],
        local=False,
    ),
]

# Local problems: each topic at one or two places (the second is a different problem).
LOCAL_PLACES: dict[str, list[int]] = {
    "streetlight": [0, 6],
    "manhole": [1, 9],
    "pothole": [8, 10],
    "drainage": [3, 8],
    "garbage": [2, 7],
    "dance_noise": [4, 9],
    "cooking_fumes": [9, 1],
    "construction_noise": [5, 2],
    "parking": [0, 11],
    "bikes": [11, 1],
    "bus_stop": [11, 4],
    "elevator": [6, 0],
    "property": [7, 10],
    "water_leak": [3, 6],
    "school_traffic": [5],
    "clinic": [10, 2],
    "canteen": [2],
    "fire_exit": [6],
    "ebike_charging": [7, 3],
    "stray_dogs": [8],
    "greenery": [4],
}

DURATIONS = [
    "",
    "",
    "已经一个多月了，",
    "半年多了，",
    "好几天了，",
    "持续两周了，",
    "从去年就开始了，",
]
IMPACTS = [
    "",
    "",
    "老人小孩出行很不方便。",
    "居民意见很大。",
    "存在很大的安全隐患。",
    "严重影响大家的生活。",
    "周边住户都很困扰。",
]
REQUESTS = [
    "希望有关部门尽快处理。",
    "请相关部门重视解决。",
    "盼早日解决，谢谢！",
    "恳请领导关注。",
    "",
    "多次反映没有结果，希望这次能落实。",
]
OPENINGS = ["", "", "您好，", "代表您好，", "我是附近的居民，", "反映一个问题："]

# Homophones that pinyin input produces by mistake.
TYPOS = {
    "路": "露",
    "灯": "登",
    "垃": "拉",
    "圾": "级",
    "噪": "燥",
    "停": "亭",
    "修": "休",
    "坏": "怀",
    "井": "景",
    "盖": "该",
    "积": "及",
    "水": "税",
    "物": "务",
    "梯": "题",
    "电": "店",
    "车": "车",
    "站": "战",
    "烟": "眼",
    "狗": "够",
    "桩": "装",
    "难": "男",
    "园": "元",
    "班": "般",
    "卡": "咔",
}

NOISE = [
    ("咨询低保申请条件", "想问一下低保申请需要哪些材料，在哪里办理？"),
    ("表扬社区网格员", "我们社区的网格员小李工作很认真，帮老人跑腿办事，想表扬一下。"),
    ("建议多举办法律讲座", "希望社区能多举办一些法律知识讲座，特别是关于遗产继承方面的。"),
    ("咨询公租房政策", "请问公租房今年什么时候可以申请，收入标准是多少？"),
    ("邻居装修占用公共区域", "隔壁邻居装修把建筑材料堆在我家门口好几个月了。"),
    ("建议增设健身器材", "小区里没有健身器材，老年人锻炼不方便，建议增设一些。"),
    ("对立法草案的意见", "关于物业管理条例草案第十二条，建议明确业主委员会的备案时限。"),
    ("反映快递柜收费", "小区快递柜超时收费太快了，十二小时就开始收钱。"),
    ("菜市场缺斤少两", "菜市场有个摊位称不准，买的菜总是少几两。"),
    ("建议开设书法班", "希望老年大学能开设书法班，现在报名太难了。"),
    ("咨询退役军人优待证", "请问退役军人优待证怎么申领，需要本人去吗？"),
    ("路口红绿灯时间太短", "行人绿灯只有十几秒，老人根本走不过去。"),
    ("图书馆开放时间", "希望区图书馆周一也能开放，上班族只有周末有空。"),
    ("反映房屋中介乱发小广告", "楼道里到处是中介的小广告，贴了又贴。"),
    ("公厕太少", "公园附近没有公共厕所，游客和老人很不方便。"),
    ("建议设立便民理发点", "社区里老人理发不方便，建议设立便民理发点。"),
    ("反映鸽子扰民", "楼上邻居养了几十只鸽子，粪便掉得到处都是。"),
    ("咨询残疾人补贴", "家里有残疾人，想问问护理补贴怎么申请。"),
    ("希望开通社区巴士", "新建小区离地铁站很远，希望开通社区巴士接驳。"),
    ("农贸市场搬迁意见", "听说农贸市场要搬迁，新址太远了，希望慎重考虑。"),
    ("小区门禁系统故障", "小区门禁经常刷不开，外卖员随意进出。"),
    ("建议公园增加照明", "公园里面步道太暗，晚上散步不安全，建议增加照明。"),
    ("反映网约车司机绕路", "坐网约车被绕路多收了钱，投诉平台没有回复。"),
    ("建议规范早餐摊点", "地铁口早餐摊点很多，建议统一规范管理。"),
    ("感谢代表帮助", "上次反映的问题代表帮忙解决了，非常感谢。"),
    ("学校食堂饭菜质量", "孩子说学校食堂饭菜经常是凉的，希望改善。"),
    ("反映楼上高空抛物", "楼上经常往下扔东西，差点砸到人，希望查一查。"),
    ("咨询二孩生育补贴", "请问生育二孩有没有补贴，如何申请？"),
    ("建议增加无障碍设施", "政务服务中心门口没有坡道，轮椅进不去。"),
    ("河道有死鱼", "小河里最近出现很多死鱼，水也变黑了。"),
    ("建议延长地铁运营时间", "地铁末班车太早，加班回家只能打车。"),
    ("居民楼信号差", "我们楼手机信号很差，打电话经常断线。"),
    ("老旧小区没有监控", "小区里电动车被偷了好几辆，没有监控查不到。"),
    ("公园草坪禁止进入", "公园草坪都围起来了，孩子没地方玩，建议开放部分草坪。"),
    ("建议设置宠物活动区", "养狗的人越来越多，建议在公园里设置宠物活动区。"),
    ("反映燃气涨价", "燃气费涨得太多了，希望公开定价依据。"),
    ("医院停车难", "区人民医院停车太难，排队要一个小时。"),
    ("希望增加篮球场", "附近没有篮球场，年轻人没地方运动。"),
    ("反映违规养鸡", "邻居在绿化带里养鸡，又臭又吵。"),
    ("咨询居住证办理", "外地户口的居住证在哪里办，需要什么材料？"),
]


@dataclass(frozen=True)
class Report:
    title: str
    content: str
    category: str
    latitude: float | None
    longitude: float | None
    created_at: datetime
    problem: str | None  # None: a noise report
    area: int  # index into PLACES of the community the report comes from


def problems() -> list[tuple[Topic, int | None]]:
    """Every problem: (topic, place index) for local ones, (topic, None) district-wide."""
    out: list[tuple[Topic, int | None]] = []
    for topic in TOPICS:
        if topic.local:
            out.extend((topic, place) for place in LOCAL_PLACES[topic.key])
        else:
            out.append((topic, None))
    return out


def _typo(rng: random.Random, text: str) -> str:
    spots = [i for i, ch in enumerate(text) if ch in TYPOS]
    if not spots:
        return text
    i = rng.choice(spots)
    return text[:i] + TYPOS[text[i]] + text[i + 1 :]


def _write(
    rng: random.Random, topic: Topic, place: int | None, troubles: list[str]
) -> tuple[str, str]:
    obj = rng.choice(topic.objects)
    where = rng.choice(PLACES[place][1]) if place is not None else ""
    title = rng.choice(topic.titles).format(p=where, o=obj)
    body = [rng.choice(OPENINGS)]
    if where:
        body.append(rng.choice([f"{where}的{obj}", f"{where}{obj}", f"在{where}，{obj}"]))
    else:
        body.append(rng.choice([f"现在{obj}", f"{obj}", f"关于{obj}的问题，"]))
    body.append(rng.choice(troubles) + "，")
    body.append(rng.choice(DURATIONS))
    body.append(rng.choice(IMPACTS))
    body.append(rng.choice(REQUESTS))
    content = "".join(body)
    if rng.random() < 0.3:
        content = _typo(rng, content)
    if rng.random() < 0.15:
        title = _typo(rng, title)
    if rng.random() < 0.2:
        content = content.replace("，", ",").replace("。", ".")
    return title[:100], content


def generate(
    reports: int = 520,
    seed: int = 2026,
    start: datetime | None = None,
    noise: int = 40,
    max_problems: int | None = None,
) -> list[Report]:
    """`reports` reports (`noise` of them one-offs) over every problem (or the first
    `max_problems` of a seeded shuffle), in arrival order over 60 days from `start`."""
    rng = random.Random(seed)
    start = start or datetime(2026, 9, 1, tzinfo=UTC)
    found = problems()
    if max_problems is not None:
        rng.shuffle(found)
        found = found[:max_problems]
    noise = min(noise, len(NOISE), reports)
    out: list[Report] = []
    per_problem = max(2, (reports - noise) // len(found))
    extra = reports - noise - per_problem * len(found)
    for n, (topic, place) in enumerate(found):
        count = per_problem + (1 if n < extra else 0)
        # A problem is raised within a few weeks, not across the whole period.
        first = rng.uniform(0, 40)
        # What is wrong there: one complaint, sometimes told two ways.
        troubles = rng.sample(topic.troubles, 2)
        for _ in range(count):
            title, content = _write(rng, topic, place, troubles)
            lat = lng = None
            area = place if place is not None else rng.randrange(len(PLACES))
            if rng.random() < (0.8 if place is not None else 0.5):
                lat = PLACES[area][2] + rng.uniform(-0.0012, 0.0012)
                lng = PLACES[area][3] + rng.uniform(-0.0012, 0.0012)
            when = start + timedelta(days=first + rng.uniform(0, 20), minutes=rng.randint(0, 600))
            key = f"{topic.key}@{PLACES[place][0] if place is not None else '全区'}"
            out.append(Report(title, content, topic.category, lat, lng, when, key, area))
    for title, content in rng.sample(NOISE, noise):
        area = rng.randrange(len(PLACES))
        when = start + timedelta(days=rng.uniform(0, 60))
        lat, lng = PLACES[area][2], PLACES[area][3]
        out.append(Report(title, content, "other", lat, lng, when, None, area))
    out.sort(key=lambda r: r.created_at)
    return out
