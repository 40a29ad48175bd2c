"""What an object name typed into the search box means: every name the field lists it by.

A solved field's objects are stored as machine tags spelled the way
``objects_in_field`` spells them ("M 101", "NGC 5457", "Whirlpool Galaxy",
"The star Dubhe (α UMa / 50 UMa)").  People type "M101", "messier 101",
"ngc5457", "Whirlpool" or "Big Dipper".  :func:`names_for` turns what they
typed into the set of tag texts to look for:

* a catalogue designation in any spacing and case, zeros and the long
  catalogue names included, becomes the spelling fields use, and every other
  name of that object from OpenNGC (through the engine's catalogue, so the
  names are exactly those a field lists);
* a common name, whole or a word of it ("Whirlpool"), becomes the names of
  every object it names;
* an asterism ("Big Dipper", "Summer Triangle") becomes its stars, and a few
  common names OpenNGC lacks become their objects (small tables below).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from skysolve.engine.products.named_objects import deep_sky_names

#: Catalogue prefixes people type -> the prefix fields use.
_CATALOGUES = {
    "m": "M",
    "messier": "M",
    "ngc": "NGC",
    "ic": "IC",
    "c": "C",
    "caldwell": "C",
    "b": "B",
    "barnard": "B",
    "mel": "Mel",
    "melotte": "Mel",
    "cr": "Cr",
    "cl": "Cl",
    "collinder": "Cr",
    "sh2": "Sh2",
    "sh 2": "Sh2",
}
_DESIGNATION = re.compile(
    r"^(messier|melotte|caldwell|barnard|collinder|sh\s?2|ngc|mel|ic|cr|cl|m|c|b)"
    r"\s*[-#.]?\s*0*(\d+)\s*([a-z]?)$"
)

#: Asterisms: the stars that make them, by the name fields give each star.
ASTERISMS: dict[str, tuple[str, ...]] = {
    "big dipper": ("Dubhe", "Merak", "Phecda", "Megrez", "Alioth", "Mizar", "Alkaid"),
    "plough": ("Dubhe", "Merak", "Phecda", "Megrez", "Alioth", "Mizar", "Alkaid"),
    "plow": ("Dubhe", "Merak", "Phecda", "Megrez", "Alioth", "Mizar", "Alkaid"),
    "little dipper": ("Polaris", "Kochab", "Pherkad", "Yildun"),
    "summer triangle": ("Vega", "Deneb", "Altair"),
    "winter triangle": ("Betelgeuse", "Procyon", "Sirius"),
    "orion's belt": ("Alnitak", "Alnilam", "Mintaka"),
    "orions belt": ("Alnitak", "Alnilam", "Mintaka"),
    "great square": ("Markab", "Scheat", "Algenib", "Alpheratz"),
    "great square of pegasus": ("Markab", "Scheat", "Algenib", "Alpheratz"),
    "northern cross": ("Deneb", "Sadr", "Albireo", "Aljanah", "Fawaris"),
    "teapot": ("Kaus Australis", "Kaus Media", "Kaus Borealis", "Nunki", "Ascella", "Alnasl"),
    "sickle": ("Regulus", "Algieba", "Adhafera", "Rasalas"),
    "w of cassiopeia": ("Shedar", "Caph", "Navi", "Ruchbah", "Segin"),
    "kite": ("Arcturus", "Izar", "Seginus", "Nekkar"),
    "spring triangle": ("Arcturus", "Spica", "Regulus"),
}

#: Common names OpenNGC does not carry (or gives another object), -> designations.
ALIASES: dict[str, tuple[str, ...]] = {
    "pinwheel galaxy": ("M 101",),
    "heart nebula": ("IC 1805",),
    "soul nebula": ("IC 1848",),
    "elephant's trunk nebula": ("IC 1396",),
    "wizard nebula": ("NGC 7380",),
    "pacman nebula": ("NGC 281",),
    "thor's helmet": ("NGC 2359",),
    "seagull nebula": ("IC 2177",),
    "jellyfish nebula": ("IC 443",),
    "cone nebula": ("NGC 2264",),
    "leo triplet": ("M 65", "M 66", "NGC 3628"),
    "markarian's chain": ("M 84", "M 86", "NGC 4435", "NGC 4438", "NGC 4461", "NGC 4473"),
}

#: A word shorter than this matches only whole names, never inside longer ones.
_MIN_WORD = 4


@dataclass(frozen=True)
class ObjectNames:
    """What to look for: tag texts matched exactly, and star names matched as stars."""

    exact: frozenset[str]
    stars: frozenset[str]

    @property
    def is_empty(self) -> bool:
        return not (self.exact or self.stars)


def designation(text: str) -> str | None:
    """``text`` as a catalogue designation in the fields' spelling, or None.

    >>> designation("messier 101"), designation("NGC5457"), designation("ic 0434")
    ('M 101', 'NGC 5457', 'IC 434')
    """
    match = _DESIGNATION.match(" ".join(text.lower().split()))
    if match is None:
        return None
    prefix = _CATALOGUES[re.sub(r"\s", " ", match.group(1)).replace("sh 2", "sh2")]
    suffix = match.group(3).upper()
    return f"{prefix} {int(match.group(2))}{suffix}"


@functools.cache
def _index() -> tuple[dict[str, tuple[str, ...]], list[tuple[str, tuple[str, ...]]]]:
    """(lower-case name -> the object's names), and (common name, names) to search words in."""
    by_name: dict[str, tuple[str, ...]] = {}
    common: list[tuple[str, tuple[str, ...]]] = []
    for names in deep_sky_names():
        group = tuple(names)
        for name in group:
            key = name.lower()
            by_name[key] = tuple(dict.fromkeys(by_name.get(key, ()) + group))
            if designation(name) is None:
                common.append((key, group))
    return by_name, common


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def names_for(query: str) -> ObjectNames:
    """Every tag text an object search for ``query`` should find (empty: match it as typed)."""
    text = " ".join(query.split()).lower()
    if not text:
        return ObjectNames(frozenset(), frozenset())
    by_name, common = _index()
    exact: set[str] = set()
    stars: set[str] = set()
    wanted = designation(text)
    if wanted is not None:
        exact.add(wanted)
        exact.update(by_name.get(wanted.lower(), ()))
    exact.update(by_name.get(text, ()))
    for alias, designations in ALIASES.items():
        if text == alias or (len(text) >= _MIN_WORD and _words(text) == _words(alias)[:1]):
            for name in designations:
                exact.add(name)
                exact.update(by_name.get(name.lower(), ()))
    stars.update(ASTERISMS.get(text.removeprefix("the "), ()))
    if not exact and not stars and len(text) >= _MIN_WORD:
        # A word or words of common names: "whirlpool" finds "Whirlpool Galaxy".
        typed = _words(text)
        for name, group in common:
            words = _words(name)
            if any(words[i : i + len(typed)] == typed for i in range(len(words))):
                exact.update(group)
    return ObjectNames(frozenset(exact), frozenset(stars))
