"""`quick_init`: a cheaper `__init__` for the frozen, slotted records built 100,000 times a plan."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    """Give a frozen, slotted dataclass an `__init__` that stores each field through its slot's own
    setter. The generated one calls `object.__setattr__` by name per field (frozen forbids plain
    assignment): twice the cost, for records a 100,000-user plan builds hundreds of thousands of.
    Same signature, defaults and immutability afterwards; only plain defaults are supported."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    scope: dict[str, Any] = {}
    params, body = [], []
    for f in fields:
        if f.default_factory is not dataclasses.MISSING or not f.init:
            raise TypeError(f"quick_init: {cls.__name__}.{f.name} needs the generated __init__")
        scope[f"_set_{f.name}"] = cls.__dict__[f.name].__set__  # the slot's member descriptor
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            scope[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        body.append(f"    _set_{f.name}(self, {f.name})")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"quick_init: {cls.__name__} has a __post_init__")
    exec(f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body) + "\n", scope)
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


def field_setter(cls: type[Any], name: str) -> Any:
    """The slot setter of one field of a frozen, slotted record: `setter(record, value)`. Only for the code that
    made `record` and has not handed it out yet (a reader that builds each record while its pages arrive and
    fills one field, known only after the last answer, in a short pass): to everyone else it is as frozen as
    ever, and equal to the record built with that value."""
    if name not in getattr(cls, "__slots__", ()):
        raise TypeError(f"field_setter: {cls.__name__}.{name} is not a slot")
    return cls.__dict__[name].__set__
