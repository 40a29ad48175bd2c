"""Searching by object name finds a field by any of the object's names, as typed."""

from __future__ import annotations

import pytest
from django.test import Client

from skysolve.front.objectnames import designation, names_for
from tests.front.helpers import make_user, solve, submit

M101 = ["Part of the constellation Ursa Major (UMa)", "NGC 5457", "M 101"]
M51 = ["Part of the constellation Canes Venatici (CVn)", "NGC 5194", "M 51", "Whirlpool Galaxy"]
DIPPER = ["Part of the constellation Ursa Major (UMa)", "The star Mizar (ζ UMa / 79 UMa)"]
ORION = ["Part of the constellation Orion (Ori)", "B 33", "Horsehead Nebula", "IC 434"]


@pytest.mark.parametrize(
    ("typed", "spelled"),
    [
        ("M101", "M 101"),
        ("m 101", "M 101"),
        ("Messier 101", "M 101"),
        ("ngc5457", "NGC 5457"),
        ("NGC  0891", "NGC 891"),
        ("ic434", "IC 434"),
        ("Barnard 33", "B 33"),
        ("Whirlpool", None),
    ],
)
def test_it_spells_designations_as_fields_do(typed: str, spelled: str | None) -> None:
    assert designation(typed) == spelled


def test_it_resolves_other_names_of_the_same_object() -> None:
    assert {"M 51", "NGC 5194", "Whirlpool Galaxy"} <= names_for("whirlpool").exact
    assert {"M 101", "NGC 5457"} <= names_for("Pinwheel Galaxy").exact
    assert "Mizar" in names_for("Big Dipper").stars
    # The Flame Nebula is NGC 2024 (OpenNGC names IC 434 so; the catalogue is corrected).
    assert "IC 434" not in names_for("Flame Nebula").exact
    assert "NGC 2024" in names_for("Flame Nebula").exact


@pytest.mark.django_db
def test_it_finds_fields_by_any_name(client: Client) -> None:
    alice = make_user("alice")
    fields = {
        "m101.jpg": solve(submit(alice, filename="m101.jpg"), objects=M101),
        "m51.jpg": solve(submit(alice, filename="m51.jpg"), objects=M51),
        "dipper.jpg": solve(submit(alice, filename="dipper.jpg"), objects=DIPPER),
        "orion.jpg": solve(submit(alice, filename="orion.jpg"), objects=ORION),
    }

    def found(typed: str) -> set[str]:
        body = client.get("/search", {"object": typed}).content.decode()
        return {name for name in fields if f">{name}<" in body}

    for typed in ("M101", "M 101", "Messier 101", "ngc 5457", "Pinwheel"):
        assert found(typed) == {"m101.jpg"}, typed
    for typed in ("Whirlpool", "M51", "NGC5194"):
        assert found(typed) == {"m51.jpg"}, typed
    assert found("Big Dipper") == {"dipper.jpg"}
    assert found("Ursa Major") == {"m101.jpg", "dipper.jpg"}
    assert found("Horsehead") == {"orion.jpg"}
    assert found("M 1") == set()  # not "M 101" by its first characters
