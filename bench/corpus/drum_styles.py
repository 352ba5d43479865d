"""Generated songs in drum-based styles for the evaluation corpus (see STYLES.md).

Each song is written the way a producer would program or a band would play it: a style's
grooves (verse and chorus variants, ghost notes, fills into sections, crashes on section
starts), a bass line and chord part following a chord progression with varied harmonic
rhythm and pushed chord changes, sometimes a lead melody, intros and breakdowns without
drums, swing where the style has it, humanised timing, and on some songs tempo drift, a
ritardando or a tempo change between sections. The record is then made by ``noise.py``.

    python bench/corpus/drum_styles.py            # write bench/corpus/data/styles-*.jsonl.gz
    python bench/corpus/drum_styles.py --check    # verify the written files, print statistics

``generate(seed, count)`` returns the songs for seeds ``seed .. seed+count-1``; the style
is ``style_for_seed(seed)`` (ten consecutive seeds share a style), the split is
``schema.split_for_seed(seed)`` (seed % 10: 0-6 bench, 7-8 holdout, 9 test).
"""

from __future__ import annotations

import argparse
import bisect
import math
import os
import random
import sys
import zlib
from collections import Counter, defaultdict

try:
    from . import noise, schema
except ImportError:  # run as a script
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import noise  # type: ignore
    import schema  # type: ignore

# --- General MIDI drum keys ----------------------------------------------------------------
K, K2, RIM, S, CLAP, S2 = 36, 35, 37, 38, 39, 40
HH, PHH, OHH = 42, 44, 46
T_LO, T_LM, T_M, T_HM, T_HI = 41, 43, 45, 48, 50
CRASH, CRASH2, RIDE, BELL, TAMB, COW = 49, 57, 51, 53, 54, 56
CONGA_HI, CONGA_LO, TIMB, CLAVE, SHAKER = 63, 64, 65, 75, 82  # 82 is outside 35-81 on purpose
TOMS_DOWN = (T_HI, T_HM, T_M, T_LM, T_LO)

VEL = {"X": 0.95, "x": 0.78, "o": 0.6, "g": 0.3}

# --- instruments: name -> GM program (0-based); stem names too ------------------------------
PROGRAMS = {
    "Acoustic Grand Piano": 0,
    "Bright Acoustic Piano": 1,
    "Electric Piano 1": 4,
    "Electric Piano 2": 5,
    "Clavinet": 7,
    "Drawbar Organ": 16,
    "Rock Organ": 18,
    "Accordion": 21,
    "Acoustic Guitar (nylon)": 24,
    "Acoustic Guitar (steel)": 25,
    "Electric Guitar (jazz)": 26,
    "Electric Guitar (clean)": 27,
    "Electric Guitar (muted)": 28,
    "Overdriven Guitar": 29,
    "Distortion Guitar": 30,
    "Acoustic Bass": 32,
    "Electric Bass (finger)": 33,
    "Electric Bass (pick)": 34,
    "Fretless Bass": 35,
    "Synth Bass 1": 38,
    "Synth Bass 2": 39,
    "String Ensemble 1": 48,
    "Synth Strings 1": 50,
    "Choir Aahs": 52,
    "Synth Voice": 54,
    "Trumpet": 56,
    "Tuba": 58,
    "Brass Section": 61,
    "Alto Sax": 65,
    "Tenor Sax": 66,
    "Clarinet": 71,
    "Flute": 73,
    "Lead 1 (square)": 80,
    "Lead 2 (sawtooth)": 81,
    "Pad 1 (new age)": 88,
    "Pad 2 (warm)": 89,
    "Pad 3 (polysynth)": 90,
    "Synth Pad": 88,
    "Vibraphone": 11,
    "Marimba": 12,
    "Steel Drums": 114,
    "Bass": 32,
    "Keyboard": 0,
    "Piano": 0,
    "Guitar": 25,
    "Synth": 81,
    "Strings": 48,
    "Vocals": 54,
    "Brass": 61,
}

# --- harmony --------------------------------------------------------------------------------
QUAL = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dom7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "hdim": (0, 3, 6, 10),
    "6": (0, 4, 7, 9),
}
DEG = {
    "I": (0, "maj"),
    "ii": (2, "min"),
    "iii": (4, "min"),
    "IV": (5, "maj"),
    "V": (7, "maj"),
    "vi": (9, "min"),
    "bVII": (10, "maj"),
    "bVI": (8, "maj"),
    "I7": (0, "dom7"),
    "IV7": (5, "dom7"),
    "V7": (7, "dom7"),
    "II7": (2, "dom7"),
    "VI7": (9, "dom7"),
    "Imaj7": (0, "maj7"),
    "IVmaj7": (5, "maj7"),
    "ii7": (2, "min7"),
    "iii7": (4, "min7"),
    "vi7": (9, "min7"),
    "I6": (0, "6"),
    "i": (0, "min"),
    "iv": (5, "min"),
    "v": (7, "min"),
    "III": (3, "maj"),
    "VI": (8, "maj"),
    "VII": (10, "maj"),
    "bII": (1, "maj"),
    "i7": (0, "min7"),
    "iv7": (5, "min7"),
    "v7": (7, "min7"),
    "VImaj7": (8, "maj7"),
    "IIImaj7": (3, "maj7"),
    "iio": (2, "hdim"),
}
MAJOR_SCALE, MINOR_SCALE = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)
PC = {
    "C": 0,
    "C#": 1,
    "Db": 1,
    "D": 2,
    "Eb": 3,
    "E": 4,
    "F": 5,
    "F#": 6,
    "Gb": 6,
    "G": 7,
    "G#": 8,
    "Ab": 8,
    "A": 9,
    "Bb": 10,
    "B": 11,
}
MAJOR_KEYS = ("C", "G", "D", "A", "E", "B", "F#", "Db", "Ab", "Eb", "Bb", "F")
MINOR_KEYS = ("A", "E", "B", "F#", "C#", "G#", "Eb", "Bb", "F", "C", "G", "D")
PROGS = {
    "pop": (
        ["I V vi IV", "vi IV I V", "I IV vi V", "I vi IV V", "IV I V vi", "I V IV V"],
        ["i VI III VII", "i VII VI VII", "i iv VI V", "VI VII i i", "i VI iv V"],
    ),
    "rock": (
        ["I bVII IV I", "I IV V IV", "I V vi IV", "vi IV I V", "I IV I V"],
        ["i VII VI VII", "i VI VII i", "i iv VII III", "i III VII iv"],
    ),
    "dance": (
        ["vi IV I V", "I V vi IV", "IV V vi vi", "ii7 V7 Imaj7 vi7"],
        ["i VI III VII", "i iv VI VII", "i VII VI V", "i iv v i", "i7 iv7 v7 i7", "VI VII i i"],
    ),
    "trap": (["vi IV I V"], ["i VI", "i iv VI V", "i i VI VII", "i VII VI V", "i bII", "i iv"]),
    "funk": (["I7 IV7", "I7 I7 IV7 I7", "ii7 V7", "I7 bVII"], ["i7 iv7", "i7 i7 iv7 v7", "i7 IV7", "i7 VII"]),
    "jazz": (
        ["Imaj7 vi7 ii7 V7", "ii7 V7 Imaj7 Imaj7", "Imaj7 II7 ii7 V7", "IVmaj7 iii7 ii7 Imaj7", "iii7 VI7 ii7 V7"],
        ["i7 iv7 VImaj7 V7", "iio V7 i7 i7", "i7 iv7 iio V7", "VImaj7 iio V7 i7"],
    ),
    "blues": (
        ["I7 IV7 I7 I7 IV7 IV7 I7 I7 V7 IV7 I7 V7", "I7 I7 I7 I7 IV7 IV7 I7 I7 V7 V7 I7 V7"],
        ["i7 iv7 i7 i7 iv7 iv7 i7 i7 VI V7 i7 V7"],
    ),
    "folk": (
        ["I IV V I", "I V V I", "I I IV V", "I vi IV V", "I IV I V"],
        ["i iv V i", "i VI iv V", "i III VII i", "i iv i V"],
    ),
    "polka": (["I V7 V7 I", "I I V7 V7 V7 V7 I I", "I IV V7 I"], ["i V7 V7 i", "i iv V7 i"]),
}

# --- styles ---------------------------------------------------------------------------------
# Drum grooves map a key to a pattern over one bar (or two) of steps: X accent, x normal,
# o medium, g ghost, '.' rest. Bass/comp patterns: a letter starts a note, '-' holds it.
# Bass letters: R root, O octave, 5 fifth, 3 third, 6 sixth, 7 seventh, A approach to the
# next chord, g dead note. Comp letters: C chord, c softer chord, a next arpeggio note.
# meter steps: 4/4 16 x 16th, 3/4 12 x 16th, 2/4 8 x 16th, 6/8 12 x 16th, 12/8 12 x 8th.
METERS = {"4/4": (4.0, 16), "3/4": (3.0, 12), "2/4": (2.0, 8), "6/8": (3.0, 12), "12/8": (6.0, 12)}

