"""Batching of control flow: `if`, `for` and `while` under vmap.

Owns how the Batcher (autodiff/batching.py) handles the three compound
statements of core form.  Must not batch single primitives (that is the
rules' job).

* Control flow whose predicate / trip count is the same for every lane
  stays as it is.  Loop-carried names that become batched inside a loop
  are found by iterating the body's states to a fixpoint and broadcast
  before the loop, so the loop's types do not change between iterations;
  an `if` whose branches leave a name batched in one and not the other
  broadcasts it in the other.

* An `if` whose predicate is batched runs each branch (skipped when no lane
  takes it) under a lane mask; afterwards every name the branch assigned
  that is read elsewhere is merged with `select_lanes(mask, new, old)`.  A
  `while` with a batched predicate, and a `for` with a batched trip count,
  run until no lane is active (`lanes_any`); the finished lanes' values are
  frozen with the same select.

Discarded lanes must not poison the result: they only ever reach the
program through `select_lanes`, which takes the other side; NumPy floating
warnings they raise are silenced around the masked code
(`errstate_quiet` / `errstate_restore`); integer indices are clipped into
range on masked lanes (rules see `Batcher.mask` and pass `clip=True`), and
`print`/`check` act on the active lanes only.  What cannot be made safe:
an error that is not a NumPy warning or an index (e.g. `linalg.inv` of a
singular matrix computed for a lane that did not take the branch).
"""

from collections import Counter

import gast

from .syntax import clone, walk
from .batching import Assign, Call, Const, Name, any_batched, join_states
from .syntax import core_assigned, core_read_counts


# ---------------------------------------------------------------- analyses


def read_counts(stmts):
    return Counter(core_read_counts(stmts))


assigned = core_assigned


def reads_outside(b, stmt):
    inside = read_counts([stmt])
    return {v for v, k in b.all_reads.items() if k > inside.get(v, 0)}


def exposed_reads(stmts):
    """Names read in `stmts` before being (definitely) written: in a loop
    body these carry values from one iteration to the next."""
    return _exposed_and_written(stmts)[0]


def _exposed_and_written(stmts):
    """(names read before being written, names written on every path).
    Looks inside compound statements: a name a nested block writes before
    reading it is not exposed (otherwise a temporary of a masked branch
    would be frozen and merged as if it were carried, giving it a None
    side that jit cannot type)."""
    written, out = set(), set()
    for s in stmts:
        if isinstance(s, gast.Assign):
            out |= set(read_counts([s.value])) - written
            written.add(s.targets[0].id)
        elif isinstance(s, gast.If):
            out |= {s.test.id} - written
            body_r, body_w = _exposed_and_written(s.body)
            else_r, else_w = _exposed_and_written(s.orelse)
            out |= (body_r | else_r) - written
            written |= body_w & else_w
        elif isinstance(s, gast.For):
            out |= set(read_counts([s.iter])) - written
            body_r, _ = _exposed_and_written(s.body)
            out |= body_r - written - {s.target.id}
        elif isinstance(s, gast.While):
            out |= {s.test.id} - written
            out |= _exposed_and_written(s.body)[0] - written
        else:  # anything else: every read counts
            out |= set(read_counts([s])) - written
    return out, written


def live_assigned(b, stmt, *bodies):
    """Names assigned in `bodies` (a loop's body, or an if's branches) that
    matter after it: read outside `stmt` or carried around the loop (or, for
    an if, read by a branch before it writes them)."""
    names = set().union(*(assigned(body) for body in bodies))
    exposed = set().union(*(exposed_reads(body) for body in bodies))
    return (names & (reads_outside(b, stmt) | exposed)) - b.constant_valued


# ---------------------------------------------------------------- helpers


def _sub(b, stmts, mask):
    """Batch `stmts` into a fresh list (the caller places it)."""
    saved_out, saved_mask = b.out, b.mask
    b.out, b.mask = [], mask
    try:
        b.block(stmts)
        return b.out
    finally:
        b.out, b.mask = saved_out, saved_mask


def _sub_to_entry(b, stmts, entry):
    """Batch a loop body, then bring the names it assigned back up to their
    entry states: a carried name the body rebinds to an unbatched value
    (`v = np.linspace(...)` after `v = x * 1.0`) must leave each trip batched,
    as the next trip and the code after the loop read it."""
    saved_out = b.out
    b.out = []
    try:
        b.block(stmts)
        for v in sorted(assigned(stmts)):
            want, have = entry.get(v), b.states.get(v)
            if want is True and have is not None and have is not True:
                b.emit(Assign(v, b.promoted(v, have)))
                b.states[v] = True
        return b.out
    finally:
        b.out = saved_out


