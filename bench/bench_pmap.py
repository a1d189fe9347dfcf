"""pmap figures on this machine.

1. A compute-bound jitted step (an elementwise recurrence, no BLAS so no
   library threads blur the count) on 2 slices: pmap over 2 cpu devices
   against the same 2 slices run one after the other on one device.
2. psum of a 1M-float64 array across 2 MPI processes (1 device each):
   time per psum and the rate of data summed (8 MB / time).

    python3 bench/bench_pmap.py            # 1, then launches 2 with mpiexec -n 2
    python3 bench/bench_pmap.py --compute  # 1 only

Each figure is the median of several rounds.
"""

import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cotan  # noqa: E402
from cotan import lax  # noqa: E402

SIZE = 200_000
TRIPS = 100


def step(x):
    for k in range(TRIPS):
        x = np.sin(x) * 0.999 + np.cos(x) * 0.001
    return x


def timed(fn, rounds=7):
    fn()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def alternating(a, b, rounds=9):
    a(), b()
    ta, tb = [], []
    for _ in range(rounds):
        for fn, out in ((a, ta), (b, tb)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)


def compute():
    os.environ["COTAN_NUM_DEVICES"] = "2"
    X = np.random.default_rng(0).normal(size=(2, SIZE))
    one = cotan.jit(step)
    par = cotan.pmap(step)
    np.testing.assert_allclose(par(X), np.stack([one(x) for x in X]), rtol=1e-12)
    # alternating rounds: the machine is shared, so its load drifts
    t_one, t_par = alternating(lambda: [one(x) for x in X], lambda: par(X))
    print(f"compute-bound step, 2 slices of {SIZE} floats x {TRIPS} trips: one device "
          f"{t_one * 1e3:.1f} ms, pmap over 2 cpu devices {t_par * 1e3:.1f} ms, "
          f"speed-up {t_one / t_par:.2f}x (cores: {len(os.sched_getaffinity(0))})", flush=True)


def total(x):
    return lax.psum(x, "i")


def mpi_psum():
    cotan.distributed.initialize()
    x = np.full((1, 1_000_000), float(cotan.distributed.process_index() + 1))
    f = cotan.pmap(total, axis_name="i", jit=False)
    got = f(x)
    assert np.all(got == 3.0), got[0, :3]
    t = timed(lambda: f(x), rounds=15)
    if cotan.distributed.process_index() == 0:
        print(f"psum of 1M float64 across {cotan.distributed.process_count()} MPI processes: "
              f"{t * 1e3:.2f} ms, {8e6 / t / 1e9:.2f} GB/s of data summed", flush=True)


def main():
    if "--mpi-psum" in sys.argv:
        mpi_psum()
        return
    compute()
    if "--compute" in sys.argv:
        return
    env = dict(os.environ, COTAN_NUM_DEVICES="1")
    exe = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if not os.path.exists(exe):
        exe = "mpiexec"
    try:
        subprocess.run([exe, "-n", "2", sys.executable, os.path.abspath(__file__), "--mpi-psum"],
                       env=env, check=True, timeout=300)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"psum across MPI processes not measured: {e}")


if __name__ == "__main__":
    main()
