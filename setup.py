"""Build step only (the metadata is in pyproject.toml): ship the top-level
``experiments/*.toml`` inside the package, as ``neuro_pc/experiments/configs/``,
so that an installed ``neuro-pc run fa_digits`` finds them by name.

``experiments/`` stays the one source of truth in git; the copy exists only in
the built wheel. An editable install (``pip install -e .``) has no copy: names
resolve against the checkout's ``experiments/`` folder
(:func:`neuro_pc.experiments.shipped_configs`).
"""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithConfigs(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib, "neuro_pc", "experiments", "configs")
        self.mkpath(str(target))
        for src in sorted((HERE / "experiments").glob("*.toml")):
            self.copy_file(str(src), str(target / src.name))


setup(cmdclass={"build_py": BuildPyWithConfigs})
