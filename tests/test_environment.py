"""The three descriptions of the environment agree.

- pyproject.toml: the library ranges (dependencies and the ``lessons`` / ``notebooks`` / ``test`` extras);
- environment.yml: the same packages with the same ranges, for conda users;
- requirements/constraints.txt: the lock the notebooks' stored outputs were made with, which must
  pin every package named in pyproject.toml to a version inside its range, and torch to 2.13.0.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = REPO_ROOT / "pyproject.toml"
ENVIRONMENT_YML = REPO_ROOT / "environment.yml"
CONSTRAINTS = REPO_ROOT / "requirements" / "constraints.txt"
LOCKED_TORCH = "2.13.0"


def pyproject_groups() -> dict[str, list[Requirement]]:
    """Requirements of pyproject.toml by group: 'dependencies' and 'extra <name>'."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    groups = {"dependencies": project["dependencies"]}
    for extra, lines in project.get("optional-dependencies", {}).items():
        groups[f"extra {extra}"] = lines
    return {group: [Requirement(line) for line in lines] for group, lines in groups.items()}


def pyproject_requirements(python_version: str) -> dict[str, SpecifierSet]:
    """Every package pyproject.toml installs on ``python_version``, name -> version range."""
    merged: dict[str, SpecifierSet] = {}
    for requirements in pyproject_groups().values():
        for requirement in requirements:
            if requirement.marker and not requirement.marker.evaluate({"python_version": python_version}):
                continue
            merged[canonicalize_name(requirement.name)] = requirement.specifier
    return merged


def environment_yml() -> dict:
    return yaml.safe_load(ENVIRONMENT_YML.read_text(encoding="utf-8"))


def environment_yml_python() -> str:
    """The Python version environment.yml asks conda for ('python=3.11' -> '3.11')."""
    pins = [entry for entry in environment_yml()["dependencies"] if isinstance(entry, str) and entry.startswith("python")]
    assert len(pins) == 1, f"environment.yml should name python exactly once, found {pins}"
    match = re.fullmatch(r"python\s*=+\s*(\d+\.\d+)(?:\.\*)?", pins[0])
    assert match, f"environment.yml pins python as {pins[0]!r}; expected the form 'python=3.11'"
    return match.group(1)


def environment_yml_pip_lines() -> list[str]:
    sections = [entry["pip"] for entry in environment_yml()["dependencies"] if isinstance(entry, dict) and "pip" in entry]
    assert len(sections) == 1, "environment.yml should have exactly one 'pip:' section"
    return [str(line) for line in sections[0]]


def environment_yml_requirements() -> dict[str, SpecifierSet]:
    """The packages of environment.yml's pip section (options such as '-e .' left out)."""
    requirements: dict[str, SpecifierSet] = {}
    for line in environment_yml_pip_lines():
        if line.startswith("-"):
            continue
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name not in requirements, f"environment.yml lists {requirement.name} twice"
        requirements[name] = requirement.specifier
    return requirements


