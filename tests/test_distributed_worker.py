"""The program tests/test_distributed.py starts under `mpiexec -n P`: each
process maps over its COTAN_NUM_DEVICES local devices, and every result is
compared with the same pmap run in this one process over all P * L devices
(after leaving the process group), which must give the same bits.  Holds no
tests of its own (pytest imports it and finds none)."""

import os
import sys


def collectives(x):
    k = lax.axis_index("i")
    y = x / lax.psum(x * x, "i") + lax.pmax(x, "i") * lax.pmin(x, "i")
    ring = lax.ppermute(x, "i", RING)
    return y + ring * k + np.sum(lax.all_gather(x, "i"), axis=0) + lax.pmean(x, "i")


def loss(w, x):
    return np.mean(np.tanh(x @ w) ** 2)


def train_step(w, x):
    value, g = cotan.value_and_grad(loss)(w, x)
    return lax.pmean(value, "i"), lax.pmean(g, "i")


def run(X, W, jit):
    L = cotan.local_device_count()
    p = cotan.distributed.process_index()
    mine = slice(p * L, (p + 1) * L)
    out = cotan.pmap(collectives, axis_name="i", jit=jit)(X[mine])
    value, g = cotan.pmap(train_step, axis_name="i", in_axes=(None, 0), jit=jit)(W, X[mine])
    return out, value, g


def main():
    global N, RING
    cotan.distributed.initialize()
    P = cotan.distributed.process_count()
    L = cotan.local_device_count()
    N = P * L
    RING = tuple((j, (j + 1) % N) for j in range(N))
    me = cotan.distributed.process_index()
    assert len(cotan.devices()) == N and len(cotan.local_devices()) == L
    assert [d.process_index for d in cotan.local_devices()] == [me] * L
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, 5, 3))
    W = rng.normal(size=(3, 2))
    jit = os.environ.get("WORKER_JIT", "1") == "1"
    got = run(X, W, jit)
    # the same pmap in this process alone, over all N devices
    cotan.distributed.shutdown()
    os.environ["COTAN_NUM_DEVICES"] = str(N)
    out = cotan.pmap(collectives, axis_name="i", jit=jit)(X)
    rv, rg = cotan.pmap(train_step, axis_name="i", in_axes=(None, 0), jit=jit)(W, X)
    mine = slice(me * L, (me + 1) * L)
    np.testing.assert_array_equal(got[0], out[mine])
    np.testing.assert_array_equal(got[1], rv[mine])
    np.testing.assert_array_equal(got[2], rg[mine])
    # and the gradient all-reduce is the full-batch gradient
    full = cotan.grad(lambda_free_full_loss)(W, X)
    np.testing.assert_allclose(got[2][0], full, rtol=1e-12)
    print(f"process {me} of {P}: ok", flush=True)


def lambda_free_full_loss(w, X):
    return np.mean(np.tanh(X @ w) ** 2)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import numpy as np
    import cotan
    from cotan import lax
    N = RING = None
    main()
