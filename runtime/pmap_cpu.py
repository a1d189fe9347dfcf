"""The cpu backend of `pmap`: devices, shard threads and the segmented program.

Owns three things:

* `cpu_devices()`: the cpu devices, one per core of every process (or
  `COTAN_NUM_DEVICES` per process, to fake more), each a `CpuDevice`.
* `run_shards`: runs one callable per shard on its own thread, every thread
  with the axis name bound to one `collectives.AxisGroup` and its index, and
  returns the results in shard order (the first shard's error re-raised;
  a shard that fails or returns early tears the group down, so the others
  raise instead of waiting forever in a collective).
* `SegmentedProgram`: the compiled per-shard program.

Why segments.  Compiled code cannot stop in the middle of a kernel to wait
for other threads, and a collective is a meeting of all shards.  So the
shard's core-form program is cut at every statement that performs a
collective: each maximal run of statements without one becomes its own
function, compiled once with `cotan.jit` and shared by every shard (all
shards run the same compiled segments), and the collectives run on the
shard's host thread between segments (collectives.AxisGroup: a barrier,
then the reduction over shared memory).  Control flow that contains a
collective (an `if`, `for` or `while` whose body calls one) is driven by
the host: the predicate or the range is read from the values the previous
segment returned, and its body is segmented the same way, so a collective
inside a loop meets once per trip, on every shard, exactly as in the eager
program.  Control flow without collectives stays inside a segment and is
compiled.  Each segment receives the names it reads that earlier code
defined (`live_in`) and returns those it defines that later code, or its
own next trip, reads (`live_out`); non-array values among them (shapes,
None, strings, the static arguments) are compile-time constants of the
segment.  A segment the compiler refuses (e.g. one holding a reverse-mode
stack that crosses a collective) runs as generated Python instead, with a
warning naming the reason: the numbers are the same, only slower.

Must not know about pmap's arguments (cotan/pmap_api.py splits and stacks
them) nor MPI (cotan/distributed.py); a cross-process group only differs
in `AxisGroup.comm`.
"""

import os
import threading
import warnings

import gast
import numpy as np

from .table import PRIMITIVES
from .collectives import AxisGroup, CollectiveMismatchError, bound_axes, current_frames


# ---------------------------------------------------------------- devices

class CpuDevice:
    """One cpu device: a shard slot of `process_index`'s process."""

    __slots__ = ("id", "process_index")
    backend = "cpu"
    platform = "cpu"

    def __init__(self, id, process_index=0):
        self.id = id
        self.process_index = process_index

    def __repr__(self):
        return f"cpu:{self.id}"

    def __eq__(self, other):
        return isinstance(other, CpuDevice) and self.id == other.id

    def __hash__(self):
        return hash(("cpu", self.id))


def local_device_count():
    """Devices per process: `COTAN_NUM_DEVICES`, else the number of cores."""
    raw = os.environ.get("COTAN_NUM_DEVICES")
    if raw:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"COTAN_NUM_DEVICES={raw!r}: give a positive integer")
        return n
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_devices(local_only=False):
    """The cpu devices of every process (numbered process by process), or of
    this process only."""
    from ..distributed import process_count, process_index
    n = local_device_count()
    procs = [process_index()] if local_only else range(process_count())
    return [CpuDevice(p * n + k, p) for p in procs for k in range(n)]


# ---------------------------------------------------------------- shard threads

def run_shards(calls, group, axis_name):
    """Run `calls[k]()` for each local shard k on its own thread, with
    `axis_name` bound to (group, group.offset + k); the results in order."""
    outer = current_frames()
    # a nested pmap: the outer axes' collectives meet the shards of the
    # other outer shards' nested pmaps that have the same inner index
    seq = getattr(_slot, "nested", 0)
    _slot.nested = seq + 1
    results = [None] * len(calls)
    errors = [None] * len(calls)

    def work(k):
        frames = {name: (g.subgroup((seq, k)), i) for name, (g, i) in outer.items()}
        frames[axis_name] = (group, group.offset + k)
        _slot.index = k
        try:
            with bound_axes(frames):
                results[k] = calls[k]()
            group.finished(k)
        except BaseException as e:       # re-raised in the caller's thread below
            errors[k] = e
            group.fail(f"shard {group.offset + k} of axis {axis_name!r} raised "
                       f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=work, args=(k,), name=f"cotan-shard-{k}", daemon=True)
               for k in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the root cause first: a shard that raised on its own, then the ones
    # that only saw the group torn down
    firsts = [e for e in errors if e is not None and not isinstance(e, CollectiveMismatchError)]
    for e in firsts or [e for e in errors if e is not None]:
        raise e
    return results