def constraints_pins() -> dict[str, str]:
    """requirements/constraints.txt as name -> pinned version; every line must be 'name==version'."""
    pins: dict[str, str] = {}
    for number, line in enumerate(CONSTRAINTS.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", line)
        assert match, f"constraints.txt line {number} is {line!r}; every line must pin one version: 'name==1.2.3'"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"constraints.txt pins {match.group(1)} twice"
        pins[name] = match.group(2)
    return pins


def constraints_python() -> str:
    """The Python the lock was made with, from the header 'make lock' writes ('# python 3.11.7 on ...')."""
    match = re.search(r"^# python (\d+)\.(\d+)\.\d+", CONSTRAINTS.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert match, "constraints.txt has no '# python X.Y.Z on ...' header line; regenerate it with 'make lock'"
    return f"{match.group(1)}.{match.group(2)}"


def describe(requirements: dict[str, SpecifierSet]) -> list[str]:
    return sorted(f"{name}{specifier}" for name, specifier in requirements.items())


def test_a_package_named_in_several_groups_has_one_range():
    seen: dict[str, tuple[str, SpecifierSet]] = {}
    for group, requirements in pyproject_groups().items():
        for requirement in requirements:
            name = canonicalize_name(requirement.name)
            if name in seen:
                first_group, first_specifier = seen[name]
                assert requirement.specifier == first_specifier, (
                    f"{requirement.name} is '{first_specifier}' in {first_group} but '{requirement.specifier}' in {group}"
                )
            seen[name] = (group, requirement.specifier)


def test_pyproject_states_the_library_ranges_of_the_core_dependencies():
    requirements = pyproject_requirements("3.11")
    assert requirements["torch"] == SpecifierSet(">=2.4")
    for name in ("numpy", "tqdm", "scipy", "matplotlib", "ipywidgets", "ipympl"):
        assert name in requirements, f"pyproject.toml does not depend on {name}"
        assert requirements[name], f"{name} has no lower bound in pyproject.toml"


LESSON_STACK = ("tqdm", "scipy", "matplotlib", "ipywidgets", "ipympl", "scikit-learn")


def test_the_core_needs_only_torch_and_numpy_and_the_lessons_stack_is_an_extra():
    groups = pyproject_groups()
    assert sorted(canonicalize_name(r.name) for r in groups["dependencies"]) == ["numpy", "torch"]
    assert sorted(canonicalize_name(r.name) for r in groups["extra lessons"]) == sorted(LESSON_STACK)


def test_the_makefile_installs_every_extra():
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^EXTRAS\s*:?=\s*(\S+)\s*$", makefile, re.MULTILINE)
    assert match, "the Makefile should set EXTRAS := extra1,extra2,..."
    extras = {group.removeprefix("extra ") for group in pyproject_groups() if group.startswith("extra ")}
    assert set(match.group(1).split(",")) == extras, "make lab / make test should install every extra"


def test_environment_yml_lists_the_packages_and_ranges_of_pyproject():
    python_version = environment_yml_python()
    expected = pyproject_requirements(python_version)
    listed = environment_yml_requirements()
    missing = describe({name: spec for name, spec in expected.items() if listed.get(name) != spec})
    extra = describe({name: spec for name, spec in listed.items() if expected.get(name) != spec})
    assert not missing and not extra, (
        f"environment.yml and pyproject.toml disagree.\n"
        f"  in pyproject.toml, not in environment.yml: {missing}\n"
        f"  in environment.yml, not in pyproject.toml: {extra}\n"
        f"Write the same 'name>=version' lines in both files."
    )


def test_environment_yml_python_is_allowed_by_requires_python():
    requires_python = SpecifierSet(tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["requires-python"])
    python_version = environment_yml_python()
    assert Version(python_version) in requires_python, (
        f"environment.yml asks for python {python_version}, outside requires-python '{requires_python}'"
    )


def test_environment_yml_installs_bceweights_itself():
    assert "-e ." in environment_yml_pip_lines(), "environment.yml's pip section should end with '-e .'"


def test_constraints_pin_torch_2_13_0():
    pins = constraints_pins()
    assert pins.get("torch") == LOCKED_TORCH, (
        f"constraints.txt pins torch to {pins.get('torch')!r}; the stored outputs are made with torch=={LOCKED_TORCH}"
    )


def test_constraints_pin_every_package_of_pyproject_inside_its_range():
    pins = constraints_pins()
    requirements = pyproject_requirements(constraints_python())
    unpinned = sorted(name for name in requirements if name not in pins)
    assert not unpinned, f"constraints.txt does not pin {unpinned}; regenerate it with 'make lock'"
    outside = sorted(
        f"{name}=={pins[name]} (pyproject.toml: '{specifier}')"
        for name, specifier in requirements.items()
        if not specifier.contains(Version(pins[name]), prereleases=True)
    )
    assert not outside, f"constraints.txt pins versions outside pyproject.toml's ranges: {outside}"


def test_constraints_leave_bceweights_itself_out():
    assert "bceweights" not in constraints_pins(), "constraints.txt must not pin the package it constrains"


@pytest.mark.parametrize(
    ("line", "accepted"),
    [("torch==2.13.0", True), ("torch>=2.4", False), ("torch", False), ("-e .", False)],
)
def test_constraints_parser_accepts_exact_pins_only(tmp_path, monkeypatch, line, accepted):
    fake = tmp_path / "constraints.txt"
    fake.write_text(f"# python 3.11.7 on Linux x86_64\n{line}\n", encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "CONSTRAINTS", fake)
    if accepted:
        assert constraints_pins() == {"torch": "2.13.0"}
    else:
        with pytest.raises(AssertionError, match="every line must pin one version"):
            constraints_pins()
