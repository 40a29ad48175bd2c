"""The engine's configuration: every engine and ssh setting, read in one place.

The engine (and the ssh solver in :mod:`skysolve.remote.ssh`) is configured by
environment variables only.  :meth:`EngineConfig.from_environ` reads all of
them from one mapping into a frozen, typed :class:`EngineConfig`, raising
:class:`~skysolve.errors.ConfigurationError` naming the variable for a bad
value; :func:`problems` lists every bad value at once, for the web's system
checks (:mod:`skysolve.web.checks`), so a mistake shows at start-up rather
than at the first solve.  No other engine module reads ``os.environ``.

The solvers themselves are part of the configuration (``solvers``): None
means the installed ones (the fast path when its database exists, then
astrometry.net: :func:`skysolve.engine.solving.search.solver_chain`); tests
pass fakes.

This module is a leaf: it imports nothing from the engine, so every engine
module can read its settings here.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skysolve.errors import ConfigurationError

if TYPE_CHECKING:
    from skysolve.engine.solving.base import Solver

#: Where Debian's ``astrometry-data-*`` packages install index files.
DEFAULT_INDEX_DIRS: tuple[Path, ...] = (Path("/usr/share/astrometry"),)
#: The fast path's folder name, in the shared location and in an older data dir.
FASTPATH_DIR = "fastpath"
#: The fast-path database's file name.
DEFAULT_DB_NAME = "default.t3db"
#: When the all-sky lens-model attempt runs (``SKYSOLVE_ALLSKY``): "auto", first
#: for frames showing a fisheye image circle and after the ordinary attempts
#: fail for others; "first", always first (an all-sky camera's own server);
#: "off", never.
ALLSKY_MODES = ("auto", "first", "off")
#: Values of ``SKYSOLVE_PICTURES`` that turn the pictures off.
FALSE_WORDS = ("0", "false", "no")


@dataclass(frozen=True)
class SshSettings:
    """The ``SKYSOLVE_SSH_*`` settings of the ssh solver (:mod:`skysolve.remote.ssh`)."""

    #: ``user@host`` of the solve host.
    destination: str
    port: int | None = None
    identity: Path | None = None
    #: Extra ``-o`` options, ``Key=Value`` items.
    options: tuple[str, ...] = ()
    command: str = "skysolve solve-server"
    connect_timeout: float = 15.0


@dataclass(frozen=True)
class DataPaths:
    """Where the engine keeps files outside a solve's folder: the fast-path
    database, derived catalogues, all-sky camera profiles.  Reading these
    never fails, so ``/health`` and ``skysolve db info`` read them alone."""

    #: ``SKYSOLVE_FASTPATH_DB`` when set.
    fastpath_db_setting: Path | None = None
    #: ``SKYSOLVE_FASTPATH_DIR``, else ``$XDG_DATA_HOME/skysolve/fastpath``
    #: (``~/.local/share/skysolve/fastpath``).  Always absolute.
    fastpath_dir: Path = field(
        default_factory=lambda: Path.home() / ".local" / "share" / "skysolve" / FASTPATH_DIR
    )
    #: ``SKYSOLVE_DATA_DIR`` (an older installation's database may be in it).
    data_dir: Path = Path("var")
    #: ``SKYSOLVE_CACHE_DIR``, else ``$XDG_CACHE_HOME/skysolve`` (``~/.cache/skysolve``).
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "skysolve")
    #: ``SKYSOLVE_ALLSKY_PROFILES``, else ``<cache dir>/allsky-profiles``.
    allsky_profiles: Path | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> DataPaths:
        env = environ
        explicit = _text(env, "SKYSOLVE_FASTPATH_DIR")
        if explicit:
            fastpath_dir = Path(explicit).expanduser().resolve()
        else:
            xdg = _text(env, "XDG_DATA_HOME")
            # The XDG spec ignores a relative XDG_DATA_HOME.
            base = (
                Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
            )
            fastpath_dir = base / "skysolve" / FASTPATH_DIR
        db = _text(env, "SKYSOLVE_FASTPATH_DB")
        cache = env.get("SKYSOLVE_CACHE_DIR")
        profiles = env.get("SKYSOLVE_ALLSKY_PROFILES")
        return cls(
            fastpath_db_setting=Path(db).expanduser().resolve() if db else None,
            fastpath_dir=fastpath_dir,
            data_dir=Path(_text(env, "SKYSOLVE_DATA_DIR") or "var"),
            cache_dir=(
                Path(cache)
                if cache
                else Path(env.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "skysolve"
            ),
            allsky_profiles=Path(profiles) if profiles else None,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DataPaths:
        """:meth:`from_environ` of ``environ``, or of this process's environment."""
        return cls.from_environ(os.environ if environ is None else environ)

    def build_db_path(self) -> Path:
        """Where ``skysolve db build`` writes: ``SKYSOLVE_FASTPATH_DB``, else the shared dir."""
        if self.fastpath_db_setting is not None:
            return self.fastpath_db_setting
        return self.fastpath_dir / DEFAULT_DB_NAME

    def legacy_db_path(self) -> Path:
        """Where installations before the shared location built it: ``<data dir>/fastpath/``."""
        return (self.data_dir / FASTPATH_DIR / DEFAULT_DB_NAME).resolve()

    def default_db_path(self) -> Path:
        """The database the engine uses; the file need not exist.

        ``SKYSOLVE_FASTPATH_DB`` when set; else the shared location
        (``fastpath_dir``); else, for an installation that built it before the
        shared location existed, ``$SKYSOLVE_DATA_DIR/fastpath/default.t3db``
        when that file exists.  Without any, the shared path (so messages name
        where ``skysolve db build`` would put it).
        """
        path = self.build_db_path()
        if self.fastpath_db_setting is not None or path.is_file():
            return path
        legacy = self.legacy_db_path()
        return legacy if legacy.is_file() else path

    @property
    def profile_dir(self) -> Path:
        """Where all-sky camera profiles are kept."""
        return self.allsky_profiles or self.cache_dir / "allsky-profiles"