# ---------------------------------------------------------------- the segmented program

def _is_collective_call(s):
    from .collectives import COLLECTIVES
    return isinstance(s, gast.Assign) and isinstance(s.value, gast.Call) and \
        isinstance(s.value.func, gast.Name) and s.value.func.id in COLLECTIVES


def _contains_collective(s):
    if _is_collective_call(s):
        return True
    if isinstance(s, (gast.If, gast.For, gast.While)):
        return any(_contains_collective(x) for x in s.body + s.orelse)
    return False


def _reads(node):
    return {n.id for n in gast.walk(node) if isinstance(n, gast.Name)
            and isinstance(n.ctx, gast.Load)}


def _writes(node):
    return {n.id for n in gast.walk(node) if isinstance(n, gast.Name)
            and isinstance(n.ctx, gast.Store)}


def _live_in(stmts):
    """Names a run of statements may read before it assigns them."""
    need, assigned = set(), set()
    for s in stmts:
        need |= _reads(s) - assigned
        if isinstance(s, gast.Assign):
            assigned |= _writes(s)
    return need


#: held by a segment's first call per signature (its compile)
_COMPILING = threading.Lock()

_slot = threading.local()


def current_slot():
    """The local shard index of this thread (0 outside a pmap)."""
    return getattr(_slot, "index", 0)


class _Segment:
    def __init__(self, stmts):
        self.stmts = stmts
        self.fn = None
        # (static positions, shard slot) -> JitFunction.  One per shard:
        # all of them compile the same source to the same code (the second
        # is an in-process cache hit), but a compiled entry's call buffers
        # are not safe to share between threads in this tree's
        # runtime/dispatch.py (see the report; one JitFunction per segment
        # once the dispatcher is thread-safe)
        self.jitted = {}
        self.seen = set()
        self.eager_reason = None


class _Host:
    """A statement the host runs: a collective, or control flow holding one."""

    def __init__(self, stmt, blocks=()):
        self.stmt = stmt
        self.blocks = blocks


def _is_static(v):
    """Whether a value crossing a cut is a compile-time constant of the next
    segment: None, strings, slices, tuples of Python numbers (shapes),
    other hashable non-array objects.  Arrays, Python numbers and
    containers holding arrays are run-time values."""
    if isinstance(v, (np.ndarray, np.generic)):
        return False
    if isinstance(v, (bool, type(None), str, slice)):
        return True
    if isinstance(v, tuple):
        return all(type(e) in (int, float, bool) or (_is_static(e) and e is not None)
                   or e is None for e in v)
    if isinstance(v, (int, float, complex, list, dict)):
        return False
    try:
        hash(v)
    except TypeError:
        return False
    return True


