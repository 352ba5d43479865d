from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import mido_file, record_payload, run
from midiexport import gm
from midiexport.jobs.info import summarize_record
from midiexport.options import ConvertOptions
from midiexport.outputs.smf import key_signature, write_midi
from midiexport.stages.convert import convert_record
from midiexport.stages.key import KeyEstimate, estimate_key, key_from_notes
from midiexport.stages.normalize import normalize_payload

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)


def tune(tonic: int, scale: tuple[int, ...], *, bars: int = 8) -> list[tuple[int, float, float, float]]:
    """A melody over the scale with the tonic triad held below it, ending on the tonic."""
    notes = []
    for bar in range(bars):
        for step, degree in enumerate((0, 2, 4, 1, 3, 5, 6, 4)):
            t = bar * 2.0 + step * 0.25
            notes.append((60 + tonic + scale[degree], t, t + 0.25, 0.7))
        notes.append((48 + tonic, bar * 2.0, bar * 2.0 + 2.0, 0.5))
        notes.append((48 + tonic + scale[2], bar * 2.0, bar * 2.0 + 2.0, 0.5))
    notes.append((36 + tonic, bars * 2.0, bars * 2.0 + 2.0, 0.5))
    return notes


def record_in(tonic: int, scale: tuple[int, ...]):
    payload = record_payload(
        {"Piano": tune(tonic, scale), "Drums": [(42, k * 0.5, k * 0.5 + 0.01, 0.5) for k in range(40)]}
    )
    [record] = normalize_payload(payload, source="a.json")
    return record


@pytest.mark.parametrize("tonic", range(12))
def test_major_tunes_are_found_in_every_key(tonic):
    found = estimate_key(record_in(tonic, MAJOR_SCALE))
    assert (found.tonic, found.minor) == (tonic, False)
    assert found.confident


@pytest.mark.parametrize("tonic", range(12))
def test_minor_tunes_are_found_in_every_key(tonic):
    found = estimate_key(record_in(tonic, HARMONIC_MINOR))
    assert (found.tonic, found.minor) == (tonic, True)


def test_drums_do_not_count_towards_the_key():
    payload = record_payload({"Drums": [(p, k * 0.1, k * 0.1 + 0.05, 0.5) for k, p in enumerate([37, 39, 42] * 10)]})
    [record] = normalize_payload(payload, source="a.json")
    assert estimate_key(record) is None


def flagged_record(parts: dict[str, list[tuple[int, float, float, float]]], flags: dict[str, bool]):
    """A record whose instruments carry Suno's ``is_drum`` flag where ``flags`` names them."""
    payload = record_payload(parts)
    for item in payload["data"]["midiData"]["instruments"]:
        if item["name"] in flags:
            item["is_drum"] = flags[item["name"]]
    [record] = normalize_payload(payload, source="a.json")
    return record


# chromatic hits: counted as pitched notes, they pull the key away from E major
KIT_HITS = [(p, k * 0.1, k * 0.1 + 0.3, 0.5) for k, p in enumerate([37, 39, 42, 46, 49, 51, 44, 41] * 30)]


def test_a_part_flagged_as_drums_is_left_out_whatever_its_name():
    # Suno's is_drum flag decides the drum channel (gm.resolve_part): the key must agree
    record = flagged_record({"Piano": tune(4, MAJOR_SCALE), "Synth Drum": KIT_HITS}, {"Synth Drum": True})
    assert gm.resolve_instrument("Synth Drum").is_drum is False  # the name alone says melodic
    found = estimate_key(record)
    assert (found.tonic, found.minor) == (4, False)
    assert found == estimate_key(record_in(4, MAJOR_SCALE))


def test_a_drum_named_part_flagged_as_no_drum_counts_towards_the_key():
    melody = [(p + 12, s, e, v) for p, s, e, v in tune(7, MAJOR_SCALE)]
    flagged = flagged_record({"Percussion": melody}, {"Percussion": False})
    assert estimate_key(flagged_record({"Percussion": melody}, {})) is None  # the name alone: drums, no pitched notes
    found = estimate_key(flagged)
    assert (found.tonic, found.minor) == (7, False)


