"""Benchmarks of `cotan.jit(f, backend="xla")` beside NumPy and JAX.

Run `python bench/bench_xla.py` (JAX columns appear when `jax` imports; it
can live in a separate venv created with --system-site-packages so both use
the one installed jaxlib).  When JAX is present cotan is handed JAX's own
PJRT CPU client, so both run on the same client and compiler.  Every case
is timed in interleaved rounds (cotan, JAX, NumPy, cotan, ...) and the
median of the rounds is printed as a markdown table:

- MLP 784-512-10 loss and gradient (batch 128, float64),
- a fused elementwise expression on 2M floats,
- a 1000-step Python loop (a recurrence on 16 floats),
- compile time of jit(grad(MLP loss)) (cotan: no disk cache),
- per-call overhead: 8 floats NumPy in / NumPy out, and device-resident.
"""

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ["COTAN_DISABLE_DISK_CACHE"] = "1"
import cotan  # noqa: E402

try:
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
except Exception:  # pragma: no cover
    jax = None

if jax is not None:
    # one PJRT client for both (cotan's backend otherwise makes its own)
    from cotan.codegen.xla import binding
    binding._CLIENT = jax.devices("cpu")[0].client


def timed(fn, *args, number=None):
    fn(*args)
    if number is None:
        t = time.perf_counter()
        fn(*args)
        one = time.perf_counter() - t
        number = max(1, int(0.02 / max(one, 1e-7)))
    t = time.perf_counter()
    for _ in range(number):
        fn(*args)
    return (time.perf_counter() - t) / number


def interleaved(cases, rounds=9):
    """{name: median seconds} over `rounds` rounds of every case in turn."""
    samples = {n: [] for n in cases}
    for fn, args in cases.values():
        fn(*args)
    for _ in range(rounds):
        for n, (fn, args) in cases.items():
            samples[n].append(timed(fn, *args))
    return {n: float(np.median(v)) for n, v in samples.items()}


def mlp_loss(w1, b1, w2, b2, x, y):
    h = np.tanh(x @ w1 + b1)
    logits = h @ w2 + b2
    m = np.max(logits, axis=1, keepdims=True)
    lse = np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True)) + m
    return -np.sum((logits - lse) * y) / x.shape[0]


def expr(x):
    return np.sin(x) * np.exp(-x * x) + x ** 3


def loop(x):
    for i in range(1000):
        x = x * 0.999 + 0.001 * np.sin(x)
    return x


def add_one(x):
    return x + 1.0


def jax_versions():
    def j_mlp(w1, b1, w2, b2, x, y):
        h = jnp.tanh(x @ w1 + b1)
        logits = h @ w2 + b2
        m = jnp.max(logits, axis=1, keepdims=True)
        lse = jnp.log(jnp.sum(jnp.exp(logits - m), axis=1, keepdims=True)) + m
        return -jnp.sum((logits - lse) * y) / x.shape[0]

    def j_expr(x):
        return jnp.sin(x) * jnp.exp(-x * x) + x ** 3

    def j_loop(x):
        return jax.lax.fori_loop(0, 1000, lambda i, x: x * 0.999 + 0.001 * jnp.sin(x), x)
    return j_mlp, j_expr, j_loop


def host(fn):
    """A JAX function called NumPy in, NumPy out (as cotan's default)."""
    def run(*args):
        out = fn(*args)
        return jax.tree_util.tree_map(np.asarray, out)
    return run


