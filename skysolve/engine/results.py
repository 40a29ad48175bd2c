"""What a solve produces: source lists, calibrations, annotations, results.

Pixel coordinates everywhere in the engine follow astrometry.net and FITS: the
centre of the first pixel of the first stored row is (1, 1); x runs along a row,
y along the stored row order.  For FITS that order is bottom-up as displayed; for
JPEG/PNG/TIFF/... it is top-down, so y grows downwards on screen.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from skysolve.errors import (
    BadInputError,
    ConfigurationError,
    SolveError,
    error_from_dict,
    error_to_dict,
)

if TYPE_CHECKING:
    # Imported where used: astropy costs a quarter of a second of every
    # ``skysolve solve`` process, and a fast-path answer printed without files
    # needs none of it.
    from astropy.io import fits
    from astropy.wcs import WCS

    from skysolve.engine.params import SolveParameters


class CelestialWCS(Protocol):
    """The part of astropy's celestial WCS the calibration and the annotations use.

    :class:`astropy.wcs.WCS` has it, and so has the fast path's numpy
    :class:`~skysolve.engine.solving.fastpath.tansip.TanSip`.
    """

    @property
    def has_celestial(self) -> bool: ...
    @property
    def pixel_n_dim(self) -> int: ...
    @property
    def celestial(self) -> Any: ...
    def all_pix2world(self, *args: Any, **kwargs: Any) -> Any: ...
    def all_world2pix(self, *args: Any, **kwargs: Any) -> Any: ...


class DeferredHeader:
    """A WCS header that is built from a model the first time it is read.

    A solver that knows its WCS as a model (the fast path's TAN-SIP) hands
    this instead of a :class:`~astropy.io.fits.Header`; reading the
    ``wcs_header`` of a :class:`SolveResult` or
    :class:`~skysolve.engine.solving.base.SolverOutcome` builds the header then
    (importing astropy), so a solve nobody asks a header of never imports it.
    """

    def __init__(self, make: Callable[[], fits.Header], *, cards: Any = None) -> None:
        self._make = make
        #: The header's values as a read-only mapping when they are known
        #: without building it (astrometry.net's ``wcs.fits`` read without
        #: astropy), else None.
        self.cards = cards

    def build(self) -> fits.Header:
        return self._make()


class HeaderField:
    """A dataclass field holding a WCS header or a :class:`DeferredHeader`.

    Reading it always gives a header (or None); a deferred one is built once
    and kept.  Assigning takes either.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}_value"

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return None  # the dataclass default
        value = obj.__dict__.get(self._slot)
        if isinstance(value, DeferredHeader):
            value = value.build()
            obj.__dict__[self._slot] = value
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self._slot] = value

    @staticmethod
    def raw(obj: Any, name: str) -> Any:
        """What ``obj.name`` holds, a deferred header left unbuilt (None: nothing)."""
        return obj.__dict__.get(f"_{name}_value")


@dataclass(frozen=True)
class SourceList:
    """Star positions in one image, brightest first when flux is known.

    ``x`` and ``y`` are 1-based FITS pixel coordinates (see module doc).
    ``width``/``height`` are the size of the image the positions belong to.
    """

    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    width: int
    height: int
    background: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.x)
        if len(self.y) != n or len(self.flux) != n:
            raise BadInputError("source list columns have different lengths")
        if self.background is not None and len(self.background) != n:
            raise BadInputError("source list background column has the wrong length")
        if self.width <= 0 or self.height <= 0:
            raise BadInputError("source list image size must be positive")

    def __len__(self) -> int:
        return len(self.x)

    def sorted_by_flux(self) -> SourceList:
        """Brightest first; stable so equal fluxes keep their order."""
        order = np.argsort(-np.asarray(self.flux, dtype=float), kind="stable")
        return self.take(order)

    def take(self, index: np.ndarray | slice) -> SourceList:
        bg = None if self.background is None else np.asarray(self.background)[index]
        return SourceList(
            x=np.asarray(self.x, dtype=float)[index],
            y=np.asarray(self.y, dtype=float)[index],
            flux=np.asarray(self.flux, dtype=float)[index],
            width=self.width,
            height=self.height,
            background=bg,
        )

    def head(self, n: int) -> SourceList:
        return self.take(slice(0, n))


