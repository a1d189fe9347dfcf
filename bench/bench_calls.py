"""Per-call overhead of jitted functions, and page faults per call of jitted
gradients.

Run `python bench/bench_calls.py` (with JAX importable for its column; `pip
install jax` into a venv that also sees cotan's dependencies).  Two parts:

* **calls**: jitted functions of 1, 8, 16, 17 and 64 arrays, of a dict of
  10 / 100 / 300 leaves (one output, and a dict of 100 leaves out), and of a
  nested pytree (dict of lists of dicts, tuples), each side by side with
  `jax.jit` of the same function (the bodies use operators only, so one
  source serves both) and with the plain Python call on NumPy arrays.
  Arrays are tiny (4 float64), so the figure is the call path: matching the
  signature, flattening, allocating outputs.  Interleaved rounds, medians.
* **faults**: a 1000-step loop gradient and a bundle-adjustment gradient
  (Snavely's camera model: Rodrigues rotation, projection, radial distortion,
  10k observations), each in a fresh process, per-call time and minor page
  faults (getrusage) after warm-up, before and after an eager `grad` ran in
  that process (eager grad tunes glibc's malloc process-wide).

Prints markdown tables.  `--part calls|faults` runs one part.
"""

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import cotan  # noqa: E402

jax = None


def _import_jax():
    """JAX for the calls part only: importing it allocates and frees large
    blocks, which moves glibc's dynamic mmap threshold and would change
    what the faults part measures in its child processes."""
    global jax
    try:
        import jax as _jax
        _jax.config.update("jax_enable_x64", True)
        _jax.config.update("jax_platforms", "cpu")
        jax = _jax
    except Exception:  # pragma: no cover
        jax = None

ROUNDS = 7


# ----------------------------------------------------------------- calls

def _sum_body(terms):
    """Statements summing `terms` one by one (a 300-term expression is too
    deep for Python's parser)."""
    lines = [f"    s = {terms[0]}"] + [f"    s = s + {t}" for t in terms[1:]]
    return "\n".join(lines) + "\n    return s\n"


def _source_of_cases():
    """Source of the call-overhead functions (generated: fixed arities)."""
    lines = []
    for n in (1, 8, 16, 17, 64):
        params = ", ".join(f"x{k}" for k in range(n))
        lines.append(f"def arrays_{n}({params}):\n" + _sum_body([f"x{k}" for k in range(n)]))
    for n in (10, 100, 300):
        lines.append(f"def dict_{n}(p):\n" + _sum_body([f"p['k{k}']" for k in range(n)]))
    items = ", ".join(f"'k{k}': p['k{k}'] * 2.0" for k in range(100))
    lines.append(f"def dict_100_out(p):\n    return {{{items}}}\n")
    terms = []
    for layer in range(8):
        terms += [f"p['layers'][{layer}]['w']", f"p['layers'][{layer}]['b']"]
    terms += ["p['embed'][0]", "p['embed'][1]", "p['scale']"]
    lines.append("def nested(p):\n" + _sum_body(terms))
    return "\n".join(lines)


