"""Run the command line: ``python -m midiexport``."""

from midiexport.cli import main

main()
