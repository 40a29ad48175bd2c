"""Forms of the web site; they turn what people type into nova-style options.

The upload form produces the same option mapping as the API's request-json,
so the submissions service validates both the same way.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms

from skysolve.community.edits import ImageEdit
from skysolve.community.models import Album
from skysolve.front.astro import parse_dec, parse_ra
from skysolve.submissions.models import (
    LICENCE_COMMERCIAL_CHOICES,
    LICENCE_MODIFICATIONS_CHOICES,
    VISIBILITY_CHOICES,
)

#: Scale presets: (lower, upper) field width in degrees.
SCALE_PRESETS: dict[str, tuple[float, float] | None] = {
    "unknown": None,
    "wide": (10.0, 180.0),
    "lens": (1.0, 10.0),
    "telescope": (0.01, 1.0),
    "custom": None,
}

SCALE_PRESET_CHOICES = [
    ("unknown", "don't know (blind solve)"),
    ("wide", "wide field (>10°)"),
    ("lens", "camera lens (1° to 10°)"),
    ("telescope", "telescope (<1°)"),
    ("custom", "custom (below)"),
]

SCALE_UNIT_CHOICES = [
    ("degwidth", "degrees (image width)"),
    ("arcminwidth", "arcminutes (image width)"),
    ("arcsecperpix", "arcseconds per pixel"),
    ("focalmm", "focal length, 35 mm equivalent (mm)"),
]

PARITY_CHOICES = [("2", "try both"), ("0", "positive"), ("1", "negative (flipped)")]


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that accepts several files (one submission each)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"multiple": True}))
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> Any:
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data]
        return [single(data, initial)] if data else []


class UploadForm(forms.Form):
    images = MultipleFileField(required=False, label="Image files")
    url = forms.URLField(
        required=False, max_length=2000, label="or an image URL", assume_scheme="https"
    )

    scale_preset = forms.ChoiceField(choices=SCALE_PRESET_CHOICES, initial="unknown")
    scale_units = forms.ChoiceField(choices=SCALE_UNIT_CHOICES, initial="degwidth")
    scale_type = forms.ChoiceField(
        choices=[("ul", "lower and upper bound"), ("ev", "estimate ± error")], initial="ul"
    )
    scale_lower = forms.FloatField(required=False, min_value=0)
    scale_upper = forms.FloatField(required=False, min_value=0)
    scale_est = forms.FloatField(required=False, min_value=0)
    scale_err = forms.FloatField(required=False, min_value=0, max_value=100, label="error (%)")

    center_ra = forms.CharField(required=False, max_length=40, label="RA")
    center_dec = forms.CharField(required=False, max_length=40, label="Dec")
    radius = forms.FloatField(required=False, min_value=0, max_value=180, label="radius (°)")

    parity = forms.ChoiceField(choices=PARITY_CHOICES, initial="2")
    downsample_factor = forms.FloatField(required=False, min_value=1, max_value=64)
    tweak_order = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=9,
        label="tweak (SIP) order (empty: automatic)",
        # The page shows its own short label: the box itself says what empty means.
        widget=forms.NumberInput(attrs={"placeholder": "auto"}),
    )
    positional_error = forms.FloatField(required=False, min_value=0.01, max_value=100)
    crpix_center = forms.BooleanField(required=False, label="WCS reference point at the centre")
    invert = forms.BooleanField(required=False, label="invert the image (dark stars)")
    use_sextractor = forms.BooleanField(required=False, label="use SourceExtractor")

    allow_commercial_use = forms.ChoiceField(choices=LICENCE_COMMERCIAL_CHOICES, initial="d")
    allow_modifications = forms.ChoiceField(choices=LICENCE_MODIFICATIONS_CHOICES, initial="d")
    publicly_visible = forms.ChoiceField(choices=VISIBILITY_CHOICES, initial="y")
    album = forms.CharField(
        required=False,
        max_length=200,
        label="album (title)",
        widget=forms.TextInput(attrs={"list": "albums"}),
    )

    def __init__(self, *args: Any, max_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_bytes = max_bytes

    def clean_center_ra(self) -> float | None:
        text = self.cleaned_data.get("center_ra") or ""
        if not text.strip():
            return None
        try:
            return parse_ra(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_center_dec(self) -> float | None:
        text = self.cleaned_data.get("center_dec") or ""
        if not text.strip():
            return None
        try:
            return parse_dec(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_images(self) -> list[Any]:
        files: list[Any] = self.cleaned_data.get("images") or []
        for f in files:
            if f.size == 0:
                raise forms.ValidationError(f"{f.name} is empty")
            if f.size > self.max_bytes:
                raise forms.ValidationError(
                    f"{f.name} is larger than {self.max_bytes // (1024 * 1024)} MB"
                )
        return files

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("images") and not data.get("url") and not self.errors:
            raise forms.ValidationError("Choose at least one image file or give a URL.")
        if data.get("images") and data.get("url"):
            raise forms.ValidationError("Give files or a URL, not both.")
        position = [data.get("center_ra"), data.get("center_dec")]
        wrong = "center_ra" in self.errors or "center_dec" in self.errors
        if (position[0] is None) != (position[1] is None) and not wrong:
            raise forms.ValidationError("Give both RA and Dec for a position hint, or neither.")
        return data

    def options(self) -> dict[str, Any]:
        """The cleaned form as nova request-json options (unset ones left out)."""
        data = self.cleaned_data
        out: dict[str, Any] = {
            "parity": int(data["parity"]),
            "tweak_order": data["tweak_order"],
            "crpix_center": data["crpix_center"],
            "invert": data["invert"],
            "use_sextractor": data["use_sextractor"],
            "allow_commercial_use": data["allow_commercial_use"],
            "allow_modifications": data["allow_modifications"],
            "publicly_visible": data["publicly_visible"],
        }
        preset = data["scale_preset"]
        bounds = SCALE_PRESETS.get(preset)
        if bounds is not None:
            out.update(scale_units="degwidth", scale_type="ul")
            out.update(scale_lower=bounds[0], scale_upper=bounds[1])
        elif preset == "custom":
            out.update(scale_units=data["scale_units"], scale_type=data["scale_type"])
            names = ("scale_est", "scale_err") if data["scale_type"] == "ev" else ()
            names = names or ("scale_lower", "scale_upper")
            for name in names:
                if data.get(name) is not None:
                    out[name] = data[name]
        for name in ("center_ra", "center_dec", "radius", "downsample_factor", "positional_error"):
            # 0 is a real RA/Dec: test for None, never for truth.
            if data.get(name) is not None:
                out[name] = data[name]
        if data.get("album"):
            out["album"] = data["album"].strip()
        return out


class ImageEditForm(forms.Form):
    """What the owner changes about an image after upload."""

    description = forms.CharField(required=False, max_length=4000, widget=forms.Textarea)
    publicly_visible = forms.ChoiceField(choices=VISIBILITY_CHOICES, label="visibility")
    allow_commercial_use = forms.ChoiceField(
        choices=LICENCE_COMMERCIAL_CHOICES, label="commercial use"
    )
    allow_modifications = forms.ChoiceField(
        choices=LICENCE_MODIFICATIONS_CHOICES, label="modifications"
    )
    albums = forms.ModelMultipleChoiceField(
        queryset=Album.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args: Any, albums: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["albums"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        field.queryset = albums

    def edit(self) -> ImageEdit:
        data = self.cleaned_data
        return ImageEdit(
            description=data.get("description") or "",
            publicly_visible=data["publicly_visible"],
            allow_commercial_use=data["allow_commercial_use"],
            allow_modifications=data["allow_modifications"],
            album_ids=[album.id for album in data.get("albums") or []],
        )


class AlbumForm(forms.Form):
    title = forms.CharField(max_length=200)
    description = forms.CharField(required=False, max_length=4000, widget=forms.Textarea)
    publicly_visible = forms.ChoiceField(
        choices=VISIBILITY_CHOICES, initial="y", label="visibility"
    )


#: The service's messages name nova's option names; the form's people know them
#: by the labels they see.
FIELD_WORDS = {
    "scale_lower": "the lower scale",
    "scale_upper": "the upper scale",
    "scale_est": "the scale estimate",
    "scale_err": "the scale error",
    "scale_units": "the scale units",
    "center_ra": "RA",
    "center_dec": "Dec",
    "radius": "the radius",
    "downsample_factor": "downsample",
    "tweak_order": "the tweak (SIP) order",
    "positional_error": "the positional error",
    "publicly_visible": "visibility",
    "allow_commercial_use": "commercial use",
    "allow_modifications": "modifications",
}
_FIELD_NAME = re.compile(r"\b(" + "|".join(FIELD_WORDS) + r")\b")


def readable_error(message: str) -> str:
    """``message`` with the option names replaced by the words the form shows.

    >>> readable_error("scale_lower is larger than scale_upper")
    'The lower scale is larger than the upper scale'
    """
    text = _FIELD_NAME.sub(lambda m: FIELD_WORDS[m.group(1)], message)
    return text[:1].upper() + text[1:]
