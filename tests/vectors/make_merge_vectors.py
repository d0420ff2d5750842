"""Write the shared merge and HLC vectors by running the Python sync core.

The PWA mirrors ``sync/merge.py`` and ``sync/hlc.py`` in ``pwa_static/js``; both must compute
the same values, conflicts and timestamps. This script runs the Python side on hand-written
scenarios and a seeded random set and writes inputs with expected outputs to
``merge_cases.json`` and ``hlc_cases.json``, which ``tests/js/*.test.mjs`` replay in Node.
``tests/test_vectors.py`` fails when the committed files differ from what this writes, so
after changing the sync core run::

    python tests/vectors/make_merge_vectors.py
"""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from pathlib import Path
from typing import Any

from sync.effective import effective_hlc
from sync.hlc import MAX_COUNTER, ZERO, Clock, HLCError, format_hlc, parse_hlc
from sync.merge import (
    CONFLICT_NAMESPACE,
    ConflictRecord,
    FieldWrite,
    conflict_for,
    heads,
    merge_write,
    resolve,
)
from sync.records import RECORD_TYPES

HERE = Path(__file__).resolve().parent
MERGE_FILE = HERE / "merge_cases.json"
HLC_FILE = HERE / "hlc_cases.json"
SEED = 20261124
RANDOM_CASES = 40
NOTICE = "Written by tests/vectors/make_merge_vectors.py from the Python sync core; do not edit."

RULE_FIELDS = {
    "latest": ("household", "phone"),
    "least_closed": ("problem", "status"),
    "union": ("person", "flags"),
}
VALUES: dict[str, list[Any]] = {
    "latest": ["13900000001", "13900000002", "13900000003", None],
    "least_closed": ["open", "in_progress", "resolved", "verified"],
    "union": [[], ["elderly"], ["sick"], ["alone", "elderly"], ["elderly", "sick"], None],
}
DAY = 1_763_971_200_000  # 2025-11-24T08:00:00Z in milliseconds


class History:
    """One field's writes as the server stores them, in arrival (= version) order.

    A phone edits offline knowing the record as of its last pull (its ``base_version``),
    and every op of a phone carries the next ``device_seq``; versions and sequence numbers
    skip ahead as other records and fields take theirs.
    """

    def __init__(self, rng: random.Random, rule: str, start_version: int = 3) -> None:
        self.rng = rng
        self.rule = rule
        self.record_type, self.field = RULE_FIELDS[rule]
        self.record_id = _uuid(rng)
        self.start_version = start_version
        self.seqs: dict[str, int] = {}
        self.writes: list[FieldWrite] = []

    def edit(
        self,
        phone: str,
        value: Any,
        second: int,
        knows: int | None = None,
        counter: int = 0,
        hlc: str | None = None,
    ) -> None:
        """A write of ``phone-<phone>`` stamped ``second`` seconds into the day (or ``hlc``),
        made knowing the record as of write number ``knows`` (default: before any of these
        writes)."""
        device = f"phone-{phone}"
        version = self.writes[-1].version if self.writes else self.start_version
        self.seqs[device] = self.seqs.get(device, 0) + 1 + self.rng.randrange(2)
        base = self.start_version if knows is None else self.writes[knows].version
        self.writes.append(
            FieldWrite(
                record_type=self.record_type,
                record_id=self.record_id,
                field=self.field,
                op_id=_uuid(self.rng),
                version=version + 1 + self.rng.randrange(3),
                base_version=base,
                device_id=device,
                device_seq=self.seqs[device],
                hlc=hlc or format_hlc(DAY + second * 1000, counter),
                value=value,
                user_id=f"user-{phone}",
            )
        )


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def merge_case(name: str, history: History) -> dict[str, Any]:
    """A scenario with everything sync.merge says about it."""
    writes = history.writes
    rule = history.rule
    final = heads(writes)
    value, credited = resolve(rule, final)
    return {
        "name": name,
        "rule": rule,
        "writes": [dataclasses.asdict(w) for w in writes],
        "saw": [[j for j, other in enumerate(writes) if w.saw(other)] for w in writes],
        "heads": [w.op_id for w in final],
        "resolve": {"value": value, "credited": credited.op_id},
        "conflict": _conflict(conflict_for(rule, final, "open")),
        "steps": [_step(rule, writes[:i], w) for i, w in enumerate(writes)],
    }


