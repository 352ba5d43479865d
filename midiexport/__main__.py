"""Run the command line: ``python -m midiexport``."""

from midiexport.cli import run

run()
