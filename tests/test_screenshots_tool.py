"""``make screenshots`` deletes only the files it wrote (tools/screenshots.py's manifest)."""

from __future__ import annotations

from pathlib import Path

from tools.screenshots import MANIFEST_NAME, read_manifest, remove_stale


def touch(folder: Path, *names: str) -> list[Path]:
    paths = [folder / name for name in names]
    for path in paths:
        path.write_bytes(b"png")
    return paths


def test_full_run_removes_only_its_own_stale_screenshots(tmp_path):
    touch(tmp_path, "01_old_explorer.png", "02_kept_explorer.png", "my_figure.png", "03_user_explorer.png")
    (tmp_path / MANIFEST_NAME).write_text("# header\n01_old_explorer.png\n02_kept_explorer.png\n")
    written = [tmp_path / "02_kept_explorer.png"]
    removed = remove_stale(tmp_path, written, full_run=True)
    assert [p.name for p in removed] == ["01_old_explorer.png"]
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["02_kept_explorer.png", "03_user_explorer.png", "my_figure.png"]
    assert read_manifest(tmp_path) == {"02_kept_explorer.png"}


def test_without_a_manifest_nothing_is_deleted(tmp_path):
    touch(tmp_path, "01_a_explorer.png", "holiday.png")
    assert remove_stale(tmp_path, [], full_run=True) == []
    assert len(list(tmp_path.glob("*.png"))) == 2


def test_partial_run_adds_to_the_manifest_and_deletes_nothing(tmp_path):
    touch(tmp_path, "01_a_explorer.png", "02_b_explorer.png")
    (tmp_path / MANIFEST_NAME).write_text("01_a_explorer.png\n")
    assert remove_stale(tmp_path, [tmp_path / "02_b_explorer.png"], full_run=False) == []
    assert read_manifest(tmp_path) == {"01_a_explorer.png", "02_b_explorer.png"}
    assert len(list(tmp_path.glob("*.png"))) == 2
