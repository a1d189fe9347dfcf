"""The primitive table: one registration per primitive.

Owns the `Primitive` record and the registry `PRIMITIVES`.  A primitive is
the unit everything generated code calls: it has a name, an eager NumPy
implementation and a shape/dtype rule here, and slots that the stages fill:
JVP and VJP templates (autodiff/), a batching rule (autodiff/) and one
lowering per backend (codegen/).  This module must not import the stages;
they import it and attach their rules by primitive name.
"""

from ..errors import MissingRuleError

PRIMITIVES = {}

#: transformation name -> attribute of Primitive holding that rule
RULE_SLOTS = {"jvp": "jvp_rule", "vjp": "vjp_rule", "batching": "batch_rule"}


class Primitive:
    """A registered primitive.

    Attributes
    ----------
    name : str
        The name generated source calls it by.
    impl : callable
        The eager NumPy implementation, `impl(*args, **params)`.
    abstract_eval : callable or None
        `abstract_eval(*avals, **params)` -> output abstract value; inputs
        are `codegen.abstract.ShapedArray`s or concrete Python values.
    differentiable : bool
        False for primitives whose outputs carry no derivative (comparisons,
        `floor`, `argmax`, shape queries, printing): autodiff treats their
        outputs as constants, and they need no JVP/VJP rule.
    effectful : bool
        True for primitives called for their effect (`print`, `check`):
        never removed as dead code.
    jvp_rule, vjp_rule, batch_rule :
        Filled by autodiff/ (templates or rule builders).
    lowerings : dict
        backend name -> lowering, filled by codegen/.
    """

    #: set once cotan has finished importing: primitives made after that
    #: (custom_vjp, custom_jvp, checkpoint wrappers) are user-defined
    _sealed = False

    def __init__(self, name, impl, abstract_eval=None, differentiable=True,
                 effectful=False, doc=None):
        self.name = name
        self.custom = Primitive._sealed
        self.impl = impl
        self.abstract_eval = abstract_eval
        self.differentiable = differentiable
        self.effectful = effectful
        self.jvp_rule = None
        self.vjp_rule = None
        self.batch_rule = None
        self.lowerings = {}
        self.doc = doc or getattr(impl, "__doc__", None)
        self.__doc__ = self.doc
        self.__name__ = name
        self.__qualname__ = name
        self.__module__ = getattr(impl, "__module__", __name__)
        self.__wrapped__ = impl

    def __call__(self, *args, **params):
        return self.impl(*args, **params)

    def __repr__(self):
        return f"<cotan primitive {self.name}>"

    def __reduce__(self):
        return (get_primitive, (self.name,))

    def rule(self, transformation):
        """The rule for `transformation` ('jvp', 'vjp', 'batching' or a
        backend name), or MissingRuleError naming both."""
        if transformation in RULE_SLOTS:
            r = getattr(self, RULE_SLOTS[transformation])
        else:
            r = self.lowerings.get(transformation)
        if r is None:
            raise MissingRuleError(self.name, transformation)
        return r


def primitive(name=None, *, abstract_eval=None, differentiable=True,
              effectful=False):
    """Decorator registering an eager implementation as a primitive.

        @primitive("sin", abstract_eval=unary_float)
        def sin(x):
            return np.sin(x)
    """
    def register(impl):
        pname = name or impl.__name__
        if pname in PRIMITIVES:
            raise ValueError(f"primitive {pname!r} registered twice")
        p = Primitive(pname, impl, abstract_eval, differentiable, effectful)
        PRIMITIVES[pname] = p
        return p
    return register


def table_primitives():
    """The primitives cotan itself defines (name -> Primitive), without the
    user-defined ones that custom_vjp/custom_jvp/checkpoint register; the
    sweep tests walk this table."""
    return {n: p for n, p in PRIMITIVES.items() if not p.custom}


def seal_table():
    Primitive._sealed = True


def get_primitive(name):
    try:
        return PRIMITIVES[name]
    except KeyError:
        raise KeyError(f"no primitive named {name!r}") from None
