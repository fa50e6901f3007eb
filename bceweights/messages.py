"""The one builder for error messages: what was given, what was expected, the line to write instead.

Every error ``bceweights`` raises reads the same way::

    pos_weight has shape (3,) but the input has shape (8, 3, 64, 64) = (N=8, C=3, H=64, W=64).   <- given
    ... expected / why ...                                                                       <- expected
    Write instead one of:                                                                        <- lead
        pos_weight=pos_weight.view(3, 1, 1)   # varies along C                                   <- fixes
        pos_weight=pos_weight, channel_dim=1

:func:`error_message` joins the parts; :func:`write_instead` is the fix block alone (for messages
built line by line, as :func:`bceweights.shapes.line_up` does). This module imports nothing from
``bceweights``: every other module may use it.
"""

from __future__ import annotations

from collections.abc import Sequence

INDENT = "    "


def write_instead(fixes: str | Sequence[str], lead: str | None = None) -> str:
    """The fix block: ``"Write instead:\\n    fix"``, or ``"Write instead one of:"`` over several fixes.

    Args:
        fixes: one line of code, or several alternatives; a fix may span lines (each is indented).
        lead: the sentence before the colon, e.g. ``"Write for example"`` or ``"Recount, e.g."``.
            ``None``: ``"Write instead"`` for one fix, ``"Write instead one of"`` for several.

    Returns:
        ``lead + ":"`` and each fix line indented by four spaces, joined by newlines.
    """
    items = [fixes] if isinstance(fixes, str) else list(fixes)
    if lead is None:
        lead = "Write instead" if len(items) == 1 else "Write instead one of"
    lines = [f"{lead}:"]
    for fix in items:
        lines += [INDENT + line for line in fix.splitlines()]
    return "\n".join(lines)


def error_message(
    given: str,
    expected: str = "",
    fixes: str | Sequence[str] = (),
    *,
    lead: str | None = None,
    why: str = "",
    note: str = "",
    join: str = "; ",
) -> str:
    """``given; expected``, then ``why``, then the fix block, then ``note``; empty parts are left out.

    Args:
        given: what the caller passed, e.g. ``"num_pos has shape (2, 3)"``.
        expected: what is accepted, e.g. ``"expected a number or one count per channel, shape (C,)."``;
            joined to ``given`` by ``join``.
        fixes: the code to write instead (see :func:`write_instead`); none: no fix block.
        lead: the fix block's lead (see :func:`write_instead`).
        why: a line between the first sentence and the fixes (the reason, or a hint).
        note: a line after the fixes, e.g. ``"(or check_values=False to skip value checks ...)"``.
        join: what separates ``given`` and ``expected``.

    Returns:
        the message, lines separated by ``"\\n"``.
    """
    lines = [given + (join + expected if expected else "")]
    if why:
        lines.append(why)
    if fixes:
        lines.append(write_instead(fixes, lead))
    if note:
        lines.append(note)
    return "\n".join(lines)


#: How many items :func:`listing` shows before it says how many there are in all.
LISTED_ITEMS = 10


def listing(items: Sequence[object], limit: int = LISTED_ITEMS, total: int | None = None) -> str:
    """``items`` as ``[a, b, c]``, or the first ``limit`` and the count: ``[3, 8, 11, ...] (first 3 of 2000000)``.

    Keeps every message short whatever the number of channels or classes it names. ``total`` is the
    full count when ``items`` already holds only the first few (e.g. taken from a large tensor).
    """
    count = len(items) if total is None else total
    shown = [repr(item) for item in items[:limit]]
    if count <= len(shown):
        return "[" + ", ".join(shown) + "]"
    return "[" + ", ".join(shown) + f", ...] (first {len(shown)} of {count})"
