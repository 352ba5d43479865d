"""Real MIDI consumers read and play what we write: midicsv, timidity, fluidsynth, MuseScore 3.

Marked ``consumers``: deselect with ``-m "not consumers"``. Where a program is
missing they are skipped locally and fail in CI (CI=true), where .ci/run installs
Debian's midicsv, timidity, fluidsynth, fluid-soundfont-gm and musescore3.

"Length" here is where the sound ends: the last 10 ms frame within 20 dB of the
loudest one, rendered with reverb and chorus off (effects, not the file's content).
What is left after a note-off is the instrument's release: General MIDI string pads
and voices take about 0.5 s to fall 30 dB, which is why the window is 20 dB (on the
sample every part's sound ends 0.2-0.35 s after its last note-off). Timidity is run
with --preserve-silence: by default it drops the silence before the first note.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import SAMPLE, corpus_test_song, mido_file, run, suno_stems

pytestmark = pytest.mark.consumers
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
RENDERERS = ("timidity", "fluidsynth")


def need(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        message = f"{program} is not installed (Debian package; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def sample_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The sample as .mid (format 1), --split stems and --format 0, with expected facts."""
    folder = tmp_path_factory.mktemp("consumers")
    for args in (["-o", str(folder / "song.mid")], ["--split", "-o", str(folder / "stems")],
                 ["--format", "0", "-o", str(folder / "song-format0.mid")]):  # fmt: skip
        result = run("convert", str(SAMPLE), *args)
        assert result.exit_code == 0, result.stderr
    instruments = json.loads(SAMPLE.read_text())["data"]["midiData"]["instruments"]
    span = {i["name"]: (min(n["start"] for n in i["notes"]), max(n["end"] for n in i["notes"])) for i in instruments}
    whole = (min(s for s, _ in span.values()), max(e for _, e in span.values()))
    total = sum(len(i["notes"]) for i in instruments)
    files = {"song.mid": (folder / "song.mid", total, whole),
             "song-format0.mid": (folder / "song-format0.mid", total, whole)}  # fmt: skip
    for instrument in instruments:
        path = folder / "stems" / f"sample-song-{instrument['name']}.mid"
        files[path.name] = (path, len(instrument["notes"]), span[instrument["name"]])
    return {"folder": folder, "files": files}


FILES = ["song.mid", "song-format0.mid", "sample-song-Drums.mid", "sample-song-Electric Bass (finger).mid",
         "sample-song-String Ensembles 1.mid", "sample-song-Synth Voice.mid"]  # fmt: skip