def _step(rule: str, earlier: list[FieldWrite], new: FieldWrite) -> dict[str, Any]:
    outcome = merge_write(rule, earlier, new)
    return {
        "value": outcome.value,
        "upsert": [_conflict(c) for c in outcome.upsert],
        "retire": outcome.retire,
    }


def _conflict(conflict: ConflictRecord | None) -> dict[str, Any] | None:
    return None if conflict is None else {"id": conflict.id, **conflict.data()}


P1, P2, P3 = "13900000001", "13900000002", "13900000003"
OBJECT = {"lat": 27.5, "lon": 106.9, "tags": ["a", "b"]}

# (name, rule, edits): each edit is History.edit's (phone, value, second[, knows[, counter]]).
HAND_WRITTEN: list[tuple[str, str, list[tuple[Any, ...]]]] = [
    ("one write is the value", "latest", [("a", P1, 10)]),
    ("a phone's own offline edits have one head, its last", "latest", [
        ("a", P1, 10), ("a", P2, 20), ("a", P3, 15)]),
    ("a write whose base covers another replaces it", "latest", [
        ("a", P1, 50), ("b", P2, 10, 0)]),
    ("two concurrent writers: the later hlc wins", "latest", [("a", P1, 20), ("b", P2, 10)]),
    ("equal hlc: the greater device id wins", "latest", [("b", P2, 10), ("a", P1, 10)]),
    ("equal millisecond: the greater counter wins", "latest", [
        ("b", P2, 10, None, 1), ("a", P1, 10, None, 2)]),
    ("three concurrent writers", "latest", [("a", P1, 30), ("b", P2, 10), ("c", P3, 20)]),
    ("four writers: only those that differ from the winner lose", "latest", [
        ("a", P1, 40), ("b", P2, 10), ("c", P1, 20), ("d", None, 30)]),
    ("concurrent equal values make no conflict", "latest", [
        ("a", P1, 10), ("b", P1, 20), ("c", P1, 30)]),
    ("objects are equal whatever their key order", "latest", [
        ("a", OBJECT, 10), ("b", dict(reversed(OBJECT.items())), 20)]),
    ("lists inside objects compare in order", "latest", [
        ("a", {"tags": ["a", "b"]}, 10), ("b", {"tags": ["b", "a"]}, 20)]),
    ("a later null wins over a string", "latest", [("a", P1, 10), ("b", None, 20)]),
    ("a phone's later edit moves the conflict to its new value", "latest", [
        ("a", P1, 10), ("b", P2, 20), ("a", P3, 30)]),
    ("a phone's later edit that agrees ends the conflict", "latest", [
        ("a", P1, 10), ("b", P2, 20), ("a", P2, 30)]),
    ("a write that saw both sides resolves the conflict", "latest", [
        ("a", P1, 10), ("b", P2, 20), ("c", P3, 5, 1)]),
    ("a write that saw one of three leaves the others open", "latest", [
        ("a", P1, 10), ("b", P2, 20), ("c", P3, 30), ("d", P1, 40, 0)]),
    ("a write that saw two of three resolves theirs", "latest", [
        ("a", P1, 10), ("b", P2, 20), ("c", P3, 30), ("d", P1, 5, 1)]),
    ("a base covers the versions up to it, not after", "latest", [
        ("a", P1, 10), ("b", P2, 20), ("c", P3, 30, 0)]),
    ("the losing phone accepts the winner", "latest", [
        ("a", P1, 10), ("b", P2, 20), ("a", P2, 30, 1)]),
    ("least_closed: open beats a later resolved", "least_closed", [
        ("a", "open", 10), ("b", "resolved", 20)]),
    ("least_closed: in_progress beats resolved and verified", "least_closed", [
        ("a", "verified", 30), ("b", "in_progress", 10), ("c", "resolved", 20)]),
    ("least_closed tie: the later of two open is credited", "least_closed", [
        ("a", "open", 10), ("b", "open", 20), ("c", "resolved", 30)]),
    ("least_closed tie on hlc: the greater device is credited", "least_closed", [
        ("c", "in_progress", 10), ("b", "in_progress", 10), ("a", "verified", 5)]),
    ("least_closed: the same status twice is no conflict", "least_closed", [
        ("a", "resolved", 10), ("b", "resolved", 20)]),
    ("least_closed: a write that saw the conflict may close it", "least_closed", [
        ("a", "open", 10), ("b", "resolved", 20), ("a", "verified", 30, 1)]),
    ("least_closed: one phone closes its own problem", "least_closed", [
        ("a", "in_progress", 10), ("a", "resolved", 20), ("a", "verified", 30)]),
    ("union: disjoint flags are both kept", "union", [("a", ["elderly"], 20), ("b", ["sick"], 10)]),
    ("union: a superset is the union, only the subset loses", "union", [
        ("a", ["elderly", "sick"], 10), ("b", ["sick"], 20)]),
    ("union: [] and null add nothing", "union", [
        ("a", [], 10), ("b", None, 20), ("c", ["alone"], 5)]),
    ("union: the same flags are no conflict", "union", [
        ("a", ["alone", "elderly"], 10), ("b", ["alone", "elderly"], 20)]),
    ("union: three writers", "union", [
        ("a", ["elderly"], 10), ("b", ["disabled", "sick"], 30), ("c", ["alone", "elderly"], 20)]),
    ("union: a write that saw the conflict may clear flags", "union", [
        ("a", ["elderly"], 10), ("b", ["sick"], 20), ("c", [], 30, 1)]),
    ("union: a phone's chain against another phone", "union", [
        ("a", ["elderly"], 10), ("a", ["elderly", "frail"], 20), ("b", ["left_behind"], 15)]),
]  # fmt: skip