def _load_cases(folder):
    path = os.path.join(folder, "call_cases.py")
    with open(path, "w") as f:
        f.write(_source_of_cases())
    spec = importlib.util.spec_from_file_location("call_cases", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _arrays(n, rng):
    return [rng.standard_normal(4) for _ in range(n)]


def _cases(mod):
    rng = np.random.default_rng(0)
    out = []
    for n in (1, 8, 16, 17, 64):
        out.append((f"{n} arrays", getattr(mod, f"arrays_{n}"), tuple(_arrays(n, rng)), n))
    for n in (10, 100, 300):
        p = {f"k{k}": v for k, v in enumerate(_arrays(n, rng))}
        out.append((f"dict of {n}", getattr(mod, f"dict_{n}"), (p,), n))
    p = {f"k{k}": v for k, v in enumerate(_arrays(100, rng))}
    out.append(("dict of 100 → dict of 100", mod.dict_100_out, (p,), 200))
    nested = {"layers": [{"w": rng.standard_normal(4), "b": rng.standard_normal(4)}
                         for _ in range(8)],
              "embed": (rng.standard_normal(4), rng.standard_normal(4)),
              "scale": rng.standard_normal(4)}
    out.append(("nested (19 leaves)", mod.nested, (nested,), 19))
    return out


def _per_call(fn, args, number):
    t = time.perf_counter()
    for _ in range(number):
        fn(*args)
    return (time.perf_counter() - t) / number


def bench_calls():
    _import_jax()
    with tempfile.TemporaryDirectory() as folder:
        mod = _load_cases(folder)
        rows = []
        for label, f, args, leaves in _cases(mod):
            jf = cotan.jit(f)
            jf(*args)
            jf(*args)
            before = getattr(jf, "_fast_calls", None)
            jf(*args)
            fast = getattr(jf, "_fast_calls", None)
            fast = None if fast is None else fast > before
            contenders = {"cotan.jit": jf, "python+numpy": f}
            if jax is not None:
                jj = jax.jit(f)
                jargs = jax.tree_util.tree_map(jax.numpy.asarray, args)
                jax.block_until_ready(jj(*jargs))
                contenders["jax.jit"] = lambda *a, _j=jj: _j(*a)
            times = {k: [] for k in contenders}
            for _ in range(ROUNDS):        # interleaved rounds
                for k, fn in contenders.items():
                    a = jargs if k == "jax.jit" else args
                    number = 2000 if k != "python+numpy" or leaves < 100 else 500
                    times[k].append(_per_call(fn, a, number))
            med = {k: float(np.median(v)) for k, v in times.items()}
            rows.append((label, leaves, fast, med))
    print("\n### Call overhead (µs per call, medians of %d interleaved rounds)\n" % ROUNDS)
    cols = ["cotan.jit", "jax.jit", "python+numpy"] if jax is not None else \
        ["cotan.jit", "python+numpy"]
    print("| arguments | leaves | fast path | " + " | ".join(cols) +
          (" | cotan / jax |" if jax is not None else " |"))
    print("|---" * (len(cols) + 3 + (jax is not None)) + "|")
    for label, leaves, fast, med in rows:
        cells = [f"{med[c] * 1e6:.2f}" for c in cols]
        ratio = f" | {med['cotan.jit'] / med['jax.jit']:.2f}x" if jax is not None else ""
        print(f"| {label} | {leaves} | {'yes' if fast else ('no' if fast is False else '?')} | "
              + " | ".join(cells) + ratio + " |")
    if jax is None:
        print("\n(JAX not importable: no jax.jit column)")
    return rows


# ---------------------------------------------------------------- faults

def loop_loss(x, w):
    for i in range(1000):
        x = np.tanh(x * w) + 0.1 * x
    return np.sum(x)


def _cross(a, b):
    a1, a2, a3 = a[:, 0:1], a[:, 1:2], a[:, 2:3]
    b1, b2, b3 = b[:, 0:1], b[:, 1:2], b[:, 2:3]
    return np.concatenate([a2 * b3 - a3 * b2, a3 * b1 - a1 * b3, a1 * b2 - a2 * b1], axis=1)


def ba_loss(cams, pts, obs, ci, pi):
    """Sum of squared reprojection errors, Snavely's camera model: camera =
    (Rodrigues rotation vector, translation, focal length, k1, k2)."""
    c = cams[ci]
    x = pts[pi]
    r = c[:, 0:3]
    theta = np.sqrt(np.sum(r * r, axis=1, keepdims=True))
    k = r / theta
    cos, sin = np.cos(theta), np.sin(theta)
    xr = x * cos + _cross(k, x) * sin + k * np.sum(k * x, axis=1, keepdims=True) * (1.0 - cos)
    xc = xr + c[:, 3:6]
    p = -xc[:, 0:2] / xc[:, 2:3]
    r2 = np.sum(p * p, axis=1, keepdims=True)
    dist = 1.0 + c[:, 7:8] * r2 + c[:, 8:9] * r2 * r2
    res = p * (c[:, 6:7] * dist) - obs
    return np.sum(res * res)


def _fault_inputs():
    rng = np.random.default_rng(0)
    n_cams, n_pts, n_obs = 100, 2000, 10000
    cams = np.concatenate([rng.normal(0, 0.1, (n_cams, 3)), rng.normal(0, 1, (n_cams, 2)),
                           rng.normal(-10, 1, (n_cams, 1)), rng.normal(500, 10, (n_cams, 1)),
                           rng.normal(0, 1e-3, (n_cams, 2))], axis=1)
    pts = rng.normal(0, 1, (n_pts, 3))
    obs = rng.normal(0, 1, (n_obs, 2))
    ci = rng.integers(0, n_cams, n_obs)
    pi = rng.integers(0, n_pts, n_obs)
    x = rng.standard_normal(1000)
    w = rng.standard_normal(1000) * 0.5
    return {"loop gradient (1000 steps)": (loop_loss, (0, 1), (x, w)),
            "BA gradient (10k observations)": (ba_loss, (0, 1), (cams, pts, obs, ci, pi))}


def _fault_child(workload, eager_first, calls=20):
    """In a fresh process: jit(grad) of one workload (alone: compiling
    another program first frees large blocks, which moves glibc's dynamic
    mmap threshold too), then optionally one eager grad, then per-call time
    and faults."""
    f, nums, args = _fault_inputs()[workload]
    g = cotan.jit(cotan.grad(f, argnums=nums))
    g(*args)
    if eager_first:
        lf, lnums, largs = _fault_inputs()["loop gradient (1000 steps)"]
        cotan.grad(lf, argnums=lnums)(*largs)
    for _ in range(3):
        g(*args)
    times, faults = [], []
    for _ in range(calls):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = time.perf_counter()
        g(*args)
        times.append(time.perf_counter() - t)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    print(json.dumps((float(np.median(times)), float(np.mean(faults)))))


def bench_faults(rounds=3):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    results = {}
    names = list(_fault_inputs())
    for _ in range(rounds):             # interleaved: fresh processes
        for k, name in enumerate(names):
            for mode in ("before", "after"):
                got = subprocess.run([sys.executable, os.path.abspath(__file__),
                                      "--fault-child", mode, "--workload", str(k)], env=env,
                                     capture_output=True, text=True, check=True)
                v = json.loads(got.stdout.strip().splitlines()[-1])
                results.setdefault((name, mode), []).append(v)
    print("\n### Jitted gradients: per call, in a fresh process, before / after an "
          "eager grad (medians of %d processes)\n" % rounds)
    print("| workload | ms before | faults/call before | ms after | faults/call after | "
          "after / before |")
    print("|---|---|---|---|---|---|")
    for k in names:
        b = np.median([v[0] for v in results[(k, "before")]]), \
            np.median([v[1] for v in results[(k, "before")]])
        a = np.median([v[0] for v in results[(k, "after")]]), \
            np.median([v[1] for v in results[(k, "after")]])
        print(f"| {k} | {b[0] * 1e3:.2f} | {b[1]:.0f} | {a[0] * 1e3:.2f} | {a[1]:.0f} | "
              f"{a[0] / b[0]:.2f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=["calls", "faults", "all"], default="all")
    ap.add_argument("--fault-child", choices=["before", "after"])
    ap.add_argument("--workload", type=int, default=0)
    opts = ap.parse_args()
    if opts.fault_child:
        _fault_child(list(_fault_inputs())[opts.workload], opts.fault_child == "after")
        return
    if opts.part in ("calls", "all"):
        bench_calls()
    if opts.part in ("faults", "all"):
        bench_faults()


if __name__ == "__main__":
    main()
