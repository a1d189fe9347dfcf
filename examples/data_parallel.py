"""Data-parallel training of a small MLP with cotan.pmap.

Each device gets one slice of the batch, computes the loss and gradient of
its slice with `value_and_grad`, and the gradients are averaged across
devices with `lax.pmean` before every device applies the same SGD step, so
the parameters stay replicated.  With equal slices the mean of the slice
gradients is the full-batch gradient, so 50 steps end where single-device
training ends (to rounding: the sums are taken in a different order).

    python3 examples/data_parallel.py                     # the local devices
    COTAN_NUM_DEVICES=4 python3 examples/data_parallel.py # fake 4 on fewer cores
    mpiexec -n 2 python3 examples/data_parallel.py        # 2 processes (pip install mpi4py mpich)

Under mpiexec every process holds its own slices of the batch and the
pmean runs across processes too (cotan.distributed).
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cotan  # noqa: E402
from cotan import lax  # noqa: E402

STEPS = 50
LR = 0.1
BATCH, FEATURES, HIDDEN = 64, 8, 16


def loss(params, x, y):
    w1, b1, w2, b2 = params
    h = np.tanh(x @ w1 + b1)
    out = h @ w2 + b2
    return np.mean((out[:, 0] - y) ** 2)


def sgd(params, g):
    w1, b1, w2, b2 = params
    g1, gb1, g2, gb2 = g
    return (w1 - LR * g1, b1 - LR * gb1, w2 - LR * g2, b2 - LR * gb2)


def parallel_step(params, x, y):
    value, g = cotan.value_and_grad(loss)(params, x, y)
    g = lax.pmean(g, "batch")            # the average over every device's slice
    return sgd(params, g), lax.pmean(value, "batch")


def single_step(params, x, y):
    value, g = cotan.value_and_grad(loss)(params, x, y)
    return sgd(params, g), value


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, FEATURES))
    y = np.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2]
    params = (rng.normal(size=(FEATURES, HIDDEN)) / np.sqrt(FEATURES), np.zeros(HIDDEN),
              rng.normal(size=(HIDDEN, 1)) / np.sqrt(HIDDEN), np.zeros(1))
    return params, x, y


def train_parallel(params, x, y, steps=STEPS):
    """pmap over this process's devices; under mpiexec over every process's."""
    devices = cotan.device_count()
    local = cotan.local_device_count()
    if BATCH % devices:
        raise SystemExit(f"the batch of {BATCH} does not split over {devices} devices")
    per = BATCH // devices
    first = cotan.distributed.process_index() * local
    # this process's slices: (local devices, per-device batch, ...)
    xs = x[first * per:(first + local) * per].reshape(local, per, FEATURES)
    ys = y[first * per:(first + local) * per].reshape(local, per)
    step = cotan.pmap(parallel_step, axis_name="batch", in_axes=(None, 0, 0), out_axes=None)
    losses = []
    for _ in range(steps):
        params, value = step(params, xs, ys)
        losses.append(float(value))
    return params, losses


def train_single(params, x, y, steps=STEPS):
    step = cotan.jit(single_step)
    losses = []
    for _ in range(steps):
        params, value = step(params, x, y)
        losses.append(float(value))
    return params, losses


def main():
    if "OMPI_COMM_WORLD_SIZE" in os.environ or "PMI_SIZE" in os.environ:
        cotan.distributed.initialize()
    params, x, y = data()
    p_par, l_par = train_parallel(params, x, y)
    p_one, l_one = train_single(params, x, y)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(p_par, p_one))
    me, procs = cotan.distributed.process_index(), cotan.distributed.process_count()
    print(f"process {me} of {procs}, {cotan.device_count()} devices: loss {l_par[0]:.6f} -> "
          f"{l_par[-1]:.6f} in {STEPS} steps; largest parameter difference from one device "
          f"{diff:.2e}", flush=True)
    if diff > 1e-12 or l_par[-1] >= l_par[0]:
        raise SystemExit("data-parallel training did not match single-device training")


if __name__ == "__main__":
    main()
