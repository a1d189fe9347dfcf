"""Collective primitives and the axis environment they reduce over.

Owns the primitives `psum`, `pmean`, `pmax`, `pmin`, `all_gather`,
`ppermute`, `axis_index` and the helper `ppermute_lanes` (what vmap's rule
for `ppermute` emits), their eager implementations and shape rules, and the
*axis environment*: a thread-local stack of bound axis names, each bound to
an `AxisGroup` (the N shards of one `pmap`) and this thread's index in it.

An eager collective looks its axis name up in the environment and calls
`AxisGroup.exchange`, which every shard of the group calls in the same order:
each contributes its value, and all of them get back the list of every
shard's value in shard order (barrier, copy, barrier).  Every reduction is
then computed from that list in shard order (x0 + x1 + ... + x{N-1}), the
same on every shard and on every process, so a pmap gives bit-identical
numbers whatever the number of threads or MPI processes the shards are
spread over.  Across processes the group's leader thread exchanges the local
contributions with MPI `allgather` (see `cotan.distributed`).

`vmap(..., axis_name=...)` never calls these implementations for its own
axis: its batching rules (autodiff/collective_rules.py) turn a collective
over the vmapped axis into a reduction over the batch axis.  Must not hold
derivative or batching rules, nor start threads (runtime/pmap_cpu.py does).
"""

import threading

import numpy as np

from ..errors import CotanError
from .table import primitive, declare_no_rule


class AxisNameError(CotanError, NameError):
    """A collective named an axis that no enclosing pmap/vmap binds."""


class CollectiveMismatchError(CotanError, RuntimeError):
    """The shards of one pmap did not call the same collectives (different
    primitive, axis or shapes), or one returned while others waited."""


# ---------------------------------------------------------------- the axis environment

_env = threading.local()


def current_frames():
    """The axis bindings of this thread: name -> (AxisGroup, index)."""
    return getattr(_env, "frames", {})


class bound_axes:
    """Context manager binding axis names for the current thread:
    `with bound_axes({"i": (group, 3)}): ...` (inner bindings shadow outer)."""

    def __init__(self, frames):
        self.frames = frames

    def __enter__(self):
        self.saved = current_frames()
        merged = dict(self.saved)
        merged.update(self.frames)
        _env.frames = merged
        return self

    def __exit__(self, *exc):
        _env.frames = self.saved
        return False


def _names(axis_name):
    return tuple(axis_name) if isinstance(axis_name, (tuple, list)) else (axis_name,)


def _lookup(prim, name):
    got = current_frames().get(name)
    if got is None:
        bound = sorted(map(repr, current_frames())) or ["none"]
        raise AxisNameError(
            f"{prim}: axis name {name!r} is not bound here (bound: {', '.join(bound)}); call "
            f"{prim} inside cotan.pmap(f, axis_name={name!r}) or cotan.vmap(f, "
            f"axis_name={name!r})")
    return got


class AxisGroup:
    """The shards of one mapped axis: `size` shards in total, of which
    `local` run as threads of this process (shard indices `offset` to
    `offset + local - 1`).  `comm`, when given, is an mpi4py communicator
    over the processes holding the other shards, every process holding the
    same number of consecutive shards."""

    def __init__(self, name, local, comm=None):
        self.name = name
        self.local = local
        self.comm = comm
        nproc = comm.Get_size() if comm is not None else 1
        self.size = local * nproc
        self.offset = local * (comm.Get_rank() if comm is not None else 0)
        self._cond = threading.Condition()
        self._arrived = 0
        self._generation = 0
        self._slots = [None] * local
        self._result = None
        self._failed = None          # the reason the group was torn down
        self._done = []              # local shards that have returned

    # -- a barrier that a finished or failed shard breaks instead of hanging
    def _barrier(self, local_index):
        with self._cond:
            if self._failed:
                raise CollectiveMismatchError(self._failed)
            gen = self._generation
            self._arrived += 1
            if self._arrived == self.local:
                self._arrived = 0
                self._generation += 1
                self._cond.notify_all()
                return True
            while gen == self._generation and not self._failed and not self._done:
                self._cond.wait()
            if gen == self._generation:
                if not self._failed:
                    self._failed = (
                        f"shard {self.offset + self._done[0]} of axis {self.name!r} returned "
                        f"while shard {self.offset + local_index} waits in a collective; every "
                        "shard must run the same collectives in the same order")
                    self._cond.notify_all()
                raise CollectiveMismatchError(self._failed)
            return False

    def finished(self, local_index):
        """Shard `local_index` returned: shards still waiting in a collective
        will never meet it."""
        with self._cond:
            self._done.append(local_index)
            self._cond.notify_all()

    def subgroup(self, key):
        """The group of this axis among the shards of nested pmaps that have
        the same position `key` (which nested pmap call, which inner shard):
        under pmap(pmap(f, 'j'), 'i') a collective over 'i' meets the shards
        with the same 'j' index, one from each 'i' shard."""
        with self._cond:
            subs = self.__dict__.setdefault("_subs", {})
            g = subs.get(key)
            if g is None:
                g = subs[key] = AxisGroup(self.name, self.local, self.comm)
            return g

    def fail(self, reason):
        """Tear the group down: every shard waiting (or about to wait) in a
        collective raises CollectiveMismatchError(reason)."""
        with self._cond:
            if not self._failed:
                self._failed = reason
            self._cond.notify_all()

    def exchange(self, local_index, what, value):
        """Every shard's `value`, in shard order (a list of `size`).  `what`
        (primitive, axis, shape, dtype) must agree across shards."""
        self._slots[local_index] = (what, value)
        self._barrier(local_index)
        if local_index == 0:
            try:
                got = list(self._slots)
                if self.comm is not None:
                    from ..distributed import exchange
                    got = exchange(self.comm, got)
                kinds = {w for w, _ in got}
                if len(kinds) != 1:
                    detail = "; ".join(f"shard {k}: {w}" for k, (w, _) in enumerate(got))
                    raise CollectiveMismatchError(
                        f"the shards of axis {self.name!r} called different collectives at the "
                        f"same point ({detail}); every shard must run the same collectives "
                        "with the same shapes in the same order")
                self._result = [v for _, v in got]
            except BaseException as e:
                self._result = e
        self._barrier(local_index)
        res = self._result
        if isinstance(res, BaseException):
            if local_index == 0:
                raise res
            raise CollectiveMismatchError(f"{type(res).__name__}: {res}")
        return res