def _dry_run(b, stmts, states, mask):
    """The states after batching `stmts` from `states`, emitting nothing."""
    saved = (b.out, b.states, set(b.defined), set(b.scope.used), list(b.needs_init),
             b.mask, b.origin)
    b.out, b.states, b.mask = [], dict(states), mask
    try:
        b.block(stmts)
        return b.states
    finally:
        (b.out, b.states, b.defined, b.scope.used, b.needs_init, b.mask, b.origin) = saved


def _ensure_defined(b, v):
    """`v` is read before a masked block: make sure it exists on every path
    (names first assigned inside control flow are set to None at entry; a
    None side of `select_lanes` means "not defined yet")."""
    if v not in b.defined and v not in b.needs_init and v not in b.core.params:
        b.needs_init.append(v)
    if v not in b.states:
        b.states[v] = True  # None: nothing to broadcast
    b.defined.add(v)


def _mask_of(b, cond_expr):
    return cond_expr if b.mask is None else Call("logical_and", [Name(b.mask), cond_expr])


def _freeze_before(b, names):
    """`v_before = v` for each name; returns {v: v_before}."""
    saved = {}
    for v in sorted(names):
        vb = b.scope.fresh(f"{v}_before")
        b.emit(Assign(vb, Name(v)))
        saved[v] = vb
    return saved


def _freeze_after(b, mask, saved):
    for v, vb in saved.items():
        new = b.promoted(v, b.states.get(v, False))
        b.emit(Assign(v, Call("select_lanes", [Name(mask), new, Name(vb)])))
        b.states[v] = True


def _loop_entry_states(b, body, forced, extra=None):
    """Iterate the loop body's states to a fixpoint; `forced` names are
    batched from the start.  Returns the entry states."""
    entry = dict(b.states)
    entry.update(extra or {})
    for v in forced:
        entry[v] = True
    names = assigned(body)
    for _ in range(50):
        end = _dry_run(b, body, entry, b.mask)
        changed = False
        for v in names:
            if v not in entry and v not in end:
                continue
            j = True if v in forced else join_states(entry.get(v), end.get(v))
            if j != entry.get(v):
                entry[v] = j
                changed = True
        if not changed:
            return entry
    return entry


def _promote_to(b, entry):
    """Emit the broadcasts that bring the current states up to `entry`."""
    for v in sorted(entry):
        old = b.states.get(v)
        new = entry[v]
        if old is None or old == new:
            b.states[v] = new
            continue
        if v not in b.defined:
            _ensure_defined(b, v)
        if any_batched(new) and old != new:
            b.emit(Assign(v, b.promoted(v, old) if new is True else
                          Call("batch_broadcast", [v, Const(old), b.n])))
            # a partial tree state is promoted all the way for simplicity
            b.states[v] = True
            entry[v] = True


# ---------------------------------------------------------------- if


def batch_if(b, s):
    if s.test.id in b.consts:  # folded by a rule: only the branch taken exists
        b.block(s.body if b.consts[s.test.id] else s.orelse)
        return
    if not any_batched(b.state_of(s.test)):
        return _unbatched_if(b, s)
    origin = b.origin
    live = live_assigned(b, s, s.body, s.orelse)
    defined_before = set(b.defined)
    branches = [(s.body, False), (s.orelse, True)]
    if _stack_ops(s, ("pop_restore", "pop")):
        # An adjoint sweep's `if` pops what the primal sweep's `if` pushed,
        # and both branches may push onto (pop from) one stack in the same
        # trip: pop in the mirror order of the pushes (else branch first).
        branches.reverse()
    for branch, negate in branches:
        if not branch:
            continue
        b.origin = origin
        cond = Name(s.test.id) if not negate else Call("logical_not", [Name(s.test.id)])
        m = b.scope.fresh("lanes" if not negate else "other_lanes")
        b.emit(Assign(m, _mask_of(b, cond)))
        # a name pushed in the branch is frozen too, so its push can leave
        # the other lanes' stacks as they were (see push_rule)
        pushed = _stack_ops(branch, ("push",), values=True) & assigned(branch)
        frozen = (live & assigned(branch)) | (pushed - b.constant_valued)
        for v in sorted(frozen):
            _ensure_defined(b, v)
            b.promote_name(v)
        taken = b.scope.fresh("any_lane")
        b.emit(Assign(taken, Call("lanes_any", [Name(m)])))
        saved_out, saved_mask = b.out, b.mask
        b.out, b.mask = [], m
        old = b.scope.fresh("fp_state")
        b.emit(Assign(old, Call("errstate_quiet", [])))
        saved = _freeze_before(b, frozen)
        outer_pushes = b.masked_pushes
        b.masked_pushes = {**outer_pushes, **{v: (m, saved[v]) for v in pushed}}
        try:
            b.block(branch)
        finally:
            b.masked_pushes = outer_pushes
        b.origin = origin
        _freeze_after(b, m, saved)
        b.emit(Assign("_", Call("errstate_restore", [Name(old)])))
        inner = b.out
        b.out, b.mask = saved_out, saved_mask
        node = gast.If(test=Name(taken), body=inner, orelse=[])
        b.emit(node)
    b.defined = defined_before | live