STYLES = {
    "pop": dict(
        meter="4/4",
        bpm=(90, 124),
        live=True,
        minor=0.4,
        prog="pop",
        harm=("bar", "bar", "2bar", "half", "mixed"),
        push=0.5,
        verse=[
            {K: "X.......X.x.....", S: "....X.......X...", HH: "x.o.x.o.x.o.x.o."},
            {K: "X..x....X.......", S: "....X.......X...", HH: "x.x.x.x.x.x.x.x.", TAMB: "....x.......x..."},
        ],
        chorus=[
            {K: "X.......X.X.....", S: "....X.......X...", OHH: "x.x.x.x.x.x.x.x."},
            {K: "X..x..x.X.......", S: "....X.......X..g", RIDE: "x.o.x.o.x.o.x.o."},
        ],
        bass=["R.R.R.R.R.R.R.R.", "R--.R.R.R--.R.5.", "R-------R---5---", "R-.R-.R.R-.R-.A."],
        bass_names=["Electric Bass (finger)", "Bass", "Electric Bass (pick)"],
        comp=[
            ("C-------C--C----", 0.95),
            ("C---------------", 1.0),
            ("C.c.C.c.C.c.C.c.", 0.8),
            ("..C...C...C...C.", 0.5),
        ],
        comp_names=["Acoustic Grand Piano", "Keyboard", "Electric Guitar (clean)", "Synth Pad", "Piano"],
        leads=["Vocals", "Synth Voice", "Lead 1 (square)"],
    ),
    "rock": dict(
        meter="4/4",
        bpm=(100, 150),
        live=True,
        minor=0.4,
        prog="rock",
        harm=("bar", "2bar", "half", "mixed"),
        push=0.6,
        verse=[
            {K: "X.....x.X.......", S: "....X.......X...", HH: "x.x.x.x.x.x.x.x."},
            {K: "X.......X.x.....", S: "....X.......X...", HH: "x.o.x.o.x.o.x.o."},
        ],
        chorus=[
            {K: "X.....x.X.x.....", S: "....X.......X...", RIDE: "X.x.X.x.X.x.X.x."},
            {K: "X.x.....X.x.....", S: "....X.......X...", OHH: "x.x.x.x.x.x.x.x."},
        ],
        bass=["R.R.R.R.R.R.R.R.", "R-R-R-R-R-R-5-O-", "R.....R.R.R.....", "RRRRRRRRRRRRRRRR"],
        bass_names=["Electric Bass (pick)", "Bass", "Electric Bass (finger)"],
        comp=[("C.C.C.C.C.C.C.C.", 0.6), ("C-----C-C-------", 0.95), ("C-------C-----c-", 0.95)],
        comp_names=["Distortion Guitar", "Overdriven Guitar", "Guitar", "Electric Guitar (clean)"],
        power=True,
        leads=["Vocals", "Overdriven Guitar"],
    ),
    "house": dict(
        meter="4/4",
        bpm=(120, 128),
        live=False,
        minor=0.65,
        prog="dance",
        harm=("2bar", "bar", "2bar"),
        push=0.3,
        verse=[
            {K: "X...X...X...X...", OHH: "..x...x...x...x.", CLAP: "....x.......x..."},
            {K: "X...X...X...X...", HH: "..x...x...x...x.", CLAP: "....x.......x...", SHAKER: "gxgxgxgxgxgxgxgx"},
        ],
        chorus=[
            {K: "X...X...X...X...", OHH: "..X...X...X...X.", CLAP: "....X.......X...", HH: "xgxgxgxgxgxgxgxg"},
            {
                K: "X...X...X...X...",
                OHH: "..X...X...X...X.",
                CLAP: "....X.......X...",
                TAMB: "....x.......x...",
                RIDE: "x.x.x.x.x.x.x.x.",
            },
        ],
        four=True,
        build=True,
        bass=["..R-..R-..R-..R-", "R..R..R...R..R..", "..O...R...O..5..", "R-.R..R.R-.R..O."],
        bass_names=["Synth Bass 1", "Bass", "Synth Bass 2"],
        comp=[
            ("..C..C....C..C..", 0.4),
            ("C..C..C.C..C..C.", 0.35),
            ("C---------------", 1.0),
            ("...C.......C....", 0.5),
        ],
        comp_names=["Acoustic Grand Piano", "Drawbar Organ", "Pad 2 (warm)", "Synth", "Keyboard"],
        leads=["Vocals", "Synth Voice", "Lead 2 (sawtooth)"],
    ),
    "disco": dict(
        meter="4/4",
        bpm=(112, 128),
        live=True,
        minor=0.5,
        prog="dance",
        harm=("bar", "2bar", "half"),
        push=0.4,
        verse=[{K: "X...X...X...X...", S: "....X.......X...", OHH: "..x...x...x...x.", HH: "x...x...x...x..."}],
        chorus=[
            {
                K: "X...X...X...X...",
                S: "....X.......X...",
                OHH: "..X...X...X...X.",
                HH: "xgx.xgx.xgx.xgx.",
                TAMB: "xxxxxxxxxxxxxxxx",
            }
        ],
        four=True,
        bass=["R.O.R.O.R.O.R.O.", "RO.RO.RO.ROR.O.O", "R.O.5.O.R.O.5.O."],
        bass_names=["Electric Bass (finger)", "Bass", "Synth Bass 1"],
        comp=[("C.c.C.c.C.c.C.c.", 0.35), ("C---------------", 1.0), ("..C-..C-..C-..C-", 0.6)],
        comp_names=["Electric Guitar (muted)", "String Ensemble 1", "Electric Piano 1", "Strings"],
        leads=["Vocals", "Brass Section", "Synth Voice"],
    ),
    "funk": dict(
        meter="4/4",
        bpm=(95, 115),
        live=True,
        minor=0.6,
        prog="funk",
        harm=("2bar", "bar", "2bar"),
        push=0.7,
        swing=(0.25, 0.5, 0.56),
        verse=[
            {K: "X..x..x...X..x..", S: "....X..g.g..X..g", HH: "xgxgxgxgxgxgxgxg"},
            {K: "X.x...x.X..x....", S: "....X.g..g.gX.g.", HH: "x.xgx.xgx.xgx.xg"},
        ],
        chorus=[
            {K: "X..x..x...X..x..", S: "....X..g.g..X..g", HH: "xgxgxgxgxgxgxg..", OHH: "..............x."},
            {K: "X.x...x.X.x..x..", S: "....X.g..g..X.g.", HH: "xgxgxgxgxgxgxgxg", COW: "x...x...x...x..."},
        ],
        bass=["R..R..O.R.5.R.gR", "R.gR..R.O..R.5R.", "R..O.gR.R..7.5.A", "R-..gRO.R.g5.RO."],
        bass_names=["Electric Bass (finger)", "Bass", "Synth Bass 2"],
        comp=[("..c.C..c..c.C..c", 0.45), ("C..c..C...c.C...", 0.45), ("..C...C...C..C..", 0.4)],
        comp_names=["Electric Guitar (muted)", "Clavinet", "Electric Piano 1", "Guitar"],
        leads=["Vocals", "Brass Section", "Alto Sax"],
    ),
    "shuffle": dict(
        meter="12/8",
        bpm=(54, 84),
        live=True,
        minor=0.25,
        prog="blues",
        harm=("blues",),
        push=0.0,
        verse=[
            {K: "X.....X.....", S: "...X.....X..", HH: "x.xx.xx.xx.x"},
            {K: "X..x..X..x..", S: "...X.....X..", RIDE: "x.xx.xx.xx.x"},
        ],
        chorus=[
            {K: "X..x..X..x..", S: "...X..g..X.g", RIDE: "X.xX.xX.xX.x"},
            {K: "X.....X.....", S: "...X.....X..", OHH: "x.xx.xx.xx.x"},
        ],
        bass=["R.R3.35.56.6", "R-.R-.5-.5-.", "R.R5.5O.O5.5", "R--5--O--5--"],
        bass_names=["Electric Bass (finger)", "Bass", "Acoustic Bass"],
        comp=[("C..C..C..C..", 0.5), ("..C..C..C..C", 0.3), ("C-----------", 1.0)],
        comp_names=["Acoustic Grand Piano", "Drawbar Organ", "Electric Guitar (clean)", "Keyboard"],
        leads=["Vocals", "Tenor Sax", "Overdriven Guitar"],
    ),
    "swing": dict(
        meter="4/4",
        bpm=(120, 190),
        live=True,
        minor=0.3,
        prog="jazz",
        harm=("bar", "half", "mixed"),
        push=0.3,
        swing=(0.5, 0.6, 0.67),
        verse=[{RIDE: "x...x.x.x...x.x.", PHH: "....x.......x...", K: "g...g...g...g..."}],
        chorus=[
            {RIDE: "X...x.xX...x.x.", PHH: "....x.......x...", K: "g...g...g...g...", S: "..........g....."},
            {RIDE: "x...x.x.x...x.x.", PHH: "....x.......x...", K: "g.......g......."},
        ],
        comp_snare=True,
        walking=True,
        bass=["W"],
        bass_names=["Acoustic Bass", "Bass"],
        comp=[("C-....c-........", 0.8), ("......C-....c...", 0.8), ("C-......C-...c..", 0.7)],
        comp_names=["Acoustic Grand Piano", "Electric Guitar (jazz)", "Piano", "Vibraphone"],
        leads=["Tenor Sax", "Trumpet", "Vocals", "Clarinet"],
    ),
    "trap": dict(
        meter="4/4",
        bpm=(130, 150),
        live=False,
        minor=0.9,
        prog="trap",
        harm=("2bar", "bar", "2bar"),
        push=0.0,
        verse=[
            {K: "X......x..X.....X.x.......X.....", CLAP: "........X...............X.......", HH: "x.x.x.x.x.x.x.x."},
            {K: "X.....X...X..x..X.........X.....", S: "........X...............X.......", HH: "x.x.x.x.x.x.x.x."},
        ],
        chorus=[
            {
                K: "X......x..X..x..X.x.......X..x..",
                CLAP: "........X...............X.......",
                HH: "xxxxxxxxxxxxxxxx",
                OHH: "..............x.",
            },
            {
                K: "X.....X...X.....X..x..X...X.....",
                S: "........X.......",
                CLAP: "........X.......",
                HH: "x.x.x.x.x.x.x.x.",
            },
        ],
        hat_rolls=True,
        follow_kick=True,
        build=True,
        bass=["R"],
        bass_names=["Synth Bass 1", "Bass"],
        comp=[("C---------------", 1.0), ("C-------C-------", 0.9), ("a..a..a.a..a..a.", 0.4)],
        comp_names=["Pad 2 (warm)", "Keyboard", "Synth", "Piano"],
        leads=["Vocals", "Synth Voice", "Flute"],
    ),
    "boombap": dict(
        meter="4/4",
        bpm=(85, 95),
        live=False,
        minor=0.7,
        prog="jazz",
        harm=("2bar", "bar", "2bar"),
        push=0.2,
        swing=(0.25, 0.55, 0.62),
        laid_back=(0.006, 0.015),
        verse=[
            {K: "X......X..X.....", S: "....X.......X...", HH: "x.x.x.x.x.x.x.x."},
            {K: "X..x......X..x..", S: "....X.......X.g.", HH: "x.xxx.x.x.xxx.x."},
        ],
        chorus=[{K: "X......X.XX.....", S: "....X.......X...", HH: "x.x.x.x.x.x.x.o.", OHH: "..............x."}],
        bass=["R------.R-.....R.", "R.....R...R-....", "R-----..R-.5-..."],
        bass_names=["Bass", "Electric Bass (finger)", "Acoustic Bass"],
        comp=[("C--.....C--..c..", 0.9), ("C-------....c---", 0.9), ("C---------------", 1.0)],
        comp_names=["Electric Piano 1", "Keyboard", "Acoustic Grand Piano", "Vibraphone"],
        leads=["Vocals", "Flute", "Alto Sax"],
    ),
    "lofi": dict(
        meter="4/4",
        bpm=(70, 90),
        live=False,
        minor=0.5,
        prog="jazz",
        harm=("bar", "2bar", "half"),
        push=0.3,
        swing=(0.25, 0.56, 0.64),
        laid_back=(0.008, 0.02),
        verse=[
            {K: "X......x.X......", RIM: "....X.......X...", HH: "x.x.x.x.x.x.x.x."},
            {K: "X.........X..x..", S: "....X.......X...", HH: "x.xgx.xgx.xgx.xg"},
        ],
        chorus=[{K: "X......x.X......", S: "....X.......X...", HH: "x.x.x.x.x.x.x.x.", SHAKER: "gxgxgxgxgxgxgxgx"}],
        bass=["R-------R-----5-", "R-----R-...R-...", "R-------5-------"],
        bass_names=["Bass", "Fretless Bass", "Electric Bass (finger)"],
        comp=[("C-------c-------", 1.0), ("C-----..C-------", 0.95), ("C---------------", 1.0)],
        comp_names=["Electric Piano 1", "Keyboard", "Electric Guitar (jazz)", "Piano"],
        leads=["Vocals", "Flute", "Vibraphone"],
    ),
    "dembow": dict(
        meter="4/4",
        bpm=(90, 100),
        live=False,
        minor=0.8,
        prog="trap",
        harm=("bar", "2bar"),
        push=0.2,
        verse=[
            {K: "X...X...X...X...", S: "...x..x....x..x.", HH: "x.x.x.x.x.x.x.x."},
            {K: "X...X...X...X...", RIM: "...x..x....x..x.", HH: "x.x.x.x.x.x.x.x.", TIMB: "......x.......x."},
        ],
        chorus=[
            {K: "X...X...X...X...", S: "...X..X....X..X.", HH: "xxxxxxxxxxxxxxxx", OHH: "..............x."},
            {K: "X...X...X...X...", S: "...X..X....X..X.", CLAP: "...x..x....x..x.", HH: "x.x.x.x.x.x.x.x."},
        ],
        four=True,
        bass=["R..R..R.R..R..R.", "R-.R-.R-R-.R-.R-", "R...R...R...R..."],
        bass_names=["Synth Bass 1", "Bass"],
        comp=[("...C..C....C..C.", 0.4), ("C---------------", 1.0), ("C..C..C.C..C..C.", 0.4)],
        comp_names=["Synth", "Pad 2 (warm)", "Keyboard", "Electric Guitar (clean)"],
        leads=["Vocals", "Synth Voice"],
    ),
    "dnb": dict(
        meter="4/4",
        bpm=(170, 176),
        live=False,
        minor=0.85,
        prog="dance",
        harm=("2bar", "2bar", "bar"),
        push=0.1,
        verse=[
            {K: "X.........X.....", S: "....X.......X...", HH: "x.x.x.x.x.x.x.x."},
            {K: "X.X.......XX....", S: "....X..g.g..X..g", HH: "x.x.x.x.x.x.x.x."},
        ],
        chorus=[
            {K: "X.........X.....", S: "....X..g....X...", RIDE: "x.x.x.x.x.x.x.x."},
            {K: "X.X.......X..x..", S: "....X..g.g..X...", HH: "x.xgx.xgx.xgx.xg"},
        ],
        build=True,
        bass=["R---------------", "R-------R---..O-", "R-----R---R-----"],
        bass_names=["Synth Bass 2", "Bass", "Synth Bass 1"],
        comp=[("C---------------", 1.0), ("C-------C-------", 1.0)],
        comp_names=["Pad 2 (warm)", "Synth Strings 1", "Keyboard", "Pad 1 (new age)"],
        leads=["Vocals", "Synth Voice"],
    ),
    "afrobeats": dict(
        meter="4/4",
        bpm=(100, 115),
        live=False,
        minor=0.4,
        prog="pop",
        harm=("2bar", "bar", "2bar"),
        push=0.4,
        swing=(0.25, 0.52, 0.57),
        verse=[
            {K: "X.....X.X.....X.", CLAP: "....x.......x...", RIM: "..x..x.x..x..x..", SHAKER: "xgxgxgxgxgxgxgxg"},
            {
                K: "X...X...X...X...",
                RIM: "...x..x....x..x.",
                SHAKER: "xgxgxgxgxgxgxgxg",
                CONGA_HI: "......x.......x.",
                CONGA_LO: "..x.......x.....",
            },
        ],
        chorus=[
            {
                K: "X.....X.X.....X.",
                CLAP: "....X.......X...",
                RIM: "..x..x.x..x..x..",
                SHAKER: "xgxgxgxgxgxgxgxg",
                OHH: "..x...x...x...x.",
            }
        ],
        bass=["R..R..R...R.5...", "R-..R..R-..5.R..", "R..R..5.R.....A."],
        bass_names=["Bass", "Synth Bass 1", "Electric Bass (finger)"],
        comp=[("..c...c...c.c...", 0.4), ("C..C..C...C.C...", 0.4), ("C---------------", 1.0)],
        comp_names=["Electric Guitar (clean)", "Keyboard", "Marimba", "Pad 2 (warm)"],
        leads=["Vocals", "Synth Voice", "Steel Drums"],
    ),
    "punk": dict(
        meter="4/4",
        bpm=(180, 200),
        live=True,
        minor=0.3,
        prog="rock",
        harm=("bar", "2bar", "half"),
        push=0.4,
        verse=[
            {K: "X...X...X...X...", S: "....X.......X...", HH: "x.x.x.x.x.x.x.x."},
            {K: "X...X...X...X...", S: "..X...X...X...X.", HH: "x.x.x.x.x.x.x.x."},
        ],
        chorus=[
            {K: "X.......X.X.....", S: "....X.......X...", CRASH: "x.x.x.x.x.x.x.x."},
            {K: "X.x.....X.x.....", S: "....X.......X...", RIDE: "x.x.x.x.x.x.x.x."},
        ],
        bass=["R.R.R.R.R.R.R.R.", "R-R-R-R-R-R-R-R-"],
        bass_names=["Electric Bass (pick)", "Bass"],
        comp=[("C.C.C.C.C.C.C.C.", 0.55), ("C-------C-------", 0.9)],
        comp_names=["Distortion Guitar", "Guitar", "Overdriven Guitar"],
        power=True,
        leads=["Vocals"],
    ),
    "waltz": dict(
        meter="3/4",
        bpm=(88, 160),
        live=True,
        minor=0.35,
        prog="folk",
        harm=("bar", "2bar", "bar"),
        push=0.0,
        verse=[
            {K: "X...........", RIM: "....x...x...", HH: "x...x...x..."},
            {K: "X...........", S: "....g...g...", RIDE: "x...x.x.x..."},
        ],
        chorus=[
            {K: "X.......x...", S: "....x...x...", RIDE: "X...x...x..."},
            {K: "X...........", S: "....x...x...", HH: "x.x.x.x.x.x."},
        ],
        bass=["R-..........5-..........", "R-......5-..", "R-----------"],
        bass_names=["Acoustic Bass", "Bass", "Tuba"],
        comp=[("....C-..C-..", 0.8), ("C-----------", 1.0), ("a.a.a.a.a.a.", 0.9)],
        comp_names=["Accordion", "Acoustic Grand Piano", "Acoustic Guitar (steel)", "String Ensemble 1", "Keyboard"],
        leads=["Vocals", "Flute", "Clarinet"],
    ),
    "ballad68": dict(
        meter="6/8",
        bpm=(42, 66),
        live=True,
        minor=0.4,
        prog="pop",
        harm=("bar", "half", "2bar", "bar"),
        push=0.0,
        verse=[
            {K: "X...........", S: "......X.....", HH: "x.x.x.x.x.x."},
            {K: "X.......x...", RIM: "......X.....", HH: "x.x.x.x.x.x."},
        ],
        chorus=[
            {K: "X...x.......", S: "......X.....", RIDE: "x.x.x.x.x.x."},
            {K: "X.......x...", S: "......X...g.", OHH: "x.x.x.x.x.x."},
        ],
        bass=["R-----------", "R-----5-----", "R---.R5-----"],
        bass_names=["Electric Bass (finger)", "Bass", "Fretless Bass"],
        comp=[("a.a.a.a.a.a.", 0.95), ("C-----c-----", 1.0), ("C-c-c-C-c-c-", 0.8)],
        comp_names=["Acoustic Grand Piano", "Acoustic Guitar (steel)", "Keyboard", "Electric Guitar (clean)"],
        leads=["Vocals", "String Ensemble 1"],
    ),
    "bossa": dict(
        meter="4/4",
        bpm=(120, 140),
        live=True,
        minor=0.45,
        prog="jazz",
        harm=("2bar", "bar", "mixed"),
        push=0.6,
        verse=[
            {K: "X..xX..xX..xX..x", RIM: "x..x..x...x..x..", HH: "x.x.x.x.x.x.x.x."},
            {K: "X..xX..xX..xX..x", RIM: "..x..x..x..x..x.x..x..x...x..x..", SHAKER: "xgxgxgxgxgxgxgxg"},
        ],
        chorus=[{K: "X..xX..xX..xX..x", RIM: "x..x..x...x..x..", RIDE: "x.x.x.x.x.x.x.x."}],
        bass=["R-----5-R-----5-", "R--5-.5-R--5-.A-"],
        bass_names=["Acoustic Bass", "Bass"],
        comp=[("C..C..C...C..C..", 0.45), ("C..c..C-..c..C-.", 0.5)],
        comp_names=["Acoustic Guitar (nylon)", "Acoustic Grand Piano", "Electric Piano 1", "Guitar"],
        leads=["Vocals", "Flute", "Tenor Sax"],
    ),
    "polka": dict(
        meter="2/4",
        bpm=(100, 136),
        live=True,
        minor=0.2,
        prog="polka",
        harm=("bar", "2bar"),
        push=0.0,
        verse=[{K: "X...X...", S: "..x...x."}, {K: "X...X...", S: "..x...x.", HH: "..x...x."}],
        chorus=[{K: "X...X...", S: "..X...X.", CRASH: "..x...x."}, {K: "X...X...", S: "..X.g.X.", HH: "x.x.x.x."}],
        bass=["R...5...", "R...5...O...5..."],
        bass_names=["Tuba", "Bass", "Acoustic Bass"],
        comp=[("..C-..C-", 0.6), ("..C...C.", 0.4)],
        comp_names=["Accordion", "Keyboard", "Acoustic Guitar (steel)"],
        leads=["Clarinet", "Trumpet", "Vocals"],
    ),
    "metal": dict(
        meter="4/4",
        bpm=(140, 180),
        live=True,
        minor=0.9,
        prog="rock",
        harm=("bar", "2bar", "bar"),
        push=0.2,
        verse=[
            {K: "X.....X.X.......", S: "........X.......", CRASH2: "x...x...x...x..."},
            {K: "X.X...X.X.X...X.", S: "........X.......", HH: "x.x.x.x.x.x.x.x."},
        ],
        chorus=[
            {K: "xxxxxxxxxxxxxxxx", S: "....X.......X...", RIDE: "x.x.x.x.x.x.x.x."},
            {K: "xxxxxxxxxxxxxxxx", S: "........X.......", CRASH: "x...x...x...x..."},
        ],
        bass=["R.R.R.R.R.R.R.R.", "RRRRRRRRR.R.R.R.", "R-------R-R-R-R-"],
        bass_names=["Electric Bass (pick)", "Bass"],
        comp=[("C.C.C.C.C-C-C.C.", 0.6), ("C-------C-------", 0.95), ("CCCCCCCCC-..C-..", 0.5)],
        comp_names=["Distortion Guitar", "Guitar"],
        power=True,
        leads=["Vocals", "Distortion Guitar"],
    ),
    "jazzwaltz": dict(
        meter="3/4",
        bpm=(130, 200),
        live=True,
        minor=0.4,
        prog="jazz",
        harm=("bar", "2bar"),
        push=0.0,
        swing=(0.5, 0.6, 0.67),
        verse=[
            {RIDE: "x...x.x.x...", PHH: "....x.......", K: "g..........."},
            {RIDE: "x...x.x.x.x.", PHH: "....x...x...", K: "g.......g..."},
        ],
        chorus=[{RIDE: "X...x.x.x...", PHH: "....x...x...", K: "g...........", S: "......g....."}],
        comp_snare=True,
        walking=True,
        bass=["W"],
        bass_names=["Acoustic Bass", "Bass"],
        comp=[("C-..c-......", 0.8), ("....C-..C-..", 0.7), ("C-.....c-...", 0.8)],
        comp_names=["Acoustic Grand Piano", "Electric Guitar (jazz)", "Vibraphone", "Piano"],
        leads=["Tenor Sax", "Flute", "Vocals", "Trumpet"],
    ),
    "rock68": dict(
        meter="6/8",
        bpm=(60, 100),
        live=True,
        minor=0.5,
        prog="rock",
        harm=("bar", "2bar", "half"),
        push=0.0,
        verse=[
            {K: "X...x.......", S: "......X.....", HH: "x.x.x.x.x.x."},
            {K: "X.........x.", S: "......X.....", HH: "x.x.x.x.x.x."},
        ],
        chorus=[
            {K: "X...x...x...", S: "......X.....", RIDE: "X.x.x.X.x.x."},
            {K: "X.x.....x...", S: "......X.....", OHH: "x.x.x.x.x.x."},
        ],
        bass=["R---R-R---R-", "R-----R-5-O-", "R.R.R.R.R.R."],
        bass_names=["Electric Bass (finger)", "Bass", "Electric Bass (pick)"],
        comp=[("a.a.a.a.a.a.", 0.95), ("C---c-C---c-", 0.9), ("C-----C-----", 1.0)],
        comp_names=["Electric Guitar (clean)", "Overdriven Guitar", "Acoustic Guitar (steel)", "Rock Organ"],
        leads=["Vocals", "Overdriven Guitar"],
    ),
}
STYLE_NAMES = tuple(STYLES)
SECTION_ENERGY = {"intro": 0.88, "verse": 0.92, "chorus": 1.0, "bridge": 0.9, "breakdown": 0.85, "outro": 0.95}


