"""Solve parameters: every option nova's API accepts, validated once.

The API layer, the command line and the queue all build a
:class:`SolveParameters` from their own input and hand it to the pipeline; no
other module parses user-supplied options.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from skysolve.errors import InvalidParameterError

ScaleUnits = Literal["degwidth", "arcminwidth", "arcsecperpix", "focalmm"]
ScaleType = Literal["ul", "ev"]
Extractor = Literal["sep", "image2xy", "sextractor"]

SCALE_UNITS: tuple[str, ...] = ("degwidth", "arcminwidth", "arcsecperpix", "focalmm")
EXTRACTORS: tuple[str, ...] = ("sep", "image2xy", "sextractor")

#: Width of the 35 mm film frame used by astrometry.net's ``focalmm`` unit.
FILM_WIDTH_MM = 36.0

#: Default relative error, in percent, of a ``scale_est`` given without ``scale_err``.
DEFAULT_SCALE_ERR_PERCENT = 20.0

#: Hard upper bound on a solve's wall-clock limit, seconds.
MAX_TIMEOUT = 24 * 3600.0

#: Parameters that only the service sets, never a request: a client's are dropped.
NOT_FROM_REQUESTS: tuple[str, ...] = ("learned_hints", "file_hints", "pictures")


def focal_mm_to_degwidth(focal_mm: float) -> float:
    """Field width in degrees of a 35 mm frame behind a lens of ``focal_mm``."""
    return math.degrees(2.0 * math.atan(FILM_WIDTH_MM / (2.0 * focal_mm)))


@dataclass(frozen=True)
class Hints:
    """Position and scale hints read from an image's metadata.

    ``center_ra``/``center_dec``/``radius`` are degrees, ``scale_lower`` and
    ``scale_upper`` arcsec per pixel; None means "no hint".  ``sources`` says,
    in words, where each hint came from (``"FITS WCS"``, ``"RA/DEC keywords"``,
    ``"OBJCTRA/OBJCTDEC"``, ``"FOCALLEN and XPIXSZ"``,
    ``"EXIF FocalLengthIn35mmFilm"``, ...); ``position_source`` and
    ``scale_source`` say which one gave the position and which the scale.
    """

    center_ra: float | None = None
    center_dec: float | None = None
    radius: float | None = None
    scale_lower: float | None = None
    scale_upper: float | None = None
    sources: tuple[str, ...] = ()
    position_source: str | None = None
    scale_source: str | None = None

    @property
    def empty(self) -> bool:
        return self.center_ra is None and self.scale_lower is None and self.scale_upper is None

    @property
    def has_position(self) -> bool:
        return self.center_ra is not None and self.center_dec is not None

    @property
    def has_scale(self) -> bool:
        return self.scale_lower is not None and self.scale_upper is not None

    def to_dict(self) -> dict[str, Any]:
        """The hints as plain JSON-ready values."""
        return {
            "center_ra": self.center_ra,
            "center_dec": self.center_dec,
            "radius": self.radius,
            "scale_lower": self.scale_lower,
            "scale_upper": self.scale_upper,
            "sources": list(self.sources),
            "position_source": self.position_source,
            "scale_source": self.scale_source,
        }


@dataclass(frozen=True)
class LearnedHint:
    """What an earlier solve found, to try first on an image of the same size.

    ``source`` says which solve it was (``"earlier solve of job 12"``); the
    scale is in arcsec per pixel, the position and radius in degrees (no
    position: scale only).  The pipeline uses the first hint whose size is the
    image's, and only what the user and the file left open.
    """

    source: str
    image_width: int
    image_height: int
    scale_lower: float
    scale_upper: float
    center_ra: float | None = None
    center_dec: float | None = None
    radius: float | None = None

    def __post_init__(self) -> None:
        if not (0 < self.scale_lower <= self.scale_upper and math.isfinite(self.scale_upper)):
            raise InvalidParameterError("a learned hint needs 0 < scale_lower <= scale_upper")
        if self.image_width <= 0 or self.image_height <= 0:
            raise InvalidParameterError("a learned hint needs the image size")
        if (self.center_ra is None) != (self.center_dec is None):
            raise InvalidParameterError("a learned hint's center_ra and center_dec go together")
        if self.center_dec is not None and not (-90 <= self.center_dec <= 90):
            raise InvalidParameterError("a learned hint's center_dec must be in [-90, 90]")
        if self.radius is not None and not (0 < self.radius <= 180):
            raise InvalidParameterError("a learned hint's radius must be in (0, 180]")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> LearnedHint:
        """Read one back from :func:`dataclasses.asdict` (the wire to other workers)."""
        try:
            position = values.get("center_ra") is not None
            return cls(
                source=str(values["source"]),
                image_width=int(values["image_width"]),
                image_height=int(values["image_height"]),
                scale_lower=float(values["scale_lower"]),
                scale_upper=float(values["scale_upper"]),
                center_ra=float(values["center_ra"]) % 360.0 if position else None,
                center_dec=float(values["center_dec"]) if position else None,
                radius=None if values.get("radius") is None else float(values["radius"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidParameterError(f"learned_hints: malformed hint ({exc})") from None


@dataclass(frozen=True)
class SolveParameters:
    """What the user asked for; ``None`` means "not given" (0 is a real value).

    Field names and meanings follow nova's API (see NOVA_API.md).  ``timeout`` is
    the wall-clock limit of the whole solve in seconds.  ``use_hints`` lets the
    pipeline read RA/Dec and scale from FITS headers and EXIF when the user gave
    none.  ``extractor`` picks the source extractor; nova's ``use_sextractor``
    flag selects SourceExtractor whatever ``extractor`` says.
    ``learned_hints`` are what earlier solves of the same user found (set by
    the queue, never by the request): tried first, like the file's hints, when
    ``use_hints`` is on and the user gave no scale and no position.
    ``file_hints`` are the hints of an image's metadata
    (:func:`skysolve.engine.inputs.hints.hints_from_image`) sent beside the image's
    source list when the image itself does not travel to the solver (set by
    the sender, never by the request): the pipeline uses them as it would the
    file's own, with the blind retry behind them.
    ``pictures`` off: the solver draws no pictures, because the sender draws
    them on the image it kept (set by the sender, never by the request).
    """

    scale_units: ScaleUnits = "degwidth"
    scale_type: ScaleType = "ul"
    scale_lower: float | None = None
    scale_upper: float | None = None
    scale_est: float | None = None
    scale_err: float | None = None
    center_ra: float | None = None
    center_dec: float | None = None
    radius: float | None = None
    parity: int = 2
    tweak_order: int | None = None
    crpix_center: bool = False
    positional_error: float = 1.0
    downsample_factor: float | None = None
    invert: bool = False
    use_sextractor: bool = False
    image_width: int | None = None
    image_height: int | None = None
    timeout: float = 300.0
    use_hints: bool = True
    extractor: Extractor = "sep"
    max_sources: int = 1000
    learned_hints: tuple[LearnedHint, ...] = ()
    file_hints: Hints | None = None
    pictures: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self._validate()

    # -- construction -------------------------------------------------------

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SolveParameters:
        """Build parameters from nova-style request values (JSON or form).

        Unknown keys are ignored (clients send licence, visibility, session...).
        Values arrive as JSON numbers, numeric strings or booleans in any of the
        spellings real clients use; anything else raises
        :class:`~skysolve.errors.InvalidParameterError` naming the field.
        """
        kwargs: dict[str, Any] = {}
        learned = values.get("learned_hints")
        if learned:
            if not isinstance(learned, list | tuple):
                raise InvalidParameterError("learned_hints must be a list")
            kwargs["learned_hints"] = tuple(LearnedHint.from_mapping(h) for h in learned)
        from_file = values.get("file_hints")
        if from_file:
            kwargs["file_hints"] = _file_hints(from_file)
        if values.get("pictures") is False:
            kwargs["pictures"] = False
        for f in dataclasses.fields(cls):
            if f.name in ("extra", *NOT_FROM_REQUESTS) or f.name not in values:
                continue
            raw = values[f.name]
            if raw is None or (isinstance(raw, str) and raw.strip() == ""):
                continue
            kwargs[f.name] = _coerce(f.name, raw)
        return cls(**kwargs)

    def replace(self, **changes: Any) -> SolveParameters:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The parameters as plain JSON-ready values (``extra`` left out, and
        ``learned_hints``, ``file_hints`` and ``pictures`` when they are the
        defaults: a request's stored parameters stay as they were)."""
        out = dataclasses.asdict(self)
        out.pop("extra", None)
        if self.file_hints is None:
            out.pop("file_hints", None)
        else:
            out["file_hints"]["sources"] = list(self.file_hints.sources)
        if self.pictures:
            out.pop("pictures", None)
        if self.learned_hints:
            out["learned_hints"] = [dataclasses.asdict(h) for h in self.learned_hints]
        else:
            out.pop("learned_hints", None)
        return out

    # -- derived values -----------------------------------------------------

    @property
    def has_scale(self) -> bool:
        if self.scale_type == "ev":
            return self.scale_est is not None
        return self.scale_lower is not None or self.scale_upper is not None

    @property
    def has_position(self) -> bool:
        return self.center_ra is not None and self.center_dec is not None

    @property
    def effective_extractor(self) -> Extractor:
        return "sextractor" if self.use_sextractor else self.extractor

    def scale_bounds_arcsec_per_pixel(self, image_width: float) -> tuple[float, float] | None:
        """Lower and upper pixel scale in arcsec/pixel, or None when not given.

        Width-based units refer to the image width, as in astrometry.net.  A
        missing bound of a ``ul`` pair is left open (0 or infinity).
        """
        if not self.has_scale:
            return None
        if image_width <= 0:
            raise InvalidParameterError("image width must be positive to convert the scale")
        if self.scale_type == "ev":
            assert self.scale_est is not None
            err = DEFAULT_SCALE_ERR_PERCENT if self.scale_err is None else self.scale_err
            lo_v = self.scale_est * max(0.0, 1.0 - err / 100.0)
            hi_v = self.scale_est * (1.0 + err / 100.0)
        else:
            lo_v = self.scale_lower if self.scale_lower is not None else 0.0
            hi_v = self.scale_upper if self.scale_upper is not None else math.inf
        lo = _to_arcsec_per_pixel(lo_v, self.scale_units, image_width)
        hi = _to_arcsec_per_pixel(hi_v, self.scale_units, image_width)
        # focalmm runs the other way: a longer lens gives a finer scale.
        return (min(lo, hi), max(lo, hi))

    # -- validation ---------------------------------------------------------

    def _validate(self) -> None:
        if self.scale_units not in SCALE_UNITS:
            raise InvalidParameterError(
                f"scale_units must be one of {', '.join(SCALE_UNITS)}, not {self.scale_units!r}"
            )
        if self.scale_type not in ("ul", "ev"):
            raise InvalidParameterError(f"scale_type must be 'ul' or 'ev', not {self.scale_type!r}")
        for name in ("scale_lower", "scale_upper", "scale_est"):
            v = getattr(self, name)
            if v is not None and not (v > 0 and math.isfinite(v)):
                raise InvalidParameterError(f"{name} must be a positive finite number, not {v!r}")
        if self.scale_err is not None and not (0 <= self.scale_err < 100):
            raise InvalidParameterError("scale_err is a percentage between 0 and 100")
        if (
            self.scale_lower is not None
            and self.scale_upper is not None
            and self.scale_lower > self.scale_upper
        ):
            raise InvalidParameterError("scale_lower is larger than scale_upper")
        if self.center_ra is not None and not (0 <= self.center_ra < 360 or self.center_ra == 360):
            raise InvalidParameterError(
                f"center_ra must be in [0, 360] degrees, not {self.center_ra!r}"
            )
        if self.center_dec is not None and not (-90 <= self.center_dec <= 90):
            raise InvalidParameterError(
                f"center_dec must be in [-90, 90] degrees, not {self.center_dec!r}"
            )
        if (self.center_ra is None) != (self.center_dec is None):
            raise InvalidParameterError("center_ra and center_dec must be given together")
        if self.radius is not None and not (0 < self.radius <= 180):
            raise InvalidParameterError(f"radius must be in (0, 180] degrees, not {self.radius!r}")
        if self.parity not in (0, 1, 2):
            raise InvalidParameterError(f"parity must be 0, 1 or 2, not {self.parity!r}")
        if self.tweak_order is not None and not (0 <= self.tweak_order <= 9):
            raise InvalidParameterError(
                f"tweak_order must be between 0 and 9, not {self.tweak_order!r}"
            )
        if not (0 < self.positional_error <= 100 and math.isfinite(self.positional_error)):
            raise InvalidParameterError("positional_error must be in (0, 100] pixels")
        if self.downsample_factor is not None and not (1 <= self.downsample_factor <= 64):
            raise InvalidParameterError("downsample_factor must be between 1 and 64")
        for name in ("image_width", "image_height"):
            v = getattr(self, name)
            if v is not None and not (0 < v <= 1_000_000):
                raise InvalidParameterError(f"{name} must be between 1 and 1000000 pixels")
        if not (0 < self.timeout <= MAX_TIMEOUT):
            raise InvalidParameterError(f"timeout must be in (0, {MAX_TIMEOUT:g}] seconds")
        if self.extractor not in EXTRACTORS:
            raise InvalidParameterError(f"extractor must be one of {', '.join(EXTRACTORS)}")
        if not (10 <= self.max_sources <= 100_000):
            raise InvalidParameterError("max_sources must be between 10 and 100000")


