"""Compares two `aib layers` outputs (FILE.json) row by row: every number within a relative
tolerance (default 1e-12), every integer and text equal. Prints the largest relative difference
per column; exits 1 when a value differs beyond the tolerance.

    python3 benches/compare_layers.py before.json after.json [tolerance]
"""

import json
import sys


def rows(path):
    with open(path) as f:
        return {(row["param_name"], row["expert_index"]): row for row in json.load(f)["rows"]}


def main():
    before, after = rows(sys.argv[1]), rows(sys.argv[2])
    tolerance = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-12
    assert before.keys() == after.keys(), "different matrices"
    worst, failures = {}, []
    for key, row in before.items():
        other = after[key]
        for column, value in row.items():
            new = other[column]
            if isinstance(value, float) and isinstance(new, float):
                difference = abs(value - new) / max(abs(value), abs(new), 1e-300)
                worst[column] = max(worst.get(column, 0.0), difference)
                if difference > tolerance:
                    failures.append(f"{key} {column}: {value!r} vs {new!r}")
            elif value != new:
                failures.append(f"{key} {column}: {value!r} vs {new!r}")
    for column, difference in sorted(worst.items()):
        print(f"{column:>20}: largest relative difference {difference:.2e}")
    print(f"{len(before)} matrices; {len(failures)} values beyond {tolerance:g}")
    for failure in failures:
        print("  " + failure)
    sys.exit(1 if failures else 0)


main()
