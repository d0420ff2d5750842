"""A deterministic demo county: regions, households, people, cadres, visits, problems and
help measures, as plain dicts.

Demos, screenshots, benchmarks and report tests need data that looks like a real county
roster (统计用区划代码-style codes, 脱贫户/监测户/边缘户, 老弱病残孤 flags, 包保 cadres, a few
weeks of visits) and that comes out identical for the same seed. The module is standard
library only so that the SQL store, the in-memory store and test fixtures can all be fed
from it; putting the records into a database is the caller's job.
"""

import bisect
import itertools
import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, NamedTuple, TypeVar

from sync.records import id_number_check_digit

T = TypeVar("T")
Table = tuple[tuple[T, ...], tuple[float, ...]]

CHINA_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

# An invented county: 3418 is 宣城 as in the sample roster, and 29 is no county there, so a
# generated 居民身份证号 can never be a real person's.
COUNTY_NAME = "青溪县"
COUNTY_CODE = "341829"
COUNTY_LAT, COUNTY_LON = 30.08, 118.58

DEFAULT_HOUSEHOLDS = 240
DEFAULT_TOWNSHIPS = 2
DEFAULT_VILLAGES = 6
HOUSEHOLDS_PER_VILLAGE = 40
MAX_HOUSEHOLDS_PER_VILLAGE = 60
MAX_VILLAGES_PER_TOWNSHIP = 8
MAX_TOWNSHIPS = 15
MAX_HOUSEHOLDS = 200_000

HELPED_CATEGORIES = ("脱贫户", "监测户", "边缘户")

WEEKLY_FORM = "weekly_visit"
MONTHLY_FORM = "monthly_monitoring"
WEEKLY_VISIT_RATE = 0.85
MONTHLY_VISIT_RATE = 0.9
FAILED_CHECK_RATE = 0.1
PROBLEM_LOGGED_RATE = 0.8

# 六个一: how often a routine weekly visit ticks each item.
SIX_ONES = {
    "health_asked": 0.97,
    "knowledge_shared": 0.9,
    "difficulty_solved": 0.85,
    "comfort_given": 0.95,
    "hygiene_improved": 0.85,
    "plan_updated": 0.75,
}
# 两不愁三保障 + 饮水安全: answer key -> problem category when the check fails.
BASIC_CHECKS = {
    "food_ok": "food",
    "clothing_ok": "clothing",
    "education_ok": "education",
    "medical_ok": "medical",
    "housing_ok": "housing",
    "water_ok": "water",
}


@dataclass(frozen=True)
class DemoCounty:
    """Every record of one demo county, parents before children, as plain dicts."""

    regions: list[dict[str, Any]]
    households: list[dict[str, Any]]
    people: list[dict[str, Any]]
    users: list[dict[str, Any]]
    visits: list[dict[str, Any]]
    problems: list[dict[str, Any]]
    measures: list[dict[str, Any]]

    def counts(self) -> dict[str, int]:
        """Record counts per kind, for `seed-demo --json` and log lines."""
        return {
            "regions": len(self.regions),
            "households": len(self.households),
            "people": len(self.people),
            "users": len(self.users),
            "visits": len(self.visits),
            "problems": len(self.problems),
            "measures": len(self.measures),
        }


def generate_demo_county(
    households: int = DEFAULT_HOUSEHOLDS,
    seed: int = 7,
    today: date | None = None,
    weeks_of_history: int = 4,
    now: datetime | None = None,
) -> DemoCounty:
    """A realistic county of `households` households with `weeks_of_history` ISO weeks of
    visits before the week of `today` (default: today in China), plus that week up to `now`
    (default: the end of `today`): a demo never holds a visit later than the moment it is made.

    The same arguments always give the same records: every random choice comes from one
    `random.Random(seed)`, drawn in a fixed order.
    """
    if not 0 <= households <= MAX_HOUSEHOLDS:
        raise ValueError(f"households must be between 0 and {MAX_HOUSEHOLDS}")
    if weeks_of_history < 0:
        raise ValueError("weeks_of_history must not be negative")
    if now is not None:
        today = now.astimezone(CHINA_TZ).date()
    today = today or datetime.now(CHINA_TZ).date()
    now = now or datetime.combine(today, time.max, tzinfo=CHINA_TZ)
    rng = random.Random(seed)

    regions, villages = _regions(rng, households)
    household_records, people = _households(rng, villages, today)
    people_by_household: dict[str, list[dict[str, Any]]] = {}
    for person in people:
        people_by_household.setdefault(person["household_id"], []).append(person)
    users, cadres_by_household = _users(rng, regions, villages, household_records, today.year)
    schedule = _visit_schedule(rng, household_records, today, weeks_of_history)
    visits, problems = _visits_and_problems(
        rng, schedule, people_by_household, cadres_by_household, today, now
    )
    _void_and_correct(rng, visits, problems, people_by_household, household_records)
    measures = _measures(rng, household_records, people_by_household, cadres_by_household, today)
    return DemoCounty(regions, household_records, people, users, visits, problems, measures)


# --- random helpers -------------------------------------------------------------------------


