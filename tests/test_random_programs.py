"""Random plain-NumPy programs under every transformation (issue 11, section 11).

A bounded, fixed-seed slice of what bench/random_programs.py runs on demand:
`N_PROGRAMS` generated programs (tests/random_programs.py), each checked
under grad, jvp (against central finite differences), jit and jit(grad)
(against eager NumPy and finite differences), vmap and vmap(grad) (against a
Python loop) and grad of grad (against differences of the gradient).  A
wrong number or a non-cotan exception fails, printing the program; a cotan
error that names the construct is a refusal, which passes (the bench counts
them).

`KNOWN_BROKEN` names constructs whose failures belong to another part of the
issue that is being fixed elsewhere; the generator leaves them out here, and
the lead removes an entry once its fix is merged (so nothing is xfailed
silently).
"""

import os

import numpy as np
import pytest

from tests import random_programs as rp

#: construct -> where its fix lives; excluded from generation until then
KNOWN_BROKEN = {
}

N_PROGRAMS = int(os.environ.get("COTAN_RANDOM_PROGRAMS", "240"))
CHUNK = 20
SEED0 = 1_000_000     # CI's seeds are fixed and apart from the bench's default range


def _chunks():
    return [range(SEED0 + i, SEED0 + min(i + CHUNK, N_PROGRAMS)) for i in range(0, N_PROGRAMS, CHUNK)]


@pytest.mark.parametrize("seeds", _chunks(), ids=lambda r: f"seeds{r.start}-{r.stop - 1}")
def test_random_programs(seeds):
    failures = []
    checked = 0
    for seed in seeds:
        prog = rp.generate(seed, exclude=tuple(KNOWN_BROKEN))
        res = rp.check_program(prog)
        if res is None:
            continue
        checked += 1
        bad = {t: o for t, o in res.items() if o.status in (rp.WRONG, rp.EXCEPTION)}
        if bad:
            failures.append(rp.describe(prog, bad))
    assert checked >= len(seeds) // 2, "most programs should have valid inputs"
    assert not failures, "\n\n".join(failures)


def test_generator_is_reproducible():
    a, b = rp.generate(12345), rp.generate(12345)
    assert a.source == b.source and a.instrumented == b.instrumented


def test_generator_covers_the_constructs():
    seen = set()
    for seed in range(300):
        seen |= rp.generate(seed).features
    missing = set(rp.CONSTRUCTS) - seen
    assert not missing, missing


def test_checker_catches_a_wrong_gradient(monkeypatch):
    """The references are independent: a gradient off by a little is caught."""
    import cotan
    prog = next(p for p in (rp.generate(s) for s in range(100))
                if p.dtype == "float64" and rp.check_program(p, ("grad",)) is not None)
    real = cotan.grad

    def off(fn, *a, **k):
        g = real(fn, *a, **k)
        return lambda *args: np.asarray(g(*args)) * 1.001 + 1e-3
    monkeypatch.setattr(cotan, "grad", off)
    res = rp.check_program(prog, ("grad",))
    assert res["grad"].status == rp.WRONG


def test_branch_margins_are_respected():
    """Inputs whose decisions sit near a boundary are resampled, never checked."""
    for seed in range(40):
        prog = rp.generate(seed)
        ch = rp.Checker(prog, np.random.default_rng(seed))
        if ch.usable():
            _, path, margin = ch.traced.run(ch.args)
            assert margin >= rp.MARGIN
            assert path == ch.path
