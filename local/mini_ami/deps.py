"""Locate the Debian packages the generator uses; a missing one is a clear error."""
import ctypes.util
import shutil
from pathlib import Path

from hdnn.errors import HdnnError

FORTUNES_DIR = Path("/usr/share/games/fortunes")
WORDNET_DIR = Path("/usr/share/wordnet")
ESPEAK_LIB_NAMES = ("libespeak-ng.so.1", "libespeak-ng.so")


def missing(package, what):
    """The one-line error for a missing Debian package."""
    return HdnnError(f"{what} not found: install it with: sudo apt-get install {package} "
                     f"(or run tools/setup.sh)")


def espeak_library():
    """File name of libespeak-ng (Debian package libespeak-ng1)."""
    for name in ESPEAK_LIB_NAMES:
        try:
            ctypes.CDLL(name)
            return name
        except OSError:
            pass
    found = ctypes.util.find_library("espeak-ng")
    if found:
        return found
    raise missing("libespeak-ng1", "the espeak-ng library (libespeak-ng.so.1)")


def espeak_data_dir():
    """espeak-ng's voice data (Debian package espeak-ng-data, pulled in by libespeak-ng1)."""
    for d in (Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data"), Path("/usr/lib/aarch64-linux-gnu/espeak-ng-data"),
              Path("/usr/share/espeak-ng-data")):
        if (d / "voices").is_dir():
            return d
    hits = sorted(Path("/usr/lib").glob("*/espeak-ng-data"))
    if hits:
        return hits[0]
    raise missing("espeak-ng-data", "the espeak-ng voice data (espeak-ng-data)")


def flite_binary():
    """Path of the flite command (Debian package flite)."""
    path = shutil.which("flite")
    if path is None:
        raise missing("flite", "the flite synthesiser (flite on PATH)")
    return path


def fortunes_dir(path=FORTUNES_DIR):
    path = Path(path)
    if not (path / "fortunes").is_file():
        raise missing("fortunes fortunes-min", f"the fortune cookie files ({path}/fortunes)")
    return path


def wordnet_dir(path=WORDNET_DIR):
    path = Path(path)
    if not (path / "data.noun").is_file():
        raise missing("wordnet-base", f"the WordNet database ({path}/data.noun)")
    return path
