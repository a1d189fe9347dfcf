"""Gradient time / forward time, cotan eager vs autograd vs JAX.

Workloads: (1) MLP loss 784-512-10, batch 256; (2) Gaussian-mixture
log-likelihood (D=10, K=25, N=1000) in plain NumPy; (3) a 100-step
recurrent loop.  Prints a markdown table of medians of repeated runs.
Run: python bench/bench_grad.py
"""

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import cotan  # noqa: E402


def mlp_loss(p, x, y):
    h = np.tanh(x @ p["W1"] + p["b1"])
    logits = h @ p["W2"] + p["b2"]
    m = np.max(logits, axis=1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True))
    return -np.sum(y * (logits - lse)) / x.shape[0]


def gmm_loglik(params, x):
    mu = params["mu"]                                   # K x D
    log_s = params["log_s"]                             # K x D
    logits = params["logits"]                           # K
    diff = (x[:, None, :] - mu[None, :, :]) / np.exp(log_s)[None, :, :]
    comp = -0.5 * np.sum(diff ** 2, axis=2) - np.sum(log_s, axis=1) \
        - 0.5 * x.shape[1] * np.log(2 * np.pi)
    lw = logits - np.log(np.sum(np.exp(logits)))
    a = comp + lw
    m = np.max(a, axis=1, keepdims=True)
    return np.sum(m[:, 0] + np.log(np.sum(np.exp(a - m), axis=1)))


def rnn_loss(w, x):
    h = np.zeros(w.shape[0])
    for t in range(100):
        h = np.tanh(w @ h + x[t])
    return np.sum(h ** 2)


def make(rng):
    mlp = ({"W1": rng.normal(size=(784, 512)) * 0.05, "b1": np.zeros(512),
            "W2": rng.normal(size=(512, 10)) * 0.05, "b2": np.zeros(10)},
           rng.normal(size=(256, 784)), np.eye(10)[rng.integers(0, 10, 256)])
    gmm = ({"mu": rng.normal(size=(25, 10)), "log_s": rng.normal(size=(25, 10)) * 0.1,
            "logits": rng.normal(size=25)}, rng.normal(size=(1000, 10)))
    rnn = (rng.normal(size=(32, 32)) * 0.2, rng.normal(size=(100, 32)))
    return {"mlp 784-512-10, batch 256": (mlp_loss, mlp),
            "GMM log-lik D=10 K=25 N=1000": (gmm_loglik, gmm),
            "RNN 100 steps": (rnn_loss, rnn)}


def median_time(fn, args, repeat=15):
    fn(*args)
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def jax_versions(fn, args):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    import types
    # the same source, with jnp in place of numpy
    g = types.FunctionType(fn.__code__, dict(fn.__globals__, np=jnp), fn.__name__)
    jargs = jax.tree_util.tree_map(jnp.asarray, args)
    grad = jax.grad(g)

    def block(f):
        return lambda *a: jax.block_until_ready(f(*a))
    return {"jax eager": (block(g), block(grad), jargs),
            "jax jit": (block(jax.jit(g)), block(jax.jit(grad)), jargs)}


def autograd_versions(fn, args):
    try:
        import autograd
        import autograd.numpy as anp
    except ImportError:
        return None
    import types
    g = types.FunctionType(fn.__code__, dict(fn.__globals__, np=anp), fn.__name__)
    return {"autograd": (g, autograd.grad(g), args)}


def main():
    rng = np.random.default_rng(0)
    rows = []
    for name, (fn, args) in make(rng).items():
        row = {"workload": name}
        fwd = median_time(fn, args)
        cg = cotan.grad(fn)
        gt = median_time(cg, args)
        row["cotan fwd ms"] = fwd * 1e3
        row["cotan grad ms"] = gt * 1e3
        row["cotan ratio"] = gt / fwd
        for versions in (autograd_versions(fn, args), jax_versions(fn, args)):
            for lib, (f, g, a) in (versions or {}).items():
                tf, tg = median_time(f, a), median_time(g, a)
                row[f"{lib} grad ms"] = tg * 1e3
                row[f"{lib} ratio"] = tg / tf
        rows.append(row)
    cols = ["workload"] + sorted({k for r in rows for k in r if k != "workload"},
                                 key=lambda k: (k.split()[0], k))
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(r["workload"] if c == "workload" else
                                (f"{r[c]:.2f}" if c in r else "-") for c in cols) + " |")
    print("\nratio = gradient time / forward time of the same library; "
          "times are medians of 15 runs (ms).")


if __name__ == "__main__":
    main()
