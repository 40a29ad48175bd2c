"""The whole solve, on synthetic fields with a known truth and on real images."""

import math
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from skysolve.engine.fitting.quality import read_residuals
from skysolve.engine.params import LearnedHint, SolveParameters
from skysolve.engine.pipeline import EngineConfig, reproduce_command, solve
from skysolve.engine.results import SolveResult, SourceList, nova_orientation
from skysolve.errors import BadInputError, NoMatchError, NoStarsError, SolveCancelledError
from testfields.synthetic import FieldSpec, make_field, write_fits, write_png, write_xyls
from tests.gates import needs_binary

pytestmark = needs_binary("astrometry-engine")

NOISY = dict(fwhm=2.5, noise=8.0, sky=500.0, gradient=0.2, missing_fraction=0.1, hot_pixels=10)
FAST = EngineConfig(make_pictures=False)

# Reference solutions of ../shared/images (README there); orientation is at the
# image centre (wcsinfo's orientation_center of the reference WCS), see Calibration.
REFERENCE = {
    "apod2.jpg": (84.57723, -2.75567, 20.272, 90.2),
    "apod3.jpg": (130.27395, -43.87432, 38.023, 89.57),
    "apod4.jpg": (187.18503, 56.71337, 169.70, 58.46),
}


def separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    a1, d1, a2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    c = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(a1 - a2)
    return math.degrees(math.acos(min(1.0, max(-1.0, c))))


