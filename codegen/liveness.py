"""Liveness over a typed program: minimal loop-carried and branch-result sets.

Owns `live_before(stmts, live_after)` and `loop_live(loop, live_after)`:
the names a block reads before writing them, so a loop carries only the
names live at its head and a branch returns only the merged names read
after it (the typed program's `carried` / `merged` sets list every name a
body assigns).  Backend-neutral (the xla emitter uses it for `while`/`if`
carried sets; cuda's host driver for what crosses a launch).  Must not emit
code.
"""

from .infer import TAssign, TFor, TIf, TWhile


def _uses(s):
    return {a.name for a in list(s.args) + list(s.kwargs.values()) if a.name}


def live_before(stmts, live_after):
    live = set(live_after)
    for s in reversed(stmts):
        if isinstance(s, TAssign):
            live.discard(s.target)
            live |= _uses(s)
        elif isinstance(s, TIf):
            live = live_before(s.body, live) | live_before(s.orelse, live)
            if s.pred.name:
                live.add(s.pred.name)
        elif isinstance(s, TFor):
            live = loop_live(s, live)
            live.discard(s.var)
            for a in (s.start, s.stop, s.step):
                if a.name:
                    live.add(a.name)
        elif isinstance(s, TWhile):
            live = loop_live(s, live)
    return live


def loop_live(loop, live_after):
    """Names live at the loop's head: read after the loop (it may run zero
    times) or read by a trip before the trip writes them."""
    head = set(live_after)
    if isinstance(loop, TWhile):
        head.add(loop.pred)
    while True:
        inner = set(head)
        if isinstance(loop, TFor):
            inner.discard(loop.var)
        new = head | live_before(loop.body, inner)
        if isinstance(loop, TFor):
            new.discard(loop.var)
        if new == head:
            return head
        head = new
