"""The whole solve: input file (or star list) in, :class:`SolveResult` out.

:func:`solve` is a short sequence of stages, each reported through
``progress(stage, message)`` and each a function below:

1. :func:`read_input` (preparing): read the file or star list, derive the hints;
2. :func:`lead_sources` (extracting): the source supply
   (:mod:`skysolve.engine.extraction.supply`) gives the first solver the
   brightest sources or the full list; solve-field's companion list follows
   when a solver searches several;
3. :func:`find_answer` (solving, :mod:`skysolve.engine.solving.search`): the
   all-sky hook and the attempt ladder (:mod:`skysolve.engine.solving.ladder`)
   over the configured solvers;
4. :func:`final_fit_stage` (solving): the one final fit of a verified answer
   (:mod:`skysolve.engine.solving.answer`);
5. :func:`record_answer` (annotating): calibration, objects in the field, the
   result files (:mod:`skysolve.engine.products.files`) and the pictures;
6. finished: timings and the log.

Everything is written inside ``out_dir``.
"""

from __future__ import annotations

import dataclasses
import functools
import resource
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skysolve.engine.config import ALLSKY_MODES, EngineConfig
from skysolve.engine.extraction.supply import Supply
from skysolve.engine.params import SolveParameters
from skysolve.engine.products.files import (
    FILE_NAMES,
    catalog_xy,
    draw_result_pictures,
    residual_arrows,
    write_result_files,
    write_sources,
    write_wcs_file,
)
from skysolve.engine.results import (
    Calibration,
    DeferredHeader,
    HeaderField,
    SolveResult,
    SourceList,
    wcs_from_header,
)
from skysolve.engine.solving.answer import answer_header, final_fit_of, lens_fit, start_wcs
from skysolve.engine.solving.base import SolverOutcome
from skysolve.engine.solving.fastpath import TanSip
from skysolve.engine.solving.fastpath.refit import REFIT_SOURCES
from skysolve.engine.solving.ladder import (
    Clock,
    constraints_for,
)
from skysolve.engine.solving.search import (
    Answer,
    Hinted,
    blind_solvers_for,
    find_answer,
    lead_sources,
    solver_chain,
)
from skysolve.errors import (
    NoMatchError,
)

if TYPE_CHECKING:
    # astropy is imported where files are written or a solver's header is read:
    # a fast-path answer without files never needs it (a quarter of a second of
    # every ``skysolve solve``).
    from astropy.wcs import WCS

    from skysolve.engine.fitting.final import FinalFit
    from skysolve.engine.inputs.images import LoadedImage
    from skysolve.engine.results import CelestialWCS

Progress = Callable[[str, str], None]
#: Called with the result so far when the solution is verified (see :func:`solve`).
Verified = Callable[[SolveResult], None]

#: The final fit takes the fast path's brightest sources (``REFIT_SOURCES``, 300
#: at most) when they are this many, else the full extraction, whichever solver
#: answered.
FIT_SOURCES = 250


class SolveLog:
    """The solve's log lines (timed from the start of ``clock``), each also
    reported to ``progress``."""

    def __init__(self, clock: Clock, progress: Progress | None) -> None:
        self.clock = clock
        self.progress = progress
        self.lines: list[str] = []

    def note(self, stage: str, message: str) -> None:
        self.lines.append(f"[{self.clock.elapsed:7.3f}s] {stage}: {message}")
        if self.progress is not None:
            self.progress(stage, message)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


@dataclass(frozen=True)
class SolveInput:
    """What :func:`read_input` found: the image or the star list, and the hints."""

    #: The loaded image; None for a star list.
    image: LoadedImage | None
    #: The star list, brightest first; None for an image.
    star_list: SourceList | None
    width: int
    height: int
    #: The parameters with the hints, for the attempt ladder.
    hinted: Hinted


