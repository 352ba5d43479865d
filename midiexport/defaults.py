"""Defaults and limits shared by the library and the command line: constants only.

Kept apart so that ``cli`` can show them in ``--help`` without importing the stages.
"""

from __future__ import annotations

DEFAULT_BPM = 120.0
MIN_BPM, MAX_BPM = 4.0, 1000.0  # a tempo must fit 24 bits of µs per quarter
DEFAULT_PPQ = 480
AUTO_PPQ = 960  # with --bpm auto: half a tick stays under 1 ms down to 31 BPM
# The coarsest --ppq: 24, the MIDI clock's count per quarter and the lowest resolution DAWs
# and sequencers write; every note value down to 1/32 (3 ticks) and 1/32 triplets (2 ticks) is
# still whole ticks. Below it notes a 16th apart at fast tempos fall on one tick and merge.
MIN_PPQ = 24
MAX_PPQ = 32767  # 15 bits: the top bit of the header's division means SMPTE time
# Largest input (or JSON line) read, in MB: a 1,000,000-note record is ~70 MB of JSON,
# Suno songs hold thousands of notes; parsed JSON takes ~10x its size in memory.
DEFAULT_MAX_INPUT_MB = 128.0
MIN_INPUT_MB = 0.001  # the smallest --max-input-mb: 1 kB, below any real record
# A .zip's members kept, in all, in units of --max-input-mb (each member: at most one). A
# song's stems are held in memory together and a real stem is a few kB, so 4 leaves room
# for several songs at the limit; the ratio of the former fixed 16 MiB / 64 MiB caps.
ARCHIVE_TOTAL_FACTOR = 4
# Notes starting closer than this are one onset (a drum flam, a struck chord): the tempo
# estimator's grouping, and the slack the tempo map allows around bar lines and beats.
GROUP_S = 0.030

DEFAULT_BASE_URL = "https://api.kie.ai"
DEFAULT_TIMEOUT_S = 600.0  # the longest to wait for one task, polling included
DEFAULT_POLL_INTERVAL_S = 15.0  # the API's docs advise polling every 10-30 s
DEFAULT_CONCURRENCY = 3  # fetch: tasks asked at once, gentle with the API's rate limit
MAX_CONCURRENCY = 4  # fetch: at most, whatever is asked (``FetchOptions`` caps it)
MAX_ANSWER_BYTES = 64 * 2**20  # an API answer, decoded; a real song's is a few MB (~90 bytes a note)

DEFAULT_MAX_BODY_BYTES = 8 * 2**20  # serve: a 12-stem song of 50,000 notes is ~4.5 MB of JSON
HEALTH_PATH = "/healthz"  # serve: the route that answers GET with its state; --path cannot be it

# Clean-up (stages.clean), the same in both presets; bench/bench_clean.py tuned them on
# the corpus's "bench" split.
CLEAN_MIN_NOTE_MS = 30.0  # shorter melodic notes are flickers (7.7% of real Suno notes are under 30 ms)
CLEAN_MIN_NOTE_S = CLEAN_MIN_NOTE_MS / 1000  # the same in seconds: the clean-up's and the key estimate's
CLEAN_MERGE_GAP_MS = 0.0  # same-pitch notes split by a shorter gap are one note's fragments
# Bytes read of a file to tell a JSON midiexport wrote: a --report's opening (command,
# version) or a generate state's first keys (version, music_task) take under 100.
WRITTEN_JSON_HEAD_BYTES = 256
GENERATE_STATE_SUFFIX = ".generate.json"  # generate's state file beside its output; here so a folder search knows it