def skewed_clocks_case(fast: str, slow: str) -> dict[str, Any]:
    """Two phones registered at DAY with known, skewed clocks edit one field concurrently; each
    write carries its effective hlc (sync/effective.py). ``fast`` runs two hours ahead and edits
    10 s into the day: the server clamps it to its receipt. ``slow`` runs three minutes behind
    and edits 5 min into the day, stamping minute 2. The later effective time wins, whatever
    the device ids: with ``fast`` = z the greater id loses."""
    history = History(random.Random(SEED + ord(fast)), "latest")
    floor = format_hlc(DAY)
    for phone, value, claimed, received in ((fast, P1, 7210, 10), (slow, P2, 120, 300)):
        stamp = format_hlc(DAY + claimed * 1000)
        hlc = effective_hlc(stamp, floor, ZERO, format_hlc(DAY + received * 1000))
        history.edit(phone, value, 0, hlc=hlc)
    name = f"skewed clocks: the later effective time wins (phone-{fast} fast, phone-{slow} slow)"
    return merge_case(name, history)


def unknown_status_case() -> dict[str, Any]:
    """A status outside PROBLEM_STATUSES (a null a client should never send) ranks below
    open in both languages, so the merge never closes a problem on it."""
    history = History(random.Random(SEED + 2), "least_closed")
    history.edit("a", None, 10)
    history.edit("b", "open", 20)
    return merge_case(
        "least_closed: a status it does not know counts as less closed than open", history
    )