def solve(
    source: Path | SourceList,
    params: SolveParameters,
    out_dir: Path,
    *,
    config: EngineConfig | None = None,
    cancel: threading.Event | None = None,
    progress: Progress | None = None,
    verified: Verified | None = None,
) -> SolveResult:
    """Solve an image file, a star-list file or a :class:`SourceList`.

    Returns a :class:`SolveResult`, solved or not (an unsolved one carries the
    reason in ``failure``).  ``verified``, when given, is called once, as soon
    as a solution is verified, with the result so far: calibration, WCS header
    and file, objects in the field; the other files and the pictures are not
    made yet, so a caller can publish the answer while they are drawn.
    ``config`` (default: :meth:`EngineConfig.from_env`) names the solvers.
    Raises :class:`~skysolve.errors.BadInputError` for unusable input,
    :class:`~skysolve.errors.SolveCancelledError` when ``cancel`` is set and
    :class:`~skysolve.errors.SolverFailedError` when the solver crashed.
    """
    config = config or EngineConfig.from_env()
    if not params.pictures:
        # The sender draws them on the image it kept (skysolve.engine.offload).
        config = dataclasses.replace(config, make_pictures=False)
    clock = Clock(params.timeout, cancel)
    log = SolveLog(clock, progress)
    # Absolute: the result lists these paths, and solvers run in other directories.
    out_dir = Path(out_dir).absolute()
    work = out_dir / "work"
    work.mkdir(parents=True, exist_ok=True)

    with clock.step("read"):
        given = read_input(source, params, log.note)
    supply = Supply(given.image, given.star_list, params, clock=clock, note=log.note)
    solvers = solver_chain(config)
    blind = blind_solvers_for(solvers, given.image, log.note)
    sources = lead_sources(given.image, given.hinted, solvers, blind, supply)
    result = SolveResult(
        solved=False,
        image_width=sources.width,
        image_height=sources.height,
        hints=given.hinted.hints_used,
        n_sources=len(sources),
        command=reproduce_command(source, params),
        image_format=None if given.image is None else given.image.format,
    )
    answer = find_answer(
        given.image, given.hinted, params, config, solvers, blind, supply, sources,
        clock=clock, work=work, note=log.note,
    )  # fmt: skip
    result.failure = answer.failure
    result.n_sources = len(answer.sources)
    if answer.outcome is not None:
        log.lines.append(answer.outcome.log)
    final, fit_sources = final_fit_stage(
        answer, given.image, supply, params, config, clock, log.note
    )
    if final is not None and final.verdict == "implausible":
        result.failure = NoMatchError(f"the solution was rejected: {final.reason}")
        log.note("solving", result.failure.message)
    if final is not None and final.verdict != "implausible":
        assert answer.outcome is not None
        log.note("annotating", f"solved by {answer.outcome.solver} with {answer.outcome.index}")
        with clock.step("annotate"):
            record_answer(
                result, answer.outcome, final, given.image, answer.sources, fit_sources,
                out_dir, config, log.note, clock, verified,
            )  # fmt: skip
        # After the answer: the source list is a file, not part of it.
        write_source_file(result, answer.sources, out_dir, config, clock)
        if given.image is not None and "lens" not in answer.outcome.files:
            from skysolve.engine.solving.camera_lens import remember_lens

            kept = remember_lens(given.image, final.model or answer.outcome.wcs_model)
            if kept:
                log.note("finished", kept)
    else:
        write_source_file(result, answer.sources, out_dir, config, clock)
        if given.image is not None and config.make_pictures:
            with clock.step("pictures"):
                draw_result_pictures(result, given.image, answer.sources, None, None, [], out_dir)
    finish(result, log, clock, out_dir, config)
    shutil.rmtree(work, ignore_errors=True)
    return result


def read_input(source: Path | SourceList, params: SolveParameters, note: Progress) -> SolveInput:
    """Read the image, star-list file or :class:`SourceList` and derive the hints:
    the file's (unless ``params.use_hints`` is off), then an earlier solve's
    of the same user for what the file left open."""
    from skysolve.engine.inputs import hints as hints_mod
    from skysolve.engine.inputs.images import load_image
    from skysolve.engine.inputs.starlists import looks_like_star_list, read_star_list

    image: LoadedImage | None = None
    star_list: SourceList | None = None
    hints_used: dict[str, Any] = {}
    effective = params
    if isinstance(source, SourceList):
        star_list = source.sorted_by_flux()
        note("preparing", f"star list of {len(star_list)} sources")
        if params.file_hints is not None:
            # The sources of an image solved where the image is not: its
            # file's hints came with them (skysolve.engine.offload).
            effective, hints_used = hints_mod.apply_hints(
                params, params.file_hints, image_width=star_list.width
            )
            if hints_used:
                note("preparing", f"hints from the file: {hints_used}")
    elif looks_like_star_list(Path(source)):
        star_list = read_star_list(
            Path(source), image_width=params.image_width, image_height=params.image_height
        ).sorted_by_flux()
        note("preparing", f"star list file with {len(star_list)} sources")
    else:
        image = load_image(Path(source))
        note("preparing", f"{image.format} image {image.width}x{image.height}")
        if params.use_hints:
            found = hints_mod.hints_from_image(image)
            effective, hints_used = hints_mod.apply_hints(params, found, image_width=image.width)
            if hints_used:
                note("preparing", f"hints from the file: {hints_used}")
    if image is not None:
        width, height = image.width, image.height
    else:
        assert star_list is not None
        width, height = star_list.width, star_list.height
    # What an earlier solve of the same user found fills what the file left
    # open; tried first, with the blind retry behind it like the file's hints.
    effective_from_file = effective
    effective, learned = hints_mod.apply_learned(effective, image_width=width, image_height=height)
    if learned:
        hints_used = dict(hints_used)
        hints_used["learned"] = learned
        hints_used["sources"] = [*hints_used.get("sources", []), learned["source"]]
        note("preparing", f"hints from an earlier solve: {learned}")
    lens = None
    if image is not None and params.use_hints:
        from skysolve.engine.solving.camera_lens import recall_lens

        lens = recall_lens(image)
        if lens is not None:
            note(
                "preparing", f"the camera's remembered lens: k = {lens[0]:+.4f}, {lens[1]:.2f} deg"
            )
    hinted = Hinted(
        effective=effective, from_file=effective_from_file, hints_used=hints_used,
        learned=learned or {}, width=width, height=height, lens=lens,
    )  # fmt: skip
    return SolveInput(image=image, star_list=star_list, width=width, height=height, hinted=hinted)


