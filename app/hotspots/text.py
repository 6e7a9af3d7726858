"""Text features of a report: normalised character n-grams, weighted by TF-IDF.

Residents describe the same problem in different words, with typos and with their own
punctuation, digits and full-width letters. Character bigrams of the normalised text carry
the meaning without a word dictionary (nothing to download): "路灯不亮" and "路灯坏了" share
"路灯", "路灯" and "街灯" still share "灯"; a typo ("路登") spoils two bigrams out of thirty, not the report. Bigrams every
report uses ("希望", "尽快", "小区") are weighted down twice: by their document frequency in
the stored cases (IDF, kept in `hotspot_term`) and by a short list of complaint filler that
says nothing about the problem itself.

Terms are stored as 31-bit hashes (crc32) so the inverted index is integer columns.
"""

from __future__ import annotations

import math
import re
import unicodedata
import zlib
from collections import Counter
from dataclasses import dataclass

# The document-count row of `hotspot_term` (no bigram hashes to 0: see `term_hash`).
DOCS_TERM = 0

# How many weighted terms a case keeps for scoring, and how many of them go into the
# inverted index for candidate retrieval.
KEEP_TERMS = 48
SIGNATURE_TERMS = 6

_DIGITS = re.compile(r"\d+")
# Filler of complaints: present in most reports whatever the problem.
FILLER = frozenset(
    [
        "希望",
        "尽快",
        "解决",
        "反映",
        "问题",
        "小区",
        "居民",
        "我们",
        "我家",
        "一下",
        "非常",
        "严重",
        "影响",
        "情况",
        "现在",
        "已经",
        "一直",
        "没有",
        "有人",
        "能够",
        "能否",
        "是否",
        "请求",
        "恳请",
        "麻烦",
        "相关",
        "部门",
        "处理",
        "谢谢",
        "感谢",
        "领导",
        "重视",
        "多次",
        "很多",
        "大家",
        "附近",
        "这个",
        "那个",
        "一些",
        "时候",
        "每天",
        "天天",
        "经常",
        "总是",
        "还是",
        "但是",
        "因为",
        "所以",
        "如果",
        "可以",
        "不能",
        "不是",
        "就是",
        "什么",
        "怎么",
        "出现",
        "发现",
        "看到",
        "觉得",
        "存在",
        "要求",
        "建议",
        "关注",
        "帮忙",
        "帮助",
        "及时",
        "早日",
        "目前",
        "近期",
        "最近",
        "日子",
        "个月",
        "多月",
        "几个",
        "一个",
        "两个",
        "半年",
        "一年",
        "周边",
        "这里",
        "那里",
        "这边",
        "门口",
        "楼下",
        "晚上",
        "白天",
        "早上",
        "老人",
        "孩子",
        "大爷",
        "阿姨",
        "生活",
        "出行",
        "安全",
        "隐患",
        "方便",
        "不便",
        "群众",
        "市民",
        "住户",
        "业主",
        "社区",
        "街道",
        "希望",
        "上报",
        "落实",
    ]
)


def normalise(text: str) -> str:
    """Full-width to half-width and lower case (NFKC), digits to one mark, and only the
    letters kept: punctuation, spaces and emoji say nothing about the problem."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _DIGITS.sub("#", text)
    return "".join(ch for ch in text if ch == "#" or ch.isalpha())


def bigrams(text: str) -> list[str]:
    norm = normalise(text)
    return [norm[i : i + 2] for i in range(len(norm) - 1) if "#" not in norm[i : i + 2]]


def term_hash(term: str) -> int:
    """A stable positive 31-bit id of a term; never `DOCS_TERM`."""
    return (zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF) or 1


def term_counts(title: str, content: str) -> Counter[int]:
    """Term hashes (bigrams and single characters) and how often each occurs; the title
    counts twice (it names the problem). Single characters carry what synonyms and typos
    still share ("路灯" / "街灯" / "路登"); their IDF keeps the common ones quiet."""
    counts: Counter[int] = Counter()
    for text, times in ((title, 2), (content, 1)):
        norm = normalise(text)
        for i, ch in enumerate(norm):
            if ch == "#":
                continue
            counts[term_hash(ch)] += times
            if i + 1 < len(norm) and norm[i + 1] != "#":
                counts[term_hash(norm[i : i + 2])] += times
    return counts


# The most frequent characters of written Chinese carry grammar, not the problem: as single
# characters they weigh little, and so do the bigrams made only of them.
FUNCTION_CHARS = frozenset(
    "的了是在我有和就不人都一上也很到说要去你会着没看好自己这那里么什为子们能可以对下过"
    "还把被让给从向跟比得地之其与及或而且但如果因所已经又再才只每各些个多少大小天年月日时点"
    "请希望能否尽快谢您啊吧呢吗呀哦嗯"
)
FILLER_HASHES = frozenset(
    [term_hash(w) for w in FILLER]
    + [term_hash(c) for c in FUNCTION_CHARS]
    + [term_hash(a + b) for a in FUNCTION_CHARS for b in FUNCTION_CHARS]
)
FILLER_FACTOR = 0.15


def idf(df: int, docs: int) -> float:
    return math.log((docs + 1) / (df + 1)) + 1.0


@dataclass(frozen=True, slots=True)
class Vector:
    """A case's kept terms with unit-length weights."""

    weights: dict[int, float]

    def cosine(self, other: Vector) -> float:
        a, b = self.weights, other.weights
        return sum(a[t] * b[t] for t in a.keys() & b.keys())

    def signature(self, size: int = SIGNATURE_TERMS) -> list[tuple[int, float]]:
        ranked = sorted(self.weights.items(), key=lambda kv: (-kv[1], kv[0]))
        return ranked[:size]


def weigh(counts: Counter[int], df: dict[int, int], docs: int, keep: int = KEEP_TERMS) -> Vector:
    """TF-IDF (sublinear tf) of the terms, the `keep` strongest, scaled to unit length."""
    raw: dict[int, float] = {}
    for term, tf in counts.items():
        weight = (1.0 + math.log(tf)) * idf(df.get(term, 0), docs)
        if term in FILLER_HASHES:
            weight *= FILLER_FACTOR
        raw[term] = weight
    kept = sorted(raw.items(), key=lambda kv: (-kv[1], kv[0]))[:keep]
    norm = math.sqrt(sum(w * w for _, w in kept)) or 1.0
    return Vector({t: round(w / norm, 5) for t, w in kept})
