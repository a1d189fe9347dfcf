"""Deterministic fresh names.

Owns `NameScope`, which hands out readable names (`t`, `t_1`, `dx`,
`dx_1`, ...) that never collide with names already taken.  Names depend only
on the order of requests, so the same input always gives the same source.
"""

import builtins
import keyword


class NameScope:
    def __init__(self, reserved=()):
        self.used = set(reserved)
        self.used.update(keyword.kwlist)

    def taken(self, name):
        return name in self.used

    def claim(self, name):
        """Take `name` itself; the caller knows it is free."""
        self.used.add(name)
        return name

    def fresh(self, base="t"):
        """`base` if free, else `base_1`, `base_2`, ..."""
        base = base or "t"
        if base not in self.used:
            self.used.add(base)
            return base
        stem = base
        k = 1
        while f"{stem}_{k}" in self.used:
            k += 1
        name = f"{stem}_{k}"
        self.used.add(name)
        return name


BUILTIN_NAMES = frozenset(dir(builtins))
