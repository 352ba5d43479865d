from __future__ import annotations

import pytest

from midiexport import gm
from midiexport.gm import GM_PROGRAMS, channel_label, resolve_instrument, resolve_override


def test_all_128_gm_names_resolve_to_their_program_in_any_case():
    assert len(GM_PROGRAMS) == 128
    for program, name in enumerate(GM_PROGRAMS):
        assert resolve_instrument(name.upper()).program == program
        assert resolve_instrument(name.lower()).how == "gm"


@pytest.mark.parametrize(
    ("name", "program", "is_drum"),
    [
        ("Electric Bass (finger)", 33, False),
        ("String Ensembles 1", 48, False),
        ("Synth Voice", 54, False),
        ("Honky Tonk Piano", 3, False),
        ("Electric Piano 1 (Rhodes)", 4, False),
        ("Violin 2", 40, False),
        ("Steel Drums", 114, False),
        ("Drums", 0, True),
        ("Drum Kit", 0, True),
        ("Percussion", 0, True),
        ("Bass", 33, False),
        ("Lead Vocals", 54, False),
        ("Strings", 48, False),
        ("Keyboard", 4, False),
        ("Woodwinds", 73, False),
        ("Brass", 61, False),
        ("Guitar", 25, False),
        ("FX", 98, False),
    ],
)
def test_names_from_the_wild_resolve(name, program, is_drum):
    found = resolve_instrument(name)
    assert (found.program, found.is_drum) == (program, is_drum)


def test_unknown_names_say_so():
    assert resolve_instrument("Kazoo Orchestra").how == "unknown"


@pytest.mark.parametrize(("value", "program", "is_drum"), [("0", 0, False), (127, 127, False),
                                                           ("Fretless Bass", 35, False), ("Drums", 0, True)])  # fmt: skip
def test_program_overrides(value, program, is_drum):
    found = resolve_override(value)
    assert (found.program, found.is_drum) == (program, is_drum)


@pytest.mark.parametrize(("value", "message"), [("128", "program must be in 0..127, got 128"),
                                                ("Kazoo", "unknown program 'Kazoo'")])  # fmt: skip
def test_bad_program_overrides_name_what_is_allowed(value, message):
    with pytest.raises(ValueError, match=message):
        resolve_override(value)


def test_channels_are_shown_1_based():
    assert channel_label(9) == "10"


def test_names_past_the_remembered_length_resolve_alike():
    # Long names skip the lookup caches (a server must not keep thousands of huge names),
    # and resolve exactly as short ones do.
    long_bass = "Electric Bass (finger) " + "x" * gm.REMEMBERED_NAME_CHARS
    assert len(long_bass) > gm.REMEMBERED_NAME_CHARS
    assert gm.resolve_instrument(long_bass) == gm.resolve_instrument("Bass " + "x" * 10)
    assert gm.is_drum_name("Drums " + "y" * gm.REMEMBERED_NAME_CHARS)
    assert gm.name_key("A-b " * 100) == "ab" * 100


def test_resolve_overrides_refuses_one_instrument_given_two_programs_naming_both():
    with pytest.raises(ValueError, match=r"^'Bass=33' and 'bass=Slap Bass 1' give the same instrument two programs"):
        gm.resolve_overrides([("Bass", 33), ("bass", "Slap Bass 1")])


def test_library_options_refuse_one_instrument_given_two_programs():
    from midiexport.options import ConvertOptions

    with pytest.raises(ValueError, match="give the same instrument two programs"):
        ConvertOptions(programs={"Lead Vocals": 54, "lead vocals": 0})


def test_resolve_overrides_accepts_one_program_in_two_spellings_and_keeps_distinct_names():
    found = gm.resolve_overrides(
        [("Electric Bass (finger)", 36), ("electric bass finger", "Slap Bass 1"), ("Piano", 4)]
    )
    assert {key: resolved.program for key, resolved in found.items()} == {
        gm.name_key("Electric Bass (finger)"): 36,
        gm.name_key("Piano"): 4,
    }


@pytest.mark.parametrize(
    ("value", "chosen", "word", "close"),
    [
        ("Fretles Bass", "33 Electric Bass (finger)", "Bass", "Fretless Bass"),
        ("pizzicatto strings", "48 String Ensemble 1", "strings", "Pizzicato Strings"),
        ("Electric Guitar (cleen)", "25 Acoustic Guitar (steel)", "Guitar", "Electric Guitar (clean)"),
    ],
)
def test_a_program_read_by_a_word_beside_a_typo_says_so_and_keeps_its_program(value, chosen, word, close):
    said = gm.read_by_word(value)
    assert said == f'program "{value}" read as {chosen} by its word "{word}"; did you mean "{close}"?'
    assert resolve_override(value).program == int(chosen.split()[0])  # read as before: a warning, no refusal
    assert resolve_override(close).program != resolve_override(value).program


