"""Per-example gradients of an MLP loss (784-512-10, batch 128).

cotan `vmap(grad(loss))` against a Python loop of cotan `grad` and against
JAX (`jax.vmap(jax.grad)`, with and without `jax.jit`), in the same run;
medians of repeats, printed as a markdown table.  Run from the repository
root: `python bench/bench_vmap.py`.  If cotan.grad is not available, the
forward-only function (the loss itself) is benchmarked instead.
"""

import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import cotan  # noqa: E402

D_IN, D_HID, D_OUT, BATCH = 784, 512, 10, 128


def loss(w1, b1, w2, b2, x, y):
    h = np.tanh(x @ w1 + b1)
    z = h @ w2 + b2
    m = np.max(z)
    lse = m + np.log(np.sum(np.exp(z - m)))
    return lse - np.sum(z * y)


def median_time(fn, repeats, warmup=1):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(repeats=7):
    rng = np.random.default_rng(0)
    w1 = rng.normal(size=(D_IN, D_HID)) / np.sqrt(D_IN)
    b1 = np.zeros(D_HID)
    w2 = rng.normal(size=(D_HID, D_OUT)) / np.sqrt(D_HID)
    b2 = np.zeros(D_OUT)
    xs = rng.normal(size=(BATCH, D_IN))
    ys = np.eye(D_OUT)[rng.integers(0, D_OUT, BATCH)]
    params = (w1, b1, w2, b2)
    axes = (None, None, None, None, 0, 0)
    rows = []
    have_grad = hasattr(cotan, "grad")
    if have_grad:
        what = "per-example gradients vmap(grad(loss))"
        g = cotan.grad(loss, argnums=(0, 1, 2, 3))
        per_example = cotan.vmap(g, in_axes=axes)

        def loop():
            return [g(*params, x, y) for x, y in zip(xs, ys)]
        out = per_example(*params, xs, ys)
        ref = loop()
        for k in range(4):
            np.testing.assert_allclose(out[k], np.stack([r[k] for r in ref]), rtol=1e-8,
                                       atol=1e-10)
        rows.append(("cotan vmap(grad)", median_time(lambda: per_example(*params, xs, ys),
                                                     repeats)))
        rows.append(("cotan Python loop of grad", median_time(loop, max(3, repeats // 2))))
    else:
        what = "vmap(loss) (cotan.grad not available: forward only)"
        vl = cotan.vmap(loss, in_axes=axes)
        rows.append(("cotan vmap(loss)", median_time(lambda: vl(*params, xs, ys), repeats)))
        rows.append(("Python loop of loss", median_time(
            lambda: [loss(*params, x, y) for x, y in zip(xs, ys)], repeats)))
    try:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)

        def jloss(w1, b1, w2, b2, x, y):
            h = jnp.tanh(x @ w1 + b1)
            z = h @ w2 + b2
            m = jnp.max(z)
            return m + jnp.log(jnp.sum(jnp.exp(z - m))) - jnp.sum(z * y)
        jf = jax.vmap(jax.grad(jloss, argnums=(0, 1, 2, 3)) if have_grad else jloss,
                      in_axes=axes)
        jj = jax.jit(jf)
        jparams = [jnp.asarray(p) for p in params]
        jx, jy = jnp.asarray(xs), jnp.asarray(ys)

        def run(f):
            return lambda: jax.block_until_ready(f(*jparams, jx, jy))
        rows.append(("JAX vmap(grad), no jit" if have_grad else "JAX vmap, no jit",
                     median_time(run(jf), repeats)))
        rows.append(("JAX jit(vmap(grad))" if have_grad else "JAX jit(vmap)",
                     median_time(run(jj), repeats, warmup=2)))
    except ImportError:
        rows.append(("JAX (not installed)", float("nan")))
    base = rows[0][1]
    print(f"\n{what}: MLP {D_IN}-{D_HID}-{D_OUT}, batch {BATCH}, float64, "
          f"median of {repeats} runs\n")
    print("| implementation | time (ms) | relative to cotan vmap |")
    print("| --- | ---: | ---: |")
    for name, t in rows:
        print(f"| {name} | {t * 1e3:.2f} | {t / base:.2f}x |")


if __name__ == "__main__":
    main()
