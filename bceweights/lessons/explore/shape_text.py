"""Reading a shape typed into the explorer: sizes and the letters of the input's dimensions.

Imports: :func:`bceweights.shapes.dim_names` only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from bceweights.shapes import dim_names

Shape = tuple[int, ...]

#: Typed shapes are limited to this many dimensions and elements (the explorer builds the tensor).
MAX_DIMS = 6
MAX_ELEMENTS = 100_000


def parse_shape(text: str, input_shape: Sequence[int]) -> Shape:
    """Read a typed shape: integers and the letters of the input's dimensions, e.g. ``"N, 1, H, W"``.

    Brackets, commas and spaces are optional: ``"(3,)"``, ``"3"``, ``"[2, 3]"``, ``"N C"`` all work; an
    empty text or ``"()"`` is a 0-d operand (a single number). Letters resolve against
    ``input_shape`` = ``(N, C, H, W)``.

    Raises:
        ValueError: with a message that says what was typed and what is expected.
    """
    names = dim_names(len(input_shape))
    sizes = dict(zip(names, input_shape))
    body = text.strip()
    if body[:1] in "([" and body[-1:] in ")]":
        body = body[1:-1]
    tokens = [token for token in re.split(r"[\s,]+", body) if token]
    shape = []
    for token in tokens:
        if token.upper() in sizes:
            shape.append(int(sizes[token.upper()]))
        elif token.isdigit() and int(token) >= 1:
            shape.append(int(token))
        else:
            raise ValueError(
                f"cannot read {token!r} in the shape {text!r}; expected sizes >= 1 or the letters "
                f"{', '.join(names)}, separated by commas, e.g. \"N, 1, H, W\" or \"3, 1, 1\"."
            )
    if len(shape) > MAX_DIMS:
        raise ValueError(f"the shape {text!r} has {len(shape)} dimensions; this explorer draws at most {MAX_DIMS}.")
    if math.prod(shape) > MAX_ELEMENTS:
        raise ValueError(
            f"the shape {text!r} has {math.prod(shape)} elements; this explorer builds at most {MAX_ELEMENTS}."
        )
    return tuple(shape)