def _exchange(prim, name, x):
    group, index = _lookup(prim, name)
    arr = np.asarray(x)
    what = (prim, name, arr.shape, arr.dtype.str)
    return group.exchange(index - group.offset, what, arr), group, index


def _tree_map(fn, x):
    if isinstance(x, (tuple, list)):
        return type(x)(_tree_map(fn, e) for e in x)
    if isinstance(x, dict):
        return {k: _tree_map(fn, v) for k, v in x.items()}
    return fn(x)


def _ordered(values, op):
    acc = np.array(values[0], copy=True)
    for v in values[1:]:
        if acc.shape == np.shape(v) and acc.dtype == np.result_type(acc, v):
            op(acc, v, out=acc)        # in place: the same order, no new array
        else:
            acc = op(acc, v)
    return acc


def _like(result, x):
    # a Python scalar in gives a NumPy scalar out (as NumPy reductions do)
    return result[()] if np.ndim(result) == 0 else result


def _reduce_over(prim, x, axis_name, op):
    def one(leaf):
        if prim == "psum" and np.asarray(leaf).dtype == np.bool_:
            leaf = np.asarray(leaf, dtype=np.int64)     # as np.sum counts booleans
        for name in _names(axis_name):
            values, _, _ = _exchange(prim, name, leaf)
            leaf = _like(_ordered(values, op), leaf)
        return leaf
    return _tree_map(one, x)


# ---------------------------------------------------------------- shape rules

def _same_aval(x, axis_name, lanes=None, **_):
    from ..codegen.abstract import abstractify, ShapedArray
    a = abstractify(x)
    return ShapedArray(a.shape, a.dtype) if hasattr(a, "shape") else a


def _gather_aval(x, axis_name, *, axis=0, lanes=None):
    from ..codegen.abstract import abstractify, ShapedArray
    a = abstractify(x)
    group, _ = _lookup("all_gather", axis_name)
    shape = list(a.shape)
    shape.insert(axis if axis >= 0 else len(shape) + 1 + axis, group.size)
    return ShapedArray(tuple(shape), a.dtype)


_COMPILED = ("collectives are performed by the host between the compiled segments of a "
             "pmapped program (cotan.pmap); inside cotan.jit alone there are no shards to "
             "reduce over: call the function through cotan.pmap")


# ---------------------------------------------------------------- the primitives

@primitive("psum", abstract_eval=_same_aval, no_rule={"llvm": _COMPILED})
def psum(x, axis_name, lanes=None):
    """The sum of `x` over every shard of the named axis (or axes)."""
    return _reduce_over("psum", x, axis_name, np.add)


@primitive("pmean", abstract_eval=_same_aval, no_rule={"llvm": _COMPILED})
def pmean(x, axis_name, lanes=None):
    """The mean of `x` over every shard of the named axis (or axes)."""
    def one(leaf):
        total, count = leaf, 1
        for name in _names(axis_name):
            values, group, _ = _exchange("pmean", name, total)
            total, count = _ordered(values, np.add), count * group.size
        return _like(np.true_divide(total, count), leaf)
    return _tree_map(one, x)