def _new_id(rng: random.Random) -> str:
    """A uuid4-shaped id drawn from the seeded generator, so ids repeat with the seed."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _table(weights: dict[T, float]) -> Table[T]:
    """Values and cumulative weights, computed once for the hot loops."""
    return tuple(weights), tuple(itertools.accumulate(weights.values()))


def _pick(rng: random.Random, table: Table[T]) -> T:
    """A weighted choice, as `rng.choices` makes it but without its per-call set-up."""
    values, cum_weights = table
    return values[bisect.bisect(cum_weights, rng.random() * cum_weights[-1])]


def _split_evenly(total: int, parts: int) -> list[int]:
    """`total` in `parts` sizes that differ by at most one, larger first."""
    base, extra = divmod(total, parts)
    return [base + (1 if index < extra else 0) for index in range(parts)]


# --- regions --------------------------------------------------------------------------------

_PLACE_FIRST = "大小上下东西南北石竹桃杨柳梅松茶金银龙凤青黄白马鹤枫桂荷兰云霞古高长湖汪程胡"
_PLACE_SECOND = "庄田坑源岭坞湾山坪冲岗塘桥溪口头坦墩埠川林园坎岙圩"
# Villages that split keep the old name with a prefix (新庄 / 前庄): used when names run out.
_PLACE_PREFIXES = ("", "新", "前", "后", "中", "里", "外")


class _Village(NamedTuple):
    """A village region with where its houses cluster and how many households it has."""

    region: dict[str, Any]
    lat: float
    lon: float
    households: int


def _layout(households: int) -> list[list[int]]:
    """Households per village, grouped by township.

    The default county is 2 townships of 3 villages with 40 households each. Larger counties
    add villages of ~40 households and townships of at most 8 villages, until the county has
    15 townships; from then on villages grow to 60 households, and past 7,200 households the
    townships take more villages, so 50,000 households give 15 townships and ~830 villages
    instead of 1,250 villages in 105 townships.
    """
    if households <= DEFAULT_HOUSEHOLDS:
        townships, villages = DEFAULT_TOWNSHIPS, DEFAULT_VILLAGES
    else:
        per_village = households / (MAX_TOWNSHIPS * MAX_VILLAGES_PER_TOWNSHIP)
        per_village = min(MAX_HOUSEHOLDS_PER_VILLAGE, max(HOUSEHOLDS_PER_VILLAGE, per_village))
        villages = math.ceil(households / per_village)
        townships = math.ceil(villages / MAX_VILLAGES_PER_TOWNSHIP)
        townships = max(DEFAULT_TOWNSHIPS, min(MAX_TOWNSHIPS, townships))
    village_sizes = iter(_split_evenly(households, villages))
    return [
        [next(village_sizes) for _ in range(count)] for count in _split_evenly(villages, townships)
    ]


def _place_names(rng: random.Random, count: int) -> list[str]:
    """`count` distinct two-character place names in a seeded order (大庄, 黄田, 石坑 …)."""
    pool = [first + second for first in _PLACE_FIRST for second in _PLACE_SECOND]
    rng.shuffle(pool)
    names = [prefix + name for prefix in _PLACE_PREFIXES for name in pool]
    if count > len(names):
        raise ValueError(f"no more than {len(names)} distinct place names")
    return names[:count]


def _regions(rng: random.Random, households: int) -> tuple[list[dict[str, Any]], list[_Village]]:
    """The region tree, and its villages with their centres and household counts.

    Codes follow 统计用区划代码 as in the sample roster: county 6 digits, township +3
    (101, 102 …), village +3 (001, 002 …).
    """
    layout = _layout(households)
    township_names = _place_names(rng, len(layout))
    village_names = _place_names(rng, sum(len(sizes) for sizes in layout))
    county = _region(rng, None, "county", COUNTY_NAME, COUNTY_CODE)
    regions = [county]
    villages = []
    village_index = 0
    for township_index, sizes in enumerate(layout):
        suffix = "镇" if rng.random() < 0.7 else "乡"
        township = _region(
            rng,
            county["id"],
            "township",
            township_names[township_index] + suffix,
            f"{COUNTY_CODE}{101 + township_index:03d}",
        )
        regions.append(township)
        township_lat = COUNTY_LAT + rng.uniform(-0.18, 0.18)
        township_lon = COUNTY_LON + rng.uniform(-0.22, 0.22)
        for serial, size in enumerate(sizes, start=1):
            village = _region(
                rng,
                township["id"],
                "village",
                village_names[village_index] + "村",
                f"{township['code']}{serial:03d}",
            )
            village_index += 1
            regions.append(village)
            lat = township_lat + rng.uniform(-0.04, 0.04)
            lon = township_lon + rng.uniform(-0.04, 0.04)
            villages.append(_Village(village, lat, lon, size))
    return regions, villages


def _region(
    rng: random.Random, parent_id: str | None, level: str, name: str, code: str
) -> dict[str, Any]:
    return {"id": _new_id(rng), "parent_id": parent_id, "level": level, "name": name, "code": code}


# --- names and numbers ----------------------------------------------------------------------

# Common in southern Anhui (汪 胡 程 查 in 徽州) first, then the national ones.
_SURNAMES = _table(
    {
        **dict.fromkeys("汪胡程", 6),
        **dict.fromkeys("查吴李陈王张", 4),
        **dict.fromkeys("刘方曹周章许洪", 2),
        **dict.fromkeys("邵葛舒江朱黄余叶汤戴冯鲍", 1),
    }
)
# Given names by gender and by generation: born before 1960, 1960–1989, 1990 on.
_GIVEN_NAMES = {
    "男": (
        ("德明", "国华", "建国", "永福", "长生", "福生", "金水", "根生", "有才", "春生", "荣华"),
        ("建军", "卫东", "志刚", "海军", "小平", "国强", "勇", "军", "斌", "红兵", "建华", "晓东"),
        ("浩", "宇轩", "子豪", "俊杰", "浩然", "梓轩", "宇航", "博文", "一鸣", "家乐", "鑫", "睿"),
    ),
    "女": (
        ("秀英", "桂兰", "玉梅", "凤英", "翠花", "秀兰", "桂英", "金莲", "菊香", "玉兰", "月娥"),
        ("丽", "红", "芳", "霞", "丽萍", "小梅", "秀芳", "艳", "静", "玲", "春燕", "晓红"),
        ("欣怡", "梓涵", "雨桐", "思琪", "佳怡", "可馨", "诗涵", "子萱", "梦瑶", "若曦", "悦"),
    ),
}
_MOBILE_PREFIXES = tuple(
    str(prefix)
    for prefix in (*range(130, 140), *range(150, 160), *range(180, 190))
    if prefix != 154
)


def _surname(rng: random.Random) -> str:
    return _pick(rng, _SURNAMES)


def _given_name(rng: random.Random, gender: str, birth_year: int) -> str:
    generation = 0 if birth_year < 1960 else 1 if birth_year < 1990 else 2
    return rng.choice(_GIVEN_NAMES[gender][generation])


def _full_name(rng: random.Random, gender: str, birth_year: int) -> str:
    return _surname(rng) + _given_name(rng, gender, birth_year)


def _mobile(rng: random.Random) -> str:
    """An 11-digit mainland mobile number (13x / 15x / 18x)."""
    return f"{rng.choice(_MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"


def _id_number(
    rng: random.Random, birth_year: int, gender: str, today: date, issued: set[str]
) -> str:
    """A unique valid 居民身份证号: county code, birth date in `birth_year` (not after
    `today`), a sequence code odd for men and even for women, and the check digit."""
    first_day = date(birth_year, 1, 1)
    last_day = min(date(birth_year, 12, 31), today)
    span = (last_day - first_day).days + 1
    odd = 1 if gender == "男" else 0
    while True:
        born = first_day + timedelta(days=rng.randrange(span))
        sequence = rng.randrange(1 - odd, 500) * 2 + odd
        first17 = f"{COUNTY_CODE}{born.year:04d}{born.month:02d}{born.day:02d}{sequence:03d}"
        number = first17 + id_number_check_digit(first17)
        if number not in issued:
            issued.add(number)
            return number


# --- households and people ------------------------------------------------------------------

_CATEGORIES = _table({"脱贫户": 70, "监测户": 12, "边缘户": 13, "一般户": 5})


def _member(
    relation: str, gender: str, birth_year: int, surname: str, orphan: bool = False
) -> dict[str, Any]:
    return {
        "relation": relation,
        "gender": gender,
        "birth_year": birth_year,
        "surname": surname,
        "orphan": orphan,
    }


def _male_or_female(rng: random.Random, male_share: float) -> str:
    return "男" if rng.random() < male_share else "女"


def _spouse(rng: random.Random, head_gender: str, head_age: int, year: int) -> dict[str, Any]:
    """The head's spouse; wives are usually a few years younger."""
    if head_gender == "男":
        return _member("配偶", "女", year - head_age + rng.randint(-1, 6), _surname(rng))
    return _member("配偶", "男", year - head_age - rng.randint(-1, 6), _surname(rng))