# --- time ------------------------------------------------------------------------------------


class TimeMap:
    """Quarter-note position -> seconds, linear inside each beat (the tempo holds for a beat)."""

    def __init__(self, q0: float, beat_q: float, beat_times: list[float]):
        self.q0, self.beat_q, self.bt = q0, beat_q, beat_times

    def t(self, q: float) -> float:
        x = (q - self.q0) / self.beat_q
        i = min(max(int(math.floor(x)), 0), len(self.bt) - 2)
        return self.bt[i] + (x - i) * (self.bt[i + 1] - self.bt[i])


def swing_pos(pos: float, unit: float, r: float) -> float:
    """Delay the off-beat ``unit`` inside each pair of ``unit``s: r=0.5 straight, 2/3 triplet swing."""
    k = math.floor(pos / (2 * unit) + 1e-9)
    x = pos - k * 2 * unit
    if x <= unit:
        y = x / unit * (2 * unit * r)
    else:
        y = 2 * unit * r + (x - unit) / unit * (2 * unit * (1 - r))
    return k * 2 * unit + y


# --- helpers ----------------------------------------------------------------------------------


def parse_pattern(pat: str, steps: int, bar: int):
    """[(step, char, length_in_steps)] for one bar of a (possibly multi-bar) pattern."""
    n = len(pat) // steps
    seg = pat[(bar % max(n, 1)) * steps : (bar % max(n, 1)) * steps + steps]
    out = []
    i = 0
    while i < len(seg):
        c = seg[i]
        if c not in ".-":
            j = i + 1
            while j < len(seg) and seg[j] == "-":
                j += 1
            out.append((i, c, j - i))
            i = j
        else:
            i += 1
    return out


