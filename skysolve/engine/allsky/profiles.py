"""Camera profiles: the lens model of an all-sky camera, kept for its next frame.

A profile is keyed by what tells one camera from another without solving: the
image size and, where the file has them, the FITS ``INSTRUME``/``TELESCOP``
keywords or the EXIF ``Make``/``Model`` (as the learned hints compare cameras).
It holds the last solved model and the frame's time.  The next frame starts
from it: when both frames have a time, the pointing is turned with the sky (a
fixed camera sees the sky turn about the celestial pole at the sidereal rate);
otherwise, or when the camera moved, the stored lens alone maps the central
stars for the fast path, one guess instead of the blind ladder.  Whatever the
start, the answer is verified like a blind one, and a profile that fails is
left for the blind search.

Profiles are files in ``SKYSOLVE_ALLSKY_PROFILES`` (default
``<cache dir>/allsky-profiles``); a lens model says nothing about what was
photographed, so one installation's users share them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from skysolve.engine.allsky.model import LensModel
from skysolve.errors import BadInputError


def profile_dir(environ: dict[str, str] | None = None) -> Path:
    """Where camera profiles are kept: ``SKYSOLVE_ALLSKY_PROFILES``, else in the cache dir."""
    from skysolve.engine.config import DataPaths

    return DataPaths.from_env(environ).profile_dir


def camera_key(
    width: int, height: int, header: Any = None, exif: dict[str, Any] | None = None
) -> str:
    """A file-name-safe key of the camera that took a frame."""
    parts = [f"{int(width)}x{int(height)}"]
    if header is not None:
        for key in ("INSTRUME", "TELESCOP"):
            value = str(header.get(key, "") or "").strip().lower()
            if value:
                parts.append(f"{key.lower()}={value}")
    for key in ("Make", "Model"):
        value = str((exif or {}).get(key, "") or "").strip().lower()
        if value:
            parts.append(f"{key.lower()}={value}")
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return f"{parts[0]}-{digest}"


def load_profile(
    key: str, *, when: str | None = None, directory: Path | None = None
) -> LensModel | None:
    """The stored model of camera ``key``, turned with the sky to ``when`` if both have a time."""
    path = (directory or profile_dir()) / f"{key}.json"
    try:
        doc = json.loads(path.read_text())
        model = LensModel.from_dict(doc["lens_model"])
    except (OSError, ValueError, KeyError, TypeError, BadInputError):
        return None
    stored = doc.get("time")
    if when and stored:
        try:
            turn = sidereal_turn(stored, when)
        except (ValueError, ImportError):
            return model
        return replace(model, ra=(model.ra + turn) % 360.0)
    return model


def save_profile(
    key: str, model: LensModel, *, when: str | None = None, directory: Path | None = None
) -> Path:
    """Store ``model`` as camera ``key``'s profile (written whole, then renamed in)."""
    folder = directory or profile_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.json"
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps({"lens_model": model.to_dict(), "time": when}))
    partial.replace(path)
    return path


def sidereal_turn(earlier: str, later: str) -> float:
    """Degrees the sky turned westward (RA at a fixed place grows) between two UTC times."""
    from astropy.time import Time

    days = float((Time(later, scale="utc") - Time(earlier, scale="utc")).jd)
    # 360.98564736629 degrees of Earth rotation per day relative to the stars.
    return math.fmod(360.98564736629 * days, 360.0)