def random_case(rng: random.Random, number: int) -> dict[str, Any]:
    """Phones that edit offline, sometimes pull first, with clocks that often tie."""
    rule = rng.choice(sorted(RULE_FIELDS))
    history = History(rng, rule)
    phones = "abcd"[: rng.randint(2, 4)]
    knows: dict[str, int | None] = dict.fromkeys(phones)
    for _ in range(rng.randint(2, 7)):
        phone = rng.choice(phones)
        if rng.random() < 0.3 and history.writes:
            knows[phone] = len(history.writes) - 1  # the phone pulled before this edit
        second = rng.choice((10, 10, 20, 30, 40))
        history.edit(phone, rng.choice(VALUES[rule]), second, knows[phone], rng.randrange(2))
    return merge_case(f"random {number}: {rule}, {len(phones)} phones", history)


def merge_vectors() -> dict[str, Any]:
    rng = random.Random(SEED)
    cases = []
    for name, rule, edits in HAND_WRITTEN:
        history = History(rng, rule)
        for edit in edits:
            history.edit(*edit)
        cases.append(merge_case(name, history))
    cases += [random_case(rng, number) for number in range(1, RANDOM_CASES + 1)]
    cases += [skewed_clocks_case("z", "a"), skewed_clocks_case("a", "z"), unknown_status_case()]
    _check_coverage(cases)
    # 16 namespace bytes + the name: around SHA-1's 55/56- and 64-byte block boundaries
    names = ["", "a", "é", "走访", "😀", "走" * 40, *("x" * n for n in (39, 40, 47, 48, 103, 104))]
    return {
        "notice": NOTICE,
        "field_rules": {
            f"{type_name}.{field}": rule
            for type_name, record_type in sorted(RECORD_TYPES.items())
            for field, rule in sorted(record_type.rules.items())
        },
        "conflict_namespace": str(CONFLICT_NAMESPACE),
        "uuid5": [{"name": n, "uuid": str(uuid.uuid5(CONFLICT_NAMESPACE, n))} for n in names],
        "cases": cases,
    }


def _check_coverage(cases: list[dict[str, Any]]) -> None:
    """The vectors must keep exercising every path, whatever the seed draws."""
    steps = [step for case in cases for step in case["steps"]]
    statuses = {conflict["status"] for step in steps for conflict in step["upsert"]}
    seen = {
        "60 cases": len(cases) >= 60,
        "each rule": {case["rule"] for case in cases} == set(RULE_FIELDS),
        "open and resolved conflicts": statuses == {"open", "resolved"},
        "retired conflicts": any(step["retire"] for step in steps),
        "concurrent writes without conflict": any(
            len(c["heads"]) > 1 and c["conflict"] is None for c in cases
        ),
        "4 concurrent writers": any(len(case["heads"]) == 4 for case in cases),
    }
    missing = [what for what, covered in seen.items() if not covered]
    if missing:
        raise AssertionError(f"the merge vectors miss: {', '.join(missing)}")


def hlc_vectors() -> dict[str, Any]:
    stamps = [(0, 0), (1, 10), (DAY, 0), (DAY, 0xABC), (10**15 - 1, MAX_COUNTER)]
    texts = [format_hlc(ms, counter) for ms, counter in stamps]
    texts += [format_hlc(DAY + 1, 0), format_hlc(DAY - 1, MAX_COUNTER), format_hlc(DAY, 1)]
    return {
        "notice": NOTICE,
        "zero": ZERO,
        "format": [{"ms": ms, "counter": c, "hlc": format_hlc(ms, c)} for ms, c in stamps],
        "format_errors": [
            {"ms": ms, "counter": c}
            for ms, c in ((-1, 0), (10**15, 0), (0, -1), (0, MAX_COUNTER + 1))
        ],
        "parse": [{"hlc": t, "ms": parse_hlc(t)[0], "counter": parse_hlc(t)[1]} for t in texts],
        "not_hlc": _NOT_HLC,
        "compare": [{"a": a, "b": b, "order": (a > b) - (a < b)} for a in texts for b in texts],
        "clocks": [
            _clock_case(name, last, steps)
            for name, last, steps in [*CLOCKS, ("a random walk", ZERO, _random_walk())]
        ],
    }