def _default_processes() -> int:
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class EngineConfig:
    """Where the engine finds its tools and how hard it may work."""

    #: ``SKYSOLVE_INDEX_DIRS``: where index files are found (the first: where
    #: ``skysolve index`` puts new ones).
    index_dirs: tuple[Path, ...] = DEFAULT_INDEX_DIRS
    #: ``SKYSOLVE_INDEX_MIRRORS`` as written (``SERIES=URL`` items), parsed by
    #: :func:`skysolve.engine.indexes.fetch.parse_mirrors` where used (and by
    #: the web's system check ``skysolve.E040``).
    index_mirrors: str = ""
    #: ``SKYSOLVE_ENGINE_BINARY``.
    engine_binary: str = "astrometry-engine"
    #: ``SKYSOLVE_SOLVER_PROCESSES`` (0 or unset: one per core).
    processes: int = field(default_factory=_default_processes)
    #: ``SKYSOLVE_PICTURES``.
    make_pictures: bool = True
    #: The pattern-hash database when it exists (``skysolve db build``); None:
    #: astrometry.net only.  See :meth:`DataPaths.default_db_path`.
    fastpath_db: Path | None = None
    #: ``SKYSOLVE_ALLSKY``: one of :data:`ALLSKY_MODES`.
    allsky: str = "auto"
    #: Where the engine's files live outside a solve's folder.
    paths: DataPaths = field(default_factory=lambda: DataPaths())
    #: The ssh solver's settings; None when ``SKYSOLVE_SSH_DESTINATION`` is unset.
    ssh: SshSettings | None = None
    #: Write the result files (WCS, new FITS image, source and match lists, KML,
    #: log).  ``skysolve solve`` without ``--out`` reads only the returned result.
    write_files: bool = True
    #: The solvers to try, fastest first; None: the installed ones
    #: (:func:`skysolve.engine.solving.search.solver_chain`).
    solvers: tuple[Solver, ...] | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> EngineConfig:
        """Every engine and ssh setting of ``environ``.

        Raises :class:`~skysolve.errors.ConfigurationError` for the first bad
        value (:func:`problems` lists them all).
        """
        values: dict[str, Any] = {}
        for read in _READERS:
            values.update(read(environ))
        return cls(**values)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EngineConfig:
        """:meth:`from_environ` of ``environ``, or of this process's environment."""
        return cls.from_environ(os.environ if environ is None else environ)


def problems(environ: Mapping[str, str]) -> dict[str, str]:
    """Every bad engine or ssh setting of ``environ``: ``{variable: message}``."""
    found: dict[str, str] = {}
    for name, read in _CHECKED:
        try:
            read(environ)
        except ConfigurationError as exc:
            found[name] = exc.message
    return found


# -- one reader per setting (or group read together) -----------------------------


