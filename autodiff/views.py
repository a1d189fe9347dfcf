"""Which names may share memory: NumPy's aliasing, tracked during flattening.

Owns `Views` (see its docstring).  Must not emit code: the flattener asks
it which names to re-derive after an in-place update.
"""


class Views:
    """Which names may share memory with which (NumPy aliasing).

    `y = x` makes y an alias of x; `y = x[0, 1:3]` (basic indexing with
    known ints and slices) makes y a view of x.  A subscript assignment into
    either side is followed by re-deriving the other side, so the program
    means what NumPy means.  Views through reshape/transpose/... (or basic
    indexing whose index might be an array) cannot be written through
    functionally: an in-place update of such a name is refused.
    """

    def __init__(self):
        self.of = {}     # name -> (kind, base, defining statement, names it reads)

    def record(self, name, kind, base, stmt, reads):
        self.of[name] = (kind, base, stmt, frozenset(reads))

    def forget(self, name):
        """`name` was rebound: it no longer views anything; views whose
        index read `name` can no longer be re-derived."""
        self.of.pop(name, None)
        for k, (kind, base, stmt, reads) in list(self.of.items()):
            if name in reads and name != base:
                self.of[k] = ("stale", base, stmt, reads)

    def dependents(self, base):
        return [k for k, v in self.of.items() if v[1] == base]

    def snapshot(self):
        return dict(self.of)

    def merge_after_block(self, before):
        """Views created inside a block may or may not exist after it."""
        for k, v in list(self.of.items()):
            if before.get(k) != v:
                self.of[k] = ("uncertain",) + v[1:]