def _family_surname(rng: random.Random, members: list[dict[str, Any]]) -> str:
    """The surname children take: the first man's, else a late husband's."""
    for member in members:
        if member["gender"] == "男":
            return str(member["surname"])
    return _surname(rng)


def _descendants(
    rng: random.Random,
    count: int,
    relations: tuple[str, str],
    surname: str,
    ages: tuple[int, int],
    year: int,
    orphan: bool = False,
) -> list[dict[str, Any]]:
    boy, girl = relations
    members = []
    for _ in range(count):
        gender = _male_or_female(rng, 0.52)
        relation = boy if gender == "男" else girl
        members.append(_member(relation, gender, year - rng.randint(*ages), surname, orphan))
    return members


def _head(
    rng: random.Random, ages: tuple[int, int], male_share: float, year: int
) -> tuple[dict[str, Any], int, str]:
    """The head's record, age and gender."""
    age = rng.randint(*ages)
    gender = _male_or_female(rng, male_share)
    return _member("户主", gender, year - age, _surname(rng)), age, gender


def _elderly_alone(rng: random.Random, year: int) -> list[dict[str, Any]]:
    """An old person on their own; more often a widow."""
    head, _, _ = _head(rng, (62, 92), 0.45, year)
    return [head]


def _elderly_couple(rng: random.Random, year: int) -> list[dict[str, Any]]:
    head, age, gender = _head(rng, (60, 86), 1.0, year)
    return [head, _spouse(rng, gender, age, year)]


def _grandparents_with_grandchildren(rng: random.Random, year: int) -> list[dict[str, Any]]:
    """祖孙户: the parents work away (or have died) and the grandparents raise the children."""
    head, age, gender = _head(rng, (55, 82), 0.6, year)
    members = [head]
    if rng.random() < 0.55:
        members.append(_spouse(rng, gender, age, year))
    surname = _family_surname(rng, members)
    orphaned = rng.random() < 0.1
    count = rng.randint(1, 2)
    return members + _descendants(rng, count, ("孙子", "孙女"), surname, (3, 16), year, orphaned)


