"""Mutation testing of the sync core and forms with mutmut: do the tests fail when a rule breaks?

    .venv/bin/pip install -e '.[bench]'                          # mutmut 3.8
    nice -n 10 .venv/bin/python bench/mutation.py                # 50 mutants per module, seeded
    nice -n 10 .venv/bin/python bench/mutation.py --sample 0     # every mutant of the modules
    .venv/bin/python bench/mutation.py --modules sync/hlc.py --sample 20 --seed 7

mutmut ([tool.mutmut] in pyproject.toml) copies sync/ and forms/ into mutants/, records which
of the covering test files' tests call each function, and runs every mutant against those
tests only (``-x``: the first failure kills it). This script lists each module's mutants, draws
a seeded sample, has mutmut run exactly those and prints killed / survived per module.
Survivors listed in EQUIVALENT (behaviour no test can tell apart) are counted separately.
What the figures mean and the latest ones: docs/mutation.md. Run by hand, like the other
bench scripts; CI does not need mutmut.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = [
    "sync/merge.py",
    "sync/hlc.py",
    "sync/effective.py",
    "sync/engine.py",
    "sync/ops.py",
    "forms/expressions.py",
]
MUTMUT = str(Path(sys.executable).with_name("mutmut"))
LOG = ROOT / "bench" / "results" / "mutation-run.log"
#: surviving mutants that change no behaviour, with why; docs/mutation.md lists them too.
#: Names hold as long as the function they mutate is unchanged (mutmut numbers per function).
EQUIVALENT: dict[str, str] = {
    "sync.merge.x__stage__mutmut_7": "an unknown status ranks -2 instead of -1: still below open",
    "sync.merge.x_merge_write__mutmut_40": "the previous conflict's status: only its id is used",
    "sync.merge.x_merge_write__mutmut_44": "the previous conflict's status: only its id is used",
    "sync.merge.x_merge_write__mutmut_45": "the previous conflict's status: only its id is used",
    "sync.merge.x_heads__mutmut_2": "writes come in arrival order, a device's in seq order",
    "sync.engine.x__archived__mutmut_2": "a household's household_id is its own id",
    "sync.engine.xǁ_Batchǁ_seen__mutmut_20": "resolve() reads an unknown rule (None) as latest",
    "sync.engine.xǁ_Batchǁprefetch__mutmut_17": "prefetch saves queries; get() fetches the rest",
    "sync.engine.xǁ_Batchǁprefetch__mutmut_9": "prefetch saves queries; get() fetches the rest",
    "sync.engine.x_pull__mutmut_83": "max(head, 1) when nothing was found: head >= 1 there",
    "sync.engine.x__transition_page__mutmut_66": "any phase other than enter is the leave phase",
    "sync.effective.x_effective_visit_time__mutmut_9": "a visit at receipt is set to receipt",
    "sync.effective.xǁVisitTimeBoundsǁ__init____mutmut_10": "whole ms: exact as a float",
}


def mutant_names(module: str) -> list[str]:
    """Every mutant mutmut makes of ``module``, named as ``mutmut run`` expects them."""
    from mutmut.mutation.file_mutation import mutate_file_contents
    from mutmut.utils.format_utils import get_mutant_name

    path = Path(module)
    mutated = mutate_file_contents(module, (ROOT / path).read_text(encoding="utf-8"))
    return [get_mutant_name(path, name) for name in mutated.mutant_names]


def sample(names: list[str], size: int, seed: int) -> list[str]:
    if size <= 0 or size >= len(names):
        return names
    return sorted(random.Random(seed).sample(names, size))


def statuses() -> dict[str, str]:
    """mutant name → mutmut's verdict (killed, survived, timeout, no tests, …)."""
    listing = subprocess.run(
        [MUTMUT, "results", "--all", "true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = {}
    for line in listing.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name:
            found[name] = status
    return found


def report(chosen: dict[str, list[str]], totals: dict[str, int]) -> bool:
    """Print the table; True when every mutant that is not equivalent was killed."""
    verdicts = statuses()
    print(f"\n{'module':24} {'tried':>5} {'killed':>6} {'equiv.':>6} {'survived':>8} {'rate':>7}")
    all_killed = True
    tried = killed_in_all = 0
    for module, names in chosen.items():
        counts = Counter(_kind(name, verdicts.get(name, "not checked")) for name in names)
        killed = counts["killed"]
        tried, killed_in_all = tried + len(names), killed_in_all + killed
        rate = 100 * killed / len(names) if names else 100.0
        print(
            f"{module:24} {len(names):>5} {killed:>6} {counts['equivalent']:>6} "
            f"{counts['survived']:>8} {rate:>6.1f}%   (of {totals[module]} mutants)"
        )
        for name in names:
            status = verdicts.get(name, "not checked")
            kind = _kind(name, status)
            if kind != "killed":
                label = "equivalent" if kind == "equivalent" else status
                print(f"    {label:12} {name}  {EQUIVALENT.get(name, '')}")
                all_killed &= name in EQUIVALENT
    if tried:
        rate = 100 * killed_in_all / tried
        print(f"{'all':24} {tried:>5} {killed_in_all:>6} {'':>15} {rate:>6.1f}%")
    print("\nsee a mutant: .venv/bin/mutmut show <name>")
    return all_killed


def _kind(name: str, status: str) -> str:
    if status in ("killed", "timeout"):  # a mutant that hangs the tests is caught too
        return "killed"
    return "equivalent" if name in EQUIVALENT else "survived"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", nargs="+", default=MODULES, help="source files to mutate")
    parser.add_argument("--sample", type=int, default=50, help="mutants per module; 0 = all")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--max-children", type=int, default=1, help="mutants run in parallel")
    parser.add_argument(
        "--keep", action="store_true", help="reuse mutants/ (its stats) instead of starting fresh"
    )
    args = parser.parse_args()

    chosen, totals = {}, {}
    for module in args.modules:
        names = mutant_names(module)
        totals[module] = len(names)
        chosen[module] = sample(names, args.sample, args.seed)
    if not args.keep:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    command = [MUTMUT, "run", "--max-children", str(args.max_children)]
    wanted = [name for names in chosen.values() for name in names]
    print(f"mutmut: {len(wanted)} mutants of {len(chosen)} modules (seed {args.seed})")
    print(f"its output: {LOG.relative_to(ROOT)}", flush=True)
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("w", encoding="utf-8") as log:
        run = subprocess.run([*command, *wanted], cwd=ROOT, check=False, stdout=log, stderr=log)
    if run.returncode != 0:
        print(f"mutmut failed (exit {run.returncode}); see {LOG.relative_to(ROOT)}")
        return 2
    return 0 if report(chosen, totals) else 1


if __name__ == "__main__":
    sys.exit(main())
