"""NumPy's f64 matrix products (best of three): two 4096² matrices, and WᵀW of an 11008 × 4096 W."""

import time

import numpy as np


def best_of_three(product):
    times = []
    for _ in range(3):
        start = time.perf_counter()
        product()
        times.append(time.perf_counter() - start)
    return min(times)


rng = np.random.default_rng(0)
a = rng.standard_normal((4096, 4096))
w = rng.standard_normal((11008, 4096))
square = best_of_three(lambda: a @ a)
gram = best_of_three(lambda: w.T @ w)
print(f"NumPy f64 4096² product: {square:.3f} s  {2 * 4096**3 / square / 1e9:.1f} GFLOP/s")
print(f"NumPy WᵀW of 11008 × 4096: {gram:.3f} s")
