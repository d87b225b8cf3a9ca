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


def test_a_redeclared_field_keeps_its_bases_position():
    @dataclasses.dataclass(frozen=True)
    class BaseDC:
        x: int = 0
        y: int = 1

    @dataclasses.dataclass(frozen=True)
    class SubDC(BaseDC):
        x: int = 5
        z: int = 2

    class Base(Value):
        x: int = 0
        y: int = 1

    class Sub(Base):
        x: int = 5
        z: int = 2

    assert [f.name for f in fields(Sub)] == [f.name for f in dataclasses.fields(SubDC)] == ["x", "y", "z"]
    assert repr(Sub()).endswith(".Sub(x=5, y=1, z=2)") and repr(SubDC()).endswith(".SubDC(x=5, y=1, z=2)")
    assert Sub(7, 8).x == 7 and Sub(7, 8).y == 8  # positionally too, in the base's order


def test_two_value_bases_merge_their_fields_as_dataclasses_do():
    @dataclasses.dataclass(frozen=True)
    class LeftDC:
        a: int = 0

    @dataclasses.dataclass(frozen=True)
    class RightDC:
        b: int = 0

    @dataclasses.dataclass(frozen=True)
    class BothDC(LeftDC, RightDC):
        c: int = 0

    class Left(Value):
        a: int = 0

    class Right(Value):
        b: int = 0

    class Both(Left, Right):
        c: int = 0

    assert [f.name for f in fields(Both)] == [f.name for f in dataclasses.fields(BothDC)] == ["b", "a", "c"]


def test_an_explicit_hash_in_the_class_body_is_kept():
    @dataclasses.dataclass(frozen=True)
    class FixedDC:
        x: int

        def __hash__(self) -> int:
            return 42

    class Fixed(Value):
        x: int

        def __hash__(self) -> int:
            return 42

    class Counted(Value, frozen=False):
        x: int

        def __hash__(self) -> int:
            return 43

    class Inherits(Fixed):  # not in its own body: generated again, as a dataclass's is
        y: int = 0

    assert hash(Fixed(1)) == hash(FixedDC(1)) == 42 and hash(Counted(1)) == 43
    assert hash(Inherits(1)) == hash((1, 0))

    class OwnEq(Value):  # __eq__ alone sets __hash__ to None in the body: not an explicit hash
        x: int

        def __eq__(self, other: object) -> bool:
            return isinstance(other, OwnEq) and other.x == self.x

    assert hash(OwnEq(1)) == hash((1,))


@pytest.mark.parametrize("default", [[], {}, set(), bytearray()], ids=lambda d: type(d).__name__)
def test_a_mutable_default_is_refused_plain_or_through_field(default):
    with pytest.raises(ValueError, match="mutable default"):
        dataclasses.dataclass(frozen=True)(type("DC", (), {"__annotations__": {"a": "list"}, "a": default}))
    with pytest.raises(ValueError, match="use default_factory"):
        type("Plain", (Value,), {"__annotations__": {"a": "list"}, "a": default})
    with pytest.raises(ValueError, match="use default_factory"):
        type("Declared", (Value,), {"__annotations__": {"a": "list"}, "a": field(default=default)})


def test_frozen_and_mutable_values_do_not_inherit_from_each_other():
    with pytest.raises(TypeError, match="cannot inherit non-frozen dataclass from a frozen one"):
        dataclasses.dataclass(type("DC", (PointDC,), {}))
    with pytest.raises(TypeError, match="cannot inherit non-frozen Value from a frozen one"):

        class Loose(Point, frozen=False):
            extra: int = 0

    @dataclasses.dataclass
    class TallyDC:
        count: int = 0

    with pytest.raises(TypeError, match="cannot inherit frozen dataclass from a non-frozen one"):
        dataclasses.dataclass(frozen=True)(type("DC", (TallyDC,), {}))
    with pytest.raises(TypeError, match="cannot inherit frozen Value from a non-frozen one"):

        class Fixed(Tally):
            extra: int = 0

    class MoreTally(Tally, frozen=False):  # the same kind either way is fine
        extra: int = 0

    assert MoreTally(2).later == "from 2"


def test_repr_of_a_value_that_contains_itself_stops_as_a_dataclass_does():
    @dataclasses.dataclass(frozen=True)
    class NodeDC:
        items: list[object] = dataclasses.field(default_factory=list)

    class Node(Value):
        items: list[object] = field(default_factory=list)

    mine, theirs = Node(), NodeDC()
    mine.items.append(mine)
    theirs.items.append(theirs)
    assert repr(mine).endswith(".Node(items=[...])") and repr(theirs).endswith(".NodeDC(items=[...])")

    class Loop(Value, frozen=False):  # no list in between: without a guard this recurses forever
        other: object = None

    loop = Loop()
    loop.other = loop
    assert repr(loop).endswith(".Loop(other=...)")


def test_a_field_hidden_from_repr_stays_hidden():
    class Credentials(Value):
        key_id: str
        secret: str = field(repr=False)
        token: str = field(default="", repr=False)

    class Scoped(Credentials):
        region: str = "cn-hangzhou"

    class Holder(Value):
        inner: tuple[Credentials, ...]

    creds = Scoped("LTAI-id", "sk-hidden", token="tok-hidden")
    for shown in (repr(creds), str(creds), repr(Holder((creds,))), f"{creds}", repr(replace(creds, region="x"))):
        assert "sk-hidden" not in shown and "tok-hidden" not in shown and "LTAI-id" in shown
    assert repr(creds).endswith(".Scoped(key_id='LTAI-id', region='cn-hangzhou')")
    assert [f.name for f in fields(creds) if not f.repr] == ["secret", "token"]
    assert creds == Scoped("LTAI-id", "sk-hidden", token="tok-hidden") != Scoped("LTAI-id", "other")


def test_match_args_as_a_dataclass():
    assert Point.__match_args__ == PointDC.__match_args__ == ("x", "y", "tags", "secret", "seen")
    match Point(1, 2):
        case Point(x, y):
            assert (x, y) == (1, 2)


def test_eq_compares_field_tuples_as_a_dataclass():
    nan = float("nan")  # tuples compare identity first: the same NaN object is equal to itself
    assert PointDC(nan) == PointDC(nan) and Point(nan) == Point(nan)
    assert PointDC(nan) != PointDC(float("nan")) and Point(nan) != Point(float("nan"))


def test_a_frozen_value_refuses_its_own_setattr():
    with pytest.raises(TypeError, match="Cannot overwrite attribute __setattr__"):

        @dataclasses.dataclass(frozen=True)
        class SetterDC:
            a: int = 0

            def __setattr__(self, name: str, value: object) -> None: ...

    with pytest.raises(TypeError, match="Cannot overwrite attribute __setattr__"):

        class Setter(Value):
            a: int = 0

            def __setattr__(self, name: str, value: object) -> None: ...