@pytest.mark.parametrize(
    ("value", "program"),
    [
        ("Electric Guitar", 25),  # known words alone: a shortened name, read on purpose
        ("Synth Bass", 33),
        ("Backing Vocals", 54),  # "Backing" is no table's word, but no GM name is near the value
        ("Acoustic Guitar", 25),
        ("Strings 1", 48),
        ("Electric Piano 1 (Rhodes)", 4),  # a GM name (the parenthesis aside)
        ("Brass Sectoin", 61),  # a typo of the very program its word chose
        ("Bass", 33),
        ("Fretless Bass", 35),
        ("33", 33),
        ("Drum Kit", 0),
    ],
)
def test_programs_users_give_resolve_as_before_without_a_warning(value, program):
    assert resolve_override(value).program == program
    assert gm.read_by_word(value) is None


def test_numbers_of_any_kind_are_never_read_by_a_word():
    import numpy as np

    assert gm.read_by_word(np.int64(33)) is None  # type: ignore[arg-type]
    assert gm.read_by_word(33) is None


def test_closest_takes_the_first_of_equally_close_names():
    # "Synth Bas" is as near "Synth Bass 1" as "Synth Bass 2": the table's order decides, not the larger string.
    assert gm.closest("Synth Bas", GM_PROGRAMS) == "Synth Bass 1"
    assert gm.closest("Synth Bas", list(reversed(GM_PROGRAMS))) == "Synth Bass 2"


@pytest.mark.parametrize(
    ("one", "other"),
    [("ベース", "ﾍﾞｰｽ"), ("Бас", "бас"), ("Café", "cafe"), ("Ｂａｓｓ", "Bass"), ("ドラム 2", "ドラム-2")],
)
def test_name_key_matches_names_of_any_script_case_and_punctuation_aside(one, other):
    assert gm.name_key(one) == gm.name_key(other) != ""


@pytest.mark.parametrize(("one", "other"), [("ベース", "ドラム"), ("Бас", "Бай"), ("バス", "パス"), ("ベース", "")])
def test_name_key_keeps_names_of_other_scripts_apart(one, other):
    # A name with no a-z keyed as "" once: --program 'ベース=33' then named every such instrument.
    # Marks that make another letter (ベ's dakuten, й's breve) stay; only Latin accents fold.
    assert gm.name_key(one) != gm.name_key(other)


def test_name_key_of_ascii_names_is_their_letters_and_digits_in_lower_case():
    for name in (*gm.GM_PROGRAMS, *gm.GM_ALIASES, *gm.accepted_names(), "Lead Vox #2", "!!"):
        assert gm.name_key(name) == "".join(c for c in name.lower() if c.isascii() and c.isalnum())


def test_a_program_for_one_non_latin_name_leaves_the_others():
    overrides = gm.resolve_overrides([("ベース", 33)])
    assert gm.resolve_part("ベース", overrides=overrides).how == "override"
    assert gm.resolve_part("ドラム", overrides=overrides).how != "override"
    assert gm.resolve_part("Бас", overrides=overrides).how != "override"


def test_a_one_word_value_gets_no_suggestion_from_a_word_only_at_the_close_ratio():
    # "kick" is "pick" at exactly CLOSE (3 letters of 4): the word fallback alone is too weak for one word.
    with pytest.raises(ValueError, match=r"^unknown program 'Kick': use 0\.\.127"):
        resolve_override("Kick")
    assert gm.closest("Kick", gm.accepted_names()) is None
    assert gm.closest("Bas", gm.accepted_names()) == "Bass"  # a nearer word still suggests
    assert gm.closest("Saxx", gm.accepted_names()) == "Soprano Sax"


def test_accepted_stem_names_are_capitalised_words_and_only_fx_in_capitals():
    names = gm.accepted_names()
    assert {"Pad", "Vox", "FX", "SFX", "Keys"} <= set(names)
    assert not {"PAD", "VOX", "Fx", "Sfx"} & set(names)
    assert gm.closest("Padd", names) == "Pad"


def test_a_name_of_another_script_is_suggested_only_when_near():
    # Both keyed "" once, so any such name was "did you mean" any other.
    assert "did you mean" not in gm.names_none("ベース", ["ドラム", "Piano"])
    assert gm.names_none("ベー", ["ドラム", "ベース"]).endswith('did you mean "ベース"?')
    assert gm.closest("!!", ["??", "Piano"]) is None
