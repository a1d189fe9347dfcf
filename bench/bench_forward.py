"""Forward-mode benchmarks against JAX, in the same run.

* `hessian` of the 50-dimensional Rosenbrock function (forward over reverse)
* `jacfwd` of a 20-output function of 20 inputs, with jacfwd's two
  strategies (all basis vectors through `vmap` of the JVP, or one JVP per
  basis vector)

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
from cotan import forward_api  # noqa: E402


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


W = np.random.default_rng(0).normal(size=(20, 20)) / 5.0


def twenty_outputs(x):
    return np.tanh(W @ x) * np.sin(x) + np.cumsum(x * x)


def median_ms(fn, repeats=30):
    fn()  # warm-up: transformation, caches, JIT compile
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main():
    rows = []
    x50 = np.random.default_rng(1).uniform(-1, 1, 50)
    x20 = np.random.default_rng(2).uniform(-1, 1, 20)
    h = cotan.hessian(rosenbrock)
    j = cotan.jacfwd(twenty_outputs)
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
        jax_h = median_ms(lambda: hj(x50).block_until_ready())
        jax_j = median_ms(lambda: jj(x20).block_until_ready())
    except ImportError:
        jax_h = jax_j = float("nan")

    forward_api.JACOBIAN_STRATEGY["batched"] = True
    rows.append(("hessian, Rosenbrock n=50 (vmap over basis)", median_ms(lambda: h(x50)), jax_h))
    rows.append(("jacfwd, 20 outputs x 20 inputs (vmap over basis)",
                 median_ms(lambda: j(x20)), jax_j))
    forward_api.JACOBIAN_STRATEGY["batched"] = False
    rows.append(("hessian, Rosenbrock n=50 (loop over basis)", median_ms(lambda: h(x50)), jax_h))
    rows.append(("jacfwd, 20 outputs x 20 inputs (loop over basis)",
                 median_ms(lambda: j(x20)), jax_j))
    forward_api.JACOBIAN_STRATEGY["batched"] = True

    print("| benchmark | cotan (eager NumPy) ms | JAX (jit, CPU) ms | cotan / JAX |")
    print("| --- | ---: | ---: | ---: |")
    for name, ours, theirs in rows:
        print(f"| {name} | {ours:.3f} | {theirs:.3f} | {ours / theirs:.1f}x |")


if __name__ == "__main__":
    main()