def _nuclear_family(rng: random.Random, year: int) -> list[dict[str, Any]]:
    head, age, gender = _head(rng, (30, 55), 0.9, year)
    members = [head]
    if rng.random() < 0.85:
        members.append(_spouse(rng, gender, age, year))
    surname = _family_surname(rng, members)
    count = rng.randint(1, 3)
    return members + _descendants(
        rng, count, ("儿子", "女儿"), surname, (0, min(25, age - 20)), year
    )


def _three_generations(rng: random.Random, year: int) -> list[dict[str, Any]]:
    head, age, gender = _head(rng, (52, 72), 0.8, year)
    members = [head]
    if rng.random() < 0.7:
        members.append(_spouse(rng, gender, age, year))
    surname = _family_surname(rng, members)
    son_age = rng.randint(max(22, age - 32), age - 22)
    members.append(_member("儿子", "男", year - son_age, surname))
    if rng.random() < 0.8:
        members.append(_member("儿媳", "女", year - son_age + rng.randint(-2, 4), _surname(rng)))
    count = rng.randint(1, min(2, 5 - len(members)))
    ages = (0, min(17, son_age - 20))
    return members + _descendants(rng, count, ("孙子", "孙女"), surname, ages, year)


def _with_old_parent(rng: random.Random, year: int) -> list[dict[str, Any]]:
    """A working-age head who keeps a very old parent at home."""
    head, age, gender = _head(rng, (35, 60), 0.75, year)
    members = [head]
    if rng.random() < 0.6:
        members.append(_spouse(rng, gender, age, year))
    if rng.random() < 0.3:
        surname = _family_surname(rng, members)
        ages = (0, min(20, age - 20))
        members += _descendants(rng, 1, ("儿子", "女儿"), surname, ages, year)
    parent_birth_year = year - min(98, age + rng.randint(22, 35))
    if rng.random() < 0.7:
        members.append(_member("母亲", "女", parent_birth_year, _surname(rng)))
    else:
        members.append(_member("父亲", "男", parent_birth_year, head["surname"]))
    return members


def _orphans(rng: random.Random, year: int) -> list[dict[str, Any]]:
    """孤儿户: an orphaned child registered as head, sometimes with a sibling."""
    head, age, _ = _head(rng, (8, 17), 0.5, year)
    head["orphan"] = True
    members = [head]
    if rng.random() < 0.4:
        sibling_age = rng.randint(5, 17)
        gender = _male_or_female(rng, 0.5)
        if sibling_age > age:
            relation = "哥哥" if gender == "男" else "姐姐"
        else:
            relation = "弟弟" if gender == "男" else "妹妹"
        members.append(_member(relation, gender, year - sibling_age, head["surname"], True))
    return members


def _single_adult(rng: random.Random, year: int) -> list[dict[str, Any]]:
    head, _, _ = _head(rng, (30, 59), 0.7, year)
    return [head]


_COMPOSITIONS: Table[Callable[[random.Random, int], list[dict[str, Any]]]] = _table(
    {
        _elderly_alone: 19,
        _elderly_couple: 18,
        _grandparents_with_grandchildren: 13,
        _nuclear_family: 22,
        _three_generations: 14,
        _with_old_parent: 8,
        _orphans: 2,
        _single_adult: 4,
    }
)


def _set_flags(rng: random.Random, members: list[dict[str, Any]], year: int) -> None:
    """老弱病残孤 + 独居/留守 by rules a county would recognise: elderly only from 60,
    alone only when living alone, orphan only for children, left-behind where no member
    is of working age."""
    ages = [year - member["birth_year"] for member in members]
    nobody_working_age = all(age < 18 or age >= 60 for age in ages)
    living_alone = len(members) == 1
    for member, age in zip(members, ages, strict=True):
        flags = []
        if age >= 70 or (age >= 60 and rng.random() < 0.5):
            flags.append("elderly")
        if age >= 60 and rng.random() < (0.35 if age >= 75 else 0.08):
            flags.append("frail")
        if rng.random() < (0.25 if age >= 60 else 0.08 if age >= 18 else 0.02):
            flags.append("sick")
        if rng.random() < 0.05:
            flags.append("disabled")
        if member["orphan"] and age < 18:
            flags.append("orphan")
        if living_alone and age >= 18 and rng.random() < (0.9 if age >= 60 else 0.3):
            flags.append("alone")
        if (
            nobody_working_age
            and "orphan" not in flags
            and rng.random() < (0.9 if age < 18 else 0.3)
        ):
            flags.append("left_behind")
        member["flags"] = sorted(flags)


def _household_note(
    rng: random.Random, members: list[dict[str, Any]], category: str, year: int
) -> str | None:
    """Sometimes the kind of remark a roster's 备注 column carries."""
    notes = []
    head = members[0]
    if len(members) == 1 and year - head["birth_year"] >= 60:
        notes += ["五保户", "独居，子女在外务工"]
    if "orphan" in head["flags"]:
        notes += ["孤儿，由姑母监护", "孤儿，由叔叔监护"]
    if len(members) == 2 and members[1]["relation"] in ("孙子", "孙女"):
        notes.append(f"{members[1]['relation']}留守，祖孙二人")
    if any("disabled" in member["flags"] for member in members):
        notes += ["肢体残疾二级", "视力残疾三级"]
    if any("sick" in member["flags"] for member in members):
        notes += ["高血压", "糖尿病，需长期服药"]
        if category == "监测户":
            notes.append("因病返贫风险")
    if notes and rng.random() < 0.5:
        return rng.choice(notes)
    return None