def voice_chord(pcs, prev, lo=52, hi=77, power=False):
    """A close voicing of the pitch classes near ``prev`` (the last voicing)."""
    if power:
        r = pcs[0]
        base = lo + ((r - lo) % 12)
        if base > 60:
            base -= 12
        return [base, base + 7, base + 12]
    best, cost = None, 1e9
    for rot in range(len(pcs)):
        order = list(pcs[rot:]) + list(pcs[:rot])
        for start in range(lo, lo + 12):
            if start % 12 != order[0]:
                continue
            v = [start]
            for pc in order[1:]:
                n = v[-1] + 1
                while n % 12 != pc:
                    n += 1
                v.append(n)
            if v[-1] > hi:
                continue
            c = abs(sum(v) / len(v) - (sum(prev) / len(prev) if prev else 63)) + (0.5 if rot else 0)
            if c < cost:
                best, cost = v, c
    return best or sorted(lo + ((pc - lo) % 12) for pc in pcs)


def near(pc: int, ref: int, lo: int, hi: int) -> int:
    """The pitch of class ``pc`` closest to ``ref`` inside [lo, hi]."""
    cands = [p for p in range(lo, hi + 1) if p % 12 == pc % 12]
    return min(cands, key=lambda p: abs(p - ref))


# --- the song ---------------------------------------------------------------------------------


