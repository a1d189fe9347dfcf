"""Which names may share memory: NumPy's aliasing, during flattening.

Owns `Views` (the records of which names view which), `join` (the records
where control flow meets) and `ViewTracking`, the part of the flattener
that keeps them: it records the views a statement makes, writes an in-place
update through every name that shares the memory (re-deriving views, writing
views back into their bases), joins what is known after an `if` and at a
loop's head, and refuses, by name, the updates it cannot follow.  Must not
flatten statements or expressions itself (that is flatten_stmt.py's and
flatten_expr.py's job); the only code it emits is those re-derivations and
write-backs.
"""

import gast

from . import resolve
from .syntax import Assign, Call, Const, Name, clone

# kinds whose sharing cotan does not know exactly: an in-place update of such
# a name is refused, and an update of anything it may share memory with
# makes reading it again an error (the flattener "poisons" it)
UNSURE = frozenset({"uncertain", "stale", "orphan"})


class Views:
    """Which names may share memory with which (NumPy aliasing).

    `y = x` makes y an alias of x; `y = x[0, 1:3]` (basic indexing with
    known ints and slices) makes y a view of x.  A subscript assignment into
    either side is followed by re-deriving the other side, so the program
    means what NumPy means.  Views through reshape/transpose/... (or basic
    indexing whose index might be an array) cannot be written through
    functionally: an in-place update of such a name is refused.

    A record is `(kind, base, defining statement, reads)`.  Where control
    flow meets (after an `if`, at a loop's head and after it) the states of
    the incoming paths are joined (`join`): a name that is the same view on
    every path stays one; otherwise it becomes "uncertain", and its `reads`
    then hold every name it may share memory with.
    """

    def __init__(self):
        self.of = {}     # name -> (kind, base, defining statement, names it reads)

    def record(self, name, kind, base, stmt, reads):
        self.of[name] = (kind, base, stmt, frozenset(reads))

    def forget(self, name):
        """`name` was rebound: it no longer views anything; views whose
        index read `name` can no longer be re-derived, and views of the
        array `name` held now view an array no name holds."""
        own = self.of.pop(name, None)
        # what the old array was itself a view of
        also = (own[3] | {own[1]}) if own is not None else frozenset()
        sharers = [k for k in self.dependents(name) if k != name]
        orphans = [k for k in sharers if self.of[k][1] == name and self.of[k][0] not in UNSURE]
        for k, (kind, base, stmt, reads) in list(self.of.items()):
            if name in reads and name != base and kind not in UNSURE:
                self.of[k] = ("stale", base, stmt, reads | {base} | also)
            elif name in reads and kind in UNSURE:
                # it may share memory with the old array: so with what that
                # array shares memory with
                self.of[k] = (kind, base, stmt, reads | also)
        if len(sharers) == 1 and orphans and own is None:
            # the one name left holding that memory (which was no other
            # name's either): it is simply an array
            del self.of[orphans[0]]
        else:
            # several names still share the old array with each other, and
            # with whatever that array was itself a view of
            for k in orphans:
                kind, base, stmt, reads = self.of[k]
                self.of[k] = ("orphan", base, stmt, (reads | set(sharers) | also) - {k})

    def dependents(self, base):
        return [k for k, v in self.of.items()
                if v[1] == base or (v[0] in UNSURE and base in v[3])]

    def snapshot(self):
        return dict(self.of)

    def restore(self, state):
        self.of.clear()
        self.of.update(state)


def same_record(a, b):
    """Do two records (from two paths) describe the same sharing?"""
    if a is b:
        return True
    if a is None or b is None:
        return False
    return a[0] == b[0] and a[1] == b[1] and a[3] == b[3] and \
        gast.dump(a[2].value) == gast.dump(b[2].value)


def same_state(a, b):
    return a.keys() == b.keys() and all(same_record(a[k], b[k]) for k in a)


def join(a, b):
    """The view state after two paths with states `a` and `b` meet."""
    out = {}
    for k in a.keys() | b.keys():
        ra, rb = a.get(k), b.get(k)
        if same_record(ra, rb):
            out[k] = ra
            continue
        recs = [r for r in (ra, rb) if r is not None]
        shares = set()
        for r in recs:
            shares |= r[3] | {r[1]}
        first = recs[0]
        out[k] = ("uncertain", first[1], first[2], frozenset(shares))
    return out


def join_seq_kinds(a, b):
    """What is known of the tuples and lists at a join of two paths: a
    name that is one on both (of the same type); its length where both agree."""
    out = {}
    for k, (kind, n) in a.items():
        other = b.get(k)
        if other is not None and other[0] == kind:
            out[k] = (kind, n if other[1] == n else None)
    return out


