"""The two decorators every rule module attaches its rules with.

Owns `jvp(name, widen=, builder=)` and `vjp_rule(name)`: each puts the
decorated template (or builder) into the primitive's slot in the table.  A
leaf module (it imports only the table), so rule modules loaded while
`cotan.numpy` is still importing can use it.  Must not hold rules.
"""

from ..runtime.table import PRIMITIVES


def jvp(name, *, widen=False, builder=False):
    """Attach the decorated template (or builder) as `name`'s JVP rule."""
    def register(rule):
        rule.cotan_widen = widen
        rule.cotan_builder = builder
        PRIMITIVES[name].jvp_rule = rule
        return rule
    return register


def vjp_rule(name, *, builder=False):
    """Attach the decorated template (or builder) as `name`'s VJP rule."""
    def attach(rule):
        if builder:
            rule.cotan_builder = True
        PRIMITIVES[name].vjp_rule = rule
        return rule
    return attach