def _sections(rng, style, sp, bar_s, target_s, no_drums):
    dance = style in ("house", "trap", "dnb", "dembow", "afrobeats", "disco")
    blues = sp["harm"] == ("blues",)
    if dance:
        tmpl = ["intro", "verse", "chorus", "breakdown", "chorus", "verse", "chorus", "outro"]
    else:
        tmpl = ["intro", "verse", "chorus", "verse", "chorus", "bridge", "chorus", "chorus", "outro"]
    if rng.random() < 0.2:
        tmpl = tmpl[1:]  # straight in, no intro
    secs = []
    total = 0.0
    for name in tmpl:
        if blues:
            bars = 4 if name in ("intro", "outro") else 12
        elif name in ("intro", "outro", "bridge", "breakdown"):
            bars = rng.choice((4, 8)) if bar_s < 2.5 else rng.choice((2, 4))
        elif name == "verse":
            bars = rng.choice((8, 16)) if bar_s < 2.2 else 8
        else:
            bars = 8
        if total + bars * bar_s > target_s and len(secs) >= (2 if blues else 3):
            if name != "outro" or total + bars * bar_s > 110:
                continue
        secs.append({"name": name, "bars": bars})
        total += bars * bar_s
    while total < 48:
        b = 12 if blues else 8
        secs.insert(len(secs) - 1, {"name": "chorus", "bars": b})
        total += b * bar_s
    for s in secs:
        n = s["name"]
        if no_drums:
            s["drums"] = "none"
        elif n == "intro":
            s["drums"] = rng.choices(["none", "light", "full", "drumsonly"], [0.35, 0.3, 0.25, 0.1])[0]
        elif n == "breakdown":
            s["drums"] = rng.choices(["none", "light", "build"], [0.45, 0.25, 0.3 if sp.get("build") else 0.0])[0]
        elif n == "bridge":
            s["drums"] = rng.choices(["full", "light", "none"], [0.6, 0.25, 0.15])[0]
        elif n == "outro":
            s["drums"] = rng.choices(["full", "light", "none"], [0.6, 0.25, 0.15])[0]
        else:
            s["drums"] = "full"
        s["groove"] = "chorus" if n in ("chorus", "outro") else "verse"
    return secs


def _progression(rng, sp, mode, bars, qpb, beat_q, harm):
    """[(start_q, end_q, root_pc_offset, quality)] covering ``bars`` bars from 0."""
    fam = PROGS[sp["prog"]][1 if mode == "minor" else 0]
    prog = rng.choice(fam).split()
    spans = []
    q, i = 0.0, 0
    end = bars * qpb
    if harm == "blues":
        for b in range(bars):
            root, qual = DEG[prog[b % len(prog)]]
            spans.append((b * qpb, (b + 1) * qpb, root, qual))
        return spans
    if harm == "bar":
        durs = [qpb]
    elif harm == "2bar":
        durs = [2 * qpb]
    elif harm == "half":
        durs = [2.0, 1.0] if (qpb == 3 and beat_q == 1.0) else [qpb / 2, qpb / 2]  # 3/4: beats 1-2 and 3
    else:  # mixed
        durs = rng.choice(([qpb, qpb, qpb / 2, qpb / 2], [2 * qpb, qpb, qpb], [qpb, qpb / 2, qpb / 2, 2 * qpb]))
    k = 0
    while q < end - 1e-9:
        d = durs[k % len(durs)]
        root, qual = DEG[prog[i % len(prog)]]
        spans.append((q, min(end, q + d), root, qual))
        q += d
        i += 1
        k += 1
    return spans


def _tidy(notes, drum):
    """Sorted notes, none negative, no two of one pitch overlapping (a score has none)."""
    notes = sorted(
        ([max(0.0, a), max(a, b), int(p), min(1.0, max(0.01, v))] for a, b, p, v in notes), key=lambda n: (n[0], n[2])
    )
    out, last = [], {}
    for n in notes:
        j = last.get(n[2])
        if j is not None:
            prev = out[j]
            if n[0] - prev[0] < (0.012 if drum else 0.03):
                if n[3] > prev[3]:
                    prev[3] = n[3]
                prev[1] = max(prev[1], n[1])
                continue
            if prev[1] > n[0] - 0.004:
                prev[1] = max(prev[0] + 0.01, n[0] - 0.004)
        last[n[2]] = len(out)
        out.append(n)
    return out