class ViewTracking:
    """Mixed into `flatten_stmt.Flattener`: keeps its `views` (a `Views`),
    `poisoned` (names that may share memory with an array updated since:
    reading them is refused), `known_ints`, `slice_names` and `view_temps`
    true as statements are emitted."""

    def _share_memory_facts(self, caller):
        """An inlined callee works on the caller's arrays: both must see the
        same views, poisoned names and known ints (emitted names are unique
        across the whole normalization, so the tables can be one)."""
        self.views = caller.views
        self.poisoned = caller.poisoned
        self.known_ints = caller.known_ints
        self.seq_kinds = caller.seq_kinds
        self.slice_names = caller.slice_names
        self.view_temps = caller.view_temps
        self.serial = caller.serial

    def _flow_state(self):
        return (self.views.snapshot(), dict(self.poisoned), frozenset(self.known_ints),
                dict(self.seq_kinds))

    def _set_flow_state(self, state):
        views, poisoned, known_ints, seq_kinds = state
        self.views.restore(views)
        self.poisoned.clear()
        self.poisoned.update(poisoned)
        self.known_ints.clear()
        self.known_ints.update(known_ints)
        self.seq_kinds.clear()
        self.seq_kinds.update(seq_kinds)

    @staticmethod
    def _join_flow(a, b):
        poisoned = dict(b[1])
        poisoned.update(a[1])   # poisoned on either path: poisoned
        return (join(a[0], b[0]), poisoned, a[2] & b[2], join_seq_kinds(a[3], b[3]))

    @staticmethod
    def _same_flow(a, b):
        return same_state(a[0], b[0]) and a[1].keys() == b[1].keys() \
            and a[2] == b[2] and a[3] == b[3]

    def _drop_dead_temps(self, since):
        """Forget view temporaries made since serial `since` that nothing made
        from them needs (their statement is over: nobody reads them again)."""
        changed = True
        while changed:
            changed = False
            for t, made in list(self.view_temps.items()):
                if made < since:
                    continue
                if t in self.views.of and self.views.dependents(t):
                    continue
                self.views.of.pop(t, None)
                del self.view_temps[t]
                changed = True

    def _record_view(self, emitted, last, old_sharers=frozenset()):
        """Record what `last` (`emitted = ...`) makes `emitted` share memory
        with, if anything; says whether it recorded a view.  `old_sharers`:
        the names the old value of `emitted` shared memory with."""
        value = last.value
        if isinstance(value, gast.Call) and value.args and isinstance(value.args[0], gast.Name) \
                and value.args[0].id == emitted and (
                    (isinstance(value.func, gast.Name) and value.func.id == "getitem")
                    or getattr(value.func, "id", None) in resolve.VIEW_FUNCTIONS):
            # `x = x[1]`, `x = x.T`: a view of the array x held, which no
            # name holds now; a plain new array unless that array was shared
            if not old_sharers:
                return False
            self.views.record(emitted, "orphan", emitted, last, old_sharers)
            return True
        if isinstance(last.value, gast.Name) and last.value.id != emitted:
            self.views.record(emitted, "alias", last.value.id, last, {last.value.id})
            if last.value.id in self.known_ints:
                self.known_ints.add(emitted)
            return True
        call = last.value
        if isinstance(call, gast.Call) and isinstance(call.func, gast.Name) \
                and call.args and isinstance(call.args[0], gast.Name):
            base = call.args[0].id
            fname = call.func.id
            reads = {a.id for a in call.args if isinstance(a, gast.Name)}
            if fname == "getitem":
                idx = call.args[1:]
                def is_int(i):
                    return (isinstance(i, gast.Constant) and type(i.value) is int) or \
                        (isinstance(i, gast.Name) and i.id in self.known_ints)
                def is_slice(i):
                    return (isinstance(i, gast.Constant) and (i.value is None or i.value is Ellipsis)) \
                        or (isinstance(i, gast.Name) and i.id in self.slice_names)
                if all(is_int(i) or is_slice(i) for i in idx):
                    # with a slice in the index the result is always a view;
                    # all ints give a row (a view) or an element (a copy)
                    kind = "slice" if any(is_slice(i) for i in idx) else "intview"
                else:
                    kind = "maybe"
                self.views.record(emitted, kind, base, last, reads)
                return True
            elif fname in resolve.VIEW_FUNCTIONS:
                self.views.record(emitted, "other", base, last, reads)
                return True
        return False

    def _propagate_update(self, name, node, came_from=None, written=None):
        """`name` was just updated in place: update every name sharing its
        memory, as NumPy would (see `views.Views`).  `written` is the name the
        user wrote into (for messages)."""
        written = written or name
        for dep in self.views.dependents(name):
            if dep == came_from or dep == name:
                continue
            kind, _, stmt, reads = self.views.of[dep]
            if kind in ("alias", "slice", "other"):
                new = clone(stmt)
                self.emit(new)
                self.views.record(dep, kind, name, new, reads)
                self._propagate_update(dep, node, came_from=name, written=written)
            elif kind == "intview":
                # ints on every index give a row (a view: re-derive it) or,
                # when they index every axis, an element (a copy: it keeps
                # its value); which one is the base's rank, known when the
                # program runs (a constant under jit, per lane under vmap)
                new = clone(stmt)
                new.cotan_origin = self.origin_override or self.origin
                rank = self.emit_call("ndim", [Name(name)])
                deeper = self.emit_call("greater", [rank, Const(len(stmt.value.args) - 1)])
                self._emit_if(deeper, [new], [], new.cotan_origin)
                self.views.record(dep, kind, name, new, reads)
                self._propagate_update(dep, node, came_from=name, written=written)
            else:
                # it may or may not share memory (an element is a copy, a
                # row is a view): refuse only if it is read again -- it, and
                # every name made from it
                self._poison(dep, written, kind)
        rec = self.views.of.get(name)
        if rec is None or rec[1] == came_from:
            return
        kind, base, stmt, reads = rec
        if kind == "alias":
            self.assign_to(base, Name(name))
        elif kind in ("slice", "intview"):
            idx = stmt.value.args[1:]
            self.emit_call("setitem", [Name(base), Name(name)] + list(idx), target=base)
        else:
            raise self._unfollowable_update(written, kind, base, reads, node)
        self.poisoned.pop(base, None)
        self._propagate_update(base, node, came_from=name, written=written)

    def _poison(self, name, written, kind):
        todo, seen = [name], set()
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            seen.add(n)
            self.poisoned.setdefault(n, (written, kind))
            todo.extend(self.views.dependents(n))

    def _unfollowable_update(self, name, kind, base, reads, node):
        """The error for an in-place update cotan cannot write through."""
        user, ubase = self.user_name(name), self.user_name(self._named_base(base))
        if kind == "uncertain":
            # the names it may share memory with (temporaries such as a
            # slice's are not worth naming)
            others = sorted(u for u in (self.user_name(r) for r in reads if r != name)
                            if u in self.rename or u == ubase)
            shares = " or ".join(repr(o) for o in others) or repr(ubase)
            return self.error(
                f"in-place update of {user!r}, which is a view of {shares} on some paths to "
                f"this line and a separate array on others (it was assigned differently in "
                f"the branches of an if, or by an earlier trip of a loop): NumPy's result "
                f"depends on the path and cotan does not follow that", node,
                hint=f"Make it the same on every path: `{user} = ....copy()` wherever it is "
                     f"assigned, or write into {ubase!r} itself instead of {user!r}.")
        what = {"other": "a reshaped/transposed view",
                "maybe": "possibly a view (its index may be an array)",
                "stale": "a view whose index variable has changed since",
                "orphan": "a view of the array that variable held before it was rebound "
                          "(other names still share that array)"}[kind]
        return self.error(
            f"in-place update of {user!r}, which is {what} of {ubase!r}: NumPy would "
            f"change {ubase!r} too and cotan cannot follow that here", node,
            hint=f"Make the copy explicit ({user} = ....copy()) or update "
                 f"{ubase!r} directly.")

    def _named_base(self, name):
        """Follow view temporaries (`m.T` in `v = m.T`) back to a named array."""
        seen = set()
        while name in self.view_temps and name in self.views.of and name not in seen:
            seen.add(name)
            name = self.views.of[name][1]
        return name

    def _join_view_indices(self, body, orelse, a, b, origin):
        """A name that both branches make a basic-index view of the same base
        (`v = m[0]` / `v = m[1]`) stays a view after the `if`: where the
        indices differ, each branch ends by copying its index into a name of
        the join's own, and the view is re-derived (or written back) through
        that name.  `a` and `b` are the flow states after the branches; their
        records are updated in place."""
        va, vb = a[0], b[0]
        for k in sorted(va.keys() & vb.keys()):
            ra, rb = va[k], vb[k]
            if same_record(ra, rb) or ra[0] != rb[0] or ra[1] != rb[1] \
                    or ra[0] not in ("slice", "intview"):
                continue
            ca, cb = ra[2].value, rb[2].value
            ia, ib = ca.args[1:], cb.args[1:]
            if len(ia) != len(ib) or ca.keywords or cb.keywords:
                continue
            idx = []
            for x, y in zip(ia, ib):
                if gast.dump(x) == gast.dump(y):
                    idx.append(x)
                    continue
                j = self.fresh(f"{self.user_name(k)}_index")
                for block, atom in ((body, x), (orelse, y)):
                    st = Assign(j, clone(atom))
                    st.cotan_origin = origin
                    block.append(st)

                def is_int(atom, known):
                    return (isinstance(atom, gast.Constant) and type(atom.value) is int) or \
                        (isinstance(atom, gast.Name) and atom.id in known)
                if is_int(x, a[2]) and is_int(y, b[2]):
                    a, b = (a[0], a[1], a[2] | {j}), (b[0], b[1], b[2] | {j})
                idx.append(Name(j))
            view = Assign(k, Call("getitem", [Name(ra[1])] + idx))
            reads = {ra[1]} | {i.id for i in idx if isinstance(i, gast.Name)}
            rec = (ra[0], ra[1], view, frozenset(reads))
            va[k] = vb[k] = rec