def _stack_ops(node, prims, values=False):
    """Whether `node` (a statement or a list of them) calls one of the stack
    primitives `prims` anywhere; with `values`, the names they push."""
    found = set()
    for st in (node if isinstance(node, list) else [node]):
        for n in walk(st):
            if isinstance(n, gast.Call) and isinstance(n.func, gast.Name) \
                    and n.func.id in prims:
                if not values:
                    return True
                if len(n.args) == 2 and isinstance(n.args[1], gast.Name):
                    found.add(n.args[1].id)
    return found if values else False


def _unbatched_if(b, s):
    before, defined_before = dict(b.states), set(b.defined)
    body_out = _sub(b, s.body, b.mask)
    body_states, body_def = b.states, b.defined
    b.states, b.defined = dict(before), set(defined_before)
    else_out = _sub(b, s.orelse, b.mask)
    else_states, else_def = b.states, b.defined
    joined = {}
    for v in set(body_states) | set(else_states):
        x, y = body_states.get(v), else_states.get(v)
        if x is not None and y is not None and x != y:
            joined[v] = True
            for out, st in ((body_out, x), (else_out, y)):
                if st is not True:
                    a = Assign(v, b.promoted(v, st))
                    out.append(a)
        else:
            joined[v] = join_states(x, y)
    b.states = joined
    b.defined = body_def & else_def
    node = gast.If(test=Name(s.test.id), body=body_out or [gast.Pass()], orelse=else_out)
    b.emit(node)


# ---------------------------------------------------------------- loops


def batch_while(b, s):
    test = s.test.id
    origin = b.origin
    entry = _loop_entry_states(b, s.body, ())
    if any_batched(entry.get(test)) or any_batched(b.state_of(s.test)):
        forced = live_assigned(b, s, s.body) | {test}
        entry = _loop_entry_states(b, s.body, forced)
        for v in forced:
            _ensure_defined(b, v)
        _promote_to(b, entry)
        m = b.scope.fresh("active")
        b.emit(Assign(m, _mask_of(b, Name(test))))
        _masked_loop(b, s.body, forced - {test}, m, origin,
                     step=lambda: [Assign(m, Call("logical_and", [Name(m), Name(test)]))])
        return
    _promote_to(b, entry)
    defined_before = set(b.defined)
    body_out = _sub_to_entry(b, s.body, entry)
    b.defined = defined_before
    b.states = {**entry, **{k: v for k, v in b.states.items() if k not in entry}}
    b.origin = origin
    b.emit(gast.While(test=Name(test), body=body_out, orelse=[]))


