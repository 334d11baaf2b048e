r"""``rescunet-ij install-fiji``: the Fiji commands and macros into a Fiji.app, plus settings.

It copies the commands, their library and the macros, and writes the ImageJ preferences that tell
them where this Python environment is. A shell, like the CLI: it reaches the rest of the package
only through :mod:`rescunet_ij.api`.

What ImageJ 1.x does with preferences (``ij/Prefs.java``, checked in 1.53t and 1.54u):

* ``Prefs.set(key, value)`` stores ``"." + key`` (``KEY_PREFIX``) and ``Prefs.get(key, default)``
  reads it back, so ``rescunet.env`` is the line ``.rescunet.env=...`` of ``IJ_Prefs.txt``.
* ``IJ_Prefs.txt`` is a ``java.util.Properties`` file (ISO-8859-1, ``\`` escapes, ``\uXXXX`` for
  other characters). ImageJ looks for it (``Prefs.getPrefsDir``, since 1.53o) in the working
  folder, then in the ImageJ folder (``Fiji.app/IJ_Prefs.txt``), else in ``~/Library/Preferences``
  (macOS) or ``~/.imagej`` (Linux, Windows).
* ImageJ reads it at start and rewrites it from memory when it quits (``Prefs.savePreferences``),
  so settings written while Fiji runs are lost when that Fiji quits.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import api
from .errors import DataError, OutputExistsError

PREF_ENV = "rescunet.env"
PREF_URL = "rescunet.url"
DEFAULT_URL = "http://127.0.0.1:8765"
PREFS_NAME = "IJ_Prefs.txt"
KEY_PREFIX = "."  # ij.Prefs.KEY_PREFIX

LAYOUT: tuple[tuple[str, str, str], ...] = (
    # (folder in the source tree, files, folder in Fiji.app)
    ("Plugins/ReSCU-Net", "*.groovy", "scripts/Plugins/ReSCU-Net"),
    ("lib/rescunet-ij", "*.groovy", "lib/rescunet-ij"),
    ("macros", "*.ijm", "macros/ReSCU-Net"),
)
"""Where each kind of file goes; the same layout is what a Fiji update site publishes."""

LAUNCHERS = (
    "ImageJ-linux64",
    "ImageJ-linux32",
    "ImageJ-win64.exe",
    "ImageJ-win32.exe",
    "Contents/MacOS/ImageJ-macosx",
    "fiji-linux-x64",
    "fiji-linux-arm64",
    "fiji-windows-x64.exe",
    "fiji-windows-arm64.exe",
    "fiji-macos",
    "Contents/MacOS/fiji-macos",
)

APPLY_COMMAND = "Apply To Current Frame"


@dataclass(frozen=True)
class Copy:
    """One file to install: where from, where to, and what is there now."""

    source: Path
    target: Path
    state: str  # "new", "same" (identical file there) or "different"


@dataclass
class PrefChange:
    """One ImageJ preference: its key (without ImageJ's "." prefix), new value and old one."""

    key: str
    value: str
    old: str | None  # the value before, None when the key was not set

    @property
    def changed(self) -> bool:
        """Whether the value differs from the one set before."""
        return self.old != self.value


@dataclass
class InstallResult:
    """What install() did, or would do with ``dry_run``."""

    fiji: Path
    source: Path
    copies: list[Copy]
    prefs_file: Path
    prefs: list[PrefChange]
    dry_run: bool
    foreign: list[Path] = field(default_factory=list)  # files in our folders we do not ship
    env_exe: Path | None = None  # the rescunet-ij the macros will run, when found


# ------------------------------------------------------------------------------ where things are


def package_dir() -> Path:
    """The folder of the rescunet_ij package."""
    return Path(__file__).resolve().parent


def find_source(package: Path | None = None) -> Path:
    """The folder holding the Fiji files: the source checkout's, else the package's data.

    In a source checkout (also an editable install) that is ``fiji_scripts/`` next to the
    package; an installed wheel carries the same files as ``rescunet_ij/fiji/`` (setup.py copies
    them there when it builds). ``package`` is the package folder (default: this one).
    """
    package = package_dir() if package is None else Path(package)
    checkout = package.parent / "fiji_scripts"
    data = package / "fiji"
    for folder in (checkout, data):
        if (folder / LAYOUT[0][0]).is_dir():  # Plugins/ReSCU-Net: not just any fiji_scripts/
            return folder
    raise DataError(
        f"the Fiji files are not part of this installation: neither {checkout} (a source "
        f"checkout) nor {data} (package data of a wheel) holds {LAYOUT[0][0]}/. Reinstall "
        "rescunet-ij (pip install --force-reinstall rescunet-ij, or pip install -e . in a "
        "checkout)"
    )


def check_fiji(path: str | Path) -> Path:
    """``path`` as a Fiji.app folder, or a DataError saying what is missing."""
    fiji = Path(path).expanduser()
    if not fiji.exists():
        raise DataError(f"{fiji} does not exist; give the Fiji.app folder, e.g. ~/Fiji.app")
    if not fiji.is_dir():
        raise DataError(f"{fiji} is not a folder; give the Fiji.app folder, e.g. ~/Fiji.app")
    has_jars = (fiji / "jars").is_dir()
    has_scripts = (fiji / "scripts").is_dir()
    has_launcher = any((fiji / name).is_file() for name in LAUNCHERS)
    if has_jars and (has_scripts or has_launcher):
        return fiji.resolve()
    inside = [p for p in sorted(fiji.glob("*.app")) + [fiji / "Fiji.app"] if (p / "jars").is_dir()]
    hint = f"; did you mean {inside[0]}?" if inside else ""
    missing = "no jars/ folder" if not has_jars else "no scripts/ folder and no ImageJ launcher"
    raise DataError(
        f"{fiji} is not a Fiji.app folder ({missing}); give the folder Fiji was unpacked to, "
        f"e.g. ~/Fiji.app or /Applications/Fiji.app{hint}"
    )


def prefs_path(fiji: Path, *, home: Path | None = None, platform: str | None = None) -> Path:
    """The IJ_Prefs.txt that this Fiji reads (as ``ij.Prefs.getPrefsDir`` finds it).

    A Fiji started from another working folder that holds its own IJ_Prefs.txt reads that one
    instead; that case is rare and not detected here.
    """
    own = fiji / PREFS_NAME
    if own.is_file():
        return own
    home = Path.home() if home is None else home
    platform = sys.platform if platform is None else platform
    if platform == "darwin":
        return home / "Library" / "Preferences" / PREFS_NAME
    return home / ".imagej" / PREFS_NAME


def env_executable(env: Path, *, platform: str | None = None) -> Path:
    """The rescunet-ij program of the environment ``env``, as the macros build its path."""
    platform = sys.platform if platform is None else platform
    if platform.startswith("win"):
        return env / "Scripts" / "rescunet-ij.exe"
    return env / "bin" / "rescunet-ij"


# ------------------------------------------------------------------------------ IJ_Prefs.txt


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c != "\\" or i + 1 >= len(text):
            out.append(c)
            i += 1
            continue
        n = text[i + 1]
        if n == "u" and i + 6 <= len(text):
            try:
                out.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 6
                continue
            except ValueError:
                pass
        out.append({"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(n, n))
        i += 2
    return "".join(out)


def _escape(text: str, *, is_key: bool) -> str:
    """As ``java.util.Properties.store`` writes a key or a value (``saveConvert``)."""
    out = []
    for i, c in enumerate(text):
        if c == " " and (is_key or i == 0):
            out.append("\\ ")
        elif c in "\\=:#!":
            out.append("\\" + c)
        elif c in "\t\n\r\f":
            out.append("\\" + {"\t": "t", "\n": "n", "\r": "r", "\f": "f"}[c])
        elif ord(c) < 0x20 or ord(c) > 0x7E:
            out.extend(f"\\u{u:04X}" for u in _utf16(c))
        else:
            out.append(c)
    return "".join(out)


def _utf16(c: str) -> list[int]:
    data = c.encode("utf-16-be")
    return [int.from_bytes(data[k : k + 2], "big") for k in range(0, len(data), 2)]


def _logical_lines(text: str) -> list[tuple[list[str], str | None, str | None]]:
    """The file as ``(natural lines, key, value)``: key None for comments and blank lines."""
    natural = text.splitlines()
    out = []
    i = 0
    while i < len(natural):
        first = natural[i].lstrip(" \t\f")
        if not first or first[0] in "#!":
            out.append(([natural[i]], None, None))
            i += 1
            continue
        raw, joined = [natural[i]], first
        while _continues(joined) and i + 1 < len(natural):
            i += 1
            raw.append(natural[i])
            joined = joined[:-1] + natural[i].lstrip(" \t\f")
        if _continues(joined):
            joined = joined[:-1]
        i += 1
        key, value = _split_entry(joined)
        out.append((raw, key, value))
    return out


def _continues(line: str) -> bool:
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


def _split_entry(line: str) -> tuple[str, str]:
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c in "=: \t\f":
            break
        i += 1
    key, rest = line[:i], line[i:]
    rest = rest.lstrip(" \t\f")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t\f")
    return _unescape(key), _unescape(rest)


def read_prefs(path: Path) -> dict[str, str]:
    """The entries of an IJ_Prefs.txt (Java properties; later entries win, as in Java)."""
    if not path.is_file():
        return {}
    text = path.read_bytes().decode("latin-1")
    return {k: v for _, k, v in _logical_lines(text) if k is not None and v is not None}


def update_prefs_text(text: str, values: dict[str, str]) -> str:
    """``text`` with the full keys ``values`` set; every other line is kept as it was."""
    lines: list[str] = []
    done: set[str] = set()
    for raw, key, _ in _logical_lines(text):
        if key in values:
            if key not in done:
                lines.append(f"{_escape(key, is_key=True)}={_escape(values[key], is_key=False)}")
                done.add(key)
            continue  # a repeated key: Java keeps the last one; keep only ours
        lines.extend(raw)
    lines += [
        f"{_escape(k, is_key=True)}={_escape(v, is_key=False)}"
        for k, v in values.items()
        if k not in done
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ the install


def plan_copies(source: Path, fiji: Path) -> tuple[list[Copy], list[Path]]:
    """Every file to install and its state, and the files in our folders that we do not ship."""
    copies, foreign = [], []
    for src_dir, pattern, dst_dir in LAYOUT:
        shipped = sorted(p for p in (source / src_dir).glob(pattern) if p.is_file())
        for src in shipped:
            dst = fiji / dst_dir / src.name
            if dst.is_dir():
                raise DataError(f"{dst} is a folder; remove it, then install again")
            if not dst.exists():
                state = "new"
            else:
                state = "same" if dst.read_bytes() == src.read_bytes() else "different"
            copies.append(Copy(src, dst, state))
        names = {p.name for p in shipped}
        target = fiji / dst_dir
        if target.is_dir():
            foreign += [
                p
                for p in sorted(target.iterdir())
                if p.is_file() and p.name not in names and p.suffix in (".groovy", ".ijm", ".py")
            ]
    if not copies:
        raise DataError(
            f"no Fiji files found in {source} (expected "
            + ", ".join(f"{d}/{g}" for d, g, _ in LAYOUT)
            + ")"
        )
    return copies, foreign


def install(
    fiji: str | Path,
    *,
    url: str | None = None,
    env: str | Path | None = None,
    dry_run: bool = False,
    overwrite: bool = False,
    source: str | Path | None = None,
    prefs_file: str | Path | None = None,
) -> InstallResult:
    """Copy the Fiji files into ``fiji`` and write the preferences; nothing when ``dry_run``.

    Every check happens before the first write: a refused install changes nothing. Each file
    is written atomically (never half-written).
    """
    fiji_dir = check_fiji(fiji)
    src = Path(source) if source is not None else find_source()
    copies, foreign = plan_copies(src, fiji_dir)
    clash = [c for c in copies if c.state == "different"]
    if clash and not overwrite:
        names = "\n  ".join(str(c.target) for c in clash)
        raise OutputExistsError(
            f"{len(clash)} file(s) in {fiji_dir} differ from this version's:\n  {names}\n"
            "install with --overwrite to replace them"
        )
    env_dir = Path(sys.prefix if env is None else env)
    prefs = Path(prefs_file) if prefs_file is not None else prefs_path(fiji_dir)
    current = read_prefs(prefs)
    old_url = current.get(KEY_PREFIX + PREF_URL)
    changes = [
        PrefChange(PREF_ENV, str(env_dir), current.get(KEY_PREFIX + PREF_ENV)),
        PrefChange(PREF_URL, url or old_url or DEFAULT_URL, old_url),
    ]
    exe = env_executable(env_dir)
    result = InstallResult(
        fiji_dir,
        src,
        copies,
        prefs,
        changes,
        dry_run,
        foreign,
        exe if exe.is_file() else None,
    )
    if dry_run:
        return result
    for c in copies:
        if c.state != "same":
            api.write_bytes(c.target, c.source.read_bytes(), overwrite=True)
    if any(ch.changed for ch in changes):
        text = prefs.read_bytes().decode("latin-1") if prefs.is_file() else ""
        new = update_prefs_text(text, {KEY_PREFIX + ch.key: ch.value for ch in changes})
        api.write_bytes(prefs, new.encode("latin-1"), overwrite=True)
    return result


# ------------------------------------------------------------------------------ what to tell


def command_label(copies: list[Copy], stem: str = "Apply_To_Current_Frame") -> str:
    """The menu label Fiji gives the Apply command (file name, underscores as spaces)."""
    for c in copies:
        if c.source.stem.lower() == stem.lower():
            return c.source.stem.replace("_", " ")
    return APPLY_COMMAND


def report(result: InstallResult) -> str:
    """The text install-fiji prints: what it did (or would do) and the next steps."""
    r = result
    verb = {"new": "copy   ", "same": "same   ", "different": "replace"}
    lines = [
        ("Dry run: nothing written. " if r.dry_run else "")
        + f"Fiji files from {r.source} into {r.fiji}:"
    ]
    lines += [f"  {verb[c.state]} {c.target.relative_to(r.fiji)}" for c in r.copies]
    for p in r.foreign:
        why = (
            " (a Python-mode script of an older version: delete it, the Groovy commands replace it)"
            if p.suffix == ".py"
            else " (not part of this version; delete it if it is from an older one)"
        )
        lines.append(f"  note: {p.relative_to(r.fiji)}{why}")
    lines.append(f"ImageJ preferences in {r.prefs_file}:")
    for ch in r.prefs:
        how = "new" if ch.old is None else ("unchanged" if not ch.changed else f"was {ch.old}")
        lines.append(f"  {ch.key} = {ch.value}  ({how})")
    if r.env_exe is None:
        exe = env_executable(Path(r.prefs[0].value))
        lines.append(
            f"  warning: {exe} does not exist, so the macros cannot find rescunet-ij through "
            "rescunet.env; give them exe=[path of rescunet-ij]"
        )
    env = r.prefs[0].value
    label = command_label(r.copies)
    macro = next((c.target.name for c in r.copies if c.target.name == "propagate_batch.ijm"), None)
    lines += [
        "",
        "Fiji reads IJ_Prefs.txt when it starts and rewrites it when it quits: quit Fiji before "
        "running this command (if Fiji was open, quit it and run install-fiji again), then "
        "start Fiji. Inside a running Fiji the same settings are the macro:",
        f'  call("ij.Prefs.set", "{PREF_ENV}", "{_macro_string(env)}"); '
        f'call("ij.Prefs.set", "{PREF_URL}", "{_macro_string(r.prefs[1].value)}");',
        "",
        "Next steps:",
        "  1. Start the service in a terminal and leave it running:",
        f"       {_quote(env_executable(Path(env)))} serve",
        "     (its address must match rescunet.url; change it with install-fiji --url)",
        "  2. Start Fiji: the commands are in Plugins > ReSCU-Net.",
        f"  3. Shift+A for {label}: Shift+A is ImageJ's shortcut of",
        "     Edit > Selection > Select None, so Plugins > Shortcuts > Add Shortcut... does not",
        "     offer it. Add this line to Fiji.app/macros/StartupMacros.fiji.ijm (Plugins >",
        "     Macros > Startup Macros... opens it) and restart Fiji; a one-key macro shortcut wins",
        "     over the menu one, and Select None keeps Ctrl+Shift+A:",
        f'       macro "{label} [A]" {{ run("{label}"); }}',
        f"     Or take a free key: Plugins > Shortcuts > Add Shortcut..., Command: {label}.",
    ]
    if macro:
        lines += [
            "  4. Without the service, from a macro (also plain ImageJ):",
            f'       runMacro("ReSCU-Net/{macro}", "movie=[...] rois=[...] model=[...]");',
        ]
    lines += [
        "",
        "To publish these files on a Fiji update site, upload the same layout with Fiji's "
        "updater (Help > Update..., Manage Update Sites > Add Unlisted Site for your site, "
        "Advanced Mode, select the files under "
        + ", ".join(f"{d}/" for _, _, d in LAYOUT)
        + ", Apply Changes (Upload)). Each user still runs install-fiji (or the macro above) "
        "once for the preferences.",
    ]
    return "\n".join(lines)


def _quote(path: Path) -> str:
    s = str(path)
    return f'"{s}"' if " " in s else s


def _macro_string(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')
