"""How two reports are judged the same problem, and which hotspot a report joins.

score(a, b) = cosine of the weighted terms × a place factor × a category factor:

- place: reports within `near_m` of each other keep their text score; further apart it
  falls linearly to `far_factor` at `far_m` (the same words about two different streets are
  two problems, but a district-wide problem described the same way stays one). Without
  coordinates on either side the place says nothing.
- category: residents pick categories loosely, so a different one only lowers the score.

A report joins the hotspot of its best-scoring candidate when that score reaches
`threshold`, unless staff split it off that hotspot; otherwise it starts a new hotspot.
The candidates come from the inverted index (the same strong terms, within the time window),
in the database for the sweep (`service.group_pending`) and in memory for a regroup
(`Grouper`), so both decide the same way.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from app.hotspots.text import Vector

# Terms a hotspot's centre keeps.
CENTRE_TERMS = 200


@dataclass(frozen=True, slots=True)
class Tuning:
    threshold: float = 0.47
    near_m: float = 400.0
    near_boost: float = 1.0
    same_region_factor: float = 1.0
    far_m: float = 1500.0
    far_factor: float = 0.45
    other_region_factor: float = 0.6
    other_category_factor: float = 0.85
    merge_threshold: float = 0.36
    window_days: int = 90
    candidates: int = 20
    # Postings read per signature term, newest first: the candidate search stays bounded
    # however many cases are stored.
    postings_per_term: int = 100


@dataclass(slots=True)
class Item:
    case_id: int
    vector: Vector
    category_id: int
    region_id: int
    day: int
    latitude: float | None = None
    longitude: float | None = None
    hotspot_id: int | None = None
    excluded: frozenset[int] = frozenset()


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(min(1.0, a)))


def place_factor(a: Item, b: Item, tuning: Tuning) -> float:
    if a.latitude is None or a.longitude is None or b.latitude is None or b.longitude is None:
        if a.region_id == b.region_id:
            return tuning.same_region_factor
        return tuning.other_region_factor
    d = distance_m(a.latitude, a.longitude, b.latitude, b.longitude)
    if d <= tuning.near_m:
        return tuning.near_boost
    if d >= tuning.far_m:
        return tuning.far_factor
    share = (d - tuning.near_m) / (tuning.far_m - tuning.near_m)
    return tuning.near_boost - share * (tuning.near_boost - tuning.far_factor)


def score(a: Item, b: Item, tuning: Tuning) -> float:
    text = a.vector.cosine(b.vector)
    if text <= 0.0:
        return 0.0
    factor = place_factor(a, b, tuning)
    if a.category_id != b.category_id:
        factor *= tuning.other_category_factor
    return text * factor


@dataclass(slots=True)
class Centre:
    """What a hotspot is about as a whole: the sum of its members' weights (kept to the
    strongest `CENTRE_TERMS`), the mean of their coordinates and the region it started in."""

    terms: dict[int, float] = field(default_factory=dict)
    lat_sum: float = 0.0
    lng_sum: float = 0.0
    points: int = 0
    region_id: int = 0
    split_from_id: int | None = None

    def add(self, item: Item) -> None:
        for term, weight in item.vector.weights.items():
            self.terms[term] = self.terms.get(term, 0.0) + weight
        if item.latitude is not None and item.longitude is not None:
            self.lat_sum += item.latitude
            self.lng_sum += item.longitude
            self.points += 1
        if not self.region_id:
            self.region_id = item.region_id

    def absorb(self, other: Centre) -> None:
        for term, weight in other.terms.items():
            self.terms[term] = self.terms.get(term, 0.0) + weight
        self.lat_sum += other.lat_sum
        self.lng_sum += other.lng_sum
        self.points += other.points

    def trimmed(self, size: int = CENTRE_TERMS) -> dict[int, float]:
        ranked = sorted(self.terms.items(), key=lambda kv: (-kv[1], kv[0]))[:size]
        return {t: round(w, 4) for t, w in ranked}

    def cosine(self, other: Centre) -> float:
        a, b = self.terms, other.terms
        na = math.sqrt(sum(w * w for w in a.values()))
        nb = math.sqrt(sum(w * w for w in b.values()))
        if not na or not nb:
            return 0.0
        return sum(a[t] * b[t] for t in a.keys() & b.keys()) / (na * nb)

    def as_place(self) -> Item:
        lat = self.lat_sum / self.points if self.points else None
        lng = self.lng_sum / self.points if self.points else None
        return Item(0, Vector({}), 0, self.region_id, 0, lat, lng)


@dataclass(frozen=True, slots=True)
class Decision:
    hotspot_id: int | None  # None: open a new hotspot
    score: float
    # Hotspots the report shows to be the same problem as the chosen one: merged into it.
    merge: tuple[int, ...] = ()


def decide(
    item: Item,
    candidates: Iterable[Item],
    centres: dict[int, Centre],
    tuning: Tuning,
    resolve: dict[int, int] | None = None,
) -> Decision:
    """The hotspot of the best candidate scoring at least the threshold, or a new one.

    A report that scores above the threshold with members of two hotspots bridges them; they
    are merged when their centres agree too (`merge_threshold`, place included), so a
    problem first seen in two wordings does not stay two hotspots, while one odd report
    cannot chain two different problems together. Hotspots staff split apart stay apart.
    `resolve` maps merged hotspot ids to where they went."""
    resolve = resolve or {}
    excluded = {resolve.get(h, h) for h in item.excluded}
    best: dict[int, float] = {}
    for other in candidates:
        if other.hotspot_id is None or other.case_id == item.case_id:
            continue
        hotspot = resolve.get(other.hotspot_id, other.hotspot_id)
        if hotspot in excluded:
            continue
        s = score(item, other, tuning)
        if s > best.get(hotspot, 0.0):
            best[hotspot] = s
    ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
    if not ranked or ranked[0][1] < tuning.threshold:
        return Decision(None, ranked[0][1] if ranked else 0.0)
    chosen, top = ranked[0]
    merge: list[int] = []
    centre = centres.get(chosen)
    for hotspot, s in ranked[1:]:
        rival = centres.get(hotspot)
        if s < tuning.threshold or centre is None or rival is None:
            continue
        if rival.split_from_id == chosen or centre.split_from_id == hotspot:
            continue
        place = min(1.0, place_factor(centre.as_place(), rival.as_place(), tuning))
        if centre.cosine(rival) * place >= tuning.merge_threshold:
            merge.append(hotspot)
    return Decision(chosen, top, tuple(merge))


@dataclass
class Grouper:
    """The grouping in memory: for a regroup of many cases and for the benchmark. Items are
    added in the order they arrived; `next_id` numbers the hotspots it opens."""

    tuning: Tuning = field(default_factory=Tuning)
    next_id: int = 1
    # term → (item, its weight of the term), in arrival order
    index: dict[int, list[tuple[Item, float]]] = field(default_factory=lambda: defaultdict(list))
    centres: dict[int, Centre] = field(default_factory=dict)
    # merged hotspot → the one it went into (followed to the end by `resolve`)
    merged: dict[int, int] = field(default_factory=dict)

    def resolve(self, hotspot: int) -> int:
        while hotspot in self.merged:
            hotspot = self.merged[hotspot]
        return hotspot

    def candidates(self, item: Item) -> list[Item]:
        """The items sharing a signature term within the window, strongest overlap first."""
        overlap: dict[int, float] = defaultdict(float)
        found: dict[int, Item] = {}
        earliest = item.day - self.tuning.window_days
        limit = self.tuning.postings_per_term
        for term, weight in item.vector.signature():
            postings = self.index.get(term)
            if not postings:
                continue
            for other, other_weight in reversed(postings[-limit:]):
                if other.day < earliest:
                    break
                overlap[other.case_id] += weight * other_weight
                found[other.case_id] = other
        ranked = heapq.nlargest(self.tuning.candidates, overlap.items(), key=lambda kv: kv[1])
        return [found[cid] for cid, _ in ranked]

    def add(self, item: Item) -> int:
        """Place the item (a pinned one keeps its hotspot); answers its hotspot id."""
        if item.hotspot_id is None:
            found = self.candidates(item)
            view = {h: self.resolve(h) for h in {o.hotspot_id for o in found} if h is not None}
            decision = decide(item, found, self.centres, self.tuning, view)
            hotspot = decision.hotspot_id
            if hotspot is None:
                hotspot = self.next_id
                self.next_id += 1
            for other in decision.merge:
                self.merged[other] = hotspot
                self.centre(hotspot).absorb(self.centres.pop(other, Centre()))
            item.hotspot_id = hotspot
        self.centre(item.hotspot_id).add(item)
        for term, weight in item.vector.signature():
            self.index[term].append((item, weight))
        return item.hotspot_id

    def centre(self, hotspot: int) -> Centre:
        if hotspot not in self.centres:
            self.centres[hotspot] = Centre()
        return self.centres[hotspot]

    def assignment(self, items: Iterable[Item]) -> dict[int, int]:
        """case id → final hotspot (merges followed)."""
        return {i.case_id: self.resolve(i.hotspot_id) for i in items if i.hotspot_id is not None}


def same_problem_pairs(labels: dict[int, object]) -> set[tuple[int, int]]:
    """Unordered pairs of ids that share a label (for precision and recall)."""
    groups: dict[object, list[int]] = defaultdict(list)
    for case_id, label in labels.items():
        if label is not None:
            groups[label].append(case_id)
    pairs: set[tuple[int, int]] = set()
    for members in groups.values():
        members.sort()
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                pairs.add((a, b))
    return pairs


def precision_recall(
    truth: dict[int, object], grouped: dict[int, object]
) -> tuple[float, float, int, int]:
    """Pairwise precision and recall of `grouped` against `truth` (None: a noise report,
    the same problem as nobody). Answers (precision, recall, true pairs, found pairs)."""
    true_pairs = same_problem_pairs(truth)
    found_pairs = same_problem_pairs(grouped)
    hits = len(true_pairs & found_pairs)
    precision = hits / len(found_pairs) if found_pairs else 1.0
    recall = hits / len(true_pairs) if true_pairs else 1.0
    return precision, recall, len(true_pairs), len(found_pairs)
