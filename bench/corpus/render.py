"""Render one stem to audio with fluidsynth and transcribe it back with basic-pitch.

This is how the corpus gets real transcription artefacts (missed and split notes, octave
and harmonic errors, smeared offsets, onsets that sit a few frames off) instead of a
noise model: each instrument of a score is rendered alone, as a separated stem would be,
and the audio is transcribed by basic-pitch (Spotify's note transcription model, run on
the CPU through its ONNX file and onnxruntime).

Needs: the Debian packages ``fluidsynth`` and ``fluid-soundfont-gm``; the Python packages
mido, numpy, onnxruntime, librosa, and basic-pitch (installed with ``--no-deps``, since its
wheel asks for TensorFlow on Python 3.11; see README.md).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import subprocess
import tempfile
import time

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
SAMPLE_RATE = 22050  # basic-pitch's own rate: no resampling between render and model
TICKS_PER_SECOND = 960  # PPQ 480 at 120 BPM

# basic-pitch settings. Thresholds are its defaults; the shortest note is 2 frames
# (~23 ms) instead of its default 127.7 ms, because real API transcriptions hold many
# notes shorter than 30 ms (PRODUCT.md: 7.7% of notes, pitched stems too).
ONSET_THRESHOLD = 0.5
FRAME_THRESHOLD = 0.3
MIN_NOTE_MS = 23.0

_MODEL = None
BACKEND = None


def have_tools() -> list[str]:
    """What is missing for render + transcribe (empty when all is there)."""
    missing = []
    if not shutil.which("fluidsynth"):
        missing.append("fluidsynth (apt-get install fluidsynth)")
    if not os.path.exists(SOUNDFONT):
        missing.append(f"{SOUNDFONT} (apt-get install fluid-soundfont-gm)")
    try:
        import basic_pitch  # noqa: F401
    except Exception as e:  # pragma: no cover - environment dependent
        missing.append(f"basic-pitch ({e})")
    return missing


def write_stem_midi(path: str, notes, program: int, is_drum: bool = False) -> None:
    """A one-track .mid of ``notes`` ([start_s, end_s, pitch, velocity_0_1]) at 120 BPM."""
    import mido

    mid = mido.MidiFile(type=0, ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    ch = 9 if is_drum else 0
    tr.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    if not is_drum:
        tr.append(mido.Message("program_change", program=int(program), channel=ch, time=0))
    events = []
    for s, e, p, v in notes:
        ts = round(s * TICKS_PER_SECOND)
        te = max(ts + 1, round(e * TICKS_PER_SECOND))
        vel = min(127, max(1, round(v * 127)))
        events.append((te, 0, int(p), 0))  # offs before ons at one tick
        events.append((ts, 1, int(p), vel))
    events.sort()
    now = 0
    for t, kind, p, vel in events:
        msg = "note_on" if kind else "note_off"
        tr.append(mido.Message(msg, note=p, velocity=vel if kind else 0, channel=ch, time=t - now))
        now = t
    # one second of tail so reverb and release are rendered
    tr.append(mido.MetaMessage("end_of_track", time=TICKS_PER_SECOND))
    mid.save(path)


def render_wav(mid_path: str, wav_path: str, gain: float = 0.5) -> None:
    """Render a .mid to a mono-mixable WAV at 22050 Hz with fluidsynth (default reverb/chorus)."""
    cmd = [
        "fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(SAMPLE_RATE),
        "-F", wav_path, SOUNDFONT, mid_path,
    ]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)


def _model():
    global _MODEL, BACKEND
    if _MODEL is None:
        logging.getLogger().setLevel(logging.ERROR)
        with contextlib.redirect_stderr(io.StringIO()):
            from basic_pitch import ICASSP_2022_MODEL_PATH
            from basic_pitch.inference import Model
        _MODEL = Model(ICASSP_2022_MODEL_PATH)
        BACKEND = _MODEL.model_type.name
        if BACKEND == "ONNX":
            # one thread, no spin-waiting: on a shared 2-core machine onnxruntime's default
            # thread pool is about 3x slower than this (measured: 10.2 s -> 3.2 s for 68 s audio)
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.intra_op_num_threads = 1
            so.inter_op_num_threads = 1
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            _MODEL.model = ort.InferenceSession(
                str(ICASSP_2022_MODEL_PATH), sess_options=so, providers=["CPUExecutionProvider"]
            )
            BACKEND = "ONNX (onnxruntime, CPU, 1 thread)"
    return _MODEL


def transcribe_wav(wav_path: str) -> list[tuple[float, float, int, float]]:
    """basic-pitch note events of a WAV: [(start_s, end_s, pitch, amplitude_0_1)]."""
    model = _model()
    from basic_pitch.inference import predict

    with contextlib.redirect_stdout(io.StringIO()):
        _, _, events = predict(
            wav_path,
            model,
            onset_threshold=ONSET_THRESHOLD,
            frame_threshold=FRAME_THRESHOLD,
            minimum_note_length=MIN_NOTE_MS,
            multiple_pitch_bends=False,
            melodia_trick=True,
        )
    out = [(float(s), float(e), int(p), float(min(1.0, max(0.0, a)))) for s, e, p, a, *_ in events]
    out.sort()
    return out


def transcribe_stem(notes, program: int, is_drum: bool = False, workdir: str | None = None):
    """Render ``notes`` alone with ``program`` and transcribe them: (events, seconds taken)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=workdir) as d:
        mid = os.path.join(d, "stem.mid")
        wav = os.path.join(d, "stem.wav")
        write_stem_midi(mid, notes, program, is_drum)
        render_wav(mid, wav)
        events = transcribe_wav(wav)
    return events, time.perf_counter() - t0
