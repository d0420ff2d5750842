"""The demo county: deterministic, internally consistent and shaped like a real roster."""

import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from server.admin.demo import DemoCounty, generate_demo_county, id_number_check_digit

TODAY = date(2026, 11, 25)  # a Wednesday
CHINA = timezone(timedelta(hours=8))
ALLOWED_FLAGS = {"elderly", "frail", "sick", "disabled", "orphan", "alone", "left_behind"}
SIX_ONES = {
    "health_asked",
    "knowledge_shared",
    "difficulty_solved",
    "comfort_given",
    "hygiene_improved",
    "plan_updated",
}
BASIC_CHECKS = {"food_ok", "clothing_ok", "education_ok", "medical_ok", "housing_ok", "water_ok"}
MONTHLY_KEYS = {"income_changed", "risk_level", "measures_reviewed"}
HELPED_CATEGORIES = {"脱贫户", "监测户", "边缘户"}
MOBILE_PREFIXES = ("13", "15", "18")


def gb11643_check_digit(first17: str) -> str:
    """The check character computed here from the standard, not from the module."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


@pytest.fixture(scope="module")
def county() -> DemoCounty:
    return generate_demo_county(today=TODAY)


@pytest.fixture(scope="module")
def larger_county() -> DemoCounty:
    return generate_demo_county(households=2000, seed=11, today=TODAY)


def by_id(records: list[dict]) -> dict[str, dict]:
    return {record["id"]: record for record in records}


def regions_at(county: DemoCounty, level: str) -> list[dict]:
    return [region for region in county.regions if region["level"] == level]


def cadre_coverage(county: DemoCounty) -> dict[str, set[str]]:
    """Household id -> ids of the cadres whose villages or 包保 lists hold it."""
    village_of = {h["id"]: h["village_id"] for h in county.households}
    coverage: dict[str, set[str]] = {household_id: set() for household_id in village_of}
    for user in county.users:
        if user["role"] != "cadre":
            continue
        for household_id, village_id in village_of.items():
            if village_id in user["region_ids"] or household_id in user["household_ids"]:
                coverage[household_id].add(user["id"])
    return coverage


def visit_time(visit: dict) -> datetime:
    return datetime.fromisoformat(visit["visited_at"])


def assert_references_resolve(county: DemoCounty) -> None:
    regions = by_id(county.regions)
    households = by_id(county.households)
    people = by_id(county.people)
    users = by_id(county.users)
    visits = by_id(county.visits)
    for region in county.regions:
        assert region["parent_id"] is None or region["parent_id"] in regions
    for household in county.households:
        assert regions[household["village_id"]]["level"] == "village"
    for person in county.people:
        assert person["household_id"] in households
    for user in county.users:
        assert all(region_id in regions for region_id in user["region_ids"])
        assert all(household_id in households for household_id in user["household_ids"])
    for visit in county.visits:
        assert visit["household_id"] in households
        assert users[visit["visitor_id"]]["role"] == "cadre"
        assert all(
            people[pid]["household_id"] == visit["household_id"] for pid in visit["people_seen"]
        )
        assert visit["corrects"] is None or visit["corrects"] in visits
    for problem in county.problems:
        assert visits[problem["visit_id"]]["household_id"] == problem["household_id"]
        assert problem["assignee_id"] in users
        if problem["person_id"] is not None:
            assert people[problem["person_id"]]["household_id"] == problem["household_id"]
    for measure in county.measures:
        assert measure["household_id"] in households
        assert measure["responsible_id"] in users
        if measure["person_id"] is not None:
            assert people[measure["person_id"]]["household_id"] == measure["household_id"]


def test_same_seed_gives_identical_county():
    assert generate_demo_county(seed=3, today=TODAY) == generate_demo_county(seed=3, today=TODAY)


def test_same_seed_gives_identical_county_in_processes_with_other_hash_seeds():
    """`seed-demo` runs in its own process: nothing may depend on set or hash order."""
    script = (
        "import dataclasses, datetime, hashlib, json\n"
        "from server.admin.demo import generate_demo_county\n"
        "county = generate_demo_county(households=300, today=datetime.date(2026, 11, 25))\n"
        "text = json.dumps(dataclasses.asdict(county), ensure_ascii=False, sort_keys=True)\n"
        "print(hashlib.sha256(text.encode()).hexdigest())\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert len(digests) == 1


def test_other_seed_gives_other_households():
    first = generate_demo_county(seed=3, today=TODAY)
    second = generate_demo_county(seed=4, today=TODAY)
    assert [h["head_name"] for h in first.households] != [h["head_name"] for h in second.households]


def test_default_county_has_two_townships_of_three_villages_of_forty_households(county):
    assert len(regions_at(county, "county")) == 1
    townships = regions_at(county, "township")
    villages = regions_at(county, "village")
    assert len(townships) == 2
    assert Counter(v["parent_id"] for v in villages) == {t["id"]: 3 for t in townships}
    assert len(county.households) == 240
    assert set(Counter(h["village_id"] for h in county.households).values()) == {40}


def test_every_reference_points_at_an_existing_record(county):
    assert_references_resolve(county)


def test_references_resolve_in_a_county_smaller_than_its_villages_need():
    assert_references_resolve(generate_demo_county(households=10, today=TODAY))


def test_ids_are_unique_uuid4_strings(county):
    records = [
        *county.regions,
        *county.households,
        *county.people,
        *county.users,
        *county.visits,
        *county.problems,
        *county.measures,
    ]
    ids = [record["id"] for record in records]
    assert len(set(ids)) == len(ids)
    assert all(str(uuid.UUID(i)) == i and uuid.UUID(i).version == 4 for i in ids)


def test_codes_follow_the_statistical_division_code_lengths(county):
    regions = by_id(county.regions)
    for region in county.regions:
        length = {"county": 6, "township": 9, "village": 12}[region["level"]]
        assert len(region["code"]) == length and region["code"].isdigit()
        if region["parent_id"] is not None:
            assert region["code"].startswith(regions[region["parent_id"]]["code"])
    for household in county.households:
        village_code = regions[household["village_id"]]["code"]
        assert household["code"][:12] == village_code and len(household["code"]) == 15


@pytest.mark.parametrize(
    "number",
    [
        "11010519491231002X",  # the worked example of GB 11643-1999
        "440524188001010014",  # the other example of the standard
        "341823194110201790",  # from samples/roster_example.csv
        "341823201108163783",  # from samples/roster_example.csv
    ],
)
def test_check_digit_of_known_valid_id_numbers(number):
    assert id_number_check_digit(number[:17]) == number[17]
    assert gb11643_check_digit(number[:17]) == number[17]


@pytest.mark.parametrize(
    "first17", ["3418231941102017", "3418231941102017X", "３４１８２３１９４１１０２０１７９"]
)
def test_check_digit_refuses_anything_but_seventeen_ascii_digits(first17):
    with pytest.raises(ValueError):
        id_number_check_digit(first17)


def test_every_id_number_has_a_valid_check_digit(county):
    for person in county.people:
        number = person["id_number"]
        assert len(number) == 18 and number[:17].isdigit()
        assert number[17] == gb11643_check_digit(number[:17])


def test_id_number_carries_county_birth_date_and_gender(county):
    households = by_id(county.households)
    for person in county.people:
        number = person["id_number"]
        assert number[:6] == households[person["household_id"]]["code"][:6]
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        assert born.year == person["birth_year"] and born <= TODAY
        assert int(number[16]) % 2 == (1 if person["gender"] == "男" else 0)
    assert len({person["id_number"] for person in county.people}) == len(county.people)


def test_household_has_one_to_five_people_head_first_under_the_head_name(county):
    people_of = Counter(person["household_id"] for person in county.people)
    assert set(people_of.values()) <= {1, 2, 3, 4, 5}
    heads = {}
    for person in county.people:
        heads.setdefault(person["household_id"], person)
    for household in county.households:
        head = heads[household["id"]]
        assert head["relation"] == "户主" and head["name"] == household["head_name"]
        assert head["phone"] == household["phone"]


def test_flags_come_only_from_the_allowed_set_and_are_sorted(county):
    for person in county.people:
        assert set(person["flags"]) <= ALLOWED_FLAGS
        assert person["flags"] == sorted(person["flags"])


def test_flags_follow_age_and_household_rules(county):
    household_size = Counter(person["household_id"] for person in county.people)
    for person in county.people:
        age = TODAY.year - person["birth_year"]
        if "elderly" in person["flags"]:
            assert age >= 60
        if "orphan" in person["flags"]:
            assert age < 18
        if "alone" in person["flags"]:
            assert household_size[person["household_id"]] == 1


def test_weekly_policy_exactly_for_households_with_a_flagged_person(county):
    flagged = {person["household_id"] for person in county.people if person["flags"]}
    for household in county.households:
        expected = "weekly" if household["id"] in flagged else "monthly"
        assert household["visit_policy"] == expected


def test_categories_are_mostly_lifted_out_of_poverty(larger_county):
    share = Counter(h["category"] for h in larger_county.households)
    assert set(share) == {"脱贫户", "监测户", "边缘户", "一般户"}
    assert 0.6 < share["脱贫户"] / len(larger_county.households) < 0.8


def test_a_couple_of_households_are_archived(county):
    statuses = Counter(household["status"] for household in county.households)
    assert statuses == {"active": 238, "archived": 2}


def test_phones_are_eleven_digit_mobiles(county):
    phones = [h["phone"] for h in county.households] + [u["phone"] for u in county.users]
    phones += [person["phone"] for person in county.people]
    for phone in phones:
        if phone is not None:
            assert len(phone) == 11 and phone.isdigit() and phone.startswith(MOBILE_PREFIXES)
    assert None in phones


def test_users_are_an_admin_a_county_and_a_supervisor_per_township(county):
    users = {user["username"]: user for user in county.users}
    county_id = regions_at(county, "county")[0]["id"]
    assert users["admin"]["role"] == "admin" and users["admin"]["region_ids"] == [county_id]
    assert users["county"]["role"] == "supervisor" and users["county"]["region_ids"] == [county_id]
    townships = [t["id"] for t in regions_at(county, "township")]
    assert [users[f"township{n}"]["region_ids"] for n in (1, 2)] == [[t] for t in townships]
    cadres = [user for user in county.users if user["role"] == "cadre"]
    assert [user["username"] for user in cadres] == [
        f"cadre{n:03d}" for n in range(1, len(cadres) + 1)
    ]


def test_every_household_is_covered_by_a_cadre(county):
    assert all(cadres for cadres in cadre_coverage(county).values())


def test_each_village_has_one_village_cadre(county):
    village_cadres = Counter(
        user["region_ids"][0]
        for user in county.users
        if user["role"] == "cadre" and user["region_ids"]
    )
    assert village_cadres == {village["id"]: 1 for village in regions_at(county, "village")}


def test_paired_cadres_hold_five_to_fifteen_households_and_about_half_of_all(county):
    paired = [user for user in county.users if user["household_ids"]]
    assert all(5 <= len(user["household_ids"]) <= 15 for user in paired)
    assert all(user["role"] == "cadre" and user["region_ids"] == [] for user in paired)
    covered = {household_id for user in paired for household_id in user["household_ids"]}
    assert 0.35 < len(covered) / len(county.households) < 0.65


def test_visits_are_never_after_the_end_of_today(county):
    end_of_today = datetime.combine(TODAY, time.max, tzinfo=CHINA)
    first_monday = TODAY - timedelta(days=TODAY.weekday(), weeks=4)
    start = datetime.combine(first_monday, time.min, tzinfo=CHINA)
    for visit in county.visits:
        assert visit["visited_at"].endswith("+08:00")
        assert start <= visit_time(visit) <= end_of_today
        assert 8 <= visit_time(visit).hour < 19


def test_visits_are_made_by_a_cadre_of_the_household(county):
    coverage = cadre_coverage(county)
    assert all(visit["visitor_id"] in coverage[visit["household_id"]] for visit in county.visits)


def test_weekly_households_are_mostly_visited_in_each_past_week(county):
    weekly = {
        h["id"]
        for h in county.households
        if h["visit_policy"] == "weekly" and h["status"] == "active"
    }
    for weeks_back in range(1, 5):
        week = (TODAY - timedelta(weeks=weeks_back)).isocalendar()[:2]
        visited = {
            v["household_id"]
            for v in county.visits
            if not v["voided"] and visit_time(v).isocalendar()[:2] == week
        }
        assert len(visited & weekly) / len(weekly) > 0.75


def test_archived_households_are_not_visited(county):
    archived = {h["id"] for h in county.households if h["status"] == "archived"}
    assert not archived & {visit["household_id"] for visit in county.visits}


def test_monthly_households_are_visited_at_most_once_a_month(larger_county):
    monthly = {h["id"] for h in larger_county.households if h["visit_policy"] == "monthly"}
    per_month = Counter(
        (v["household_id"], v["visited_at"][:7])
        for v in larger_county.visits
        if v["household_id"] in monthly and v["corrects"] is None
    )
    assert per_month and max(per_month.values()) == 1
    assert len({household_id for household_id, _ in per_month}) / len(monthly) > 0.7


def test_visits_use_the_form_of_their_household_policy(county):
    households = by_id(county.households)
    for visit in county.visits:
        policy = households[visit["household_id"]]["visit_policy"]
        assert visit["form_version"] == 1
        if policy == "weekly":
            assert visit["form_id"] == "weekly_visit"
        else:
            assert visit["form_id"] == "monthly_monitoring"


def test_weekly_answers_are_the_twelve_checks_plus_an_issue_for_each_failed_one(county):
    for visit in county.visits:
        answers = visit["answers"]
        if visit["form_id"] != "weekly_visit":
            continue
        booleans = {key for key, answer in answers.items() if isinstance(answer, bool)}
        assert booleans == SIX_ONES | BASIC_CHECKS
        failed = {key for key in BASIC_CHECKS if not answers[key]}
        assert set(answers) - booleans == {key.replace("_ok", "_issue") for key in failed}


def test_monthly_answers_note_a_changed_income(county):
    for visit in county.visits:
        answers = visit["answers"]
        if visit["form_id"] != "monthly_monitoring":
            continue
        note = {"income_change_note"} if answers["income_changed"] else set()
        assert set(answers) == MONTHLY_KEYS | note
        assert answers["risk_level"] in {"low", "medium", "high"}


def test_visit_answers_pass_the_validation_of_their_form(county):
    forms = pytest.importorskip("forms")
    registry = forms.load_definitions()
    people_of: dict[str, list[str]] = {}
    for person in county.people:
        people_of.setdefault(person["household_id"], []).append(person["id"])
    for visit in county.visits:
        form = registry.get(visit["form_id"], visit["form_version"])
        people = people_of[visit["household_id"]]
        assert forms.validate_answers(form, visit["answers"], people=people) == {}


def test_problems_are_among_those_their_visit_form_offers(county):
    forms = pytest.importorskip("forms")
    registry = forms.load_definitions()
    visits = by_id(county.visits)
    for problem in county.problems:
        visit = visits[problem["visit_id"]]
        form = registry.get(visit["form_id"], visit["form_version"])
        offered = {found["category"] for found in forms.problems_found(form, visit["answers"])}
        assert problem["category"] in offered


def test_weekly_checks_mostly_pass(larger_county):
    checks = [
        answer
        for visit in larger_county.visits
        if visit["form_id"] == "weekly_visit"
        for key, answer in visit["answers"].items()
        if key in BASIC_CHECKS
    ]
    assert sum(checks) / len(checks) > 0.95


def test_home_visits_alone_carry_a_location(county):
    modes = Counter(visit["mode"] for visit in county.visits)
    assert set(modes) == {"home", "phone", "wechat", "video"}
    assert 0.6 < modes["home"] / len(county.visits) < 0.8
    for visit in county.visits:
        if visit["mode"] == "home":
            assert set(visit["location"]) == {"lat", "lon", "accuracy"}
        else:
            assert visit["location"] is None
        assert visit["people_seen"]


def test_one_or_two_visits_are_voided(county):
    assert 1 <= sum(visit["voided"] for visit in county.visits) <= 2


def test_one_visit_corrects_an_earlier_visit_of_the_same_household(county):
    visits = by_id(county.visits)
    corrections = [visit for visit in county.visits if visit["corrects"] is not None]
    assert len(corrections) == 1
    original = visits[corrections[0]["corrects"]]
    assert original["household_id"] == corrections[0]["household_id"]
    assert original["id"] != corrections[0]["id"] and not original["voided"]
    assert county.visits.index(original) < county.visits.index(corrections[0])
    assert visit_time(original) <= visit_time(corrections[0])


def test_problems_come_from_a_failed_check_of_their_visit(county):
    visits = by_id(county.visits)
    assert county.problems
    for problem in county.problems:
        visit = visits[problem["visit_id"]]
        answers = visit["answers"]
        if problem["category"] == "income":
            assert answers["risk_level"] == "high"
        else:
            assert answers[f"{problem['category']}_ok"] is False
            assert answers[f"{problem['category']}_issue"] == problem["description"]
            assert answers["difficulty_solved"] is False
        assert problem["assignee_id"] == visit["visitor_id"]


def test_problems_are_due_seven_to_thirty_days_after_their_visit(county):
    visits = by_id(county.visits)
    for problem in county.problems:
        visited = visit_time(visits[problem["visit_id"]]).date()
        assert 7 <= (date.fromisoformat(problem["due_date"]) - visited).days <= 30


def test_only_resolved_and_verified_problems_carry_a_resolution(larger_county):
    statuses = Counter(problem["status"] for problem in larger_county.problems)
    assert set(statuses) == {"open", "in_progress", "resolved", "verified"}
    for problem in larger_county.problems:
        resolved = problem["status"] in {"resolved", "verified"}
        assert (problem["resolution"] is not None) == resolved


def test_about_eight_percent_of_visits_raise_a_problem(larger_county):
    assert 0.05 < len(larger_county.problems) / len(larger_county.visits) < 0.11


def test_helped_households_have_one_to_three_measures_owned_by_their_cadre(county):
    coverage = cadre_coverage(county)
    measures_of = Counter(measure["household_id"] for measure in county.measures)
    for household in county.households:
        count = measures_of[household["id"]]
        assert (1 <= count <= 3) if household["category"] in HELPED_CATEGORIES else count == 0
    for measure in county.measures:
        assert measure["responsible_id"] in coverage[measure["household_id"]]
        assert measure["status"] in {"planned", "in_progress", "done"}
        date.fromisoformat(measure["due_date"])


def test_larger_county_adds_townships_of_at_most_eight_villages_of_forty_households(
    larger_county,
):
    townships = regions_at(larger_county, "township")
    villages = regions_at(larger_county, "village")
    assert len(townships) > 2 and len(villages) == 50
    assert max(Counter(v["parent_id"] for v in villages).values()) <= 8
    assert set(Counter(h["village_id"] for h in larger_county.households).values()) == {40}
    assert len({village["name"] for village in villages}) == len(villages)


def test_big_county_stops_at_fifteen_townships_with_up_to_sixty_households_a_village():
    big = generate_demo_county(households=10_000, today=TODAY, weeks_of_history=0)
    assert len(regions_at(big, "township")) == 15
    assert max(Counter(h["village_id"] for h in big.households).values()) <= 60


def test_counts_match_the_records(county):
    assert county.counts()["households"] == 240
    assert county.counts()["visits"] == len(county.visits)


@pytest.mark.parametrize("arguments", [{"households": -1}, {"weeks_of_history": -1}])
def test_negative_sizes_are_refused(arguments):
    with pytest.raises(ValueError):
        generate_demo_county(today=TODAY, **arguments)


def test_no_visit_is_later_than_the_moment_the_demo_is_made():
    """Seeded at 09:30 on a Wednesday, the demo holds no visit of 09:31 that day."""
    now = datetime(2026, 11, 25, 9, 30, tzinfo=CHINA)
    county = generate_demo_county(households=300, now=now)
    assert max(visit_time(visit) for visit in county.visits) <= now
    assert any(visit_time(visit).date() == now.date() for visit in county.visits)