def _to_arcsec_per_pixel(value: float, units: str, image_width: float) -> float:
    if units == "arcsecperpix":
        return value
    if units == "degwidth":
        return value * 3600.0 / image_width
    if units == "arcminwidth":
        return value * 60.0 / image_width
    # focalmm
    if value == 0:
        return math.inf
    if math.isinf(value):
        return 0.0
    return focal_mm_to_degwidth(value) * 3600.0 / image_width


_BOOL_FIELDS = {"crpix_center", "invert", "use_sextractor", "use_hints"}
_INT_FIELDS = {"parity", "tweak_order", "image_width", "image_height", "max_sources"}
_STR_FIELDS = {"scale_units", "scale_type", "extractor"}
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


def _coerce(name: str, raw: Any) -> Any:
    if name in _BOOL_FIELDS:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int | float) and raw in (0, 1):
            return bool(raw)
        if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise InvalidParameterError(f"{name} must be a boolean, not {raw!r}")
    if name in _STR_FIELDS:
        if not isinstance(raw, str):
            raise InvalidParameterError(f"{name} must be a string, not {raw!r}")
        return raw.strip().lower()
    number = _number(name, raw)
    if name in _INT_FIELDS:
        if number != int(number):
            raise InvalidParameterError(f"{name} must be a whole number, not {raw!r}")
        return int(number)
    return number