@pytest.mark.parametrize("name", FILES)
def test_midicsv_reads_every_file_with_the_expected_notes(sample_files, name):
    path, notes, _ = sample_files["files"][name]
    done = subprocess.run([need("midicsv"), str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    rows = [[field.strip() for field in line.split(",")] for line in done.stdout.splitlines()]
    ons = [row for row in rows if row[2] == "Note_on_c" and int(row[5]) > 0]
    assert len(ons) == notes
    assert rows[-1][2] == "End_of_file"
    if "Drums" in name:
        assert {row[3] for row in ons} == {"9"}  # MIDI channel 10


def render(program: str, midi: Path, wav: Path) -> Path:
    if program == "timidity":
        command = [
            need("timidity"),
            "--preserve-silence",
            "-EFreverb=0",
            "-EFchorus=0",
            "-Ow",
            "-o",
            str(wav),
            str(midi),
        ]
    else:
        if not SOUNDFONT.exists():
            need("fluid-soundfont-gm")  # skips or fails with the package's name
        command = [
            need("fluidsynth"),
            "-ni",
            "-R",
            "0",
            "-C",
            "0",
            "-F",
            str(wav),
            "-r",
            "44100",
            str(SOUNDFONT),
            str(midi),
        ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return wav


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as wav:
        frames = wav.readframes(wav.getnframes())
        samples = np.frombuffer(frames, dtype=np.int16).reshape(-1, wav.getnchannels()).astype(np.float64)
        return samples.mean(axis=1), wav.getframerate()


def sounding_span_s(samples: np.ndarray, rate: int) -> tuple[float, float, float]:
    """Return (first, last) sounding time in seconds and the loudest 10 ms RMS (of 32768)."""
    hop = rate // 100
    frames = samples[: len(samples) // hop * hop].reshape(-1, hop)
    rms = np.sqrt((frames**2).mean(axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-20 / 20))
    return loud[0] / 100, (loud[-1] + 1) / 100, float(rms.max())


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("name", FILES)
def test_renderers_play_the_file_for_its_length_and_not_silently(sample_files, name, renderer, tmp_path):
    path, _, (first_on_s, last_off_s) = sample_files["files"][name]
    samples, rate = read_wav(render(renderer, path, tmp_path / "out.wav"))
    first_s, last_s, loudest = sounding_span_s(samples, rate)
    assert loudest > 100  # about -50 dBFS: sound, not silence
    assert abs(last_s - last_off_s) <= 0.5, (first_s, last_s, last_off_s)
    assert abs(first_s - first_on_s) <= 0.5, (first_s, first_on_s)


def high_frequency_share(wav: Path) -> float:
    samples, rate = read_wav(wav)
    spectrum = np.abs(np.fft.rfft(samples[: rate * 30])) ** 2
    return float(spectrum[np.fft.rfftfreq(min(len(samples), rate * 30), 1 / rate) > 4000].sum() / spectrum.sum())


@pytest.mark.parametrize("renderer", RENDERERS)
def test_drums_play_as_a_drum_kit(sample_files, renderer, tmp_path):
    # The same notes moved to channel 1 play as piano; on channel 10 they are kick,
    # snare, hi-hat and crash, with far more energy above 4 kHz.
    drums = sample_files["files"]["sample-song-Drums.mid"][0]
    moved = mido_file(drums.read_bytes())
    for track in moved.tracks:
        for index, message in enumerate(track):
            if hasattr(message, "channel"):
                track[index] = message.copy(channel=0)
    moved.save(tmp_path / "moved.mid")
    as_drums = high_frequency_share(render(renderer, drums, tmp_path / "drums.wav"))
    as_piano = high_frequency_share(render(renderer, tmp_path / "moved.mid", tmp_path / "piano.wav"))
    assert as_drums > 5 * as_piano, (as_drums, as_piano)


def musescore_import(path: Path, tmp_path: Path) -> dict[str, Any]:
    """Import a .mid in MuseScore 3 (headless): its score's title and texts, and each part.

    The native .mscx keeps every text MuseScore made (lyrics on rests too, which its
    MusicXML export drops); the MusicXML names each part's clefs and MIDI channel.
    """
    import re

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    exported = {}
    for suffix in (".mscx", ".musicxml"):
        out = tmp_path / (path.stem + suffix)
        done = subprocess.run([need("mscore3"), "-o", str(out), str(path)], capture_output=True, env=env,
                              timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0 and out.exists(), done.stderr[-500:]
        exported[suffix] = out.read_text()
    native, xml = exported[".mscx"], exported[".musicxml"]
    titles = re.findall(r"<style>Title</style>\s*<text>([^<]*)</text>", native)
    texts = re.findall(r"<(Lyrics|StaffText|SystemText)>", native)
    parts = []
    for body in re.split(r"<part id=", xml)[1:]:
        parts.append({"clefs": set(re.findall(r"<sign>(\w+)</sign>", body))})
    score_parts = xml.split("</part-list>")[0].split("<score-part ")[1:]
    for part, declared in zip(parts, score_parts):
        part["channel"] = int(re.findall(r"<midi-channel>(\d+)</midi-channel>", declared)[0])
        part["name"] = (re.findall(r"<part-name>([^<]*)</part-name>", declared) or [""])[0]
    tempos = re.findall(r'<sound tempo="([^"]+)"', xml)
    for part, body in zip(parts, re.split(r"<part id=", xml)[1:]):  # each time signature shown, and bars
        part["times"] = [
            f"{n}/{d}" for n, d in re.findall(r"<beats>(\d+)</beats>\s*<beat-type>(\d+)</beat-type>", body)
        ]
        part["measures"] = len(re.findall(r"<measure ", body))
    return {"titles": titles, "texts": texts, "parts": parts, "tempos": tempos}


def test_musescore_shows_the_title_and_no_source_text_in_the_score(sample_files, tmp_path):
    score = musescore_import(sample_files["files"]["song.mid"][0], tmp_path)
    assert score["titles"] == ["sample0a1b2c3d4e5f"]  # the sample's song title (its task id: no music task)
    assert len(score["parts"]) == 4
    assert score["texts"] == []  # before: the source line twice, as lyrics under the bass


def test_musescore_gives_only_the_drums_a_percussion_staff_in_format_0(sample_files, tmp_path):
    score = musescore_import(sample_files["files"]["song-format0.mid"][0], tmp_path)
    percussion = [part for part in score["parts"] if "percussion" in part["clefs"]]
    assert len(score["parts"]) == 4 and len(percussion) == 1
    assert percussion[0]["channel"] == 10
    assert score["texts"] == []


@pytest.mark.parametrize("options", [[], ["--bpm", "auto"]])
def test_musescore_imports_the_suno_stems_with_a_percussion_staff_for_the_drums_only(tmp_path, options):
    folder = tmp_path / "export"
    folder.mkdir()
    for stem, data in suno_stems().items():
        (folder / f"Midnight Concrete ({stem}).mid").write_bytes(data)
    song = tmp_path / "song.mid"
    result = run("convert", str(folder), "-o", str(song), *options)
    assert result.exit_code == 0, result.stderr
    score = musescore_import(song, tmp_path)
    clefs, tempos = {p["name"]: p["clefs"] for p in score["parts"]}, score["tempos"]
    assert {name for name, signs in clefs.items() if "percussion" in signs} == {
        name for name in clefs if name.endswith("Drums")
    } and len(clefs) == 3, clefs
    written = sum(m.type == "set_tempo" for m in mido_file(song.read_bytes()).tracks[0])
    if not options:
        assert len(tempos) == 1  # one tempo written, one mark
    else:  # the beat map: a few tempos of 87.2-87.7 BPM, shown rounded to whole BPM
        assert 1 <= len(tempos) <= written <= 8 and {round(float(t)) for t in tempos} <= {87, 88}, tempos


# MuseScore 3 imports these transcribed songs without drums as human performances (most notes off its 16th grid):
# it tracks the beats itself and shows the file's first time signature in every bar, but re-chooses between
# 4/4 and 3/4 when the file says one of them (its MidiBeat::findTimeSignatures; the bossa's 3+3+2 reads as 3/4
# whatever the file draws). A 1/8 or 4/8 pickup bar at 0 s was shown as every bar: 582 one-eighth measures.
@pytest.mark.parametrize(
    ("song_id", "shown"),
    [
        ("gen-bossa-s1429", {"4/4", "3/4"}),  # the first beat 0.26 s in; 4/4 written (on main: 1/8, 582 bars)
        ("m21-oneills1850-1116-1135-ml-1127-x0-t176-s33221", {"6/8"}),  # 6/8 written, kept (on main: 4/8)
    ],
)
def test_musescore_shows_a_whole_bar_for_beats_followed_after_a_lead_in(song_id, shown, tmp_path):
    song = corpus_test_song(song_id)
    source = tmp_path / f"{song_id}.json"
    source.write_text(json.dumps(song["record"]))
    result = run("convert", str(source), "--bpm", "auto", "-o", str(tmp_path / "song.mid"))
    assert result.exit_code == 0, result.stderr
    assert "beats followed" in result.stderr + result.stdout
    score = musescore_import(tmp_path / "song.mid", tmp_path)
    bars = len(song["truth"]["downbeats_s"])  # the song's own bars
    for part in score["parts"]:
        assert len(part["times"]) == 1 and set(part["times"]) <= shown, part["times"]  # one, a whole bar
        assert part["measures"] < 2 * bars, (part["measures"], bars)  # not a bar for every eighth


def test_musescore_keeps_the_files_meter_and_tempo_once_the_notes_are_quantized(tmp_path):
    # The README's advice for notation: unquantized, MuseScore reads gen-bossa-s1429 as a live performance and
    # chooses its own meter and tempo (3/4 at about 154 BPM); quantized to 16ths, it shows the file's 4/4 and tempo.
    song = corpus_test_song("gen-bossa-s1429")
    source = tmp_path / "bossa.json"
    source.write_text(json.dumps(song["record"]))
    result = run("convert", str(source), "--bpm", "auto", "--quantize", "1/16", "-o", str(tmp_path / "song.mid"))
    assert result.exit_code == 0, result.stderr
    written = [m for m in mido_file((tmp_path / "song.mid").read_bytes()).tracks[0] if m.type == "set_tempo"]
    score = musescore_import(tmp_path / "song.mid", tmp_path)
    for part in score["parts"]:
        assert part["times"] == ["4/4"], part["times"]
    song_bpm = 60e6 / sorted(m.tempo for m in written)[len(written) // 2]
    assert any(abs(float(t) - song_bpm) < 1.0 for t in score["tempos"]), (score["tempos"], song_bpm)