def style_for_seed(seed: int) -> str:
    """Ten consecutive seeds share a style, so each style gets 7 bench, 2 holdout, 1 test
    seeds per block of ten (schema.split_for_seed uses seed % 10)."""
    return STYLE_NAMES[(seed // 10) % len(STYLE_NAMES)]


def build_song(seed: int) -> dict:
    rng = random.Random(seed * 7919 + 17)
    style = style_for_seed(seed)
    sp = STYLES[style]
    meter = sp["meter"]
    qpb, steps = METERS[meter]
    bpb, beat_q = schema.meter_beats(meter)
    step_q = qpb / steps
    beat_bpm = rng.uniform(*sp["bpm"])
    if rng.random() < 0.6:
        beat_bpm = float(round(beat_bpm))
    else:
        beat_bpm = round(beat_bpm, 2)
    qbpm = beat_bpm * beat_q  # quarter notes per minute (dotted-quarter beats x 1.5 for x/8)
    mode = "minor" if rng.random() < sp["minor"] else "major"
    tonic = rng.choice(MINOR_KEYS if mode == "minor" else MAJOR_KEYS)
    tpc = PC[tonic]
    no_drums = seed % 20 == 13 or seed % 40 == 27 or seed % 60 == 49  # ~9%, in every split
    bar_s = qpb * 60.0 / qbpm
    target = rng.uniform(45, 112)
    secs = _sections(rng, style, sp, bar_s, target, no_drums)
    nbars = sum(s["bars"] for s in secs)

    # --- tempo: steady, drift, ritardando, section change ---
    live = sp["live"]
    kinds = ["steady", "drift", "rit", "section", "drift+rit"]
    w = [0.45, 0.25, 0.12, 0.1, 0.08] if live else [0.85, 0.0, 0.0, 0.15, 0.0]
    tempo_kind = rng.choices(kinds, w)[0]
    pickup = rng.choice((1, 2)) if rng.random() < 0.2 and bpb >= 2 else 0
    if pickup >= bpb:
        pickup = bpb - 1
    nbeats = pickup + (nbars + 1) * bpb + 2 * bpb  # a bar for the final chord, two to spare
    tempos = [qbpm] * nbeats
    drift_info = {}
    if "drift" in tempo_kind:
        amp = rng.uniform(0.012, 0.03) * rng.choice((-1, 1))
        shape = rng.choice(("ramp", "wave"))
        ph, f2 = rng.uniform(0, 2 * math.pi), rng.uniform(0.7, 2.2)
        n = pickup + nbars * bpb
        for b in range(nbeats):
            x = min(b / max(n, 1), 1.0)
            g = (
                x
                if shape == "ramp"
                else 0.6 * math.sin(math.pi * x) + 0.4 * math.sin(2 * math.pi * f2 * x + ph) - 0.4 * math.sin(ph)
            )
            tempos[b] = qbpm * (1 + amp * g)
        drift_info = {"drift": round(amp, 4), "shape": shape}
    if tempo_kind == "section" and len(secs) > 2:
        k = rng.randrange(2, len(secs))
        f = rng.choice((-1, 1)) * rng.uniform(0.03, 0.1)
        back = rng.random() < 0.5 and k < len(secs) - 1
        b0 = pickup + sum(s["bars"] for s in secs[:k]) * bpb
        b1 = b0 + secs[k]["bars"] * bpb if back else nbeats
        for b in range(b0, min(b1, nbeats)):
            tempos[b] = qbpm * (1 + f)
        drift_info = {"section_change": round(f, 4), "at_section": secs[k]["name"], "returns": back}
    elif tempo_kind == "section":
        tempo_kind = "steady"
    rit_bars = 0
    if "rit" in tempo_kind:
        rit_bars = rng.choice((1, 2, 2, 3)) if bar_s > 1.6 else rng.choice((2, 3, 4))
        end_f = rng.uniform(0.7, 0.88)
        b0 = pickup + (nbars - rit_bars) * bpb
        nb = rit_bars * bpb
        for b in range(b0, nbeats):
            x = min((b - b0 + 1) / nb, 1.0)
            tempos[b] = tempos[b0 - 1] * (1 - (1 - end_f) * x**1.5)
        drift_info["ritardando"] = {"bars": rit_bars, "end_factor": round(end_f, 3)}
    tempos = [round(t, 3) for t in tempos]
    start_pad = rng.choice((0.0, 0.0, rng.uniform(0.02, 0.4)))
    bt = [start_pad]
    for b in range(nbeats):
        bt.append(bt[-1] + beat_q * 60.0 / tempos[b])
    q0 = -pickup * beat_q
    tm = TimeMap(q0, beat_q, bt)

    # --- instruments ---
    swing = sp.get("swing")
    sw_r = rng.uniform(swing[1], swing[2]) if swing else None
    if swing and style in ("funk", "afrobeats") and rng.random() < 0.3:
        sw_r = 0.5  # some played straight
    groove = {g: rng.choice(sp[g]) for g in ("verse", "chorus")}
    bass_pat = rng.choice(sp["bass"])
    comp_pat, comp_gate = rng.choice(sp["comp"])
    bass_name = rng.choice(sp["bass_names"])
    comp_name = rng.choice(sp["comp_names"])
    has_lead = rng.random() < 0.5
    lead_name = rng.choice(sp["leads"]) if has_lead else None
    if lead_name in (bass_name, comp_name):
        lead_name = "Vocals"
    hum = (0.004, 0.006, 0.008, 0.012) if live else (0.0008, 0.001, 0.002, 0.006)  # sd in s: drums, bass, chords, lead
    push_q = rng.choice((0.5, 0.5, 0.25)) if rng.random() < sp["push"] else 0.0
    laid = rng.uniform(*sp["laid_back"]) if sp.get("laid_back") else 0.0

    drums, bass, comp, lead = [], [], [], []

    def pos(bar_q, p):
        if sw_r is not None:
            p = swing_pos(p, swing[0], sw_r)
        return bar_q + p

    def at(q, sd):
        return tm.t(q) + rng.gauss(0.0, sd)

    energy = [1.0]  # section dynamics: verses a little softer than choruses

    def hit(q, key, v, sd=hum[0]):
        t = max(0.0, at(q, sd * (0.6 if key in (K, K2) else 1.0)) + (laid if key in (S, CLAP, RIM) else 0.0))
        vv = min(1.0, max(0.05, v * energy[0] + rng.uniform(-0.06, 0.04)))
        drums.append([t, t + min(0.06, step_q * 30 / qbpm), key, vv])

    # chords for the whole song, section by section
    spans = []
    bar0 = 0
    harm_by_sec = {}
    for s in secs:
        if s["name"] not in harm_by_sec:
            harm_by_sec[s["name"]] = (rng.choice(sp["harm"]), rng.random())
        harm, r = harm_by_sec[s["name"]]
        sub = _progression(
            random.Random(seed * 31 + zlib.crc32(s["name"].encode()) % 1000), sp, mode, s["bars"], qpb, beat_q, harm
        )
        if s["name"] == "intro" and harm == "blues":
            sub = [
                (b * qpb, (b + 1) * qpb, DEG[c][0], DEG[c][1])
                for b, c in enumerate(("I7", "IV7", "I7", "V7") if mode == "major" else ("i7", "iv7", "i7", "V7"))
            ][: s["bars"]]
        for a, b, root, qual in sub:
            spans.append([bar0 * qpb + a, bar0 * qpb + b, root, qual])
        s["start_bar"] = bar0
        bar0 += s["bars"]
    # final chord: the tonic
    spans.append([nbars * qpb, (nbars + 1) * qpb, 0, "min" if mode == "minor" else "maj"])
    # pushes: a change on a bar line arrives an 8th/16th early
    pushed = set()
    if push_q:
        for i in range(1, len(spans) - 1):
            if abs(spans[i][0] / qpb - round(spans[i][0] / qpb)) < 1e-9 and rng.random() < 0.6:
                spans[i - 1][1] -= push_q
                spans[i][0] -= push_q
                pushed.add(round(spans[i][0], 6))
    span_starts = [sp_[0] for sp_ in spans]

    def chord_at(q):
        i = max(0, bisect.bisect_right(span_starts, q + 1e-9) - 1)
        return spans[i], (spans[i + 1] if i + 1 < len(spans) else spans[i])

    sec_of_bar = []
    for si, s in enumerate(secs):
        sec_of_bar += [si] * s["bars"]

    prev_voicing = None
    prev_bass = 40
    arp_i = 0
    scale = MINOR_SCALE if mode == "minor" else MAJOR_SCALE

    # pickup: a drum fill or a bass/lead note into bar 1
    if pickup:
        if not no_drums and secs[0]["drums"] in ("full", "drumsonly"):
            n = int(pickup * beat_q / step_q)
            for j in range(n):
                hit(-pickup * beat_q + j * step_q, S, 0.45 + 0.4 * j / max(n, 1))
        else:
            bass.append([max(0.0, at(-beat_q, hum[1])), tm.t(-0.05), near((tpc + 7) % 12, 40, 28, 50), 0.7])

    after_push = {int(round((pq + 0.75) // qpb)) for pq in pushed}  # bars whose downbeat was anticipated
    for bar in range(nbars):
        si = sec_of_bar[bar]
        s = secs[si]
        bq = bar * qpb
        in_sec = bar - s["start_bar"]
        last_of_sec = in_sec == s["bars"] - 1
        energy[0] = SECTION_ENERGY.get(s["name"], 1.0)
        nxt = secs[si + 1] if si + 1 < len(secs) else None
        # ---------------- drums ----------------
        dstate = s["drums"]
        g = groove[s["groove"]]
        fill_beats = 0
        if last_of_sec and nxt is not None and nxt["drums"] in ("full",) and dstate in ("full", "light", "drumsonly"):
            fill_beats = rng.choice((1, 1, 2, 2, bpb)) if bpb > 2 else rng.choice((1, 2))
            if style == "polka":
                fill_beats = 1
        elif dstate == "full" and in_sec % 8 == 7 and rng.random() < 0.3 and bpb > 2:
            fill_beats = 1
        fill_from = qpb - fill_beats * beat_q
        if dstate in ("full", "light", "drumsonly"):
            for key, pat in g.items():
                if (
                    dstate == "light"
                    and key not in (HH, PHH, RIDE, RIM, SHAKER, OHH, TAMB)
                    and not (sp.get("four") and key == K)
                ):
                    continue
                for st, c, _ in parse_pattern(pat, steps, in_sec):
                    p = st * step_q
                    if fill_beats and p >= fill_from - 1e-9 and key not in (K, K2):
                        continue
                    if fill_beats and p >= fill_from - 1e-9 and key in (K, K2) and rng.random() < 0.5:
                        continue
                    v = VEL[c]
                    if key in (HH, OHH, RIDE) and (p / beat_q) % 1 == 0:
                        v = min(1.0, v + 0.08)
                    hit(pos(bq, p), key, v)
            # variations
            if sp.get("hat_rolls"):
                for beat in range(bpb):
                    if fill_beats and beat * beat_q >= fill_from:
                        continue
                    if rng.random() < 0.35:
                        kind = rng.choice(("32", "32", "t16", "t8", "64"))
                        sub = {"32": 0.125, "t16": 1 / 6, "t8": 1 / 3, "64": 0.0625}[kind]
                        a = beat * beat_q + (0.5 if kind == "64" or rng.random() < 0.4 else 0.0)
                        e = (beat + 1) * beat_q
                        x = a
                        # replace the plain hats of that span
                        drums[:] = [
                            d for d in drums if not (d[2] == HH and tm.t(bq + a) - 0.003 <= d[0] < tm.t(bq + e) - 0.003)
                        ]
                        while x < e - 1e-9:
                            hit(bq + x, HH, 0.45 + 0.4 * (x - a) / (e - a))
                            x += sub
            if sp.get("comp_snare") and dstate == "full":
                for _ in range(rng.randint(0, 3)):
                    hit(
                        pos(bq, rng.randrange(steps // 2) * 2 * step_q + rng.choice((0, 2)) * step_q),
                        S,
                        rng.uniform(0.25, 0.5),
                    )
            if dstate == "full" and in_sec % 4 == 3 and not fill_beats and rng.random() < 0.3:
                hit(pos(bq, qpb - beat_q / 2), OHH if OHH not in g else S, 0.6)
        if dstate == "build" and in_sec >= s["bars"] - 2:
            k2 = in_sec - (s["bars"] - 2)
            sub = beat_q / 2 if k2 == 0 else beat_q / 4
            x = 0.0
            while x < qpb - 1e-9:
                hit(bq + x, S if style != "trap" else CLAP, 0.35 + 0.5 * (k2 * qpb + x) / (2 * qpb))
                x += sub
        if fill_beats:
            kind = (
                rng.choice(("snare", "toms", "toms", "mixed")) if style not in ("house", "trap", "dembow") else "snare"
            )
            sub = step_q if meter != "12/8" else step_q
            if meter in ("6/8",) or (meter == "12/8"):
                sub = beat_q / 3 if meter == "12/8" else step_q * 2
            if style == "trap":
                sub = step_q / 2
            n = int(round(fill_beats * beat_q / sub))
            for j in range(n):
                qq = bq + fill_from + j * sub
                v = 0.5 + 0.45 * j / max(n - 1, 1)
                if kind == "snare":
                    hit(qq, CLAP if style == "trap" and j % 2 else S, v)
                elif kind == "toms":
                    hit(qq, TOMS_DOWN[min(len(TOMS_DOWN) - 1, j * len(TOMS_DOWN) // n)], v)
                else:
                    hit(qq, S if j % 2 == 0 else TOMS_DOWN[min(4, j * 5 // n)], v)
                    if j % 4 == 0:
                        hit(qq, K, 0.8)
        # crash on a section start
        if in_sec == 0 and dstate in ("full", "drumsonly") and bar > 0:
            hit(bq, rng.choice((CRASH, CRASH, CRASH2)), 0.9)
            if not any(abs(d[0] - tm.t(bq)) < 0.02 and d[2] == K for d in drums[-20:]):
                hit(bq, K, 0.9)

        if dstate == "drumsonly":
            continue
        # ---------------- bass ----------------
        if sp.get("walking"):
            for beat in range(bpb):
                q = bq + beat * beat_q
                (cs, ce, root, qual), nx = chord_at(q)
                ivs = QUAL[qual]
                if beat == 0 or abs(q - cs) < 1e-9:
                    p = near(tpc + root, prev_bass, 28, 50)
                elif abs(q + beat_q - ce) < 1e-9 and nx is not None:
                    tgt = near(tpc + nx[2], prev_bass, 28, 50)
                    p = tgt + rng.choice((-1, 1, -2))
                else:
                    cand = [near(tpc + root + i, prev_bass + rng.choice((-3, 3)), 28, 52) for i in ivs] + [
                        prev_bass + rng.choice((-2, -1, 1, 2))
                    ]
                    p = rng.choice(cand)
                t = at(pos(bq, beat * beat_q), hum[1])
                bass.append(
                    [max(0.0, t), tm.t(pos(bq, beat * beat_q + beat_q * 0.9)), p, 0.72 + rng.uniform(-0.08, 0.08)]
                )
                prev_bass = p
        else:
            if sp.get("follow_kick"):
                ks = (
                    [st for st, c, _ in parse_pattern(g[K], steps, in_sec) if c in "Xx"]
                    if dstate != "none"
                    else [0, steps // 2]
                )
                notes = [
                    (st, "R" if rng.random() < 0.85 else "O", (ks[i + 1] if i + 1 < len(ks) else steps) - st)
                    for i, st in enumerate(ks)
                ]
            else:
                notes = parse_pattern(bass_pat, steps, in_sec)
            for st, c, ln in notes:
                p_in = st * step_q
                if bar in after_push and p_in < 0.3:
                    continue
                q = bq + p_in
                (cs, ce, root, qual), nx = chord_at(q + 1e-6)
                if round(q, 6) in pushed:
                    pass
                r = near(tpc + root, prev_bass, 28, 48)
                ivs = QUAL[qual]
                vel = 0.75
                glen = ln * step_q * 0.9
                if c == "O":
                    p = r + 12
                elif c == "5":
                    p = r + 7 if r + 7 <= 52 else r - 5
                elif c == "3":
                    p = r + ivs[1]
                elif c == "6":
                    p = r + 9
                elif c == "7":
                    p = r + (ivs[3] if len(ivs) > 3 else 10)
                elif c == "A":
                    p = near(tpc + nx[2], r, 28, 52) + rng.choice((-1, 1))
                elif c == "g":
                    p, vel, glen = r, 0.35, step_q * 0.4
                else:
                    p = r
                if c == "R":
                    prev_bass = r
                qs = pos(bq, p_in)
                t = at(qs, hum[1])
                t_end = tm.t(pos(bq, p_in + glen))
                bass.append(
                    [max(0.0, t), max(t + 0.03, t_end), p, min(1.0, vel * energy[0] + rng.uniform(-0.08, 0.08))]
                )
            # the pushed change: bass anticipates the next root
            for pq in pushed:
                if bq + qpb - 0.75 < pq < bq + qpb:
                    (cs, ce, root, qual), _ = chord_at(pq + 1e-6)
                    p = near(tpc + root, prev_bass, 28, 48)
                    bass[:] = [b for b in bass if not (tm.t(pq) - 0.01 <= b[0] < tm.t(bq + qpb + 0.25))]
                    for b in bass[-4:]:
                        if b[1] > tm.t(pq):
                            b[1] = tm.t(pq) - 0.01
                    t = at(pq, hum[1])
                    bass.append([t, tm.t(min(bq + qpb + 0.9 * beat_q, ce - 0.05)), p, 0.8 * energy[0]])
        # ---------------- chords ----------------
        hits = parse_pattern(comp_pat, steps, in_sec)
        if s["name"] == "breakdown" or (s["name"] == "intro" and s["drums"] == "none"):
            if comp_gate < 0.9 and rng.random() < 0.7:
                hits = [(0, "C", steps)]  # held chords where the groove drops out
        for st, c, ln in hits:
            p_in = st * step_q
            if bar in after_push and p_in < 0.3 and comp_gate >= 0.9:
                continue
            q = bq + p_in
            (cs, ce, root, qual), nx = chord_at(q + 1e-6)
            pcs = [(tpc + root + i) % 12 for i in QUAL[qual]]
            voicing = voice_chord(pcs, prev_voicing, power=sp.get("power", False))
            prev_voicing = voicing
            end_q = min(q + ln * step_q * comp_gate, ce + 0.01 if ce > q else q + ln * step_q * comp_gate)
            v0 = (0.68 if c == "C" else 0.5) * energy[0] + rng.uniform(-0.08, 0.08)
            qs = pos(bq, p_in)
            t0 = at(qs, hum[2])
            t1 = tm.t(pos(bq, min(p_in + ln * step_q * comp_gate, end_q - bq)))
            if c == "a":
                seq = [voicing[0] - 12] + voicing + voicing[-2:0:-1]
                p = seq[arp_i % len(seq)]
                arp_i += 1
                comp.append([max(0.0, t0), max(t0 + 0.05, t1 + 0.15), p, v0])
                continue
            strum = 0.0
            if "Guitar" in comp_name or comp_name == "Guitar":
                strum = rng.uniform(0.004, 0.012)
            up = (st * step_q / beat_q) % 1 > 0.01
            order = list(reversed(voicing)) if up else voicing
            for j, p in enumerate(order):
                tj = max(0.0, t0 + j * strum + rng.gauss(0, 0.002))
                comp.append([tj, max(tj + 0.04, t1), p, min(1.0, max(0.1, v0 + rng.uniform(-0.06, 0.06)))])
        for pq in pushed:
            if bq + qpb - 0.75 < pq < bq + qpb and comp_gate >= 0.9:
                # a held chord part re-attacks on the push
                (cs, ce, root, qual), _ = chord_at(pq + 1e-6)
                pcs = [(tpc + root + i) % 12 for i in QUAL[qual]]
                voicing = voice_chord(pcs, prev_voicing, power=sp.get("power", False))
                tp = tm.t(pq)
                comp[:] = [n for n in comp if not (tp - 0.01 <= n[0] < tm.t(bq + qpb + 0.3))]
                for n in comp:
                    if n[0] < tp < n[1]:
                        n[1] = tp - 0.01
                t0 = at(pq, hum[2])
                for p in voicing:
                    comp.append([max(0.0, t0), tm.t(min(bq + qpb + qpb * 0.9, ce)), p, 0.65 * energy[0]])

    # ---------------- lead melody ----------------
    if has_lead:
        center = near(tpc, 70, 62, 74)
        cells = {
            16: [
                [4, 4, 4, 4],
                [8, 4, 4],
                [2, 2, 4, 2, 2, 4],
                [6, 2, 4, 4],
                [4, 2, 2, 8],
                [3, 3, 2, 4, 4],
                [2, 2, 2, 2, 8],
                [1, 1, 2, 2, 2, 4, 4],
            ],
            12: [[6, 6], [4, 2, 6], [2, 2, 2, 6], [4, 4, 4], [2, 2, 2, 2, 4], [6, 2, 2, 2]],
            8: [[4, 4], [2, 2, 4], [2, 2, 2, 2], [1, 1, 2, 4]],
        }[steps]
        phrases = {}
        for s in secs:
            if s["name"] not in ("verse", "chorus", "bridge"):
                continue
            if s["name"] not in phrases:
                rh = []
                for _ in range(2):
                    rh.append([x for x in rng.choice(cells)])
                rh[1][-1] = -abs(rh[1][-1])  # rest at phrase end
                phrases[s["name"]] = rh
            rh = phrases[s["name"]]
            p = center
            for b in range(s["bars"]):
                bar = s["start_bar"] + b
                bq = bar * qpb
                st = 0
                for d in rh[b % 2]:
                    ln = abs(d)
                    if d > 0:
                        q = bq + st * step_q
                        (cs, ce, root, qual), _ = chord_at(q + 1e-6)
                        strong = (st * step_q) % beat_q < 1e-9
                        if strong:
                            tones = [near(tpc + root + i, p, 58, 86) for i in QUAL[qual]]
                            p = min(tones, key=lambda x: abs(x - p) + rng.uniform(0, 4))
                        else:
                            deg = [(tpc + sc) % 12 for sc in scale]
                            stepd = rng.choice((-2, -1, -1, 1, 1, 2))
                            cand = sorted({near(pc, p, 58, 86) for pc in deg})
                            idx = min(range(len(cand)), key=lambda i: abs(cand[i] - p))
                            p = cand[max(0, min(len(cand) - 1, idx + stepd))]
                        if p > center + 9:
                            p -= 12
                        if p < center - 9:
                            p += 12
                        t = at(pos(bq, st * step_q), hum[3])
                        lead.append(
                            [
                                max(0.0, t),
                                tm.t(
                                    pos(
                                        bq,
                                        (st + ln) * step_q * 0.98
                                        if st + ln < steps
                                        else st * step_q + ln * step_q * 0.9,
                                    )
                                ),
                                p,
                                min(1.0, 0.72 + rng.uniform(-0.12, 0.12)),
                            ]
                        )
                    st += ln

    # ---------------- ending ----------------
    fq = nbars * qpb
    if not no_drums and secs[-1]["drums"] != "none":
        hit(fq, CRASH, 0.95)
        hit(fq, K, 0.95)
    fin_pcs = [(tpc + i) % 12 for i in QUAL["min" if mode == "minor" else "maj"]]
    t_end = tm.t(fq + qpb) + rng.uniform(0.3, 1.2) * (1 if rit_bars else 0.5)
    for p in voice_chord(fin_pcs, prev_voicing, power=sp.get("power", False)):
        comp.append([at(fq, hum[2]), t_end, p, 0.7])
    bass.append([at(fq, hum[1]), t_end, near(tpc, prev_bass, 28, 48), 0.78])

    # ---------------- truth ----------------
    instruments = []
    if drums:
        instruments.append({"name": "Drums", "program": 0, "is_drum": True, "notes": drums})
    instruments.append({"name": bass_name, "program": PROGRAMS[bass_name], "is_drum": False, "notes": bass})
    instruments.append({"name": comp_name, "program": PROGRAMS[comp_name], "is_drum": False, "notes": comp})
    if lead:
        instruments.append({"name": lead_name, "program": PROGRAMS[lead_name], "is_drum": False, "notes": lead})
    for inst in instruments:
        inst["notes"] = _tidy(inst["notes"], inst["is_drum"])

    nb_used = pickup + nbars * bpb + 1  # through the downbeat of the final chord
    beats = bt[:nb_used]
    downs = [bt[pickup + k * bpb] for k in range(nbars + 1)]
    # tempo_changes: the step function in quarter notes per minute; beat b holds tempos[b]
    tc = [[0.0, tempos[0]]]
    for b in range(1, nb_used):
        if tempos[b] != tempos[b - 1]:
            tc.append([bt[b], tempos[b]])

    # ---------------- record ----------------
    nrng = random.Random(seed * 104729 + 3)
    profile = nrng.choices(["noisy", "light", "clean"], [0.7, 0.15, 0.15])[0]
    offset = noise.choose_song_offset(nrng) if profile != "clean" else 0.0
    if offset:
        for inst in instruments:
            inst["notes"] = noise.shift_notes(inst["notes"], offset)
        beats = [b + offset for b in beats]
        downs = [d + offset for d in downs]
        tc = [tc[0]] + [[t + offset, v] for t, v in tc[1:]]
    task_id = f"{nrng.getrandbits(128):032x}"
    record, latency, info = noise.make_record(instruments, seed * 7 + 1, task_id, profile)

    r6 = lambda x: round(x, 6)  # noqa: E731
    for inst in instruments:
        inst["notes"] = [[r6(a), r6(b), p, round(v, 4)] for a, b, p, v in inst["notes"]]
    cats = ["drums" if drums else "no-drums"]
    if meter != "4/4":
        cats.append("odd-meter")
    if profile == "noisy":
        cats.append("noisy")
    cats.append("steady" if len(tc) == 1 else "drifting")
    split = schema.split_for_seed(seed)
    return {
        "id": f"gen-{style}-s{seed}",
        "source": f"generated:{style}",
        "split": split,
        "categories": cats,
        "style": style,
        "truth": {
            "quarter_bpm": tc[0][1],
            "meter": meter,
            "beats_s": [r6(x) for x in beats],
            "downbeats_s": [r6(x) for x in downs],
            "tempo_changes": [[r6(t), v] for t, v in tc],
            "key": {"tonic": tonic, "mode": mode, "source": "generated"},
            "latency_ms": latency,
            "instruments": instruments,
        },
        "record": record,
        "meta": {
            "generator": "bench/corpus/drum_styles.py",
            "seed": seed,
            "beat_bpm": beat_bpm,
            "nominal_quarter_bpm": round(qbpm, 4),
            "tempo_kind": tempo_kind,
            "tempo_detail": drift_info,
            "swing": None if sw_r is None else {"unit_q": swing[0], "ratio": round(sw_r, 3)},
            "pickup_beats": pickup,
            "offset_s": offset,
            "sections": [[s["name"], s["bars"], s["drums"]] for s in secs],
            "push_q": push_q,
            "noise": info,
        },
    }


def generate(seed: int, count: int) -> list[dict]:
    """The songs for seeds ``seed .. seed+count-1`` (style_for_seed, schema.split_for_seed)."""
    return [build_song(s) for s in range(seed, seed + count)]


# --- writing and checking ---------------------------------------------------------------------

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
FIRST_SEED, COUNT = 1050, 420  # 1050 // 10 % 21 == 0: two blocks of ten seeds per style


def check_song(song: dict) -> list[str]:
    """Problems beyond schema.validate_song: beat/bar consistency, grid, ranges."""
    probs = list(schema.validate_song(song))
    tr = song["truth"]
    bpb, beat_q = schema.meter_beats(tr["meter"])
    beats, downs = tr["beats_s"], tr["downbeats_s"]
    idx = {round(b, 6): i for i, b in enumerate(beats)}
    pos = [idx.get(round(d, 6)) for d in downs]
    if None in pos:
        probs.append("downbeat not a beat")
    else:
        gaps = {b - a for a, b in zip(pos, pos[1:])}
        if gaps - {bpb}:
            probs.append(f"beats per bar {sorted(gaps)} != {bpb} for {tr['meter']}")
    # tempo_changes agree with beat spacing
    tcs = tr["tempo_changes"]
    tt = [t for t, _ in tcs]
    for a, b in zip(beats, beats[1:]):
        i = bisect.bisect_right(tt, a + 1e-6) - 1
        bpm = tcs[i][1]
        if abs((b - a) - beat_q * 60 / bpm) > 2e-5:
            probs.append(f"beat at {a} does not follow tempo_changes ({b - a} vs {beat_q * 60 / bpm})")
            break
    for inst in song["record"]["data"]["midiData"]["instruments"]:
        for n in inst["notes"]:
            if (
                abs(n["start"] * 192 - round(n["start"] * 192)) > 1e-6
                or abs(n["end"] * 192 - round(n["end"] * 192)) > 1e-6
            ):
                probs.append("record note off the grid")
                break
    prof = song.get("meta", {}).get("noise", {}).get("profile")
    if prof in ("clean", "light") and "split_doubled" not in song["meta"]["noise"]:
        # the record is the truth, late by the stem's latency, on the grid
        rec = {i["name"]: i["notes"] for i in song["record"]["data"]["midiData"]["instruments"]}
        for inst in tr["instruments"]:
            lat = tr["latency_ms"].get(inst["name"], 0.0) / 1000.0
            got = sorted((round(n["start"] * 192), n["pitch"]) for n in rec.get(inst["name"], []))
            want = sorted((max(0, round((n[0] + lat) * 192)), n[2]) for n in inst["notes"])
            diff = sum(abs(a[0] - b[0]) > 1 or a[1] != b[1] for a, b in zip(got, want))
            if len(got) != len(want) or diff:
                probs.append(
                    f"{prof} record of {inst['name']} differs from truth + latency"
                    f" ({len(got)} vs {len(want)} notes, {diff} off)"
                )
    end = max(n[1] for inst in tr["instruments"] for n in inst["notes"])
    if not 40 <= end <= 130:
        probs.append(f"length {end:.1f} s")
    return probs


def stats(songs):
    """Figures to compare with PRODUCT.md (record side)."""
    short = tot = short_p = tot_p = 0
    overlaps = 0
    vel_counts = []
    flat = stems = 0
    maxpoly = 0
    for s in songs:
        for inst in s["record"]["data"]["midiData"]["instruments"]:
            ns = inst["notes"]
            drum = inst["name"] == "Drums"
            d = [n["end"] - n["start"] for n in ns]
            short += sum(x < 0.03 for x in d)
            tot += len(d)
            if not drum:
                short_p += sum(x < 0.03 for x in d)
                tot_p += len(d)
                last_end = {}
                for n in ns:
                    if n["start"] < last_end.get(n["pitch"], -1):
                        overlaps += 1
                    last_end[n["pitch"]] = max(last_end.get(n["pitch"], -1), n["end"])
                ev = sorted([(n["start"], 1) for n in ns] + [(n["end"], -1) for n in ns])
                c = 0
                for _, x in ev:
                    c += x
                    maxpoly = max(maxpoly, c)
            nv = len({n["velocity"] for n in ns})
            vel_counts.append((inst["name"], nv))
            stems += 1
            flat += nv == 1
    pv = sorted(n for name, n in vel_counts if name != "Drums")
    dv = sorted(n for name, n in vel_counts if name == "Drums")
    return {
        "notes": tot,
        "short_all": round(short / max(tot, 1), 4),
        "pitched_notes": tot_p,
        "short_pitched": round(short_p / max(tot_p, 1), 4),
        "same_pitch_overlaps": overlaps,
        "overlaps_per_1000_pitched": round(1000 * overlaps / max(tot_p, 1), 1),
        "stems": stems,
        "flat_velocity_stems": flat,
        "pitched_stems_flat": f"{sum(n == 1 for n in pv)}/{len(pv)}",
        "drum_stems_flat": f"{sum(n == 1 for n in dv)}/{len(dv)}",
        "velocity_values_median_pitched_nonflat": (lambda xs: xs[len(xs) // 2] if xs else None)(
            [n for n in pv if n > 1]
        ),
        "velocity_values_median_drums_nonflat": (lambda xs: xs[len(xs) // 2] if xs else None)([n for n in dv if n > 1]),
        "max_polyphony_pitched": maxpoly,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="check the written files and print statistics")
    ap.add_argument("--first-seed", type=int, default=FIRST_SEED)
    ap.add_argument("--count", type=int, default=COUNT)
    ap.add_argument("--out", default=DATA)
    a = ap.parse_args(argv)
    if a.check:
        songs = []
        for split in schema.SPLITS:
            p = os.path.join(a.out, f"styles-{split}.jsonl.gz")
            if os.path.exists(p):
                songs += list(schema.iter_songs(p))
        bad = 0
        for s in songs:
            pr = check_song(s)
            if pr:
                bad += 1
                print(s["id"], "; ".join(pr[:3]))
        print(f"{len(songs)} songs, {bad} with problems")
        c = Counter((s["split"], s["style"]) for s in songs)
        cc = Counter((s["split"], c_) for s in songs for c_ in s["categories"])
        print("split x category:", dict(sorted(cc.items())))
        print("split x style:", dict(sorted(c.items())))
        noisy = [s for s in songs if "noisy" in s["categories"]]
        print("noisy songs:", stats(noisy))
        print("all songs:", stats(songs))
        return 1 if bad else 0
    os.makedirs(a.out, exist_ok=True)
    by = defaultdict(list)
    for seed in range(a.first_seed, a.first_seed + a.count):
        song = build_song(seed)
        by[song["split"]].append(song)
    for split, ss in by.items():
        n = schema.write_songs(os.path.join(a.out, f"styles-{split}.jsonl.gz"), ss)
        print(f"styles-{split}.jsonl.gz: {n} songs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
