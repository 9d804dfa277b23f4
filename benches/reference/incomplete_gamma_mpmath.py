#!/usr/bin/env python3
"""mpmath's upper incomplete gamma function Γ(s, x) = gammainc(s, x) on a grid, as the JSON that
src/layers/incomplete_gamma.rs tests its f64 evaluation against (written once by
`just weightwatcher-reference`, committed as benches/reference/incomplete-gamma-mpmath.json).

The `powerlaw` package's truncated power law evaluates gammainc(1 - alpha, Lambda * x) with
mpmath's default 53-bit precision; here each value is computed at 50 decimal digits and rounded
to the nearest float64, so the reference is the correctly rounded value. The grid: s from -8 to
-0.05 (with points within 1e-3 ... 1e-9 of the negative integers, where a series cancels, and the
integers themselves), x from 1e-6 to 200 (logarithmically) and around x = 1, where the method
changes. A value too small for float64 is written as 0.

Usage: python incomplete_gamma_mpmath.py > incomplete-gamma-mpmath.json
"""

import importlib.metadata
import json
import sys

import mpmath


def grid():
    """(s, x) pairs."""
    s_values = [-0.05, -0.1, -0.25, -0.5, -0.75, -0.9, -0.99]
    s_values += [-k - f for k in range(1, 8) for f in (0.1, 0.3, 0.5, 0.7, 0.9)]
    s_values += [-k - d for k in range(1, 6) for d in (1e-3, -1e-3, 1e-6, 1e-9)]
    s_values += [-1.0, -2.0, -3.0, -5.0]
    x_values = [10.0 ** (e / 4) for e in range(-24, 10)] + [200.0, 0.999, 1.0, 1.001, 0.5, 2.0]
    return [(s, x) for s in s_values for x in x_values]


def main():
    mpmath.mp.dps = 50
    values = [[s, x, float(mpmath.gammainc(s, x))] for s, x in grid()]
    json.dump({"mpmath": importlib.metadata.version("mpmath"), "dps": 50,
               "columns": ["s", "x", "gammainc(s, x)"], "values": values},
              sys.stdout, indent=0, allow_nan=False)
    print()


if __name__ == "__main__":
    main()
