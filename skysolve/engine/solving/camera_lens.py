"""A camera's wide-angle lens, remembered between solves for the fast path.

When a frame at least :data:`REMEMBER_FROM` degrees wide is solved, the radial
distortion and the field of its final WCS (or the fast path's refit) are kept
with the camera (:mod:`skysolve.engine.solving.fastpath.lens`), under the key
the all-sky camera profiles use (image size, FITS ``INSTRUME``/``TELESCOP``,
EXIF make/model) and in their folder (``SKYSOLVE_ALLSKY_PROFILES``); the
camera's next frame hands them to the fast path, which undistorts its
centroids and tries that field first.  Like the learned hints, a remembered
lens is a hint: off with ``use_hints``, and a wrong one (another lens on the
same body) costs one bounded guess, never the answer, which is verified on
the real pixels as any other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Fields at least this wide (degrees, widest side) are remembered: narrower ones
#: are found by the blind ladder's first guesses, and their scale by the learned hints.
REMEMBER_FROM = 20.0


def _key_and_folder(image: Any) -> tuple[str, Path]:
    from skysolve.engine.allsky.profiles import camera_key, profile_dir

    return camera_key(image.width, image.height, image.header, image.exif), profile_dir()


def recall_lens(image: Any) -> tuple[float, float] | None:
    """The remembered ``(k, fov)`` of the camera that took ``image`` (a loaded image), or None."""
    from skysolve.engine.solving.fastpath.lens import recall

    key, folder = _key_and_folder(image)
    lens = recall(key, folder)
    return None if lens is None else (lens.k, lens.fov)


def remember_lens(image: Any, model: Any) -> str:
    """Keep the radial distortion of ``model`` (a solved WCS model of ``image``)
    with the camera; returns what was kept for the log ("" when nothing)."""
    from skysolve.engine.solving.fastpath.lens import radial_of, remember

    if model is None or not hasattr(model, "pix2world"):
        return ""
    lens = radial_of(model, image.width, image.height)
    if lens is None or lens.fov < REMEMBER_FROM:
        return ""
    key, folder = _key_and_folder(image)
    try:
        remember(key, lens, folder)
    except OSError as exc:
        return f"the camera's lens was not kept: {exc}"
    return f"kept the camera's lens: radial distortion k = {lens.k:+.4f}, field {lens.fov:.2f} deg"