def batch_for(b, s):
    start, stop, step = s.iter.args
    target = s.target.id
    origin = b.origin
    if not any(any_batched(b.state_of(a)) for a in (start, stop, step)):
        entry = _loop_entry_states(b, s.body, (), extra={target: False})
        _promote_to(b, entry)
        defined_before = set(b.defined)
        b.states[target] = False
        b.defined.add(target)
        body_out = _sub_to_entry(b, s.body, entry)
        b.defined = defined_before
        b.states = {**entry, **{k: v for k, v in b.states.items() if k not in entry}}
        b.origin = origin
        b.emit(gast.For(target=Name(target, store=True), iter=clone(s.iter),
                        body=body_out, orelse=[], type_comment=None))
        return
    # a trip count that differs per lane: a masked while over a batched counter
    forced = live_assigned(b, s, s.body)
    entry = _loop_entry_states(b, s.body, forced, extra={target: True})
    for v in forced:
        _ensure_defined(b, v)
    _promote_to(b, entry)
    m = b.scope.fresh("active")
    step_c = step.value if isinstance(step, gast.Constant) else None
    if any_batched(b.state_of(start)) and not any_batched(b.state_of(stop)) \
            and isinstance(step_c, int) and step_c != 0:
        # Only the start differs per lane (reverse mode's `for i in
        # range(trips - 1, -1, -1)`): the lanes end together instead of
        # starting together, so a stack pushed by a loop whose lanes started
        # together is popped in step by every lane.
        _end_aligned_for(b, s, start, stop, step, step_c, target, m, forced, origin)
        return
    b.emit(Assign(target, b.promoted(start, b.state_of(start))))
    b.set_state(target, True)
    b.emit(Assign(m, _mask_of(b, Call("range_active", [target, stop, step]))))

    def advance():
        return [Assign(target, Call("add", [Name(target), step])),
                Assign(m, Call("logical_and", [Name(m), Call("range_active",
                                                              [target, stop, step])]))]
    _masked_loop(b, s.body, forced, m, origin, step=advance)


def _end_aligned_for(b, s, start, stop, step, step_c, target, m, forced, origin):
    outer = b.mask  # the loop's own mask replaces b.mask inside the body
    first = b.scope.fresh("first")
    b.emit(Assign(first, b.promoted(start, b.state_of(start))))
    b.set_state(first, True)
    trips = b.scope.fresh("trips")
    # len(range(first, stop, step)) per lane
    sign = 1 if step_c > 0 else -1
    b.emit(Assign(trips, Call("maximum", [Call("floor_divide", [
        Call("add", [Call("subtract", [stop, Name(first)]), Const(step_c - sign)]), step]),
        Const(0)])))
    b.set_state(trips, True)
    most = b.scope.fresh("most_trips")
    if outer is None:
        b.emit(Assign(most, Call("max", [Name(trips)])))
    else:
        # Lanes the enclosing mask has off do not run the loop: counting
        # their (stale) trip counts would make the active lanes start late,
        # and the loop stop before they ever start (its first trip had no
        # active lane), dropping every trip of theirs.  Those lanes are
        # aligned to start at their own first index, so what they compute
        # (and discard) stays in range.
        b.emit(Assign(most, Call("max", [Call("where", [Name(outer), Name(trips), Const(0)])])))
        b.emit(Assign(trips, Call("where", [Name(outer), Name(trips), Name(most)])))
    b.set_state(most, False)
    b.emit(Assign(target, Call("subtract", [Name(first), Call("multiply", [
        Call("subtract", [Name(most), Name(trips)]), step])])))
    b.set_state(target, True)

    def active():
        started = Call("greater_equal", [Call("multiply", [
            Call("subtract", [Name(target), Name(first)]), step]), Const(0)])
        here = Call("logical_and", [Call("range_active", [target, stop, step]), started])
        return here if outer is None else Call("logical_and", [Name(outer), here])
    b.emit(Assign(m, active()))

    def advance():
        return [Assign(target, Call("add", [Name(target), step])), Assign(m, active())]
    _masked_loop(b, s.body, forced, m, origin, step=advance)


def _masked_loop(b, body, frozen, m, origin, step):
    go = b.scope.fresh("any_active")
    b.emit(Assign(go, Call("lanes_any", [Name(m)])))
    old = b.scope.fresh("fp_state")
    b.emit(Assign(old, Call("errstate_quiet", [])))
    saved_out, saved_mask = b.out, b.mask
    b.out, b.mask = [], m
    defined_before = set(b.defined)
    saved = _freeze_before(b, frozen)
    b.block(body)
    b.origin = origin
    _freeze_after(b, m, saved)
    for st in step():
        b.emit(st)
    b.emit(Assign(go, Call("lanes_any", [Name(m)])))
    inner = b.out
    b.out, b.mask = saved_out, saved_mask
    b.defined = defined_before
    b.emit(gast.While(test=Name(go), body=inner, orelse=[]))
    b.emit(Assign("_", Call("errstate_restore", [Name(old)])))