def song_in_keys(*tonics: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns of the major tune played once in each key, one after the other (18 s apart)."""
    return song_of(*(tune(tonic, MAJOR_SCALE) for tonic in tonics))


def test_a_song_in_three_keys_is_not_confident_however_clear_its_sum():
    # C, then A, then E flat major: no signature fits the song, whatever key its notes add up to
    found = key_from_notes(*song_in_keys(0, 9, 3))
    assert not found.steady
    assert not found.confident


def test_a_last_chorus_a_step_up_gets_the_key_it_starts_in():
    # the pop modulation: two thirds in C major, the last third in D major; the notes'
    # sum blends the two into a key of neither (E minor), which the last third does not
    # confirm; the song starts on C and holds it for two thirds: C major is written
    found = key_from_notes(*song_in_keys(0, 0, 2))
    assert (found.tonic, found.minor, found.confident) == (0, False, True)
    before = key_from_notes(*song_in_keys(0, 0))
    assert (before.tonic, before.minor, before.confident) == (0, False, True)


def song_of(*parts: list[tuple[int, float, float, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns of the given tunes played one after the other (18 s apart)."""
    notes = np.concatenate([np.array(part) + [0, 18.0 * k, 18.0 * k, 0] for k, part in enumerate(parts)])
    return notes[:, 1], notes[:, 2], notes[:, 0].astype(np.int64)


PICKUP_E = [(64, -0.5, 0.0, 0.7)]  # an upbeat E alone: the first sonority's lowest note is neither C nor G
G_HALF_CADENCE = tune(7, MAJOR_SCALE)[:-1] + [(38, 16.0, 18.0, 0.5)]  # the G major tune ending on a held D in the bass


@pytest.mark.parametrize(
    ("ending", "key"), [(G_HALF_CADENCE, (0, False, False)), (tune(7, MAJOR_SCALE), (7, False, True))]
)
def test_a_song_that_moved_to_its_dominant_gets_the_key_it_started_in_unless_it_ends_on_it(ending, key):
    # a third in C major after an upbeat E, then two in G major: the whole song sums to G.
    # Ending on D, nothing confirms G, and G is the dominant of the opening's C: the song
    # moved there, C is reported (not written: it holds one third only). Ending on G, G stands.
    found = key_from_notes(*song_of(PICKUP_E + tune(0, MAJOR_SCALE), tune(7, MAJOR_SCALE), ending))
    assert (found.tonic, found.minor, found.confident) == key


def test_an_opening_in_another_key_keeps_the_song_key_its_ending_confirms():
    # a third in G major, then two in C major ending on a held C in the bass: C is not the
    # opening's dominant, and the ending confirms C; the song's key stands
    found = key_from_notes(*song_in_keys(7, 0, 0))
    assert (found.tonic, found.minor, found.confident) == (0, False, True)


HALF_CADENCE = tune(0, MAJOR_SCALE)[:-1] + [(43, 16.0, 18.0, 0.5)]  # the C major tune ending on a held G in the bass


@pytest.mark.parametrize(("ending", "key"), [(HALF_CADENCE, (9, True)), (tune(0, MAJOR_SCALE), (0, False))])
def test_an_opening_on_its_own_tonic_wins_unless_the_ending_confirms_the_song_key(ending, key):
    # a third in A minor, opening on an A in the bass, then two in C major: the song sums to
    # C major; ending on G, C is unconfirmed and the A minor start wins; ending on C, C stands
    found = key_from_notes(*song_of(tune(9, HARMONIC_MINOR), tune(0, MAJOR_SCALE), ending))
    assert (found.tonic, found.minor) == key


def test_a_short_opening_key_is_the_start_key_where_the_first_third_blends_two():
    # three bars (6 s) in D minor over a D bass, then 32 s in A minor ending on a held E
    # (a half cadence): the song sums to A minor, its first third to F major (a blend of
    # both); the key path starts in D minor, whose tonic opens the song: D minor is
    # reported, and not written (it holds one span of three)
    opening = tune(2, HARMONIC_MINOR, bars=3)[:-1]
    a_minor = tune(9, HARMONIC_MINOR)[:-1]
    half_cadence = a_minor + [(40, 16.0, 18.0, 0.5)]
    notes = np.concatenate(
        [np.array(opening), np.array(a_minor) + [0, 6, 6, 0], np.array(half_cadence) + [0, 22, 22, 0]]
    )
    found = key_from_notes(notes[:, 1], notes[:, 2], notes[:, 0].astype(np.int64))
    assert (found.tonic, found.minor, found.confident) == (2, True, False)


def test_spans_too_sparse_to_tell_a_key_do_not_vote_on_its_steadiness():
    # a tune in C major (0-18 s), then a slow coda of held notes, three in each of the last
    # two thirds: too few to tell a key, so they neither confirm nor deny it; the one third
    # that can tell decides, and the signature is written
    coda = [(p, 18.0 + 6.0 * k, 24.0 + 6.0 * k, 0.5) for k, p in enumerate((64, 67, 65, 62, 59, 60))]
    notes = np.array(tune(0, MAJOR_SCALE) + coda)
    found = key_from_notes(notes[:, 1], notes[:, 2], notes[:, 0].astype(np.int64))
    assert (found.tonic, found.minor, found.steady, found.confident) == (0, False, True, True)


def test_all_twelve_pitch_classes_evenly_are_not_confident():
    start = np.arange(48) * 0.5
    found = key_from_notes(start, start + 0.5, np.arange(48) % 12 + 60)
    assert not found.confident


def test_an_exact_tie_is_broken_by_one_rule_in_the_song_and_in_its_spans():
    # every span holds the twelve pitch classes evenly, as the whole song does: all 24 keys tie everywhere
    start = np.arange(36) * 0.5
    found = key_from_notes(start, start + 0.5, np.arange(36) % 12 + 60)
    assert found.confidence == 0.0
    assert found.steady  # the spans pick the key the song picks


def columns(phrase: list[tuple[int, int]], *, repeats: int = 6, final: tuple[int, float] | None = None):
    """Eighth notes (0.25 s) of (MIDI pitch, count) pairs, repeated, then an optional (pitch, seconds) last note."""
    pitches = [p for pitch, count in phrase for p in [pitch] * count] * repeats
    start = np.arange(len(pitches)) * 0.25
    end = start + 0.25
    if final is not None:
        start, end = np.append(start, end[-1]), np.append(end, end[-1] + final[1])
        pitches.append(final[0])
    return start, end, np.array(pitches)


def test_the_key_signature_tells_a_key_from_its_dominant():
    # a G major tune that dwells on D and A: the profiles alone lean to D major,
    # but its C natural is outside D major's signature. It opens on G: opened on its D
    # instead, its first 8 s (one C) read as D major, a start key of their own
    phrase = [(67, 2), (71, 2), (64, 2), (72, 1), (62, 6), (69, 4), (66, 3)]
    found = key_from_notes(*columns(phrase))
    assert (found.tonic, found.minor) == (7, False)


PENTATONIC = [(60, 3), (62, 2), (64, 2), (67, 2), (69, 2)]  # C D E G A, C a little more: the profiles say C major


@pytest.mark.parametrize(("final", "key"), [(57, (9, True)), (48, (0, False))])
def test_a_held_last_bass_note_decides_between_relative_keys(final, key):
    # the held last note weighs under 4% of the tune: its place, not its weight, decides
    found = key_from_notes(*columns(PENTATONIC, repeats=20, final=(final, 2.0)))
    assert (found.tonic, found.minor) == key


def test_a_flicker_after_the_held_last_note_does_not_hide_the_cadence():
    start, end, pitch = columns(PENTATONIC, repeats=20, final=(57, 2.0))
    flicker = end[-1] - 0.5  # a 20 ms re-detection late in the held note, the song's last onset
    found = key_from_notes(np.append(start, flicker), np.append(end, flicker + 0.02), np.append(pitch, 72))
    assert (found.tonic, found.minor) == (9, True)


def test_a_song_that_starts_and_ends_on_one_bass_note_is_in_its_key():
    # a tune on C D E G A B (C and G major alike by their signatures; the profiles lean to
    # C) that opens and ends on G, the ending not held: G starts and ends it, G major
    phrase = [(67, 2), (71, 2), (62, 2), (64, 2), (60, 3), (69, 2), (67, 1)]
    found = key_from_notes(*columns(phrase, repeats=20))
    assert (found.tonic, found.minor) == (7, False)


def test_a_song_that_opens_on_the_relative_tonic_and_ends_elsewhere_is_in_the_relative_key():
    # the C-leaning pentatonic tune opened on A and ended on a short E: A minor
    phrase = [(69, 2), (60, 3), (62, 2), (64, 2), (67, 2)]
    found = key_from_notes(*columns(phrase, repeats=20, final=(64, 0.25)))
    assert (found.tonic, found.minor) == (9, True)


def test_a_last_note_that_is_not_held_is_no_cadence():
    found = key_from_notes(*columns(PENTATONIC, repeats=20, final=(57, 0.25)))
    assert (found.tonic, found.minor) == (0, False)


@pytest.mark.parametrize(
    ("tonic", "minor", "fifths", "name"),
    [
        (0, False, 0, "C major"),
        (6, False, 6, "F# major"),
        (1, False, -5, "Db major"),
        (10, False, -2, "Bb major"),
        (9, True, 0, "A minor"),
        (3, True, 6, "D# minor"),
        (10, True, -5, "Bb minor"),
        (8, True, 5, "G# minor"),
    ],
)
def test_key_signature_has_at_most_six_accidentals_and_matches_the_name(tonic, minor, fifths, name):
    found = KeyEstimate(tonic=tonic, minor=minor, correlation=0.9, confidence=0.3)
    assert (found.signature.fifths, found.signature.minor, found.name) == (fifths, minor, name)


def test_every_key_signature_is_legal_and_spelt_with_the_fewer_accidentals():
    fifths = {KeyEstimate(tonic, minor, 0.9, 0.3).signature.fifths for tonic in range(12) for minor in (False, True)}
    assert fifths == set(range(-5, 7))  # MIDI allows -7..7; the fewer accidentals never need more than 6


def test_writer_refuses_an_illegal_key_signature():
    with pytest.raises(ValueError, match="^a key signature has -7..7 sharps or flats, got 11$"):
        key_signature(11, False)


def test_clean_writes_the_key_signature_read_back_by_mido():
    song = convert_record(record_in(2, HARMONIC_MINOR), ConvertOptions(clean="light"))
    conductor = mido_file(write_midi(song)).tracks[0]
    assert [m.key for m in conductor if m.type == "key_signature"] == ["Dm"]
    assert any(
        m.type == "text" and m.text.removeprefix("@I").startswith("key: estimated D minor (confidence ")
        for m in conductor
    )


def test_key_off_writes_no_signature_even_with_clean():
    song = convert_record(record_in(2, MAJOR_SCALE), ConvertOptions(clean="light", key="off"))
    assert song.key is None


def test_key_auto_writes_the_signature_without_clean_up():
    song = convert_record(record_in(7, MAJOR_SCALE), ConvertOptions(key="auto"))
    assert (song.key.fifths, song.key.minor) == (1, False)


def test_info_shows_the_estimated_key(tmp_path):
    summary = summarize_record(record_in(4, MAJOR_SCALE))
    assert summary.key == "E major"
    source = tmp_path / "a.json"
    source.write_text(json.dumps(record_payload({"Piano": tune(4, MAJOR_SCALE)})))
    result = run("info", str(source))
    assert "  key estimated E major (confidence " in result.stdout


def test_info_shows_the_key_written_in_a_midi_file(tmp_path):
    song = convert_record(record_in(9, HARMONIC_MINOR), ConvertOptions(key="auto"))
    path = tmp_path / "a.mid"
    path.write_bytes(write_midi(song))
    result = run("info", str(path))
    assert "  key written A minor" in result.stdout.splitlines()


def test_a_written_key_gets_a_line_like_the_tempo_and_verbose_says_why_none_was(tmp_path):
    source = tmp_path / "a.json"
    source.write_text(json.dumps(record_payload({"Piano": tune(9, HARMONIC_MINOR), "Drums": [(42, 0.0, 0.01, 0.5)]})))
    result = run("convert", str(source), "--key", "auto", "-o", str(tmp_path / "a.mid"))
    assert f"{source}: key signature A minor written (confidence " in result.stderr
    few = tmp_path / "few.json"
    few.write_text(json.dumps(record_payload({"Piano": [(60, 0.0, 0.5, 0.5)]})))
    quiet = run("convert", str(few), "--key", "auto", "-o", str(tmp_path / "few.mid"))
    assert "key signature" not in quiet.stderr  # none written: said only with -v
    verbose = run("convert", str(few), "--key", "auto", "-v", "-o", str(tmp_path / "few2.mid"))
    assert f"{few}: no key signature written: too few pitched notes to tell a key" in verbose.stderr.splitlines()


def test_an_unwritten_key_says_whether_it_was_unsure_or_unsteady():
    unsure = KeyEstimate(tonic=9, minor=True, correlation=0.5, confidence=0.01)
    assert unsure.describe() == "no key signature written: A minor is not sure enough (confidence 0.01, under 0.05)"
    unsteady = KeyEstimate(tonic=0, minor=False, correlation=0.5, confidence=0.3, steady=False)
    assert unsteady.describe() == (
        "no key signature written: C major is not steady (another key wins most thirds of the song)"
    )
    song = convert_record(record_in(9, HARMONIC_MINOR), ConvertOptions(key="auto"))
    assert song.report.key.startswith("key signature A minor written") and song.report.no_key is None
    assert convert_record(record_in(9, HARMONIC_MINOR), ConvertOptions()).report.key is None  # not asked


def test_info_shows_the_time_signatures_of_a_midi_file_and_says_when_it_has_no_key(tmp_path):
    song = convert_record(record_in(9, HARMONIC_MINOR), ConvertOptions())
    path = tmp_path / "a.mid"
    path.write_bytes(write_midi(song))
    lines = run("info", str(path)).stdout.splitlines()
    assert "  time signature 4/4" in lines and "  no key signature" in lines
    import mido

    changing = tmp_path / "b.mid"
    track = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0),
                            mido.Message("note_on", note=60, velocity=64, time=0),
                            mido.MetaMessage("time_signature", numerator=4, denominator=4, time=960),
                            mido.Message("note_off", note=60, velocity=0, time=480)])  # fmt: skip
    mido.MidiFile(ticks_per_beat=480, tracks=[track]).save(changing)  # 120 BPM: 960 ticks are 1 s
    assert "  time signatures 3/4 at 0.000 s, 4/4 at 1.000 s" in run("info", str(changing)).stdout.splitlines()