def main():
    rng = np.random.default_rng(0)
    w1, b1 = rng.normal(size=(784, 512)) * 0.05, np.zeros(512)
    w2, b2 = rng.normal(size=(512, 10)) * 0.05, np.zeros(10)
    x = rng.normal(size=(128, 784))
    y = np.eye(10)[rng.integers(0, 10, 128)]
    mlp_args = (w1, b1, w2, b2, x, y)
    big = np.linspace(-2.0, 2.0, 2_000_000)
    small = np.linspace(0.0, 1.0, 16)
    tiny = np.ones(8)

    grad_mlp = cotan.grad(mlp_loss, argnums=(0, 1, 2, 3))
    c_loss = cotan.jit(mlp_loss, backend="xla")
    c_grad = cotan.jit(grad_mlp, backend="xla")
    c_expr = cotan.jit(expr, backend="xla")
    c_loop = cotan.jit(loop, backend="xla")
    c_add = cotan.jit(add_one, backend="xla")
    for got, want in ((c_loss(*mlp_args), mlp_loss(*mlp_args)), (c_expr(big), expr(big)),
                      (c_loop(small), loop(small))):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    for got, want in zip(c_grad(*mlp_args), grad_mlp(*mlp_args)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)

    dev = cotan.devices("xla")[0]
    tiny_dev = cotan.device_put(tiny, dev)
    c_add_dev = cotan.jit(add_one, backend="xla", device=dev)

    rows = []

    def row(name, cases):
        med = interleaved(cases)
        rows.append((name, med))

    if jax is not None:
        j_mlp, j_expr, j_loop = jax_versions()
        jl, jg = jax.jit(j_mlp), jax.jit(jax.grad(j_mlp, argnums=(0, 1, 2, 3)))
        je, jlp, ja = jax.jit(j_expr), jax.jit(j_loop), jax.jit(lambda v: v + 1.0)
        tiny_jax = jax.device_put(tiny)
    row("MLP 784-512-10 loss (batch 128)",
        {"cotan xla": (c_loss, mlp_args), "numpy": (mlp_loss, mlp_args),
         **({"jax": (host(jl), mlp_args)} if jax else {})})
    row("MLP 784-512-10 grad (batch 128)",
        {"cotan xla": (c_grad, mlp_args), "numpy (cotan eager grad)": (grad_mlp, mlp_args),
         **({"jax": (host(jg), mlp_args)} if jax else {})})
    row("fused expression, 2M floats",
        {"cotan xla": (c_expr, (big,)), "numpy": (expr, (big,)),
         **({"jax": (host(je), (big,))} if jax else {})})
    row("1000-step loop, 16 floats",
        {"cotan xla": (c_loop, (small,)), "numpy": (loop, (small,)),
         **({"jax": (host(jlp), (small,))} if jax else {})})
    row("call overhead, 8 floats, NumPy in/out",
        {"cotan xla": (c_add, (tiny,)), "numpy": (add_one, (tiny,)),
         **({"jax": (host(ja), (tiny,))} if jax else {})})
    row("call overhead, 8 floats, device-resident",
        {"cotan xla": (lambda v: c_add_dev(v), (tiny_dev,)),
         **({"jax": (lambda v: ja(v), (tiny_jax,))} if jax else {})})

    # compile time of jit(grad(MLP)): a fresh function each time (no cache)
    def cotan_compile():
        g = cotan.grad(mlp_loss, argnums=(0, 1, 2, 3))
        t = time.perf_counter()
        cotan.jit(g, backend="xla").lower(*mlp_args).compile()
        return time.perf_counter() - t

    def jax_compile():
        j_mlp, _, _ = jax_versions()
        t = time.perf_counter()
        jax.jit(jax.grad(j_mlp, argnums=(0, 1, 2, 3))).lower(*mlp_args).compile()
        return time.perf_counter() - t
    comp = {"cotan xla": [], **({"jax": []} if jax else {})}
    for _ in range(5):
        comp["cotan xla"].append(cotan_compile())
        if jax:
            comp["jax"].append(jax_compile())
    rows.append(("compile jit(grad(MLP)) (s, not per call)",
                 {k: float(np.median(v)) for k, v in comp.items()}))

    cols = ["cotan xla", "jax", "numpy"]
    print("| case | " + " | ".join(cols) + " | cotan/jax |")
    print("|---" * (len(cols) + 2) + "|")
    for name, med in rows:
        cells = []
        for c in cols:
            v = med.get(c, med.get("numpy (cotan eager grad)") if c == "numpy" else None)
            cells.append("-" if v is None else (f"{v:.3f} s" if "compile" in name else
                                                f"{v * 1e6:.1f} us"))
        ratio = med["cotan xla"] / med["jax"] if "jax" in med else float("nan")
        print(f"| {name} | " + " | ".join(cells) + f" | {ratio:.2f} |")


if __name__ == "__main__":
    main()
