"""The .mid bytes and messages match those recorded from the code before the performance work.

tests/output_digests.json was written by tests/make_output_digests.py on the code as it was
before the typed ingest path and the shared sort; the same script's functions compute today's.
"""

from __future__ import annotations

import json

import pytest

from make_output_digests import DIGESTS, digests

EXPECTED = json.loads(DIGESTS.read_text())


@pytest.fixture(scope="module")
def today() -> dict[str, dict[str, list[str]]]:
    return digests()


def test_every_recorded_input_is_still_converted(today: dict[str, dict[str, list[str]]]) -> None:
    assert sorted(today) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_output_and_messages_are_byte_identical_to_the_recorded_ones(
    name: str, today: dict[str, dict[str, list[str]]]
) -> None:
    assert today[name] == EXPECTED[name]
