"""The primitive table: one registration per primitive.

Owns the `Primitive` record and the registry `PRIMITIVES`.  A primitive is
the unit everything generated code calls: it has a name, an eager NumPy
implementation and a shape/dtype rule here, and slots that the stages fill:
JVP and VJP templates (autodiff/), a batching rule (autodiff/) and one
lowering per backend (codegen/).  This module must not import the stages;
they import it and attach their rules by primitive name.
"""

from ..errors import MissingRuleError, TransformError

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
    no_rule : dict
        transformation name -> why this primitive deliberately has no rule
        for it (filled at registration or by `declare_no_rule`).  The reason
        goes into the MissingRuleError a transformation raises, and the
        sweep tests accept a declared reason in place of the rule.
    lowerings : dict
        backend name -> lowering, filled by codegen/.
    """

    #: set once cotan has finished importing: primitives made after that
    #: (custom_vjp, custom_jvp, checkpoint wrappers) are user-defined
    _sealed = False

    def __init__(self, name, impl, abstract_eval=None, differentiable=True,
                 effectful=False, doc=None, no_rule=None):
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
        self.no_rule = {}
        for transformation, reason in (no_rule or {}).items():
            self.declare_no_rule(transformation, reason)
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

    def parameter_names(self):
        """The names of the implementation's positional-or-keyword
        parameters, in order (what a positional argument binds to)."""
        names = getattr(self, "_parameter_names", None)
        if names is None:
            import inspect
            try:
                sig = inspect.signature(self.impl)
            except (TypeError, ValueError):
                names = ()
            else:
                names = tuple(n for n, p in sig.parameters.items()
                              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
            self._parameter_names = names
        return names

    def bind_extra(self, args, n_template):
        """name -> argument for the positional arguments a rule template
        with `n_template` positional parameters does not take: a call may
        pass a keyword parameter by position (`diagonal(a, 2, 0, 1)` for
        offset=2), and a rule that reads it as a keyword must see it.
        An argument past the implementation's parameters is an error, not
        silently dropped."""
        extra = list(args[n_template:])
        names = self.parameter_names()[n_template:]
        if len(extra) > len(names):
            raise TransformError(f"primitive {self.name!r} takes at most "
                                 f"{len(self.parameter_names())} positional arguments, "
                                 f"got {len(args)}")
        return dict(zip(names, extra))

    def declare_no_rule(self, transformation, reason):
        """Record that this primitive has no `transformation` rule on
        purpose, and why (one sentence a user can act on)."""
        if not reason or not isinstance(reason, str):
            raise ValueError(f"primitive {self.name!r}: a no-rule declaration for "
                             f"{transformation!r} needs a reason")
        self.no_rule[transformation] = reason

    def has_rule(self, transformation):
        """Whether a `transformation` rule is attached (a declared reason
        does not count)."""
        if transformation in RULE_SLOTS:
            return getattr(self, RULE_SLOTS[transformation]) is not None
        return self.lowerings.get(transformation) is not None

    def rule_or_reason(self, transformation):
        """(rule, None) when the rule exists, (None, reason) when it is
        declared absent, (None, None) when it is simply missing: what the
        "every primitive has a rule" sweeps check."""
        if self.has_rule(transformation):
            return self.rule(transformation), None
        return None, self.no_rule.get(transformation)

    def rule(self, transformation):
        """The rule for `transformation` ('jvp', 'vjp', 'batching' or a
        backend name), or MissingRuleError naming both (and the declared
        reason, when the primitive has none on purpose)."""
        if transformation in RULE_SLOTS:
            r = getattr(self, RULE_SLOTS[transformation])
        else:
            r = self.lowerings.get(transformation)
        if r is None:
            raise MissingRuleError(self.name, transformation,
                                   self.no_rule.get(transformation, ""))
        return r


def primitive(name=None, *, abstract_eval=None, differentiable=True,
              effectful=False, no_rule=None):
    """Decorator registering an eager implementation as a primitive.

        @primitive("sin", abstract_eval=unary_float)
        def sin(x):
            return np.sin(x)

    `no_rule` maps transformation names ('jvp', 'vjp', 'batching', a backend)
    to the reason the primitive deliberately has no rule for them.
    """
    def register(impl):
        pname = name or impl.__name__
        if pname in PRIMITIVES:
            raise ValueError(f"primitive {pname!r} registered twice")
        p = Primitive(pname, impl, abstract_eval, differentiable, effectful,
                      no_rule=no_rule)
        PRIMITIVES[pname] = p
        return p
    return register


def table_primitives():
    """The primitives cotan itself defines (name -> Primitive), without the
    user-defined ones that custom_vjp/custom_jvp/checkpoint register; the
    sweep tests walk this table."""
    return {n: p for n, p in PRIMITIVES.items() if not p.custom}


def declare_no_rule(name, transformation, reason):
    """Record that primitive `name` has no `transformation` rule on purpose,
    and why; for modules that declare it after registration (the stage
    that would own the rule says why it has none)."""
    get_primitive(name).declare_no_rule(transformation, reason)


def seal_table():
    Primitive._sealed = True


def get_primitive(name):
    try:
        return PRIMITIVES[name]
    except KeyError:
        raise KeyError(f"no primitive named {name!r}") from None
