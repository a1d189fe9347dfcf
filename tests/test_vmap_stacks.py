"""vmap of code that uses reverse mode's stacks: per-example gradients
(`vmap(grad(f))`) through loops whose saved values start unbatched and
become batched, and through loops that build lists.

A stack that receives a batched value anywhere holds only batched values
(earlier unbatched pushes are broadcast), so the values popped in the
adjoint sweep have one type: eager results equal a Python loop over the
examples, and `jit` of the same generated function equals eager."""

import numpy as np
import pytest

import cotan


def _per_example(f, xs, *shared):
    g = cotan.grad(f)
    return np.stack([g(x, *shared) for x in xs])


def _batched(f, n_shared=0):
    return cotan.vmap(cotan.grad(f), in_axes=(0,) + (None,) * n_shared)


def _check(f, xs, *shared):
    """eager vmap(grad) == a Python loop; jit(vmap(grad)) == eager."""
    pg = _batched(f, len(shared))
    eager = pg(xs, *shared)
    np.testing.assert_allclose(eager, _per_example(f, xs, *shared), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(cotan.jit(pg)(xs, *shared), eager, rtol=1e-10, atol=1e-12)


XS = np.array([[0.1, 0.2, 0.3], [0.3, 0.1, 0.4], [0.2, 0.2, 0.05], [0.4, 0.3, 0.2]])


# -- a carried value that starts unbatched ---------------------------------------

def sum_of_powers_fixed(x):
    s = 0.0
    for i in range(4):
        s = s + np.sum(x ** (i + 1))
    return s


def sum_of_powers_per_lane_trips(x):
    # the trip count differs per example: a masked loop under vmap
    n = int(np.sum(x) * 4) + 1
    s = 0.0
    for i in range(n):
        s = s + np.sum(x ** (i + 1))
    return s


def scaled_by_shared(x, k):
    # the carried value starts as a shared (unbatched) argument
    h = k * 1.0
    for _ in range(3):
        h = np.tanh(h + x)
    return np.sum(h)


def product_starting_at_one(x):
    p = 1.0
    i = 0
    while i < 3:
        p = p * np.sum(np.sin(x) + i)
        i = i + 1
    return p


@pytest.mark.parametrize("f", [sum_of_powers_fixed, sum_of_powers_per_lane_trips,
                               product_starting_at_one])
def test_carried_value_that_becomes_batched(f):
    _check(f, XS)


def test_carried_value_starting_from_a_shared_argument():
    _check(scaled_by_shared, XS, np.array([0.5, -0.2, 0.1]))


def test_every_push_onto_a_batched_stack_is_batched():
    """The `s = 0.0` saved before the loop is broadcast before it is pushed:
    the stack that later receives batched values never holds the scalar."""
    src = cotan.source(_batched(sum_of_powers_fixed))
    lines = [ln.strip() for ln in src.splitlines()]
    defs = {ln.split(" = ", 1)[0]: ln.split(" = ", 1)[1] for ln in lines if " = " in ln}
    pushed = [ln[len("_ = push("):-1].split(", ")[1] for ln in lines
              if ln.startswith("_ = push(stack_s,")]
    assert pushed, src
    for v in pushed:
        assert v != "s" or "batch_broadcast" not in defs.get("s", ""), src
    first = pushed[0]
    assert defs[first].startswith("batch_broadcast("), src


def test_eager_stack_holds_one_shape():
    """The restored values have the batched shape on every trip (the last
    pop used to return the unbatched scalar)."""
    pg = _batched(sum_of_powers_per_lane_trips)
    assert np.shape(pg(XS)) == XS.shape


# -- loops over lists -------------------------------------------------------------

def list_of_scaled_copies(x):
    parts = []
    for i in range(3):
        parts.append(x * (i + 1.0))
    return np.sum(parts[0] * parts[2]) + np.sum(parts[1])


def list_grown_from_a_batched_start(x):
    parts = [np.sin(x)]
    for i in range(2):
        parts.append(parts[-1] * x + i)
    return np.sum(parts[-1]) + np.sum(parts[0] * parts[1])


def list_summed_in_a_second_loop(x):
    parts = []
    for i in range(3):
        parts.append(np.exp(x * 0.1 * i))
    total = 0.0
    for p in parts:
        total = total + np.sum(p * p)
    return total


def test_loop_over_list():
    _check(list_of_scaled_copies, XS)


@pytest.mark.parametrize("f", [list_grown_from_a_batched_start, list_summed_in_a_second_loop])
def test_loop_over_list_eager(f):
    """Eager only: jit(grad(f)) itself refuses these (a list that grows in a
    run-time loop; a list indexed by the loop counter), batched or not."""
    pg = _batched(f)
    np.testing.assert_allclose(pg(XS), _per_example(f, XS), rtol=1e-12, atol=1e-14)


def test_popped_list_is_not_broadcast_again():
    """A list restored from a batched stack is already batched: the adjoint
    sweep must not broadcast it a second time."""
    src = cotan.source(_batched(list_of_scaled_copies))
    lines = [ln.strip() for ln in src.splitlines()]
    for i, ln in enumerate(lines):
        if "pop_restore(stack_parts" in ln:
            assert ln.startswith("parts = pop_restore("), src
            assert "batch_broadcast" not in lines[i + 1], src


# -- masked branches inside loops ----------------------------------------------------
# Both branches of a batched `if` may push onto one stack in the same trip;
# the lanes that skip a branch push their current value again, and the
# adjoint sweep pops the branches in the mirror order.

def early_return_in_loop(x):
    for i in range(10):
        x = x * 1.5
        if np.sum(x) > 3.0:
            return np.sum(x ** 2)
    return np.sum(x)


def branch_in_loop_with_scalar_start(x):
    acc = 0.0
    for i in range(4):
        if np.sum(x) * i > 0.8:
            acc = acc + np.sum(x * x)
        else:
            acc = acc * 0.5 + x[0]
    return acc


def branch_taken_on_alternate_trips(x):
    # a lane may take the branch, skip it, and take it again: the values the
    # branch saves must still come back to it in order
    for i in range(4):
        if np.sin(np.sum(x) * 7.0 * (i + 1)) > 0:
            t = np.sin(x)
            x = x + t * t
        else:
            x = x * 0.9
    return np.sum(x)


@pytest.mark.parametrize("f", [early_return_in_loop, branch_in_loop_with_scalar_start,
                               branch_taken_on_alternate_trips])
def test_masked_branch_in_loop(f):
    _check(f, XS)