def _households(
    rng: random.Random,
    villages: list[_Village],
    today: date,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Households village by village, each with its people, head first."""
    year = today.year
    total = sum(village.households for village in villages)
    archived = set(rng.sample(range(total), min(total // 20, max(2, round(total * 0.008)))))
    issued: set[str] = set()
    households: list[dict[str, Any]] = []
    people: list[dict[str, Any]] = []
    for village in villages:
        for serial in range(1, village.households + 1):
            members = _pick(rng, _COMPOSITIONS)(rng, year)
            _set_flags(rng, members, year)
            household = _household(rng, village, serial, members, year)
            if len(households) in archived:
                household["status"] = "archived"
                household["notes"] = "户主去世，已销户" if len(members) == 1 else "全户迁出"
            households.append(household)
            people += _people(rng, household, members, today, issued)
    return households, people


def _household(
    rng: random.Random,
    village: _Village,
    serial: int,
    members: list[dict[str, Any]],
    year: int,
) -> dict[str, Any]:
    """The household record, a few hundred metres from the village centre; visited weekly
    where anyone has a 老弱病残孤/独居/留守 flag."""
    head = members[0]
    category = _pick(rng, _CATEGORIES)
    flagged = any(member["flags"] for member in members)
    living_alone_old = len(members) == 1 and year - head["birth_year"] >= 75
    no_phone = rng.random() < (0.35 if living_alone_old else 0.08)
    group, number = divmod(serial - 1, 8)
    return {
        "id": _new_id(rng),
        "village_id": village.region["id"],
        "code": f"{village.region['code']}{serial:03d}",
        "head_name": head["surname"] + _given_name(rng, head["gender"], head["birth_year"]),
        "address": f"{village.region['name']}{group + 1}组{number * 5 + rng.randint(1, 5)}号",
        "phone": None if no_phone else _mobile(rng),
        "category": category,
        "status": "active",
        "visit_policy": "weekly" if flagged else "monthly",
        "lat": round(village.lat + rng.uniform(-0.004, 0.004), 6),
        "lon": round(village.lon + rng.uniform(-0.004, 0.004), 6),
        "notes": _household_note(rng, members, category, year),
    }


def _people(
    rng: random.Random,
    household: dict[str, Any],
    members: list[dict[str, Any]],
    today: date,
    issued: set[str],
) -> list[dict[str, Any]]:
    """Person records: the head carries the household's name and phone."""
    people = []
    for index, member in enumerate(members):
        age = today.year - member["birth_year"]
        if index == 0:
            name, phone = household["head_name"], household["phone"]
        else:
            name = member["surname"] + _given_name(rng, member["gender"], member["birth_year"])
            phone_share = 0.7 if 18 <= age < 60 else 0.2 if age >= 60 else 0.0
            phone = _mobile(rng) if rng.random() < phone_share else None
        notes = None
        if "disabled" in member["flags"] and rng.random() < 0.5:
            notes = "持残疾证"
        elif "left_behind" in member["flags"] and age < 18 and rng.random() < 0.5:
            notes = "父母在外务工"
        people.append(
            {
                "id": _new_id(rng),
                "household_id": household["id"],
                "name": name,
                "gender": member["gender"],
                "birth_year": member["birth_year"],
                "relation": member["relation"],
                "flags": member["flags"],
                "id_number": _id_number(rng, member["birth_year"], member["gender"], today, issued),
                "phone": phone,
                "notes": notes,
            }
        )
    return people


# --- users ----------------------------------------------------------------------------------


def _user(
    rng: random.Random,
    username: str,
    role: str,
    year: int,
    region_ids: list[str],
    household_ids: list[str] | None = None,
) -> dict[str, Any]:
    birth_year = year - rng.randint(25, 56)
    return {
        "id": _new_id(rng),
        "username": username,
        "name": _full_name(rng, _male_or_female(rng, 0.65), birth_year),
        "role": role,
        "region_ids": region_ids,
        "household_ids": household_ids or [],
        "phone": _mobile(rng),
    }


def _users(
    rng: random.Random,
    regions: list[dict[str, Any]],
    villages: list[_Village],
    households: list[dict[str, Any]],
    year: int,
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Admin, supervisors and cadres, and for each household the cadres who visit it.

    Every village has a 村干部 covering all its households; about half of them also have a
    包保干部 with 5–15 neighbouring households of the same village.
    """
    county_id = regions[0]["id"]
    users = [
        _user(rng, "admin", "admin", year, [county_id]),
        _user(rng, "county", "supervisor", year, [county_id]),
    ]
    townships = [region for region in regions if region["level"] == "township"]
    for number, township in enumerate(townships, start=1):
        users.append(_user(rng, f"township{number}", "supervisor", year, [township["id"]]))
    households_by_village: dict[str, list[str]] = {}
    for household in households:
        households_by_village.setdefault(household["village_id"], []).append(household["id"])
    cadres_by_household: dict[str, list[str]] = {}
    cadre_numbers = itertools.count(1)
    for village in villages:
        household_ids = households_by_village.get(village.region["id"], [])
        username = f"cadre{next(cadre_numbers):03d}"
        village_cadre = _user(rng, username, "cadre", year, [village.region["id"]])
        users.append(village_cadre)
        for household_id in household_ids:
            cadres_by_household[household_id] = [village_cadre["id"]]
        for group in _paired_groups(rng, household_ids):
            username = f"cadre{next(cadre_numbers):03d}"
            paired_cadre = _user(rng, username, "cadre", year, [], group)
            users.append(paired_cadre)
            for household_id in group:
                cadres_by_household[household_id].append(paired_cadre["id"])
    return users, cadres_by_household


def _paired_groups(rng: random.Random, household_ids: list[str]) -> list[list[str]]:
    """About half of a village's households, in runs of 5–15 neighbours, one run per
    包保干部. A village of fewer than 5 households gets none."""
    if len(household_ids) < 5:
        return []
    chosen = max(5, round(len(household_ids) * rng.uniform(0.4, 0.6)))
    picked = sorted(rng.sample(range(len(household_ids)), chosen))
    groups = min(chosen // 5, max(math.ceil(chosen / 15), round(chosen / 10)))
    sizes = [5] * groups
    for _ in range(chosen - 5 * groups):
        sizes[rng.choice([index for index, size in enumerate(sizes) if size < 15])] += 1
    runs = []
    start = 0
    for size in sizes:
        runs.append([household_ids[index] for index in picked[start : start + size]])
        start += size
    return runs


# --- visits and problems --------------------------------------------------------------------

_MODES = _table({"home": 70, "phone": 15, "wechat": 10, "video": 5})
_VISIT_NOTES = (
    "身体状况良好",
    "血压偏高，已提醒按时服药",
    "已宣传防诈骗知识",
    "天冷提醒注意保暖",
    "家中卫生已督促整理",
    "已讲解医保报销政策",
)
_PROBLEM_DESCRIPTIONS = {
    "food": ("家中存粮不足，需临时救助", "口粮短缺，需联系村委送米面油"),
    "clothing": ("冬衣被褥不足，需添置", "缺少过冬棉被"),
    "education": ("孩子有辍学风险，需劝返并落实资助", "教育资助未到位"),
    "medical": (
        "慢性病药费负担重，需办理慢病卡",
        "未参加城乡居民医保，需代缴",
        "住院费用报销未到位",
    ),
    "housing": ("房屋漏雨，需修缮", "墙体开裂，需危房鉴定", "厨房厕所改造未完成"),
    "water": ("自来水停水，需检修管道", "饮水水质浑浊，需检测", "水压不足，高处用水困难"),
    "income": ("务工收入减少，有返贫风险", "茶叶收入下降，需产业帮扶"),
}
_INCOME_CHANGES = ("务工收入减少约三成", "茶叶减产，收入下降", "家人生病，务工中断", "养殖亏损")
_RESOLUTIONS = {
    "food": "已发放临时救助粮油",
    "clothing": "已送去棉被和冬衣",
    "education": "已落实教育资助，孩子正常上学",
    "medical": "已办理慢病卡并落实报销",
    "housing": "已协调资金完成修缮",
    "water": "管道已检修，供水恢复",
    "income": "已安排公益性岗位，收入稳定",
}
_PROBLEM_STATUS = ("open", "in_progress", "resolved", "verified")
# Older problems are further along the open → verified path.
_STATUS_WEIGHTS_BY_AGE = ((7, (6, 3, 1, 0)), (14, (2, 3, 3, 2)), (math.inf, (1, 2, 3, 4)))


def _weeks(today: date, weeks_of_history: int) -> list[tuple[date, int]]:
    """(Monday, days up to today) of each ISO week in the history, oldest first."""
    this_monday = today - timedelta(days=today.weekday())
    weeks = []
    for back in range(weeks_of_history, -1, -1):
        monday = this_monday - timedelta(weeks=back)
        weeks.append((monday, min(7, (today - monday).days + 1)))
    return weeks


def _months(first_day: date, today: date) -> list[tuple[date, int]]:
    """(first day, length) of each calendar month from `first_day`'s to `today`'s."""
    months = []
    start = first_day.replace(day=1)
    while start <= today:
        following = (start + timedelta(days=31)).replace(day=1)
        months.append((start, (following - start).days))
        start = following
    return months


def _visit_schedule(
    rng: random.Random, households: list[dict[str, Any]], today: date, weeks_of_history: int
) -> list[tuple[date, dict[str, Any]]]:
    """The days active households were visited, in date order.

    Weekly households are visited in most weeks (the current week in proportion to the days
    gone); monthly ones once in most calendar months, on a day of the whole month, so the
    current month fills up as it passes.
    """
    weeks = _weeks(today, weeks_of_history)
    months = _months(weeks[0][0], today)
    first_day = weeks[0][0]
    schedule = []
    for household in households:
        if household["status"] != "active":
            continue
        if household["visit_policy"] == "weekly":
            for monday, days in weeks:
                if rng.random() < WEEKLY_VISIT_RATE * days / 7:
                    schedule.append((monday + timedelta(days=rng.randrange(days)), household))
        else:
            for start, days in months:
                day = start + timedelta(days=rng.randrange(days))
                if rng.random() < MONTHLY_VISIT_RATE and first_day <= day <= today:
                    schedule.append((day, household))
    schedule.sort(key=lambda entry: entry[0])
    return schedule


def _visits_and_problems(
    rng: random.Random,
    schedule: list[tuple[date, dict[str, Any]]],
    people_by_household: dict[str, list[dict[str, Any]]],
    cadres_by_household: dict[str, list[str]],
    today: date,
    now: datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One visit per scheduled day, and the problems those visits logged."""
    visits = []
    problems = []
    for day, household in schedule:
        people = people_by_household[household["id"]]
        if household["visit_policy"] == "weekly":
            form_id = WEEKLY_FORM
            answers, found = _weekly_answers(rng, people, day.year)
        else:
            form_id = MONTHLY_FORM
            answers, found = _monthly_answers(rng)
        cadre_ids = cadres_by_household[household["id"]]
        visit = _visit(rng, day, household, people, cadre_ids, form_id, answers, now)
        visits.append(visit)
        if found is not None:
            problems.append(_problem(rng, visit, day, people, found, today))
    visits.sort(key=lambda visit: visit["visited_at"])
    return visits, problems


def _visit(
    rng: random.Random,
    day: date,
    household: dict[str, Any],
    people: list[dict[str, Any]],
    cadre_ids: list[str],
    form_id: str,
    answers: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """A visit by one of the household's cadres at a daytime hour, located when at home; a
    visit of today made before `now` (its daytime hour scaled into the part of today gone)."""
    mode = _pick(rng, _MODES)
    person_ids = [person["id"] for person in people]
    if mode == "home":
        people_seen = [pid for pid in person_ids if rng.random() < 0.6] or person_ids[:1]
    else:
        people_seen = [rng.choice(person_ids)]
    hour, minute, second = rng.randint(8, 18), rng.randrange(60), rng.randrange(60)
    moment = datetime.combine(day, time(hour, minute, second), tzinfo=CHINA_TZ)
    if moment > now:
        midnight = datetime.combine(day, time(), tzinfo=CHINA_TZ)
        moment = midnight + (moment - midnight) * ((now - midnight) / timedelta(days=1))
    return {
        "id": _new_id(rng),
        "household_id": household["id"],
        "visitor_id": rng.choice(cadre_ids),
        "visited_at": moment.replace(microsecond=0).isoformat(),
        "mode": mode,
        "form_id": form_id,
        "form_version": 1,
        "answers": answers,
        "people_seen": people_seen,
        "location": _home_location(rng, household) if mode == "home" else None,
        "notes": rng.choice(_VISIT_NOTES) if rng.random() < 0.15 else None,
        "corrects": None,
        "voided": False,
    }


def _home_location(rng: random.Random, household: dict[str, Any]) -> dict[str, float]:
    """A phone fix a few tens of metres from the house."""
    return {
        "lat": round(household["lat"] + rng.uniform(-0.0003, 0.0003), 6),
        "lon": round(household["lon"] + rng.uniform(-0.0003, 0.0003), 6),
        "accuracy": round(rng.uniform(4, 40), 1),
    }


def _weekly_answers(
    rng: random.Random, people: list[dict[str, Any]], year: int
) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """The 六个一 items and the basic checks, and the (category, description) of the
    problem the visit logged, if any.

    A failed check carries its `<check>_issue` text, as the weekly form requires, and is
    logged as a problem unless it was solved on the spot; education can only fail where a
    child of school age lives.
    """
    answers: dict[str, Any] = {key: rng.random() < rate for key, rate in SIX_ONES.items()}
    answers.update(dict.fromkeys(BASIC_CHECKS, True))
    if rng.random() >= FAILED_CHECK_RATE:
        return answers, None
    has_pupil = any(6 <= year - person["birth_year"] <= 17 for person in people)
    checks = [key for key in BASIC_CHECKS if has_pupil or key != "education_ok"]
    failed = rng.choice(checks)
    category = BASIC_CHECKS[failed]
    issue = rng.choice(_PROBLEM_DESCRIPTIONS[category])
    answers[failed] = False
    answers[failed.removesuffix("_ok") + "_issue"] = issue
    logged = rng.random() < PROBLEM_LOGGED_RATE
    answers["difficulty_solved"] = not logged
    return answers, (category, issue) if logged else None


def _monthly_answers(rng: random.Random) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """月监测: income change (with the note the monthly form requires) and risk level, and
    the income problem most high-risk visits log, as the form offers it."""
    income_changed = rng.random() < 0.08
    if income_changed:
        risk_level = rng.choice(("medium", "high"))
    else:
        risk_level = rng.choices(("low", "medium", "high"), weights=(85, 12, 3))[0]
    answers: dict[str, Any] = {
        "income_changed": income_changed,
        "risk_level": risk_level,
        "measures_reviewed": rng.random() < 0.9,
    }
    if income_changed:
        answers["income_change_note"] = rng.choice(_INCOME_CHANGES)
    if risk_level != "high" or rng.random() >= PROBLEM_LOGGED_RATE:
        return answers, None
    return answers, ("income", rng.choice(_PROBLEM_DESCRIPTIONS["income"]))


def _problem(
    rng: random.Random,
    visit: dict[str, Any],
    day: date,
    people: list[dict[str, Any]],
    found: tuple[str, str],
    today: date,
) -> dict[str, Any]:
    """A 问题清单 item assigned to the visiting cadre, further along the older it is."""
    category, description = found
    age_in_days = (today - day).days
    weights = next(w for limit, w in _STATUS_WEIGHTS_BY_AGE if age_in_days < limit)
    status = rng.choices(_PROBLEM_STATUS, weights=weights)[0]
    return {
        "id": _new_id(rng),
        "household_id": visit["household_id"],
        "person_id": _problem_person(rng, people, category, day.year),
        "visit_id": visit["id"],
        "category": category,
        "description": description,
        "status": status,
        "assignee_id": visit["visitor_id"],
        "due_date": (day + timedelta(days=rng.randint(7, 30))).isoformat(),
        "resolution": _RESOLUTIONS[category] if status in ("resolved", "verified") else None,
    }


def _problem_person(
    rng: random.Random, people: list[dict[str, Any]], category: str, year: int
) -> str | None:
    """Medical problems concern a sick or frail person, education ones a pupil; the
    others concern the household."""
    if category == "medical":
        candidates = [p for p in people if {"sick", "frail", "disabled"} & set(p["flags"])]
    elif category == "education":
        candidates = [p for p in people if 6 <= year - p["birth_year"] <= 17]
    else:
        candidates = []
    return rng.choice(candidates)["id"] if candidates else None


def _void_and_correct(
    rng: random.Random,
    visits: list[dict[str, Any]],
    problems: list[dict[str, Any]],
    people_by_household: dict[str, list[dict[str, Any]]],
    households: list[dict[str, Any]],
) -> None:
    """Void one or two visits recorded by mistake and append one correction, so reports
    meet both cases. Visits that raised a problem are left alone."""
    with_problem = {problem["visit_id"] for problem in problems}
    candidates = [visit for visit in visits if visit["id"] not in with_problem]
    if len(candidates) < 3:
        return
    voided = rng.sample(candidates, 2 if len(candidates) >= 50 else 1)
    for visit in voided:
        visit["voided"] = True
        visit["notes"] = "误录，已作废"
    remaining = [visit for visit in candidates if not visit["voided"]]
    remote = [visit for visit in remaining if visit["mode"] != "home"]
    original = rng.choice(remote or remaining)
    household = next(h for h in households if h["id"] == original["household_id"])
    correction = {
        **original,
        "id": _new_id(rng),
        "mode": "home",
        "people_seen": [person["id"] for person in people_by_household[household["id"]]],
        "location": _home_location(rng, household),
        "notes": "更正：实为入户走访，补录定位",
        "corrects": original["id"],
    }
    visits.append(correction)


# --- help measures --------------------------------------------------------------------------

_MEASURE_STATUS = _table({"planned": 25, "in_progress": 45, "done": 30})
_MEASURE_DESCRIPTIONS = {
    "industry": (
        "发展茶叶种植",
        "发展山核桃种植",
        "养殖土鸡50只",
        "发展中药材种植",
        "光伏收益分红",
    ),
    "employment": ("公益性岗位就业", "推荐到县经济开发区务工", "参加电工技能培训", "扶贫车间就业"),
    "education": ("雨露计划助学", "义务教育阶段资助", "营养午餐补助"),
    "medical": ("家庭医生签约服务", "办理慢性病卡", "医保参保资助", "大病救助"),
    "housing": ("危房改造", "农村厕所改造", "饮水安全巩固提升"),
    "social_security": ("纳入农村低保", "特困人员供养", "残疾人两项补贴", "高龄津贴"),
    "other": ("小额信贷", "结对帮扶", "防返贫保险"),
}


def _measure_targets(people: list[dict[str, Any]], year: int) -> list[tuple[str, str | None]]:
    """The help a household's plan can hold, each with the person it is for (一人一措施),
    or None where it is for the whole household."""
    targets: dict[str, str | None] = {"industry": None, "housing": None, "other": None}
    for person in people:
        age = year - person["birth_year"]
        flags = set(person["flags"])
        if 18 <= age < 60 and not flags:
            targets.setdefault("employment", person["id"])
        if 3 <= age <= 22:
            targets.setdefault("education", person["id"])
        if flags & {"sick", "frail", "disabled"}:
            targets.setdefault("medical", person["id"])
        if flags & {"elderly", "disabled", "orphan"}:
            targets.setdefault("social_security", person["id"])
    return list(targets.items())


def _measures(
    rng: random.Random,
    households: list[dict[str, Any]],
    people_by_household: dict[str, list[dict[str, Any]]],
    cadres_by_household: dict[str, list[str]],
    today: date,
) -> list[dict[str, Any]]:
    """一户一方案: 1–3 measures for each 脱贫户/监测户/边缘户, owned by its 包保干部 where
    it has one, else its 村干部."""
    measures = []
    for household in households:
        if household["category"] not in HELPED_CATEGORIES:
            continue
        targets = _measure_targets(people_by_household[household["id"]], today.year)
        responsible_id = cadres_by_household[household["id"]][-1]
        for category, person_id in rng.sample(targets, rng.randint(1, 3)):
            status = _pick(rng, _MEASURE_STATUS)
            measures.append(
                {
                    "id": _new_id(rng),
                    "household_id": household["id"],
                    "person_id": person_id,
                    "category": category,
                    "description": rng.choice(_MEASURE_DESCRIPTIONS[category]),
                    "responsible_id": responsible_id,
                    "status": status,
                    "due_date": _measure_due(rng, status, today).isoformat(),
                }
            )
    return measures


def _measure_due(rng: random.Random, status: str, today: date) -> date:
    """Done measures fell due in the past, planned ones lie ahead, and some in progress
    are overdue, as on a real plan."""
    if status == "done":
        return today - timedelta(days=rng.randint(10, 300))
    if status == "in_progress":
        return today + timedelta(days=rng.randint(-30, 270))
    return today + timedelta(days=rng.randint(30, 270))
