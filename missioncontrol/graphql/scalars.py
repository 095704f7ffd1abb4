"""Scalars the apps' types share, mapped onto GraphQL by the root schema's config."""

from __future__ import annotations

from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

# GraphQL's Int is 32-bit; a thread's memory in bytes passes 2 GiB.
BigInt = NewType("BigInt", int)

SCALARS: dict[object, ScalarDefinition] = {
    BigInt: strawberry.scalar(
        name="BigInt",
        description="An integer that may not fit in 32 bits, sent as a JSON number.",
        serialize=int,
        parse_value=int,
    ),
}
