"""Many compiled programs in one long-lived process.

Compiles and calls every program of the shared corpus (tests/programs.py)
under jit, jit(grad), jit(vmap) and jit(vmap(grad)), with the corpus's
shapes and resized ones, several times each, collecting garbage between
rounds and dropping the jitted functions so their entries (engines, fast
call signatures, arenas) are freed while others are created.  Crashes in
such runs did not recur one program at a time, so the point is the
mixture; every result is also checked against eager NumPy / a Python loop.

The test is bounded (a few rounds, < 30 s).  For a long hunt run it as a
script (faulthandler on, a time budget in seconds, optionally the random
programs of tests/random_programs.py when that module is present):

    PYTHONPATH=$PWD python3 -X faulthandler tests/test_long_run.py 1800
"""

import gc
import os
import sys
import time

import numpy as np

if __name__ == "__main__":   # run as a script from the repository root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cotan  # noqa: E402
from cotan.errors import CotanError  # noqa: E402

try:
    from tests.programs import PROGRAMS  # noqa: E402
except ImportError:  # pragma: no cover - run from tests/
    from programs import PROGRAMS  # noqa: E402

TRANSFORMS = ("jit", "jit_grad", "jit_vmap", "jit_vmap_grad")
BATCH = 3


def _resized(args, rng, extra):
    """args with every 1-D float array resized by `extra` elements (a new
    signature); None when there is none."""
    out, changed = [], False
    for a in args:
        if isinstance(a, np.ndarray) and a.ndim == 1 and a.dtype.kind == "f" and \
                a.shape[0] + extra > 0:
            # the original's range: programs choose theirs (log needs x > 0)
            out.append(rng.uniform(a.min(), a.max(), a.shape[0] + extra) if a.size
                       else rng.uniform(-1.0, 1.0, extra))
            changed = True
        else:
            out.append(a)
    return tuple(out) if changed else None


def _grad_of(prog):
    return cotan.grad(prog.fn, argnums=prog.argnums if len(prog.argnums) > 1
                      else prog.argnums[0])


def _batched(prog, rng, args):
    """(in_axes, batched args, per-lane args) for vmap over the
    differentiated arguments, the others shared."""
    lanes = [tuple(a + 0.01 * k * rng.standard_normal(np.shape(a))
                   if i in prog.argnums else a for i, a in enumerate(args))
             for k in range(BATCH)]
    in_axes = tuple(0 if i in prog.argnums else None for i in range(len(args)))
    stacked = tuple(cotan.tree_util.tree_map(lambda *xs: np.stack(xs), *[ln[i] for ln in lanes])
                    if i in prog.argnums else a for i, a in enumerate(args))
    return in_axes, stacked, lanes


def _close(got, want):
    gl, gt = cotan.tree_util.tree_flatten(got)
    wl, wt = cotan.tree_util.tree_flatten(want)
    if gt != wt:
        return False
    return all(np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-7, atol=1e-9,
                           equal_nan=True) for a, b in zip(gl, wl))


def run_one(prog, transform, args, rng, stats, calls=3):
    """Build the transform of prog afresh, call it `calls` times, compare
    with the eager reference; the jitted function is dropped on return."""
    try:
        if transform == "jit":
            ref, fn, call_args = prog.fn, prog.fn, args
            want = ref(*args)
        elif transform == "jit_grad":
            fn = _grad_of(prog)
            call_args = args
            want = fn(*args)
        else:
            inner = prog.fn if transform == "jit_vmap" else _grad_of(prog)
            in_axes, call_args, lanes = _batched(prog, rng, args)
            fn = cotan.vmap(inner, in_axes=in_axes)
            outs = [inner(*ln) for ln in lanes]
            want = cotan.tree_util.tree_map(lambda *xs: np.stack(xs), *outs)
    except Exception:  # the eager reference itself refuses: nothing to compare
        stats["eager_refused"] += 1
        return
    jf = cotan.jit(fn)
    for _ in range(calls):
        try:
            got = jf(*call_args)
        except CotanError:
            stats["refused"] += 1
            return
        except Exception as e:  # a non-cotan exception is a finding too
            stats["errors"].append((prog.name, transform, f"{type(e).__name__}: {e}"[:200]))
            return
        if not _close(got, want):
            stats["wrong"].append((prog.name, transform, [np.shape(a) for a in call_args
                                                         if isinstance(a, np.ndarray)]))
            return
        stats["calls"] += 1
    del jf


def new_stats():
    return {"calls": 0, "refused": 0, "eager_refused": 0, "wrong": [], "errors": [],
            "programs": 0}


def run_round(seed, stats, programs=PROGRAMS, transforms=TRANSFORMS):
    rng = np.random.default_rng(seed)
    for prog in programs:
        base = prog.make_args(np.random.default_rng(seed))
        variants = [base]
        more = _resized(base, rng, int(rng.integers(1, 4)))
        if more is not None:
            try:
                prog.fn(*more)
                variants.append(more)
            except Exception:  # the program needs its own shapes
                pass
        for args in variants:
            for t in transforms:
                run_one(prog, t, args, rng, stats)
        stats["programs"] += 1
    gc.collect()