@primitive("pmax", abstract_eval=_same_aval, no_rule={"llvm": _COMPILED})
def pmax(x, axis_name, lanes=None):
    """The elementwise maximum of `x` over every shard of the named axis."""
    return _reduce_over("pmax", x, axis_name, np.maximum)


@primitive("pmin", abstract_eval=_same_aval, no_rule={"llvm": _COMPILED})
def pmin(x, axis_name, lanes=None):
    """The elementwise minimum of `x` over every shard of the named axis."""
    return _reduce_over("pmin", x, axis_name, np.minimum)


@primitive("all_gather", abstract_eval=_gather_aval, no_rule={"llvm": _COMPILED})
def all_gather(x, axis_name, *, axis=0, lanes=None):
    """Every shard's `x`, stacked along a new axis `axis` (in shard order)."""
    def one(leaf):
        values, _, _ = _exchange("all_gather", axis_name, leaf)
        return np.stack(values, axis=axis)
    return _tree_map(one, x)


def _check_perm(prim, perm, size, inverse=False):
    try:
        pairs = [(int(s), int(d)) for s, d in perm]
    except (TypeError, ValueError):
        raise CollectiveMismatchError(
            f"{prim}: perm must be a sequence of (source, destination) shard index pairs, "
            f"got {perm!r}") from None
    if inverse:
        pairs = [(d, s) for s, d in pairs]
    srcs, dsts = [s for s, _ in pairs], [d for _, d in pairs]
    if len(set(srcs)) != len(srcs) or len(set(dsts)) != len(dsts):
        raise CollectiveMismatchError(
            f"{prim}: perm {perm!r} sends from or to a shard twice; each shard may appear at "
            "most once as a source and once as a destination")
    bad = [i for i in srcs + dsts if not 0 <= i < size]
    if bad:
        raise CollectiveMismatchError(
            f"{prim}: perm {perm!r} names shard {bad[0]}, but the axis has {size} shards")
    return pairs


@primitive("ppermute", abstract_eval=_same_aval, no_rule={"llvm": _COMPILED})
def ppermute(x, axis_name, perm, inverse=False, lanes=None):
    """Shard `d` receives shard `s`'s `x` for each pair (s, d) of `perm`;
    shards that receive nothing get zeros.  `inverse=True` applies the
    inverse permutation (what the VJP emits)."""
    def one(leaf):
        values, group, index = _exchange("ppermute", axis_name, leaf)
        pairs = _check_perm("ppermute", perm, group.size, inverse)
        for s, d in pairs:
            if d == index:
                return np.array(values[s], copy=True)
        return np.zeros_like(values[index])
    return _tree_map(one, x)


def _index_aval(axis_name, lanes=None):
    from ..codegen.abstract import ShapedArray
    return ShapedArray((), np.dtype(np.int64))


@primitive("axis_index", abstract_eval=_index_aval, differentiable=False,
           no_rule={"llvm": _COMPILED})
def axis_index(axis_name, lanes=None):
    """This shard's index along the named axis (0 ... size-1)."""
    _, index = _lookup("axis_index", axis_name)
    return np.int64(index)


@primitive("ppermute_lanes", abstract_eval=_same_aval)
def ppermute_lanes(x, perm, axis=0, inverse=False):
    """`ppermute` over axis `axis` of one array (what vmap's rule for
    ppermute emits): lane d of the result is lane s of `x` for each pair
    (s, d) of `perm`, lanes no pair names are zeros."""
    x = np.asarray(x)
    pairs = _check_perm("ppermute", perm, x.shape[axis], inverse)
    out = np.zeros_like(x)
    src = np.moveaxis(x, axis, 0)
    dst = np.moveaxis(out, axis, 0)
    for s, d in pairs:
        dst[d] = src[s]
    return out


declare_no_rule("ppermute_lanes", "llvm", "the batched form of ppermute runs eagerly (NumPy "
                "fancy assignment); not lowered yet")

COLLECTIVES = ("psum", "pmean", "pmax", "pmin", "all_gather", "ppermute", "axis_index")

#: primitives the table sweeps (tests/test_{jvp,vjp,batching}_rules.py,
#: test_numpy_namespace.py) cannot call on their own: a collective needs an
#: axis bound by pmap/vmap, and ppermute_lanes a permutation that fits its
#: operand.  Their values and rules are swept in tests/test_collectives.py.
SWEPT_ELSEWHERE = {name: "needs a pmap/vmap axis; tests/test_collectives.py checks its value, "
                         "JVP, VJP and batching against NumPy and finite differences"
                   for name in COLLECTIVES}
SWEPT_ELSEWHERE["ppermute_lanes"] = ("needs a permutation of its operand's lanes; "
                                     "tests/test_collectives.py checks its rules")
