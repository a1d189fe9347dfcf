"""Reduction benchmarks: cotan.jit against NumPy and JAX (and Numba when
importable), in one process.

Workloads (float64 unless named):
* `sum(exp(x) * x)`, `sum(x)`, `max(x)` over a 1-D x, n = 1e3 .. 1e7
* `mean(x, axis=0)` and `mean(x, axis=1)` of a (n/1000, 1000) x
* row softmax of a (4096, 1024) x: `e = exp(x - max(x, 1, keepdims)); e / sum(e, 1, keepdims)`,
  float64 and float32

Each candidate runs once to warm up (compile time excluded), then in
interleaved rounds; the table gives medians (µs) and cotan's ratios to
NumPy's and JAX's time.  JAX runs jitted with x64 enabled, results
blocked on.  Run: `python bench/bench_reduce.py [--quick]` (with a Python
that has jax for the JAX column).
"""

import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cotan  # noqa: E402


def sum_exp_x(x):
    return np.sum(np.exp(x) * x)


def sum_x(x):
    return np.sum(x)


def max_x(x):
    return np.max(x)


def mean0(x):
    return np.mean(x, axis=0)


def mean1(x):
    return np.mean(x, axis=1)


def softmax(x):
    e = np.exp(x - np.max(x, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def _jax():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    def sm(x):
        e = jnp.exp(x - jnp.max(x, axis=1, keepdims=True))
        return e / jnp.sum(e, axis=1, keepdims=True)
    fns = {"sum_exp_x": lambda x: jnp.sum(jnp.exp(x) * x), "sum_x": jnp.sum,
           "max_x": jnp.max, "mean0": lambda x: jnp.mean(x, axis=0),
           "mean1": lambda x: jnp.mean(x, axis=1), "softmax": sm}
    out = {}
    for k, f in fns.items():
        jf = jax.jit(f)
        out[k] = (lambda jf: lambda x: jf(x).block_until_ready())(jf)
    out["put"] = jax.device_put
    return out


def _numba():
    try:
        import numba
    except ImportError:
        return None
    fns = {"sum_exp_x": sum_exp_x, "sum_x": sum_x, "max_x": max_x}
    return {k: numba.njit(fastmath=False)(f) for k, f in fns.items()}


def median_us(fns, repeats):
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return [1e6 * statistics.median(t) for t in times]


def main():
    quick = "--quick" in sys.argv
    jx = _jax()
    nb = _numba()
    rng = np.random.default_rng(0)
    cases = []
    sizes = [10 ** k for k in range(3, 8)]
    for name, f in (("sum_exp_x", sum_exp_x), ("sum_x", sum_x), ("max_x", max_x)):
        for n in sizes:
            cases.append((f"{name.replace('_x', '(x)').replace('sum_exp(x)', 'sum(exp(x)*x)')}"
                          f" n=1e{len(str(n)) - 1}", name, f, rng.uniform(-1, 1, n)))
    for name, f in (("mean0", mean0), ("mean1", mean1)):
        for n in sizes[1:]:
            cases.append((f"mean axis={name[-1]} ({n // 1000},1000)", name, f,
                          rng.uniform(-1, 1, (n // 1000, 1000))))
    xs = rng.normal(size=(4096, 1024))
    cases.append(("softmax (4096,1024) f64", "softmax", softmax, xs))
    cases.append(("softmax (4096,1024) f32", "softmax", softmax, xs.astype(np.float32)))
    print(f"machine: {platform.machine()} {platform.processor() or ''} "
          f"{os.cpu_count()} cores, cotan threads {os.environ.get('COTAN_NUM_THREADS', 'all')}, "
          f"NumPy {np.__version__}, JAX {'yes' if jx else 'not importable'}, "
          f"Numba {'yes' if nb else 'not importable'}")
    head = "| case | cotan µs | NumPy µs | JAX µs |" + (" Numba µs |" if nb else "") + \
        " cotan/NumPy | cotan/JAX |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for label, key, f, x in cases:
        jf = cotan.jit(f)
        want = f(x)
        got = jf(x)
        tol = 1e-4 if x.dtype == np.float32 else 1e-9
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.sqrt(x.size))
        cands = [lambda: jf(x), lambda: f(x)]
        if jx:
            xj = jx["put"](x)
            cands.append((lambda g, xj: lambda: g(xj))(jx[key], xj))
        if nb and key in nb:
            cands.append((lambda g: lambda: g(x))(nb[key]))
        budget = 0.3 if quick else 1.5
        t0 = time.perf_counter()
        f(x)
        one = max(time.perf_counter() - t0, 1e-6)
        repeats = int(min(200, max(5, budget / (len(cands) * one))))
        t = median_us(cands, repeats)
        row = f"| {label} | {t[0]:.1f} | {t[1]:.1f} | "
        row += f"{t[2]:.1f} |" if jx else "– |"
        if nb:
            row += f" {t[-1]:.1f} |" if key in nb else " – |"
        row += f" {t[0] / t[1]:.2f} | " + (f"{t[0] / t[2]:.2f} |" if jx else "– |")
        print(row, flush=True)


if __name__ == "__main__":
    main()