def _text(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def index_dirs_from(environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """``SKYSOLVE_INDEX_DIRS`` (colon-separated; the first is where new files go) of
    ``environ``, or of this process's environment."""
    dirs = (os.environ if environ is None else environ).get("SKYSOLVE_INDEX_DIRS", "")
    return tuple(Path(d) for d in dirs.split(os.pathsep) if d) if dirs else DEFAULT_INDEX_DIRS


def _index_dirs(env: Mapping[str, str]) -> dict[str, Any]:
    return {"index_dirs": index_dirs_from(env)}


def _index_mirrors(env: Mapping[str, str]) -> dict[str, Any]:
    # Parsed where used (skysolve index fetch) and by the web's check E040: a
    # solve needs none of it, and the series table lives with the index files.
    return {"index_mirrors": env.get("SKYSOLVE_INDEX_MIRRORS", "")}


def _engine_binary(env: Mapping[str, str]) -> dict[str, Any]:
    return {"engine_binary": env.get("SKYSOLVE_ENGINE_BINARY", "astrometry-engine")}


def _processes(env: Mapping[str, str]) -> dict[str, Any]:
    raw = env.get("SKYSOLVE_SOLVER_PROCESSES", "0")
    try:
        processes = int(raw) or _default_processes()
    except ValueError:
        raise ConfigurationError(
            f"SKYSOLVE_SOLVER_PROCESSES must be a whole number, not {raw!r}"
        ) from None
    return {"processes": max(1, processes)}


def _pictures(env: Mapping[str, str]) -> dict[str, Any]:
    return {"make_pictures": env.get("SKYSOLVE_PICTURES", "1").strip().lower() not in FALSE_WORDS}


def _paths(env: Mapping[str, str]) -> dict[str, Any]:
    paths = DataPaths.from_environ(env)
    path = paths.default_db_path()
    return {"paths": paths, "fastpath_db": path if path.is_file() else None}


def _allsky(env: Mapping[str, str]) -> dict[str, Any]:
    allsky = env.get("SKYSOLVE_ALLSKY", "auto").strip().lower() or "auto"
    if allsky not in ALLSKY_MODES:
        raise ConfigurationError(
            f"SKYSOLVE_ALLSKY must be one of {', '.join(ALLSKY_MODES)}, not {allsky!r}"
        )
    return {"allsky": allsky}


def _number(env: Mapping[str, str], name: str, kind: type[Any]) -> Any:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None


def _ssh_port(env: Mapping[str, str]) -> int | None:
    port: int | None = _number(env, "SKYSOLVE_SSH_PORT", int)
    if port is not None and not 0 < port < 65536:
        raise ConfigurationError(f"SKYSOLVE_SSH_PORT must be a port number, not {port}")
    return port


def _ssh_timeout(env: Mapping[str, str]) -> float:
    timeout = _number(env, "SKYSOLVE_SSH_CONNECT_TIMEOUT", float)
    return float(timeout) if timeout and timeout > 0 else SshSettings.connect_timeout


def _ssh_options(env: Mapping[str, str]) -> tuple[str, ...]:
    try:
        options = tuple(shlex.split(env.get("SKYSOLVE_SSH_OPTIONS", "")))
    except ValueError as exc:
        raise ConfigurationError(f"SKYSOLVE_SSH_OPTIONS: {exc}") from None
    for option in options:
        check_ssh_option(option)
    return options


def _ssh_destination(env: Mapping[str, str]) -> str:
    destination = _text(env, "SKYSOLVE_SSH_DESTINATION")
    if destination:
        check_ssh_destination(destination)
    return destination


_SSH_OPTION = re.compile(r"^[A-Za-z][A-Za-z0-9]*=\S.*$")


def check_ssh_destination(destination: str) -> None:
    """Raise unless ``destination`` can be ssh's ``user@host`` (never an option)."""
    if not destination or destination.startswith("-") or " " in destination:
        raise ConfigurationError(f"SKYSOLVE_SSH_DESTINATION must be user@host, not {destination!r}")


def check_ssh_option(option: str) -> None:
    """Raise unless ``option`` is one ``Key=Value`` item for ssh's ``-o``."""
    if not _SSH_OPTION.match(option):
        raise ConfigurationError(f"SKYSOLVE_SSH_OPTIONS items must be Key=Value, not {option!r}")


def _ssh(env: Mapping[str, str]) -> dict[str, Any]:
    port, timeout, options = _ssh_port(env), _ssh_timeout(env), _ssh_options(env)
    destination = _ssh_destination(env)
    if not destination:
        return {"ssh": None}
    identity = _text(env, "SKYSOLVE_SSH_IDENTITY")
    return {
        "ssh": SshSettings(
            destination=destination,
            port=port,
            identity=Path(identity) if identity else None,
            options=options,
            command=_text(env, "SKYSOLVE_SSH_COMMAND") or SshSettings.command,
            connect_timeout=timeout,
        )
    }


Reader = Callable[[Mapping[str, str]], Any]

#: The readers that build an :class:`EngineConfig`, in order.
_READERS: tuple[Callable[[Mapping[str, str]], dict[str, Any]], ...] = (
    _index_dirs, _index_mirrors, _engine_binary, _processes, _pictures, _paths, _allsky, _ssh,
)  # fmt: skip
#: What :func:`problems` checks: each variable that can be wrong, with its reader.
_CHECKED: tuple[tuple[str, Reader], ...] = (
    ("SKYSOLVE_SOLVER_PROCESSES", _processes),
    ("SKYSOLVE_ALLSKY", _allsky),
    ("SKYSOLVE_SSH_PORT", _ssh_port),
    ("SKYSOLVE_SSH_CONNECT_TIMEOUT", _ssh_timeout),
    ("SKYSOLVE_SSH_OPTIONS", _ssh_options),
    ("SKYSOLVE_SSH_DESTINATION", _ssh_destination),
)


__all__ = [
    "ALLSKY_MODES",
    "DEFAULT_DB_NAME",
    "DEFAULT_INDEX_DIRS",
    "FASTPATH_DIR",
    "DataPaths",
    "EngineConfig",
    "SshSettings",
    "check_ssh_destination",
    "check_ssh_option",
    "index_dirs_from",
    "problems",
]