def final_fit_stage(
    answer: Answer,
    image: Any,
    supply: Supply,
    params: SolveParameters,
    config: EngineConfig,
    clock: Clock,
    note: Progress,
) -> tuple[FinalFit | None, SourceList]:
    """The final fit of a verified answer (None when not solved) and the sources
    it matched: an all-sky answer keeps its lens model's own fit."""
    outcome, sources = answer.outcome, answer.sources
    if outcome is None or not outcome.solved:
        return None, sources
    if "lens" in outcome.files:
        with clock.step("final_fit"):
            final = lens_fit(outcome, image)
        return final, sources
    if HeaderField.raw(outcome, "wcs_header") is None:
        return None, sources
    # The final fit matches the same sep list whichever solver answered and
    # whichever list solved (image2xy's for astrometry.net, say): the fast
    # path's brightest few when they are enough (the full extraction costs
    # 0.05-0.2 s, a fast-path answer 0.3 s in all), else the full list.
    fit_sources = sources
    if image is None or params.effective_extractor == "sep":
        fit_sources = supply.fit_list(REFIT_SOURCES, enough=FIT_SOURCES)
    with clock.step("final_fit"):
        final = final_fit_of(outcome, image, fit_sources, params, config, note)
    return final, fit_sources


def write_source_file(
    result: SolveResult, sources: SourceList, out_dir: Path, config: EngineConfig, clock: Clock
) -> None:
    """``axy.fits``: the source list the answer came from (or the last one tried)."""
    if config.write_files:
        with clock.step("write_axy"):
            write_sources(out_dir / FILE_NAMES["axy"], sources)
            result.files["axy"] = out_dir / FILE_NAMES["axy"]


def finish(
    result: SolveResult, log: SolveLog, clock: Clock, out_dir: Path, config: EngineConfig
) -> None:
    """The timings, the peak memory and the log (``solve.log``)."""
    verified_after = result.timings.get("verified")
    result.timings = dict(clock.timings)
    if verified_after is not None:
        result.timings["verified"] = verified_after
    result.timings["total"] = clock.elapsed
    result.peak_memory_mb = peak_memory_mb()
    log.note("finished", "solved" if result.solved else f"not solved: {result.failure}")
    result.log = log.text()
    if config.write_files:
        log_path = out_dir / FILE_NAMES["log"]
        log_path.write_text(result.log)
        result.files["log"] = log_path


def record_answer(
    result: SolveResult,
    outcome: SolverOutcome,
    final: FinalFit,
    image: Any,
    sources: SourceList,
    fit_sources: SourceList,
    out_dir: Path,
    config: EngineConfig,
    note: Progress,
    clock: Clock,
    verified: Verified | None,
) -> None:
    """Fill ``result`` with the answer: the WCS header (built when first read),
    the calibration, the objects in the field; then (``verified`` called
    first) the result files and the pictures."""
    width, height = result.image_width, result.image_height
    # The final fit's model (or the fast path's own) describes the answer as
    # its header would (the header is built from it), without astropy;
    # astrometry.net's is read.
    wcs: CelestialWCS | Any = (
        final.model if final.model is not None else start_wcs(outcome, width, height)
    )
    result.solved = True
    result.failure = None
    result.solver = outcome.solver
    result.index = outcome.index
    result.quality = final.quality or None
    # Passed on unbuilt: whoever reads result.wcs_header builds it.
    result.wcs_header = DeferredHeader(
        functools.partial(answer_header, outcome, final, width, height)
    )
    result.calibration = Calibration.from_wcs(wcs, width, height)
    if config.write_files:
        write_wcs_file(result, out_dir)
    overlay = _objects_in_field(result, outcome, wcs, config, note)
    if verified is not None:
        # The answer a client waits for; files and pictures follow.
        result.timings = dict(clock.timings)
        result.timings["verified"] = clock.elapsed
        verified(result)
    if config.write_files:
        # Not for an all-sky lens model: a ground overlay of a hemisphere (its
        # corners below the horizon) means nothing to Google Sky.
        kml_wcs = None if "lens" in outcome.files else _astropy_wcs(wcs, result)
        write_result_files(
            result, outcome.files, final, wcs, image, fit_sources, out_dir, kml_wcs=kml_wcs
        )
    if config.make_pictures:
        rdls = result.files.get("rdls") or outcome.files.get("rdls")
        full = _astropy_wcs(wcs, result)
        draw_result_pictures(
            result, image, sources, full, catalog_xy(rdls, full), result.annotations, out_dir,
            residuals=residual_arrows(final, wcs, fit_sources), lines=overlay,
        )  # fmt: skip


