"""The one error-message builder: given; expected, why, the fix block, a closing note."""

from __future__ import annotations

from bceweights.messages import error_message, write_instead


def test_one_fix_or_several():
    assert write_instead("x=x.float()") == "Write instead:\n    x=x.float()"
    assert write_instead(["a", "b"]) == "Write instead one of:\n    a\n    b"
    assert write_instead("a\nb", "Recount, e.g.") == "Recount, e.g.:\n    a\n    b"


def test_every_part_in_its_place():
    message = error_message("w has shape (2,)", "expected (C,).", ["w=w.view(3)"], why="Counts are totals.",
                            note="(or check_values=False)")
    assert message == "w has shape (2,); expected (C,).\nCounts are totals.\nWrite instead:\n    w=w.view(3)\n(or check_values=False)"
    assert error_message("plain.") == "plain."
    assert error_message("a", "b", join=": ") == "a: b"
