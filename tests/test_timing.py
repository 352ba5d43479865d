"""Timing (stages/timing.py): seconds to ticks through a tempo map, fixed-tempo plans, the grid.

Expected ticks are computed here independently of ``TimeMap.to_ticks``: exactly, with
fractions, walking the tempo map segment by segment, or with mido's tick2second. The
estimated maps of ``--bpm auto`` are tested in test_tempo.py and test_beatmap.py.
"""

from __future__ import annotations

from fractions import Fraction

import mido
import numpy as np
import pytest

from conftest import record_payload
from midiexport.stages.normalize import normalize_payload
from midiexport.stages.timing import TimeMap, grid_ticks, plan_time, quantize, tempo_us

SUNO_GRID = 192  # Suno's note times are k/192 s (PRODUCT.md)
# A tempo map of four tempos at PPQ 480: 120 BPM for a bar, 60 for a bar, 240 for two, then 90.
PPQ = 480
TEMPOS = ((0, 500_000), (1920, 1_000_000), (3840, 250_000), (7680, 666_667))


def exact_tick(seconds: float, tempos: tuple[tuple[int, int], ...], ppq: int) -> Fraction:
    """Return the exact (unrounded) tick of a time in seconds, walking the tempo map segment by segment."""
    left = Fraction(seconds)
    for (tick, us), following in zip(tempos, [*tempos[1:], None]):
        per_tick_s = Fraction(us, 1_000_000 * ppq)
        if following is None or left < (following[0] - tick) * per_tick_s:
            return tick + left / per_tick_s
        left -= (following[0] - tick) * per_tick_s
    raise AssertionError("unreachable")


def seconds_of_tick(tick: int, tempos: tuple[tuple[int, int], ...], ppq: int) -> float:
    """Return the time of a tick in seconds with mido's tick2second, segment by segment."""
    seconds = 0.0
    for (start, us), following in zip(tempos, [*tempos[1:], None]):
        end = tick if following is None else min(tick, following[0])
        if end > start:
            seconds += mido.tick2second(end - start, ppq, us)
    return seconds


