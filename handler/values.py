"""Value objects that cost nothing to define: `class Plan(Value)` behaves as `@dataclass(frozen=True)`.

Why: `dataclasses` compiles each class's methods with `exec` at import, which a small FC spec pays on
every cold start (docs/performance.md); here they are compiled once, into this module's bytecode.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from reprlib import recursive_repr  # already loaded: collections imports it
from typing import Any, ClassVar, TypeVar

try:
    from typing import dataclass_transform  # 3.11+: type checkers then read subclasses as dataclasses
except ImportError:  # python3.10, FC's other runtime: the same class without the hint

    def dataclass_transform(**_: Any) -> Callable[[type], type]:
        return lambda cls: cls


__all__ = ["FrozenInstanceError", "Value", "field", "fields", "replace"]

_MISSING: Any = object()


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen value (as `dataclasses.FrozenInstanceError`)."""


class Field:
    """One field's declaration; `field(...)` makes it."""

    __slots__ = ("compare", "default", "default_factory", "init", "name", "repr")

    def __init__(
        self,
        default: Any = _MISSING,
        default_factory: Callable[[], Any] | None = None,
        repr: bool = True,  # noqa: A002 - the name dataclasses.field uses
        compare: bool = True,
        init: bool = True,
    ) -> None:
        if default is not _MISSING and default_factory is not None:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare
        self.init = init

    def value(self) -> Any:
        return self.default_factory() if self.default_factory is not None else self.default

    @property
    def required(self) -> bool:
        return self.default is _MISSING and self.default_factory is None


def field(
    *,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] | None = None,
    repr: bool = True,  # noqa: A002
    compare: bool = True,
    init: bool = True,
) -> Any:
    """A field with a factory, or left out of repr, comparison or `__init__` (as `dataclasses.field`).

    `repr=False` keeps the field (a secret) out of the value's repr and str, and so out of any value's
    that holds it; a subclass keeps that unless it declares the field again."""
    return Field(default, default_factory, repr, compare, init)