def _objects_in_field(
    result: SolveResult, outcome: SolverOutcome, wcs: Any, config: EngineConfig, note: Progress
) -> list[Any]:
    """The named objects and annotations of ``result``; returns the pictures'
    overlay lines (an all-sky frame's constellation figures and horizon)."""
    from skysolve.engine.products.annotations import objects_in_field

    width, height = result.image_width, result.image_height
    names, annotations = objects_in_field(wcs, width, height)
    overlay: list[Any] = []
    if "lens" in outcome.files:
        # An all-sky frame: the Moon and the planets where they were (when its
        # time is known), no constellation named below its horizon.
        from skysolve.engine.allsky.solver import above_horizon, lens_annotations

        more_names, more = lens_annotations(outcome.files["lens"], width, height)
        names, annotations = above_horizon(more_names + names, more + annotations, wcs)
        if config.make_pictures:
            from skysolve.engine.allsky.solver import lens_lines

            # Constellation figures and the horizon, curved through the lens.
            overlay = lens_lines(outcome.files["lens"], width, height)
    result.objects_in_field = names
    result.annotations = annotations
    note("annotating", f"{len(names)} objects in the field")
    return overlay


def _astropy_wcs(wcs: Any, result: SolveResult) -> WCS:
    """The files and pictures take astropy's WCS of the header, whoever solved."""
    if not isinstance(wcs, TanSip):
        return wcs
    assert result.wcs_header is not None
    return wcs_from_header(result.wcs_header, result.image_width, result.image_height)


def reproduce_command(source: Path | SourceList, params: SolveParameters) -> list[str]:
    """The ``skysolve solve`` command that repeats this solve."""
    name = "STARLIST.xyls" if isinstance(source, SourceList) else Path(source).name
    cmd = ["skysolve", "solve", name]
    if params.has_scale:
        cmd += ["--scale-units", params.scale_units]
        if params.scale_type == "ev":
            cmd += ["--scale-est", _fmt(params.scale_est)]
            if params.scale_err is not None:
                cmd += ["--scale-err", _fmt(params.scale_err)]
        else:
            if params.scale_lower is not None:
                cmd += ["--scale-low", _fmt(params.scale_lower)]
            if params.scale_upper is not None:
                cmd += ["--scale-high", _fmt(params.scale_upper)]
    if params.has_position:
        cmd += ["--ra", _fmt(params.center_ra), "--dec", _fmt(params.center_dec)]
        if params.radius is not None:
            cmd += ["--radius", _fmt(params.radius)]
    if params.parity != 2:
        cmd += ["--parity", str(params.parity)]
    if params.tweak_order is not None:
        cmd += ["--tweak-order", str(params.tweak_order)]
    if params.crpix_center:
        cmd.append("--crpix-center")
    if params.positional_error != 1.0:
        cmd += ["--positional-error", _fmt(params.positional_error)]
    if params.downsample_factor is not None:
        cmd += ["--downsample", _fmt(params.downsample_factor)]
    if params.invert:
        cmd.append("--invert")
    if params.use_sextractor:
        cmd.append("--use-sextractor")
    elif params.extractor != "sep":
        cmd += ["--extractor", params.extractor]
    if params.image_width is not None and params.image_height is not None:
        cmd += ["--width", str(params.image_width), "--height", str(params.image_height)]
    if not params.use_hints:
        cmd.append("--no-hints")
    cmd += ["--timeout", _fmt(params.timeout)]
    return cmd


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.10g}"


def peak_memory_mb() -> float:
    """Peak resident memory of this process and its finished children, MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


__all__ = [
    "ALLSKY_MODES",
    "FILE_NAMES",
    "EngineConfig",
    "constraints_for",
    "find_answer",
    "read_input",
    "record_answer",
    "reproduce_command",
    "solve",
]