def _number(name: str, raw: Any) -> float:
    if isinstance(raw, bool):
        raise InvalidParameterError(f"{name} must be a number, not {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise InvalidParameterError(f"{name} must be a number, not {raw!r}") from None
    if not math.isfinite(value):
        raise InvalidParameterError(f"{name} must be a finite number, not {raw!r}")
    return value


def _file_hints(values: Any) -> Hints:
    """Read ``file_hints`` back from :meth:`SolveParameters.to_dict`."""
    if not isinstance(values, Mapping):
        raise InvalidParameterError("file_hints must be an object")
    numbers: dict[str, float | None] = {}
    for name in ("center_ra", "center_dec", "radius", "scale_lower", "scale_upper"):
        raw = values.get(name)
        try:
            numbers[name] = None if raw is None else float(raw)
        except (TypeError, ValueError):
            raise InvalidParameterError(f"file_hints: {name} must be a number") from None
        if numbers[name] is not None and not math.isfinite(numbers[name] or 0.0):
            raise InvalidParameterError(f"file_hints: {name} must be finite")
    dec = numbers["center_dec"]
    if dec is not None and not -90 <= dec <= 90:
        raise InvalidParameterError("file_hints: center_dec must be in [-90, 90]")
    sources = values.get("sources") or ()
    if not isinstance(sources, list | tuple):
        raise InvalidParameterError("file_hints: sources must be a list")
    position_source, scale_source = values.get("position_source"), values.get("scale_source")
    return Hints(
        center_ra=numbers["center_ra"],
        center_dec=dec,
        radius=numbers["radius"],
        scale_lower=numbers["scale_lower"],
        scale_upper=numbers["scale_upper"],
        sources=tuple(str(s) for s in sources),
        position_source=None if position_source is None else str(position_source),
        scale_source=None if scale_source is None else str(scale_source),
    )