class SegmentedProgram:
    """The per-shard program of `core` (a CoreFunction), cut at collectives
    (see the module docstring).  `run(args)` runs one shard."""

    def __init__(self, core, static_params=()):
        self.core = core
        self.params = core.params
        self.static_params = set(static_params)
        body = core.node.body
        self.ret = body[-1].value
        self.known = set(self.params) | _writes(core.node)
        self.items = self._block(body[:-1])
        self.segments = []
        self._collect(self.items)
        self._compute_outputs(body)
        # Python ints crossing a cut are sizes (batch sizes, shape entries)
        # that compiled code needs as constants, except the counters of the
        # loops the host drives, which change every trip
        self.loop_assigned = set()
        for s in _walk_stmts(body):
            if isinstance(s, (gast.For, gast.While)) and _contains_collective(s):
                self.loop_assigned |= _writes(s)
        # a reverse-mode stack that crosses a cut is pushed in one segment
        # and popped in another: compiled segments hold stacks natively,
        # so such programs run every segment as Python
        stacks = {s.targets[0].id for s in _walk_stmts(body) if isinstance(s, gast.Assign)
                  and isinstance(s.value, gast.Call) and isinstance(s.value.func, gast.Name)
                  and s.value.func.id == "new_stack"}
        crossing = sorted(stacks & {n for seg in self.segments
                                    for n in seg.live_in + seg.live_out})
        if crossing:
            self.eager_reason = (f"the reverse-mode stack(s) {', '.join(crossing)} are used on "
                                 "both sides of a collective")
            for seg in self.segments:
                seg.eager_reason = self.eager_reason
            warnings.warn(f"pmap of {core.name!r}: runs as Python, not compiled "
                          f"({self.eager_reason}); the numbers are the same", RuntimeWarning,
                          stacklevel=3)
        self._lock = threading.Lock()

    # -- structure
    def _block(self, stmts):
        items, run = [], []
        for s in stmts:
            if not _contains_collective(s):
                run.append(s)
                continue
            if run:
                items.append(_Segment(run))
                run = []
            if _is_collective_call(s):
                items.append(_Host(s))
            else:
                blocks = (self._block(s.body), self._block(s.orelse))
                items.append(_Host(s, blocks))
        if run:
            items.append(_Segment(run))
        return items

    def _collect(self, items):
        for it in items:
            if isinstance(it, _Segment):
                self.segments.append(it)
            else:
                for b in it.blocks:
                    self._collect(b)

    def _compute_outputs(self, body):
        # every name read outside a segment (by host statements, other
        # segments or the return) is one it must return
        total = {}
        for s in _walk_stmts(body):
            total[id(s)] = _reads(s) if not isinstance(s, (gast.If, gast.For, gast.While)) \
                else _reads(s.test if isinstance(s, (gast.If, gast.While)) else s.iter)
        for seg in self.segments:
            mine = {id(x) for s in seg.stmts for x in _walk_stmts([s])}
            outside = set()
            for sid, names in total.items():
                if sid not in mine:
                    outside |= names
            seg.live_in = sorted((_live_in(seg.stmts) | self._maybe(seg)) & self.known)
            defined = set()
            for s in seg.stmts:
                defined |= _writes(s)
            seg.live_out = sorted(defined & (outside | set(seg.live_in)))

    def _maybe(self, seg):
        # names a segment assigns only in some paths come in too, so its
        # return can name them whichever path ran
        assigned = set()
        for s in seg.stmts:
            if isinstance(s, gast.Assign):
                assigned |= _writes(s)
        maybe = set()
        for s in seg.stmts:
            maybe |= _writes(s)
        return maybe - assigned

    # -- running
    def _value(self, env, atom):
        if isinstance(atom, gast.Name):
            if atom.id in env:
                return env[atom.id]
            if atom.id in self.core.captured:
                return self.core.captured[atom.id]
            raise NameError(f"pmap of {self.core.name!r}: {atom.id!r} is read before it is "
                            "assigned")
        import ast
        return ast.literal_eval(ast.unparse(gast.gast_to_ast(atom)))

    def run(self, args):
        env = dict(zip(self.params, args))
        self._run_block(self.items, env)
        return self._value(env, self.ret) if self.ret is not None else None

    def _run_block(self, items, env):
        for it in items:
            if isinstance(it, _Segment):
                self._run_segment(it, env)
                continue
            s = it.stmt
            if isinstance(s, gast.Assign):
                call = s.value
                args = [self._value(env, a) for a in call.args]
                kwargs = {k.arg: self._value(env, k.value) for k in call.keywords}
                env[s.targets[0].id] = PRIMITIVES[call.func.id](*args, **kwargs)
            elif isinstance(s, gast.If):
                self._run_block(it.blocks[0] if self._value(env, s.test) else it.blocks[1], env)
            elif isinstance(s, gast.For):
                start, stop, step = (self._value(env, a) for a in s.iter.args)
                for v in range(int(start), int(stop), int(step)):
                    env[s.target.id] = v
                    self._run_block(it.blocks[0], env)
            elif isinstance(s, gast.While):
                while self._value(env, s.test):
                    self._run_block(it.blocks[0], env)

    def _segment_function(self, seg):
        from ..autodiff.templates import build_function, rule_namespace
        from ..autodiff.materialize import materialize
        from ..autodiff.syntax import clone
        names = seg.live_out
        ret = gast.Return(value=gast.Tuple(elts=[gast.Name(id=n, ctx=gast.Load(), annotation=None,
                                                           type_comment=None) for n in names],
                                           ctx=gast.Load()))
        fdef = gast.FunctionDef(
            name=f"{self.core.name}_segment_{self.segments.index(seg)}"
            if self.core.name.isidentifier() else "segment",
            args=gast.arguments(args=[gast.Name(id=p, ctx=gast.Param(), annotation=None,
                                                type_comment=None) for p in seg.live_in],
                                posonlyargs=[], vararg=None, kwonlyargs=[], kw_defaults=[],
                                kwarg=None, defaults=[]),
            body=[clone(s) for s in seg.stmts] + [ret], decorator_list=[], returns=None,
            type_comment=None, type_params=[])
        ns = rule_namespace()
        ns.update(self.core.captured)
        ns["range"] = range
        origin = getattr(self.core.source_fn, "__qualname__", self.core.name)
        core = build_function(fdef, ns, "pmap segment", origin)
        return materialize(core, "pmap segment")

    def _run_segment(self, seg, env):
        args = []
        for n in seg.live_in:
            args.append(env.get(n))
        with self._lock:
            if seg.fn is None:
                seg.fn = self._segment_function(seg)
        out = self._call(seg, args)
        env.update(zip(seg.live_out, out))

    def _call(self, seg, args):
        if seg.eager_reason is not None:
            return seg.fn(*args)
        statics = tuple(i for i, (n, a) in enumerate(zip(seg.live_in, args))
                        if n in self.static_params or _is_static(a) or (
                            type(a) is int and n not in self.loop_assigned))
        slot = current_slot()
        signature = (statics, slot) + tuple(
            repr(a) if i in statics else _signature(a) for i, a in enumerate(args))
        try:
            if signature in seg.seen:
                return seg.jitted[(statics, slot)](*args)
            # a signature's first call compiles: one at a time, so the
            # shards after the first find it compiled
            with _COMPILING:
                jf = seg.jitted.get((statics, slot))
                if jf is None:
                    from ..jit_api import jit
                    jf = seg.jitted[(statics, slot)] = jit(seg.fn, static_argnums=statics)
                out = jf(*args)
                seg.seen.add(signature)
                return out
        except Exception as e:
            from ..errors import CotanError
            if not isinstance(e, CotanError) or getattr(e, "cotan_user_error", False):
                raise
            # the compiler refused this segment: run its generated Python
            with self._lock:
                if seg.eager_reason is None:
                    seg.eager_reason = f"{type(e).__name__}: {e}"
                    warnings.warn(f"pmap of {self.core.name!r}: segment "
                                  f"{self.segments.index(seg)} runs as Python, not compiled "
                                  f"({seg.eager_reason})", RuntimeWarning, stacklevel=2)
            return seg.fn(*args)


def _signature(v):
    """Structure, shapes and dtypes of a run-time value (what selects a
    compiled entry)."""
    if isinstance(v, (tuple, list)):
        return (type(v).__name__,) + tuple(_signature(e) for e in v)
    if isinstance(v, dict):
        return ("dict",) + tuple((k, _signature(e)) for k, e in v.items())
    if v is None or isinstance(v, str):
        return repr(v)
    return (np.shape(v), np.result_type(v).str, type(v).__name__)


def _walk_stmts(stmts):
    for s in stmts:
        yield s
        if isinstance(s, (gast.If, gast.For, gast.While)):
            yield from _walk_stmts(s.body)
            yield from _walk_stmts(s.orelse)


__all__ = ["CpuDevice", "cpu_devices", "local_device_count", "run_shards", "SegmentedProgram",
           "AxisGroup"]