@dataclass(frozen=True)
class Calibration:
    """The calibration exactly as nova's API reports it.

    ``ra``/``dec``: field centre (deg).  ``radius``: half the image diagonal
    (deg).  ``pixscale``: arcsec per pixel, 3600 * sqrt(|det CD|).  ``parity``:
    +1.0 when det(CD) >= 0 in skysolve's pixel convention, else -1.0.
    ``orientation``: the position angle, degrees East of North, of the +y pixel
    axis with the x axis reflected when parity is -1 -- astrometry.net's
    ``wcsinfo`` definition.  For FITS images (+y is up on screen) this is the
    angle of the displayed "up" direction.  For JPEG/PNG/TIFF (+y is down on
    screen) the displayed "up" direction lies at ``orientation + 180``.  nova's
    API reports something else for JPEG/PNG/GIF inputs: see
    :func:`nova_orientation`.
    """

    ra: float
    dec: float
    radius: float
    pixscale: float
    orientation: float
    parity: float
    width_arcsec: float
    height_arcsec: float

    @classmethod
    def from_wcs(cls, wcs: CelestialWCS | WCS, width: int, height: int) -> Calibration:
        """Compute the nova fields from a celestial WCS and the image size.

        The CD matrix used is the WCS's local linear approximation at the image
        centre (SIP included), expressed in the tangent plane there.  For a TAN
        solution whose reference pixel is the centre this is exactly the CD
        matrix nova and ``wcsinfo`` use; for others it keeps orientation and
        scale from depending on where the solver happened to put CRPIX.
        """
        cx, cy = (width + 1) / 2.0, (height + 1) / 2.0
        cd = local_cd_matrix(wcs, cx, cy)
        det = float(np.linalg.det(cd))
        parity = 1.0 if det >= 0 else -1.0
        pixscale = 3600.0 * math.sqrt(abs(det))
        t = parity * cd[0, 0] + cd[1, 1]
        a = parity * cd[1, 0] - cd[0, 1]
        orientation = -math.degrees(math.atan2(a, t))
        ra, dec = wcs.all_pix2world([[cx, cy]], 1)[0]
        radius = pixscale * math.hypot(width, height) / 2.0 / 3600.0
        return cls(
            ra=float(ra) % 360.0,
            dec=float(dec),
            radius=radius,
            pixscale=pixscale,
            orientation=orientation,
            parity=parity,
            width_arcsec=width * pixscale,
            height_arcsec=height * pixscale,
        )

    @property
    def width_deg(self) -> float:
        return self.width_arcsec / 3600.0

    @property
    def height_deg(self) -> float:
        return self.height_arcsec / 3600.0

    def to_nova(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in CALIBRATION_FIELDS}


#: nova's calibration fields, in its order (the API's /calibration keys).
CALIBRATION_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Calibration))

#: Input formats whose orientation nova reports mirrored (its ``is_jpeglike``).
NOVA_JPEGLIKE_FORMATS = frozenset({"jpeg", "png", "gif"})


def nova_orientation(orientation: float, image_format: str | None) -> float:
    """The ``orientation`` nova's API reports for a solve of an ``image_format`` input.

    nova (``net/models.py``, ``Calibration.get_orientation``) reports the
    ``wcsinfo`` angle ``t`` for FITS, TIFF and star lists, and ``(180 - t) mod
    360`` for JPEG, PNG and GIF inputs.  That is ``t`` mirrored about the
    East-West line, not turned by 180 degrees: it is *not* the position angle
    of the displayed picture's "up" direction, which is ``t + 180`` for those
    formats (the two agree only when ``t`` is 0 or 180).  Clients compare the
    numbers they get with nova's, so the API reports this one.

    Parameters
    ----------
    orientation : float
        The ``wcsinfo`` angle (:attr:`Calibration.orientation`), degrees.
    image_format : str or None
        :attr:`SolveResult.image_format`; None for star lists.

    Returns
    -------
    float
        Degrees; in [0, 360) for JPEG/PNG/GIF, else ``orientation`` unchanged.
    """
    if image_format in NOVA_JPEGLIKE_FORMATS:
        return (180.0 - orientation) % 360.0
    return orientation