@pytest.mark.parametrize("ppq", [96, 480, 960])
def test_times_on_the_192_grid_at_120_bpm_become_exact_ticks(ppq):
    steps = np.arange(0, SUNO_GRID * 600)  # ten minutes of 1/192 s steps
    time_map = TimeMap(ppq, ((0, tempo_us(120)),))
    ticks = time_map.to_ticks(steps / SUNO_GRID)
    assert ticks.dtype == np.int64
    assert np.array_equal(ticks, steps * ppq // 96)  # 96 ticks per quarter = one per 1/192 s at 120 BPM


def test_each_tempo_change_falls_on_its_own_tick():
    time_map = TimeMap(PPQ, TEMPOS)
    change_s = np.array([seconds_of_tick(tick, TEMPOS, PPQ) for tick, _ in TEMPOS])
    assert change_s.tolist() == [0.0, 2.0, 6.0, 8.0]  # a bar of 120, a bar of 60, two bars of 240 BPM
    assert time_map.to_ticks(change_s).tolist() == [tick for tick, _ in TEMPOS]


def test_seconds_through_several_tempos_land_within_half_a_tick_of_the_exact_tick():
    seconds = np.sort(np.random.default_rng(7).uniform(0.0, 20.0, 2000))
    got = TimeMap(PPQ, TEMPOS).to_ticks(seconds)
    exact = [exact_tick(float(s), TEMPOS, PPQ) for s in seconds]
    assert max(abs(int(g) - e) for g, e in zip(got, exact)) <= Fraction(1, 2) + Fraction(1, 10**9)  # float rounding
    assert np.all(np.diff(got) >= 0)  # later times never come earlier


def test_ticks_round_trip_through_seconds_and_back():
    ticks = np.concatenate([np.arange(0, 12_000, 7), [1919, 1920, 1921, 3839, 3840, 7679, 7680]])
    seconds = np.array([seconds_of_tick(int(t), TEMPOS, PPQ) for t in ticks])
    assert np.array_equal(TimeMap(PPQ, TEMPOS).to_ticks(seconds), ticks)


@pytest.mark.parametrize(("bpm", "ppq"), [(120, 480), (87.5, 960), (4, 1), (1000, 32767)])
def test_plan_time_with_a_fixed_bpm_writes_that_one_tempo_and_no_pickup(bpm, ppq):
    [record] = normalize_payload(record_payload({"Piano": [(60, 1.0, 2.0, 0.5)]}), source="a.json")
    time_map = plan_time(record, bpm=bpm, ppq=ppq)
    assert time_map.tempos == ((0, mido.bpm2tempo(bpm)),)
    assert (time_map.ppq, time_map.meters, time_map.downbeat_tick, time_map.estimate) == (ppq, ((0, 4, 4),), 0, None)
    one_second = exact_tick(1.0, ((0, mido.bpm2tempo(bpm)),), ppq)
    assert abs(int(time_map.to_ticks(np.array([1.0]))[0]) - one_second) <= Fraction(1, 2)


def test_plan_time_keeps_a_fixed_bpm_for_a_json_record_even_with_keep():
    [record] = normalize_payload(record_payload({"Piano": [(60, 1.0, 2.0, 0.5)]}), source="a.json")
    assert plan_time(record, bpm=100, ppq=480, tempo_map="keep").tempos == ((0, 600_000),)


def test_plan_time_refuses_a_bpm_that_is_neither_a_number_nor_auto():
    [record] = normalize_payload(record_payload({"Piano": [(60, 1.0, 2.0, 0.5)]}), source="a.json")
    with pytest.raises(ValueError, match="bpm must be a number or 'auto', got 'fast'"):
        plan_time(record, bpm="fast", ppq=480)


@pytest.mark.parametrize(
    ("grid", "ppq", "length"),
    [("1/1", 480, 1920), ("1/2", 96, 192), ("1/64", 480, 30), ("1/64t", 480, 20), (" 1/16 ", 960, 240),
     ("1/8t", 100, Fraction(100, 3))],
)  # fmt: skip
def test_grid_ticks_is_the_note_value_in_ticks(grid, ppq, length):
    assert grid_ticks(grid, ppq) == pytest.approx(float(length), abs=1e-12)


@pytest.mark.parametrize("grid", ["1/3", "1/128", "1/0", "1/16tt", "2/4", "sixteenth", ""])
def test_grid_ticks_refuses_other_values_naming_the_accepted_ones(grid):
    with pytest.raises(ValueError, match=r"1/N with N in 1, 2, 4, 8, 16, 32, 64 \(t for triplets\)"):
        grid_ticks(grid, 480)


def test_quantize_moves_starts_and_ends_to_the_nearest_line():
    on, off = quantize(np.array([0, 59, 61, 245]), np.array([130, 110, 290, 470]), grid=120, origin=0)
    assert on.tolist() == [0, 0, 120, 240] and off.tolist() == [120, 120, 240, 480]


def test_quantize_keeps_one_grid_step_for_a_note_that_would_vanish():
    on, off = quantize(np.array([100, 0]), np.array([130, 10]), grid=120, origin=0)
    assert on.tolist() == [120, 0] and off.tolist() == [240, 120]


def test_quantize_counts_lines_from_the_origin_and_never_goes_below_zero():
    on, off = quantize(np.array([10, 215, 339]), np.array([50, 330, 700]), grid=120, origin=100)
    assert on.tolist() == [0, 220, 340] and off.tolist() == [120, 340, 700]  # the line at -20 is kept at 0


def test_quantize_on_a_grid_of_fractional_ticks_rounds_each_line():
    third = 100 / 3  # "1/8t" at PPQ 100: lines at 0, 33.3, 66.7, 100
    on, off = quantize(np.array([0, 34, 66]), np.array([30, 70, 99]), grid=third, origin=0)
    assert on.tolist() == [0, 33, 67] and off.tolist() == [33, 67, 100]
    assert on.dtype == off.dtype == np.int64