def angle_diff(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def assert_matches_truth(result: SolveResult, truth: dict, *, pixels: float = 3.0) -> None:
    assert result.solved, result.failure
    cal = result.calibration
    assert cal is not None
    sep = separation_deg(cal.ra, cal.dec, truth["ra"], truth["dec"]) * 3600
    assert sep < pixels * truth["pixscale"], f"centre off by {sep / truth['pixscale']:.1f} px"
    assert cal.pixscale == pytest.approx(truth["pixscale"], rel=0.01)
    assert cal.parity == truth["parity"]
    assert angle_diff(cal.orientation, truth["orientation"]) < 0.5


@pytest.mark.parametrize(
    ("width_deg", "rotation", "parity", "ra", "dec"),
    [
        (1.0, 15.0, 1, 83.0, -5.0),
        (2.5, 200.0, -1, 300.0, 40.0),
        (6.0, 95.0, 1, 10.0, -70.0),
        (15.0, 300.0, -1, 150.0, 20.0),
        (40.0, 45.0, 1, 250.0, -30.0),
    ],
)
def test_it_solves_synthetic_images_blind(
    tmp_path: Path, width_deg: float, rotation: float, parity: int, ra: float, dec: float
) -> None:
    spec = FieldSpec(
        ra=ra,
        dec=dec,
        pixscale=width_deg * 3600 / 800,
        width=800,
        height=600,
        rotation=rotation,
        parity=parity,
        seed=7,
        spurious=40,
        **NOISY,  # type: ignore[arg-type]
    )
    f = make_field(spec)
    path = write_fits(f, tmp_path / "field.fits")
    result = solve(path, SolveParameters(timeout=120), tmp_path / "out", config=FAST)
    assert_matches_truth(result, f.truth.to_nova())
    assert result.solver == "astrometry.net" and result.n_sources > 20


def test_it_solves_a_png_with_hints_and_keeps_zero_coordinates(tmp_path: Path) -> None:
    spec = FieldSpec(
        ra=0.0,
        dec=0.0,
        pixscale=20.0,
        width=800,
        height=600,
        rotation=70.0,
        parity=1,
        seed=3,
        **NOISY,  # type: ignore[arg-type]
    )
    f = make_field(spec)
    path = write_png(f, tmp_path / "field.png", bits=16)
    params = SolveParameters(
        scale_units="arcsecperpix",
        scale_lower=18,
        scale_upper=22,
        center_ra=0.0,
        center_dec=0.0,
        radius=2.0,
    )
    result = solve(path, params, tmp_path / "out", config=FAST)
    assert_matches_truth(result, f.truth.to_nova())
    assert "--ra" in result.command and result.command[result.command.index("--ra") + 1] == "0"


def test_it_solves_star_lists_from_files_and_memory(tmp_path: Path) -> None:
    f = make_field(
        FieldSpec(ra=120.0, dec=10.0, pixscale=25.0, width=1024, height=768, rotation=5.0, seed=4),
        render=False,
    )
    xyls = write_xyls(f, tmp_path / "stars.xyls")
    a = solve(xyls, SolveParameters(), tmp_path / "a", config=FAST)
    assert_matches_truth(a, f.truth.to_nova())
    assert (a.image_width, a.image_height) == (1024, 768)
    b = solve(f.sources, SolveParameters(), tmp_path / "b", config=FAST)
    assert_matches_truth(b, f.truth.to_nova())


def test_it_uses_the_fits_header_and_retries_blind_when_it_lies(tmp_path: Path) -> None:
    spec = FieldSpec(ra=50.0, dec=30.0, pixscale=30.0, width=800, height=600, seed=9, **NOISY)  # type: ignore[arg-type]
    f = make_field(spec)
    good = write_fits(f, tmp_path / "good.fits", with_wcs=True)
    result = solve(good, SolveParameters(), tmp_path / "good", config=FAST)
    assert_matches_truth(result, f.truth.to_nova())
    assert result.hints and "FITS WCS" in str(result.hints)
    # A header pointing at the wrong place and scale: the blind retry still solves.
    with fits.open(good) as hdul:
        hdul[0].header["CRVAL1"] = 250.0
        hdul[0].header["CRVAL2"] = -60.0
        h = hdul[0].header
        for key in ("CD1_1", "CD1_2", "CD2_1", "CD2_2", "CDELT1", "CDELT2"):
            if key in h:
                h[key] = h[key] * 3
        hdul.writeto(tmp_path / "liar.fits")
    retried = solve(
        tmp_path / "liar.fits", SolveParameters(timeout=60), tmp_path / "liar", config=FAST
    )
    assert_matches_truth(retried, f.truth.to_nova())
    assert "blind retry" in retried.log


def test_it_writes_every_result_file(tmp_path: Path) -> None:
    spec = FieldSpec(ra=84.0, dec=-3.0, pixscale=20.0, width=800, height=600, seed=1, **NOISY)  # type: ignore[arg-type]
    path = write_fits(make_field(spec), tmp_path / "orion.fits")
    early: list[dict[str, object]] = []

    def verified(partial: SolveResult) -> None:
        early.append(
            {
                "json": partial.to_json(),
                "files": set(partial.files),
                "on_disk": {p.name for p in (tmp_path / "out").iterdir() if p.is_file()},
            }
        )

    result = solve(
        path, SolveParameters(), tmp_path / "out", config=EngineConfig(), verified=verified
    )
    assert result.solved
    # The answer first: calibration, WCS and objects, before any picture is drawn.
    [first] = early
    answer = first["json"]
    assert isinstance(answer, dict) and answer["solved"] and answer["calibration"]
    assert answer["calibration"] == result.to_json()["calibration"]
    assert answer["objects_in_field"] == result.objects_in_field
    assert first["files"] == {"wcs"}
    assert not any(name.endswith((".png", ".jpg")) for name in first["on_disk"])  # type: ignore[attr-defined]
    assert 0 < result.timings["verified"] < result.timings["total"]
    expected = {
        "wcs",
        "new_fits",
        "rdls",
        "axy",
        "corr",
        "kml",
        "log",
        "annotated_display",
        "annotated_full",
        "red_green_display",
        "red_green_full",
        "extraction_display",
        "extraction_full",
        "grid_display",
        "grid_full",
    }
    assert expected <= set(result.files)
    for p in result.files.values():
        assert p.exists() and p.stat().st_size > 0 and p.is_relative_to(tmp_path / "out")
    with fits.open(result.files["new_fits"]) as hdul:
        assert hdul[0].data.shape == (600, 800) and "CRVAL1" in hdul[0].header
    with fits.open(result.files["corr"]) as hdul:
        assert len(hdul[1].data) >= 10
    assert any("Orion" in name for name in result.objects_in_field)
    assert {"read", "extract", "total"} <= set(result.timings)
    assert result.peak_memory_mb and result.peak_memory_mb > 0
    assert not (tmp_path / "out" / "work").exists()


def test_it_reports_no_stars_as_a_result(tmp_path: Path) -> None:
    flat = np.full((300, 400), 1000.0, dtype=np.float32)
    path = tmp_path / "flat.fits"
    fits.PrimaryHDU(flat).writeto(path)
    result = solve(path, SolveParameters(), tmp_path / "out", config=FAST)
    assert not result.solved and isinstance(result.failure, NoStarsError)
    assert "axy" in result.files and "log" in result.files


def test_it_reports_no_match_as_a_result(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    sources = SourceList(
        x=rng.uniform(1, 800, 60),
        y=rng.uniform(1, 600, 60),
        flux=rng.uniform(1, 100, 60),
        width=800,
        height=600,
    )
    params = SolveParameters(scale_units="arcsecperpix", scale_lower=500, scale_upper=520)
    result = solve(sources, params, tmp_path / "out", config=FAST)
    assert not result.solved and isinstance(result.failure, NoMatchError)


def test_it_rejects_bad_input(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not an image at all")
    with pytest.raises(BadInputError):
        solve(junk, SolveParameters(), tmp_path / "out", config=FAST)


def test_it_can_be_cancelled_before_solving(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    f = make_field(FieldSpec(ra=1, dec=2, pixscale=30, width=800, height=600), render=False)
    with pytest.raises(SolveCancelledError):
        solve(f.sources, SolveParameters(), tmp_path / "out", config=FAST, cancel=cancel)


def test_it_reports_progress_in_order(tmp_path: Path) -> None:
    f = make_field(FieldSpec(ra=60, dec=20, pixscale=30, width=800, height=600), render=False)
    stages: list[str] = []
    solve(
        f.sources,
        SolveParameters(),
        tmp_path / "out",
        config=FAST,
        progress=lambda stage, msg: stages.append(stage),
    )
    order = [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s]
    assert order[0] == "preparing" and order[-1] == "finished" and "solving" in order


def test_it_builds_a_command_that_reproduces_the_solve() -> None:
    p = SolveParameters(
        scale_units="focalmm",
        scale_type="ev",
        scale_est=50,
        scale_err=10,
        parity=1,
        tweak_order=0,
        crpix_center=True,
        invert=True,
        downsample_factor=2,
    )
    cmd = reproduce_command(Path("/data/x/m31.fits"), p)
    assert cmd[:3] == ["skysolve", "solve", "m31.fits"]
    for flag in (
        "--scale-est",
        "--scale-err",
        "--parity",
        "--tweak-order",
        "--crpix-center",
        "--invert",
        "--downsample",
    ):
        assert flag in cmd


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_it_solves_the_shared_images(tmp_path: Path, shared_images: Path, name: str) -> None:
    ra, dec, pixscale, orientation = REFERENCE[name]
    result = solve(shared_images / name, SolveParameters(), tmp_path / "out", config=FAST)
    assert result.solved, result.failure
    cal = result.calibration
    assert cal is not None
    assert separation_deg(cal.ra, cal.dec, ra, dec) * 3600 < 3 * pixscale
    assert cal.pixscale == pytest.approx(pixscale, rel=0.01)
    assert cal.parity == 1.0
    assert angle_diff(cal.orientation, orientation) < 0.5
    # What the API reports for a JPEG: nova's (180 - t) mod 360; for apod4.jpg 121.5
    # (solve-field's WCS gives 114.5, its t being measured at its CRPIX: see docs/using.md).
    assert result.image_format == "jpeg"
    reported = nova_orientation(cal.orientation, result.image_format)
    assert angle_diff(reported, 180 - orientation) < 0.5


def test_it_solves_a_nebula_picture_blind_from_seps_list_without_the_knots(
    tmp_path: Path, shared_images: Path
) -> None:
    # apod2.jpg (the Horsehead, 4.5 deg) blind without the fast path: with the
    # nebula's extended knots dropped, sep's own list solves it at once.
    ra, dec, pixscale, orientation = REFERENCE["apod2.jpg"]
    params = SolveParameters(timeout=25, use_hints=False)
    result = solve(shared_images / "apod2.jpg", params, tmp_path / "out", config=FAST)
    truth = dict(ra=ra, dec=dec, pixscale=pixscale, orientation=orientation, parity=1.0)
    assert_matches_truth(result, truth)
    assert "solved from the image2xy source list" not in result.log


def test_it_solves_a_nebula_picture_blind_with_solve_fields_own_source_list(
    tmp_path: Path, shared_images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same picture with sep keeping the knots (as it did before they were
    # dropped), and astrometry.net given sep's whole list uniformized alone (as
    # before it started on sep's brightest sources, which solve this in a few
    # seconds): that list needs 35-65 s of engine time, more than this budget;
    # image2xy's list in astrometry.net's resort order, searched beside it,
    # solves in a few seconds, as solve-field does.
    from skysolve.engine.extraction.sep_extractor import SepExtractor
    from skysolve.engine.extraction.supply import Supply

    def keep_all(objects: np.ndarray, *args: object) -> np.ndarray:
        return np.ones(len(objects), dtype=bool)

    def whole_list_alone(supply: Supply) -> object:
        return [("sep", supply.sources_for(None, companion=False))], []

    monkeypatch.setattr(SepExtractor, "_compact", staticmethod(keep_all))
    monkeypatch.setattr(Supply, "engine_lists", whole_list_alone)
    ra, dec, pixscale, orientation = REFERENCE["apod2.jpg"]
    params = SolveParameters(timeout=25, use_hints=False)
    result = solve(shared_images / "apod2.jpg", params, tmp_path / "out", config=FAST)
    truth = dict(ra=ra, dec=dec, pixscale=pixscale, orientation=orientation, parity=1.0)
    assert_matches_truth(result, truth)
    assert "adding image2xy's list" in result.log
    assert "solved from the image2xy source list" in result.log
    assert "extract_image2xy" in result.timings


def test_it_goes_on_with_seps_list_when_image2xy_cannot_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skysolve.engine.extraction import programs
    from skysolve.errors import ConfigurationError

    found = programs._find_binary

    def without_image2xy(program: str) -> str:
        if program == "image2xy":
            raise ConfigurationError("image2xy is not installed (no-such-image2xy)")
        return found(program)

    monkeypatch.setattr(programs, "_find_binary", without_image2xy)
    spec = FieldSpec(ra=84.0, dec=-3.0, pixscale=20.0, width=800, height=600, seed=1, **NOISY)  # type: ignore[arg-type]
    path = write_fits(make_field(spec), tmp_path / "field.fits")
    params = SolveParameters(scale_units="arcsecperpix", scale_lower=18, scale_upper=22)
    result = solve(path, params, tmp_path / "out", config=FAST)
    assert result.solved, result.failure
    assert "image2xy's list left out" in result.log and "no-such-image2xy" in result.log


def _learned(f_spec: FieldSpec, *, scale: float, ra: float, dec: float) -> LearnedHint:
    return LearnedHint(
        source="earlier solve of job 7",
        image_width=f_spec.width,
        image_height=f_spec.height,
        scale_lower=scale * 0.85,
        scale_upper=scale * 1.15,
        center_ra=ra,
        center_dec=dec,
    )


def test_it_tries_an_earlier_solves_hints_first_and_reports_their_source(tmp_path: Path) -> None:
    spec = FieldSpec(ra=120.0, dec=10.0, pixscale=25.0, width=1024, height=768, seed=4)
    f = make_field(spec, render=False)
    hint = _learned(spec, scale=25.0, ra=121.0, dec=10.5)
    params = SolveParameters(learned_hints=(hint,), timeout=60)
    result = solve(f.sources, params, tmp_path / "a", config=FAST)
    assert_matches_truth(result, f.truth.to_nova())
    assert result.hints["learned"]["source"] == "earlier solve of job 7"
    assert result.hints["learned"]["center"] == [121.0, 10.5]
    assert "earlier solve of job 7" in result.hints["sources"]
    assert "(hinted)" in result.log and "blind retry" not in result.log
    # An image of another size (another camera or binning) does not take it.
    other = SolveParameters(learned_hints=(replace(hint, image_width=1000),), timeout=60)
    plain = solve(f.sources, other, tmp_path / "b", config=FAST)
    assert_matches_truth(plain, f.truth.to_nova())
    assert plain.hints == {}
    # The user's own "no hints" is obeyed.
    off = SolveParameters(learned_hints=(hint,), use_hints=False, timeout=60)
    assert solve(f.sources, off, tmp_path / "c", config=FAST).hints == {}


def test_it_solves_through_the_retries_when_a_learned_hint_is_wrong(tmp_path: Path) -> None:
    spec = FieldSpec(ra=50.0, dec=30.0, pixscale=30.0, width=800, height=600, seed=9)
    f = make_field(spec, render=False)
    # The same camera pointed elsewhere: the learned scale alone solves it.
    moved = _learned(spec, scale=30.0, ra=250.0, dec=-60.0)
    result = solve(
        f.sources, SolveParameters(learned_hints=(moved,), timeout=60), tmp_path / "a", config=FAST
    )
    assert_matches_truth(result, f.truth.to_nova())
    assert "(without the learned position)" in result.log
    assert "blind retry" not in result.log
    # Wrong scale and wrong place (another lens on a same-sized sensor): blind.
    wrong = _learned(spec, scale=90.0, ra=250.0, dec=-60.0)
    retried = solve(
        f.sources, SolveParameters(learned_hints=(wrong,), timeout=60), tmp_path / "b", config=FAST
    )
    assert_matches_truth(retried, f.truth.to_nova())
    assert "blind retry without the hints" in retried.log
    assert retried.hints["learned"]["source"] == "earlier solve of job 7"


def test_every_answer_says_how_good_it_is(tmp_path: Path) -> None:
    """The final fit's quality in the result, the WCS header, corr.fits and a picture."""
    spec = FieldSpec(
        ra=150.0, dec=20.0, pixscale=45.0, width=800, height=600, rotation=20.0, seed=21,
        **NOISY,  # type: ignore[arg-type]
    )  # fmt: skip
    f = make_field(spec)
    path = write_fits(f, tmp_path / "field.fits")
    result = solve(path, SolveParameters(use_hints=False), tmp_path / "out", config=EngineConfig())
    assert_matches_truth(result, f.truth.to_nova(), pixels=0.5)
    q = result.quality
    assert q is not None and q["refit"] is True
    # A pure TAN camera: cross-validation finds no distortion worth fitting.
    assert q["sip_order"] == 0 and q["order_chosen_by"] == "cross-validation"
    assert q["matched_stars"] >= 50 and q["rms_px"] < 0.5
    assert q["ra_error_arcsec"] > 0 and q["pixscale_error"] > 0
    assert q["fwhm_px"] == pytest.approx(2.5, rel=0.25)
    assert result.to_json()["quality"] == q
    header = fits.getheader(result.files["wcs"])
    assert header["FITNSTAR"] == q["matched_stars"] and header["CRDER1"] > 0
    # A 10-degree field: refitted to the Gaia stars, so the WCS means J2016.0.
    assert (q["reference_catalogue"], q["reference_epoch"]) == ("Gaia DR3", 2016.0)
    assert (header["REFCAT"], header["REFEPOCH"]) == ("Gaia DR3", 2016.0)
    assert header["EQUINOX"] == 2000.0
    with fits.open(result.files["corr"]) as hdul:
        table = hdul[1].data
        assert len(table) == q["matched_stars"]
        rms = np.sqrt(np.mean(table["residual_x"] ** 2 + table["residual_y"] ** 2))
        assert rms == pytest.approx(q["rms_px"], abs=1e-3)
    # What a sender that kept the image draws its arrows from.
    arrows = read_residuals(result.files["corr"])
    assert arrows is not None and arrows.shape == (q["matched_stars"], 4)
    assert result.files["residuals_display"].read_bytes()[:4] == b"\x89PNG"


def test_a_requested_tweak_order_is_the_final_order(tmp_path: Path) -> None:
    f = make_field(
        FieldSpec(ra=60.0, dec=-20.0, pixscale=40.0, width=800, height=600, seed=22),
        render=False,
    )
    result = solve(f.sources, SolveParameters(tweak_order=2), tmp_path / "out", config=FAST)
    assert result.solved and result.quality is not None
    assert result.quality["sip_order"] == 2 and result.quality["order_chosen_by"] == "request"
    assert result.wcs_header is not None and result.wcs_header["A_ORDER"] == 2