@dataclass(frozen=True)
class Annotation:
    """One object drawn on the image, as nova's ``/annotations`` lists it."""

    type: str  # "ngc", "ic", "messier", "bright", "hd", "constellation", ...
    names: list[str]
    pixelx: float
    pixely: float
    radius: float  # pixels, 0.0 for stars
    vmag: float | None = None

    def to_nova(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "names": list(self.names),
            "pixelx": self.pixelx,
            "pixely": self.pixely,
            "radius": self.radius,
        }
        if self.vmag is not None:
            out["vmag"] = self.vmag
        return out

    @classmethod
    def from_nova(cls, data: Mapping[str, Any]) -> Annotation:
        """The inverse of :meth:`to_nova`."""
        vmag = data.get("vmag")
        return cls(
            type=str(data["type"]),
            names=[str(n) for n in data["names"]],
            pixelx=float(data["pixelx"]),
            pixely=float(data["pixely"]),
            radius=float(data["radius"]),
            vmag=None if vmag is None else float(vmag),
        )


@dataclass
class SolveResult:
    """Everything one solve produced, solved or not.

    An unsolved result carries the reason in ``failure`` (a :class:`SolveError`
    such as ``NoMatchError``); it still has the source list, log and any
    pictures made before the solver gave up.
    """

    solved: bool
    image_width: int
    image_height: int
    calibration: Calibration | None = None
    #: The WCS header (built on first read when the solver gave a DeferredHeader).
    wcs_header: fits.Header | None = HeaderField()
    solver: str | None = None  # "astrometry.net" or "pattern-hash"
    index: str | None = None  # index file (or database) that matched
    hints: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    objects_in_field: list[str] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    log: str = ""
    command: list[str] = field(default_factory=list)
    failure: SolveError | None = None
    n_sources: int = 0
    peak_memory_mb: float | None = None
    #: What the input was, as :attr:`LoadedImage.format` names it; None for star lists.
    image_format: str | None = None
    #: How good the answer is (:mod:`skysolve.engine.fitting.quality`): matched
    #: stars, residuals, SIP order, uncertainties, limiting magnitude, zero
    #: point, star shapes.  None when unsolved or nothing could be measured.
    quality: dict[str, Any] | None = None

    @property
    def wcs(self) -> WCS | None:
        if self.wcs_header is None:
            return None
        return wcs_from_header(self.wcs_header, self.image_width, self.image_height)

    def to_json(self) -> dict[str, Any]:
        """The ``skysolve solve --json`` object (also stored by the web layer)."""
        return {
            "solved": self.solved,
            "calibration": None if self.calibration is None else self.calibration.to_nova(),
            "solver": self.solver,
            "index": self.index,
            "hints": self.hints,
            "files": {k: str(v) for k, v in sorted(self.files.items())},
            "objects_in_field": list(self.objects_in_field),
            "annotations": [a.to_nova() for a in self.annotations],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "image_width": self.image_width,
            "image_height": self.image_height,
            "n_sources": self.n_sources,
            "command": list(self.command),
            "peak_memory_mb": self.peak_memory_mb,
            "image_format": self.image_format,
            "quality": self.quality,
            "error": None if self.failure is None else error_to_dict(self.failure),
        }

    @classmethod
    def from_json(
        cls,
        data: Mapping[str, Any],
        *,
        files: Mapping[str, Path],
        log: str = "",
        wcs_header: fits.Header | None = None,
        sender: str = "the solver",
    ) -> SolveResult:
        """The inverse of :meth:`to_json`, for a result that travelled.

        Every transport (a Celery task's reply, an ssh solve host's answer)
        rebuilds its result here; ``files`` are where the transport put the
        result files on this host.  Raises :class:`ConfigurationError` for a
        malformed result (a sender speaking another version).
        """
        try:
            calibration = data.get("calibration")
            error = data.get("error")
            return cls(
                solved=bool(data["solved"]),
                image_width=int(data["image_width"]),
                image_height=int(data["image_height"]),
                calibration=None if not calibration else Calibration(**calibration),
                wcs_header=wcs_header,
                solver=data.get("solver"),
                index=data.get("index"),
                hints=dict(data.get("hints") or {}),
                files=dict(files),
                objects_in_field=[str(n) for n in data.get("objects_in_field") or []],
                annotations=[Annotation.from_nova(a) for a in data.get("annotations") or []],
                timings={str(k): float(v) for k, v in (data.get("timings") or {}).items()},
                log=log,
                command=[str(c) for c in data.get("command") or []],
                failure=None if not error else error_from_dict(error, sender=sender),
                n_sources=int(data.get("n_sources") or 0),
                peak_memory_mb=data.get("peak_memory_mb"),
                image_format=data.get("image_format"),
                quality=dict(data["quality"]) if data.get("quality") else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigurationError(f"{sender}'s result is malformed: {exc!r}") from None


class SolveFunction(Protocol):
    """The signature of a solve: the pipeline's, a remote transport's, or a test fake.

    Implementations: :func:`skysolve.engine.pipeline.solve`,
    :func:`skysolve.remote.ssh.solve`, the Celery dispatcher's; the queue and
    the ssh solve server take any of them.  Extra keyword arguments (the
    pipeline's ``config``) are the implementation's own.  ``verified``, when
    given, is called with the verified answer (calibration, WCS, objects)
    before the pictures and other files are made; a solver that cannot
    answer early (the ssh transport) ignores it and answers once.
    """

    def __call__(
        self,
        source: Path | SourceList,
        params: SolveParameters,
        out_dir: Path,
        *,
        cancel: threading.Event | None = None,
        progress: Callable[[str, str], None] | None = None,
        verified: Callable[[SolveResult], None] | None = None,
    ) -> SolveResult: ...


def local_cd_matrix(
    wcs: CelestialWCS | WCS, x: float, y: float, *, step: float = 0.5
) -> np.ndarray:
    """The CD matrix (deg/pixel) of ``wcs`` linearised at 1-based pixel (x, y).

    Columns are d/dx and d/dy; rows are the tangent-plane coordinates at the
    point: xi (towards increasing RA, East) and eta (North), as in FITS.
    """
    pts = np.array([[x, y], [x + step, y], [x - step, y], [x, y + step], [x, y - step]])
    world = np.radians(wcs.all_pix2world(pts, 1))
    ra0, dec0 = world[0]
    ra, dec = world[1:, 0], world[1:, 1]
    # Gnomonic projection about (ra0, dec0).
    cosc = np.sin(dec0) * np.sin(dec) + np.cos(dec0) * np.cos(dec) * np.cos(ra - ra0)
    xi = np.cos(dec) * np.sin(ra - ra0) / cosc
    eta = (np.cos(dec0) * np.sin(dec) - np.sin(dec0) * np.cos(dec) * np.cos(ra - ra0)) / cosc
    xi, eta = np.degrees(xi), np.degrees(eta)
    return np.array(
        [
            [(xi[0] - xi[1]) / (2 * step), (xi[2] - xi[3]) / (2 * step)],
            [(eta[0] - eta[1]) / (2 * step), (eta[2] - eta[3]) / (2 * step)],
        ]
    )


def wcs_from_header(header: fits.Header, width: int, height: int) -> WCS:
    """A celestial WCS from a solver's header (which has NAXIS = 0)."""
    from astropy.wcs import WCS

    h = header.copy()
    h["NAXIS"] = 2
    h["NAXIS1"] = int(width)
    h["NAXIS2"] = int(height)
    return WCS(h, relax=True)