# Not here: a trailing newline and non-ASCII digits, which the pattern in sync/hlc.py
# ($ and \d) lets through and the JavaScript refuses.
_NOT_HLC: list[Any] = [
    "",
    "1763971200000-0000",
    "001763971200000-000",
    "001763971200000-00000",
    "001763971200000-00A0",
    "001763971200000_0000",
    " 001763971200000-0000",
    "001763971200000-0000 ",
    "0017639712000x0-0000",
    1763971200000,
    None,
    ["001763971200000-0000"],
]

ClockStep = tuple[int, str | None]  # (physical ms, remote hlc to observe or None for now())

# (name, the clock's last hlc, steps)
CLOCKS: list[tuple[str, str, list[ClockStep]]] = [
    ("follows the wall clock", ZERO, [(1000, None), (1005, None), (2000, None)]),
    ("counts up within a millisecond", ZERO, [(1000, None)] * 3),
    ("a clock set back keeps counting from the last", ZERO, [
        (5000, None), (1000, None), (1000, None), (6000, None)]),
    ("a remote ahead of the wall clock is followed", ZERO, [
        (1000, format_hlc(9000, 3)), (1000, None), (1000, format_hlc(9000, 2)),
        (1000, format_hlc(9000, 0x10))]),
    ("a remote behind is ignored", format_hlc(1500, 7), [(2000, format_hlc(100, 9))]),
    ("the counter overflows into the next millisecond", format_hlc(7000, 0xFFFE), [
        (7000, None), (7000, None), (7000, None)]),
    ("an observed counter overflows too", format_hlc(7000, 1), [
        (100, format_hlc(7000, MAX_COUNTER))]),
    ("an invalid remote leaves the clock unchanged", ZERO, [
        (1000, None), (1000, "not an hlc"), (1000, format_hlc(500, 0xAB).upper()), (1000, None)]),
    ("a clock resumed from storage", format_hlc(DAY, 4), [(DAY, None), (DAY - 60_000, None)]),
    ("a phone at 1970 moves to the server's time", ZERO, [
        (0, None), (3, format_hlc(DAY)), (5, None), (DAY + 10, None)]),
]  # fmt: skip


def _random_walk() -> list[ClockStep]:
    """A wall clock that stalls, steps and jumps back, among remotes a few ms either side."""
    rng = random.Random(SEED)
    steps: list[ClockStep] = []
    wall = DAY
    for _ in range(40):
        wall += rng.choice((-2000, 0, 0, 1, 3))
        remote = format_hlc(wall + rng.randint(-3, 3), rng.randrange(4))
        steps.append((wall, remote if rng.random() < 0.5 else None))
    return steps


def _clock_case(name: str, last: str, steps: list[ClockStep]) -> dict[str, Any]:
    wall = [0]
    clock = Clock(physical=lambda: wall[0], last=last)
    out = []
    for physical, remote in steps:
        wall[0] = physical
        step: dict[str, Any] = {"physical": physical, "observe": remote}
        try:
            step["result"] = clock.now() if remote is None else clock.observe(remote)
        except HLCError:
            step["error"] = True
        step["last"] = clock.last
        out.append(step)
    return {"name": name, "last": last, "steps": out}


def render(doc: dict[str, Any]) -> str:
    """JSON with one list item a line: readable in review, stable across runs."""
    lines = ["{"]
    for index, (key, value) in enumerate(doc.items()):
        comma = "," if index < len(doc) - 1 else ""
        if isinstance(value, list) and value:
            items = ",\n".join(f"    {_compact(item)}" for item in value)
            lines.append(f"  {_compact(key)}: [\n{items}\n  ]{comma}")
        else:
            lines.append(f"  {_compact(key)}: {_compact(value)}{comma}")
    return "\n".join([*lines, "}"]) + "\n"


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def main() -> None:
    MERGE_FILE.write_text(render(merge_vectors()), encoding="utf-8")
    HLC_FILE.write_text(render(hlc_vectors()), encoding="utf-8")
    print(f"wrote {MERGE_FILE.name} and {HLC_FILE.name}")


if __name__ == "__main__":
    main()
