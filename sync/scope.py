"""Who sees and writes what (CONTRACT §3, §8).

A user's *assignment* is what an admin gives them: regions (a village, a township, the county)
and households assigned directly (包保). Its *scope* is the assignment expanded over the region
tree. The assignment's fingerprint goes into pull cursors, so that a changed assignment is
noticed by the next pull and answered with what enters and leaves the device.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: region id → (parent id, level)
RegionTree = Mapping[str, tuple[str | None, str]]


@dataclass(frozen=True)
class Assignment:
    region_ids: tuple[str, ...]
    household_ids: tuple[str, ...]

    @classmethod
    def of(cls, region_ids: Iterable[str], household_ids: Iterable[str]) -> Assignment:
        return cls(tuple(sorted(set(region_ids))), tuple(sorted(set(household_ids))))

    @property
    def fingerprint(self) -> str:
        body = json.dumps([self.region_ids, self.household_ids], separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Scope:
    everything: bool
    region_ids: frozenset[str]  # region records the device receives
    village_ids: frozenset[str]  # every record of these villages
    household_ids: frozenset[str]  # every record of these households
    fingerprint: str

    def holds(self, village_id: str | None, household_id: str | None) -> bool:
        return (
            self.everything
            or (village_id is not None and village_id in self.village_ids)
            or (household_id is not None and household_id in self.household_ids)
        )


EMPTY_SCOPE = Scope(False, frozenset(), frozenset(), frozenset(), "")


def expand(
    assignment: Assignment, tree: RegionTree, household_villages: Mapping[str, str]
) -> Scope:
    """The scope of an assignment: its regions with their ancestors and descendants.

    ``household_villages`` maps each directly assigned household to its village, so that the
    device also receives the region records it needs to show where the household is.
    """
    children: dict[str | None, list[str]] = {}
    for region_id, (parent_id, _level) in tree.items():
        children.setdefault(parent_id, []).append(region_id)
    assigned = [r for r in assignment.region_ids if r in tree]
    # everything only when every root is assigned: one county of a province is not the province
    roots = set(children.get(None, []))
    everything = bool(roots) and roots <= set(assigned)
    below: set[str] = set()
    stack = list(assigned)
    while stack:
        region_id = stack.pop()
        if region_id not in below:
            below.add(region_id)
            stack.extend(children.get(region_id, []))
    villages = {r for r in below if tree[r][1] == "village"}
    visible = set(below)
    for start in [*assigned, *(household_villages.get(h) for h in assignment.household_ids)]:
        while start is not None and start in tree:
            visible.add(start)
            start = tree[start][0]
    return Scope(
        everything=everything,
        region_ids=frozenset(visible),
        village_ids=frozenset(villages),
        household_ids=frozenset(assignment.household_ids),
        fingerprint=assignment.fingerprint,
    )
