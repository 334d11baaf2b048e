"""Build hook: ship the Fiji commands and macros inside the package.

Everything else about the build is in pyproject.toml. The Fiji files live in the top-level
``fiji_scripts/`` folder (where Fiji users and the Groovy tests find them); ``build_py`` copies
that folder into the built package as ``rescunet_ij/fiji/``, so a wheel (also one built from the
sdist, which carries ``fiji_scripts/`` through MANIFEST.in) holds them and
``rescunet-ij install-fiji`` finds them there (``rescunet_ij.fiji_install.find_source``).
An editable install skips the copy: install-fiji reads the checkout's ``fiji_scripts/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SOURCE = "fiji_scripts"
PATTERNS = ("*.groovy", "*.ijm")  # what Fiji runs; nothing else in fiji_scripts/ ships


def fiji_files(root: Path) -> list[Path]:
    """The Fiji files under ``root`` (the fiji_scripts/ folder), relative to it, sorted."""
    return sorted(p.relative_to(root) for pat in PATTERNS for p in root.rglob(pat) if p.is_file())


class build_py_with_fiji(build_py):
    """build_py that also copies fiji_scripts/ into the build as rescunet_ij/fiji/."""

    def run(self) -> None:
        """Build the package, then add the Fiji files."""
        super().run()
        if getattr(self, "editable_mode", False):
            return
        source = HERE / SOURCE
        files = fiji_files(source) if source.is_dir() else []
        if not files:
            raise SystemExit(
                f"{source} holds no Fiji files (*.groovy, *.ijm): the package would ship without "
                "its Fiji commands; build from the source checkout or a complete sdist"
            )
        target = Path(self.build_lib) / "rescunet_ij" / "fiji"
        if target.exists():
            shutil.rmtree(target)  # no files left from an earlier build
        for rel in files:
            dst = target / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / rel, dst)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        """The built files, the Fiji files included."""
        outputs = super().get_outputs(include_bytecode)
        source = HERE / SOURCE
        if source.is_dir() and not getattr(self, "editable_mode", False):
            target = Path(self.build_lib) / "rescunet_ij" / "fiji"
            outputs += [str(target / rel) for rel in fiji_files(source)]
        return outputs


setup(cmdclass={"build_py": build_py_with_fiji})
