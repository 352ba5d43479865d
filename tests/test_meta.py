"""Promises about the project itself: the public API, lazy imports, the README."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import midiexport
from conftest import ROOT


def test_all_is_sorted_and_every_name_imports():
    assert midiexport.__all__ == sorted(midiexport.__all__)
    for name in midiexport.__all__:
        assert getattr(midiexport, name) is not None


def test_help_loads_neither_numpy_nor_httpx_nor_mido():
    code = (
        "import sys\nfrom midiexport.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('numpy', 'httpx', 'mido', 'orjson', 'pretty_midi') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_readme_main_command_converts_the_sample(tmp_path):
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"(midiexport convert samples/[^\n`]*)", readme)
    assert commands, "the README shows the main command on the bundled sample"
    for command in commands:
        args = shlex.split(command)
        done = subprocess.run([sys.executable, "-m", "midiexport", *args[1:], "-o", str(tmp_path / "x.mid"), "--overwrite"],
                              cwd=ROOT, capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
