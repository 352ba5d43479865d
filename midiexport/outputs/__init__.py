"""Outputs: a Song (ticks) becomes bytes. ``smf`` writes Standard MIDI Files."""
