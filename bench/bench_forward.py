"""Forward-mode benchmarks against JAX, in the same run.

* `hessian` of the 50-dimensional Rosenbrock function (forward over reverse)
* `jacfwd` of a 20-output function of 20 inputs

Both are generated functions (a vmap of the JVP over the one-hot basis), so
each runs eagerly on NumPy and compiled (`cotan.jit(cotan.hessian(f))`).

Prints a markdown table of medians (ms) over repeats, with cotan/JAX ratios.
JAX runs jitted (after a warm-up call, so compile time is excluded) in
float64.  Run: `python bench/bench_forward.py`.
"""

import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cotan  # noqa: E402


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


W = np.random.default_rng(0).normal(size=(20, 20)) / 5.0


def twenty_outputs(x):
    return np.tanh(W @ x) * np.sin(x) + np.cumsum(x * x)


def median_ms(fns, repeats=30):
    """Medians (ms) of the candidates, run in alternating rounds."""
    for fn in fns:
        fn()  # warm-up: transformation, caches, JIT compile
    times = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return [1e3 * statistics.median(t) for t in times]


def main():
    rows = []
    x50 = np.random.default_rng(1).uniform(-1, 1, 50)
    x20 = np.random.default_rng(2).uniform(-1, 1, 20)
    h = cotan.hessian(rosenbrock)
    j = cotan.jacfwd(twenty_outputs)
    hc, jc = cotan.jit(h), cotan.jit(j)
    np.testing.assert_allclose(hc(x50), h(x50), rtol=1e-12)
    np.testing.assert_allclose(jc(x20), j(x20), rtol=1e-12)
    nan = float("nan")
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)
        Wj = jnp.asarray(W)

        def rosen_jax(x):
            return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

        def twenty_jax(x):
            return jnp.tanh(Wj @ x) * jnp.sin(x) + jnp.cumsum(x * x)
        hj = jax.jit(jax.hessian(rosen_jax))
        jj = jax.jit(jax.jacfwd(twenty_jax))
        np.testing.assert_allclose(h(x50), hj(x50), rtol=1e-9)
        np.testing.assert_allclose(j(x20), jj(x20), rtol=1e-9)
        jh = lambda: hj(x50).block_until_ready()  # noqa: E731
        jjf = lambda: jj(x20).block_until_ready()  # noqa: E731
    except ImportError:
        jh = jjf = None
    for name, eager, compiled, theirs, arg in (
            ("hessian, Rosenbrock n=50", h, hc, jh, x50),
            ("jacfwd, 20 outputs x 20 inputs", j, jc, jjf, x20)):
        fns = [lambda: eager(arg), lambda: compiled(arg)] + ([theirs] if theirs else [])
        t = median_ms(fns) + ([] if theirs else [nan])
        rows.append((name + " (eager)", t[0], t[2]))
        rows.append((name + " (cotan.jit)", t[1], t[2]))

    print("| benchmark | cotan ms | JAX (jit, CPU) ms | cotan / JAX |")
    print("| --- | ---: | ---: | ---: |")
    for name, ours, theirs in rows:
        print(f"| {name} | {ours:.3f} | {theirs:.3f} | {ours / theirs:.1f}x |")


if __name__ == "__main__":
    main()