def test_many_programs_in_one_process(monkeypatch):
    # every entry compiled and freed in this process, none from disk
    monkeypatch.setenv("COTAN_DISABLE_DISK_CACHE", "1")
    stats = new_stats()
    t0 = time.perf_counter()
    # a fifth of the corpus, twice: the second round compiles the same
    # programs (other resized shapes) after the first round's entries
    # were dropped and collected; a third round while time is left
    seed = 0
    while seed < 2 or (seed < 3 and time.perf_counter() - t0 < 10):
        run_round(seed, stats, programs=PROGRAMS[::5])
        seed += 1
    assert stats["calls"] > 100
    assert not stats["errors"], stats["errors"][:5]
    assert not stats["wrong"], stats["wrong"][:5]


def _random_programs():
    """Helper "random"'s generator module (tests/random_programs.py, or the
    file named by COTAN_RANDOM_PROGRAMS), or None."""
    import importlib.util
    path = os.environ.get("COTAN_RANDOM_PROGRAMS") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "random_programs.py")
    if not os.path.exists(path):
        return None
    spec = importlib.util.spec_from_file_location("cotan_long_run_random_programs", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_random(rp, first_seed, count, stats):
    """`count` random programs under the compiled transformations, each
    checked by the generator's own checker; outcomes counted by status."""
    jitted = tuple(t for t in rp.TRANSFORMS if t.startswith("jit")) + ("vmap",)
    for seed in range(first_seed, first_seed + count):
        try:
            prog = rp.generate(seed)
            outcomes = rp.check_program(prog, jitted)
        except Exception as e:  # the generator's own failure: not ours to count
            stats.setdefault("generator_failures", []).append((seed, repr(e)[:100]))
            continue
        for t, o in (outcomes or {}).items():
            key = f"random_{o.status}"
            stats[key] = stats.get(key, 0) + 1
            if o.status not in ("ok", "skipped", "refused", rp.OK, rp.SKIPPED, rp.REFUSED):
                stats.setdefault("random_bad", []).append((seed, t, o.group))
        stats["programs"] += 1
    gc.collect()


def main(budget_s):
    import faulthandler
    faulthandler.enable()
    stats = new_stats()
    rp = _random_programs() if os.environ.get("COTAN_LONG_RUN_RANDOM", "1") != "0" else None
    t0 = time.perf_counter()
    seed = 0
    while time.perf_counter() - t0 < budget_s:
        run_round(seed, stats)
        if rp is not None:
            run_random(rp, 100_000 + 50 * seed, 50, stats)
        seed += 1
        print(f"round {seed}: {time.perf_counter() - t0:.0f} s, {stats['programs']} programs, "
              f"{stats['calls']} calls, {stats['refused']} refused, {len(stats['wrong'])} wrong, "
              f"{len(stats['errors'])} errors, "
              f"{ {k: v for k, v in stats.items() if k.startswith('random_') and k != 'random_bad'} }",
              flush=True)
    for w in stats["wrong"][:20]:
        print("wrong", w)
    for e in stats["errors"][:20]:
        print("error", e)
    for e in stats.get("random_bad", [])[:40]:
        print("random", e)
    return stats


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 600.0)


_CYCLIC_PARTS = r'''
import gc
import numpy as np
import cotan
from cotan.codegen.llvm import binding as llvm_binding
from cotan.codegen.llvm.backend import lower_cpu
from cotan.codegen.abstract import ShapedArray

llvm_binding.BIG_IR = 0          # every program compiled in parallel parts


def loop_energy(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + np.tanh(x[i]) * x[i] + np.sum(np.exp(x) * x)
    return s


g = cotan.jit(cotan.grad(loop_energy))
x = np.linspace(0.0, 1.0, 7)
g(x)
for k in range(12):
    lowered = lower_cpu(g.core, [ShapedArray((7 + k % 3,), np.dtype(np.float64))])
    lowered.compile()
    assert len(lowered.optimized()) > 1, "expected a program of several parts"
    lowered.self = lowered       # a cycle: the collector frees it, in any order
    del lowered
    gc.collect()
print("ok")
'''


def test_part_modules_freed_by_the_collector(tmp_path):
    # a program's parts are modules in contexts of their own; freed as
    # cyclic garbage, a module disposed after its context crashed
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = tmp_path / "cyclic_parts.py"
    script.write_text(_CYCLIC_PARTS)
    env = dict(os.environ, PYTHONPATH=root, COTAN_DISABLE_DISK_CACHE="1",
               COTAN_COMPILE_THREADS="2", MALLOC_PERTURB_="165")
    r = subprocess.run([sys.executable, "-X", "faulthandler", str(script)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-3000:])