def _is_class_var(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__origin__", annotation)
    return text is ClassVar or (isinstance(text, str) and text.startswith(("ClassVar", "typing.ClassVar")))


# Where a Value differs from a frozen dataclass (everything else is held to one in tests/test_values.py):
# - options: only `frozen`; no eq=False, order, unsafe_hash, slots, kw_only, KW_ONLY or InitVar.
# - field() takes default, default_factory, repr, compare and init; no hash or metadata; Field has no type.
# - `dataclasses.fields`, `asdict`, `astuple` and `is_dataclass` do not know it: use this module's fields and replace.
# - `__init__` is `(*args, **kwargs)` to `inspect.signature`, and its TypeErrors are worded differently.
# - a mutable default is any unhashable one (as Python 3.11+ dataclasses; 3.10's refuse list, dict, set only).
@dataclass_transform(field_specifiers=(field, Field))
class Value:
    """Base of a value object; `class Tally(Value, frozen=False)` is a mutable (and unhashable) one."""

    __fields__: ClassVar[tuple[Field, ...]] = ()
    __frozen__: ClassVar[bool] = True

    def __init_subclass__(cls, frozen: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The bases' fields as dataclasses collect them: every Value base, the last in the MRO first; a
        # field declared again keeps its first position.
        bases = [b for b in cls.__mro__[-1:0:-1] if b is not Value and "__fields__" in b.__dict__]
        declared = {f.name: f for b in bases for f in b.__dict__["__fields__"]}
        if bases and not frozen and any(b.__frozen__ for b in bases):
            raise TypeError("cannot inherit non-frozen Value from a frozen one")
        if bases and frozen and not all(b.__frozen__ for b in bases):
            raise TypeError("cannot inherit frozen Value from a non-frozen one")
        for name in ("__setattr__", "__delattr__"):
            if frozen and name in cls.__dict__:
                raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
        # The class's own annotations (as strings: `from __future__ import annotations`); not
        # inspect.get_annotations, whose module the handler otherwise never imports.
        own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
        for name, annotation in own.items():
            if _is_class_var(annotation):
                continue
            spec = cls.__dict__.get(name, _MISSING)
            if not isinstance(spec, Field):
                spec = Field(default=spec)
            if type(spec.default).__hash__ is None:  # one mutable object shared by every instance
                raise ValueError(
                    f"mutable default {type(spec.default).__name__} for field {name!r}: use default_factory"
                )
            spec.name = name
            if isinstance(cls.__dict__.get(name), Field):
                delattr(cls, name)  # a plain default stays as the class attribute; a declaration does not
            declared[name] = spec
        cls.__fields__ = tuple(declared.values())
        cls.__frozen__ = frozen
        init = [f for f in cls.__fields__ if f.init]
        for before, after in itertools.pairwise(init):
            if after.required and not before.required:
                raise TypeError(f"non-default argument {after.name!r} follows default argument")
        # What __init__ needs, worked out once per class: a plain default is read from the class
        # attribute (nothing to store per instance); factories, and defaults that would bind as
        # methods (a function), are stored in each instance's __dict__.
        stored = []
        for f in cls.__fields__:
            if f.required:
                continue
            if f.default_factory is None and not hasattr(type(f.default), "__get__"):
                setattr(cls, f.name, f.default)
            else:
                stored.append(f)
        cls._init_names = tuple(f.name for f in init)
        cls._init_set = frozenset(cls._init_names)
        cls._required = frozenset(f.name for f in init if f.required)
        cls._stored = tuple((f.name, f.init, f) for f in stored)
        cls._shown = tuple(f.name for f in cls.__fields__ if f.repr)
        cls._compared = tuple(f.name for f in cls.__fields__ if f.compare)
        if "__match_args__" not in cls.__dict__:
            cls.__match_args__ = cls._init_names
        # A `__hash__` of the class's own is kept; `__eq__` alone leaves `__hash__ = None`, which is not one.
        own_hash = cls.__dict__.get("__hash__", _MISSING)
        if own_hash is _MISSING or (own_hash is None and "__eq__" in cls.__dict__):
            cls.__hash__ = Value._hash if frozen else None  # type: ignore[assignment]  # as a dataclass's

    _init_names: ClassVar[tuple[str, ...]]
    _init_set: ClassVar[frozenset[str]]
    _required: ClassVar[frozenset[str]]
    _stored: ClassVar[tuple[tuple[str, bool, Field], ...]]
    _shown: ClassVar[tuple[str, ...]]
    _compared: ClassVar[tuple[str, ...]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        names = cls._init_names
        values = self.__dict__  # written directly: __setattr__ refuses on a frozen value
        if args:
            if len(args) > len(names):
                raise TypeError(f"{cls.__name__}() takes {len(names)} positional arguments but {len(args)} were given")
            values.update(zip(names, args, strict=False))
        if kwargs:
            if not kwargs.keys() <= cls._init_set:
                name = next(n for n in kwargs if n not in cls._init_set)
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {name!r}")
            if args and not kwargs.keys().isdisjoint(names[: len(args)]):
                name = next(n for n in names[: len(args)] if n in kwargs)
                raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
            values.update(kwargs)
        if not cls._required <= values.keys():
            name = next(n for n in names if n in cls._required and n not in values)
            raise TypeError(f"{cls.__name__}() missing required argument: {name!r}")
        for name, given, spec in cls._stored:
            if not given or name not in values:
                values[name] = spec.value()
        post = getattr(self, "__post_init__", None)
        if post is not None:
            post()

    def __setattr__(self, name: str, value: Any) -> None:
        if type(self).__frozen__:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if type(self).__frozen__:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        object.__delattr__(self, name)

    @recursive_repr()  # a value that contains itself shows `...` there, as a dataclass does
    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in type(self)._shown)
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        names = type(self)._compared  # tuples, as a dataclass's: identical objects are equal (a NaN)
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)

    def _hash(self) -> int:
        return hash(tuple(getattr(self, name) for name in type(self)._compared))


def fields(value: Value | type[Value]) -> tuple[Field, ...]:
    """The fields of a value or value class, in order (as `dataclasses.fields`)."""
    return value.__fields__


V = TypeVar("V", bound=Value)


def replace(value: V, **changes: Any) -> V:
    """A copy of `value` with `changes` (as `dataclasses.replace`: init fields only, checked again)."""
    for name in type(value)._init_names:
        if name not in changes:
            changes[name] = getattr(value, name)
    for spec in type(value).__fields__:
        if not spec.init and spec.name in changes:
            raise ValueError(f"field {spec.name!r} is declared with init=False, it cannot be specified with replace()")
    return type(value)(**changes)
