"""Which names may share memory: NumPy's aliasing, tracked during flattening.

Owns `Views` and the join of two view states where control flow meets (see
`Views`).  Must not emit code: the flattener asks it which names to re-derive
after an in-place update, and it decides, statement by statement, what is
known there.
"""

import gast

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
        orphans = [k for k, v in self.of.items() if v[1] == name and v[0] not in UNSURE]
        for k, (kind, base, stmt, reads) in list(self.of.items()):
            if name in reads and name != base:
                self.of[k] = ("stale", base, stmt, reads | {base})
        if len(orphans) == 1 and own is None:
            # the one name left holding that memory (which was no other
            # name's either): it is simply an array
            del self.of[orphans[0]]
        else:
            # several names still share the old array with each other
            for k in orphans:
                kind, base, stmt, reads = self.of[k]
                self.of[k] = ("orphan", base, stmt, reads | set(orphans) - {k})

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
