"""handler/values.py's Value behaves as the frozen dataclass it replaces, defined without exec."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable
from typing import ClassVar

import pytest

from handler.values import FrozenInstanceError, Value, field, fields, replace


class Point(Value):
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()
    secret: str = field(default="", repr=False)
    seen: list[int] = field(default_factory=list, compare=False)
    KIND: ClassVar[str] = "point"


@dataclasses.dataclass(frozen=True)
class PointDC:
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()
    secret: str = dataclasses.field(default="", repr=False)
    seen: list[int] = dataclasses.field(default_factory=list, compare=False)


class Tally(Value, frozen=False):
    count: int = 0
    later: str = field(init=False, default="unset")

    def __post_init__(self) -> None:
        self.later = f"from {self.count}"


def test_init_repr_and_eq_match_a_frozen_dataclass():
    for args, kwargs in [((1,), {}), ((1, 2), {"tags": ("a",)}), ((), {"x": 3, "secret": "sk-1"})]:
        mine, theirs = Point(*args, **kwargs), PointDC(*args, **kwargs)
        assert repr(mine).replace("Point(", "PointDC(") == repr(theirs)
        assert "sk-1" not in repr(mine)
        assert [f.name for f in fields(mine)] == [f.name for f in dataclasses.fields(theirs)]
    assert Point(1, 2) == Point(1, 2, seen=[5]) and Point(1, 2) != Point(1, 3)
    assert Point(1) != PointDC(1) and Point(1) != (1, 0)
    assert hash(Point(1, 2)) == hash(Point(1, 2, seen=[9]))
    assert Point(1).seen is not Point(1).seen  # a factory per instance
    assert Point.KIND == "point" and "KIND" not in [f.name for f in fields(Point)]


def test_frozen_refuses_assignment_and_mutable_allows_it():
    p = Point(1)
    with pytest.raises(FrozenInstanceError):
        p.x = 2
    with pytest.raises(FrozenInstanceError):
        del p.x
    assert isinstance(FrozenInstanceError("x"), AttributeError)
    t = Tally(4)
    assert t.later == "from 4"  # init=False default set before __post_init__
    t.count = 5
    assert t.count == 5
    with pytest.raises(TypeError):
        hash(t)


def test_bad_calls_fail_as_a_dataclass_does():
    with pytest.raises(TypeError, match="missing required argument: 'x'"):
        Point()
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        Point(1, z=2)
    with pytest.raises(TypeError, match="multiple values for argument 'x'"):
        Point(1, x=2)
    with pytest.raises(TypeError, match="positional arguments"):
        Point(1, 2, (), "", [], 6)
    with pytest.raises(TypeError, match="later"):
        Tally(later="no")
    with pytest.raises(ValueError, match="default_factory"):

        class Shared(Value):
            items: list[int] = []  # noqa: RUF012 - the mistake under test

    with pytest.raises(TypeError, match="non-default argument 'b'"):

        class Order(Value):
            a: int = 1
            b: int


def test_a_function_default_is_the_value_not_a_method():
    class Timed(Value):
        clock: Callable[[], float] = field(default=lambda: 1.5)
        later: list[int] = field(init=False, default_factory=list)

    assert Timed().clock() == 1.5 and Timed(clock=lambda: 2.0).clock() == 2.0
    assert Timed().later == [] and Timed().later is not Timed().later


def test_replace_copies_and_checks_again():
    p = Point(1, 2, secret="s")
    q = replace(p, y=5)
    assert (q.x, q.y, q.secret) == (1, 5, "s") and p.y == 2
    with pytest.raises(TypeError):
        replace(p, z=1)
    with pytest.raises(ValueError, match="init=False"):
        replace(Tally(1), later="x")


def test_a_subclass_adds_its_fields_after_its_bases():
    class Point3(Point):
        z: int = 0

    assert [f.name for f in fields(Point3)] == ["x", "y", "tags", "secret", "seen", "z"]
    assert Point3(1, z=3).z == 3 and Point3(1) != Point(1)


def test_defining_a_value_compiles_nothing(monkeypatch):
    compiled = []
    real_exec, real_compile = builtins.exec, builtins.compile
    monkeypatch.setattr(builtins, "exec", lambda *a, **k: compiled.append(a) or real_exec(*a, **k))
    monkeypatch.setattr(builtins, "compile", lambda *a, **k: compiled.append(a) or real_compile(*a, **k))

    class Defined(Value):
        a: int
        b: str = "x"

    assert Defined(1) == Defined(1, "x") and not compiled
    dataclasses.dataclass(frozen=True)(type("Generated", (), {"__annotations__": {"a": "int"}}))
    assert compiled  # the check can see a dataclass's exec
