"""Scores moto's test suites run against Rampart (see scripts/moto-suite.sh).

For each folder: the tests moto passes against its own server (reports-moto/), minus the listed
exclusions (scripts/moto-exclusions/<folder>.txt), and how many of those Rampart passes (reports/).
Prints a Markdown table, then the tests Rampart fails that count against it.
"""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

GOAL = 0.95


def results(xml_path: Path) -> dict[str, str]:
    """node id -> passed / failed / skipped, from a junit report written with junit_family=xunit1."""
    if not xml_path.exists():
        return {}
    out = {}
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        file = case.get("file") or ""
        module = file[:-3].replace("/", ".") if file.endswith(".py") else ""
        classname = case.get("classname") or ""
        cls = classname[len(module) + 1 :] if module and classname.startswith(module + ".") else ""
        node = "::".join(p for p in (file, cls, case.get("name") or "") if p)
        if case.find("skipped") is not None:
            out[node] = "skipped"
        elif case.find("failure") is not None or case.find("error") is not None:
            out[node] = "failed"
        else:
            out[node] = "passed"
    return out


def exclusions(path: Path) -> list[tuple[str, str]]:
    """(node id or prefix, reason) per line of an exclusions file."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        node, _, reason = line.partition(" #")
        out.append((node.strip(), reason.strip()))
    return out


def excluded(node: str, rules: list[tuple[str, str]]) -> bool:
    return any(node == n or node.startswith(n + "::") or node.startswith(n + "[") for n, _ in rules)


def main() -> None:
    work, excl_dir, folders = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    rows, failing = [], []
    for folder in folders:
        ours = results(work / "reports" / f"{folder}.xml")
        moto = results(work / "reports-moto" / f"{folder}.xml")
        rules = exclusions(excl_dir / f"{folder}.txt")
        passed = sum(1 for r in ours.values() if r == "passed")
        if not moto:
            rows.append(f"| {folder} | {len(ours)} | {passed} | (no moto baseline: run with BASELINE=1) | | | |")
            continue
        moto_passes = [n for n, r in moto.items() if r == "passed"]
        counted = [n for n in moto_passes if not excluded(n, rules)]
        ours_of_counted = [n for n in counted if ours.get(n) == "passed"]
        share = len(ours_of_counted) / len(counted) if counted else 1.0
        rows.append(
            f"| {folder} | {len(moto)} | {passed} | {len(moto_passes)} | {len(moto_passes) - len(counted)} "
            f"| {len(ours_of_counted)} / {len(counted)} = {share:.1%} | {'yes' if share >= GOAL else 'no'} |"
        )
        failing += [f"{folder}: {n}" for n in counted if ours.get(n) != "passed"]
    print("| folder | tests | Rampart passes | moto passes | excluded | Rampart passes of moto's, not excluded | ≥ 95% |")
    print("|---|---:|---:|---:|---:|---:|---|")
    print("\n".join(rows))
    if failing:
        print(f"\nCounted against Rampart ({len(failing)}):")
        print("\n".join(f"  {f}" for f in failing))


if __name__ == "__main__":
    main()
