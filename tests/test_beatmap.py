"""The beat map of a .mid (stages/beatmap.py): a constant tempo when it fits, else few changes on bar lines."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import written_seconds
from midiexport.model import Instrument, Record
from midiexport.stages.beatmap import BEAT_TOLERANCE_S, MAX_PERIOD_S, MIN_PERIOD_S, fit_beat_map, keep_source_map

PPQ = 960


def check_grid(beats_s, downbeat):
    tempos, meters, downbeat_tick = fit_beat_map(beats_s, downbeat=downbeat, ppq=PPQ)
    ticks = downbeat_tick + (np.arange(downbeat, len(beats_s)) - downbeat) * PPQ
    miss = np.abs(written_seconds(tempos, ticks) - beats_s[downbeat:])
    assert miss.max() <= BEAT_TOLERANCE_S + 1e-4
    return tempos, meters, downbeat_tick


def test_steady_beats_with_jitter_give_one_tempo():
    rng = np.random.default_rng(1)
    beats = np.arange(200) * 0.6875 + rng.uniform(-0.003, 0.003, 200)
    beats[0] = 0.0
    tempos, meters, downbeat_tick = check_grid(beats, 0)
    assert len(tempos) == 1 and tempos[0][1] == pytest.approx(687_500, abs=50)
    assert meters == ((0, 4, 4),) and downbeat_tick == 0


def test_pickup_beats_become_a_short_first_bar_that_ends_on_the_downbeat():
    beats = np.arange(100) * 0.5
    tempos, meters, downbeat_tick = check_grid(beats, 3)
    assert meters == ((0, 3, 4), (3 * PPQ, 4, 4)) and downbeat_tick == 3 * PPQ
    assert tempos == ((0, 500_000),)  # the pickup has the same tempo: one event


def test_drifting_beats_give_few_changes_only_on_bar_lines():
    beat_s = 0.5 * (1 + 0.08 * np.linspace(0, 1, 400))  # slows down 8% over the song
    beats = np.concatenate([[0.0], np.cumsum(beat_s)])[:400]
    tempos, _, downbeat_tick = check_grid(beats, 0)
    assert 2 <= len(tempos) <= 40
    assert all((tick - downbeat_tick) % (4 * PPQ) == 0 for tick, _ in tempos)


@pytest.mark.parametrize("downbeat", [0, 1, 3])
def test_a_damaged_beat_map_gives_only_tempos_a_file_can_hold(downbeat):
    # A first beat 16.8 s long, then beats a microsecond apart: the grid of the first bar runs
    # seconds past them, and a line from its end back to them has a negative period.
    beats_s = np.concatenate([[0.0, 16.777], 16.777 + np.arange(1, 12) * 1e-6, 16.8 + np.arange(1, 9) * 60.0])
    tempos, _, _ = fit_beat_map(beats_s, downbeat=downbeat, ppq=480)
    assert all(round(MIN_PERIOD_S * 1e6) <= tempo_us <= round(MAX_PERIOD_S * 1e6) for _, tempo_us in tempos)


def test_keep_rescales_the_source_map_and_adds_a_meter():
    record = Record(source="a.mid", status="complete", source_ppq=480,
                    source_tempos=((0, 600_000), (480, 610_000)), beat_map_s=np.array([0.0, 0.6]))  # fmt: skip
    kept = keep_source_map(record, ppq=960)
    assert kept.tempos == ((0, 600_000), (960, 610_000)) and kept.meters == ((0, 4, 4),)


def test_a_beat_map_without_drums_says_why_no_bar_line_is_claimed():
    # a .mid of a piano alone over its beat map: the beats are Suno's, the bar lines are not claimed
    from midiexport.stages.beatmap import plan_source_time

    rng = np.random.default_rng(3)
    start = np.sort(rng.uniform(0.5, 30, 120))
    piano = Instrument("Piano", start, start + 0.2, rng.integers(50, 70, 120), np.full(120, 0.7))
    record = Record(source="x.mid", status="complete", instruments=(piano,), source_ppq=480,
                    source_tempos=((0, 600_000),), beat_map_s=np.arange(0.0, 31, 0.6))  # fmt: skip
    found = plan_source_time(record, ppq=PPQ, keep=False).estimate
    assert found is not None and not found.has_drums and not found.sure
    assert "drum" in found.describe()  # says that without drums no bar line is claimed
