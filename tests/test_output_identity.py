"""The .mid bytes and messages match those recorded from the code before the performance work.

tests/output_digests.json was written by tests/make_output_digests.py on the code as it was
before the typed ingest path and the shared sort; the same script's functions compute today's.
"""

from __future__ import annotations

import json
import sys

import pytest

from make_output_digests import DIGESTS, digests
from midiexport.stages import normalize

EXPECTED = json.loads(DIGESTS.read_text())


@pytest.fixture(scope="module", params=["typed", "general"])
def today(request: pytest.FixtureRequest) -> dict[str, dict[str, list[str]]]:
    """Today's digests with the typed ingest path taken wherever it fits, or never."""
    saved = normalize.TYPED_MIN_BYTES
    normalize.TYPED_MIN_BYTES = 0 if request.param == "typed" else 1 << 62
    modules = dict(sys.modules)
    if request.param == "general":
        sys.modules.pop("msgspec", None)  # a loaded msgspec also opens the typed path
    try:
        return digests()
    finally:
        normalize.TYPED_MIN_BYTES = saved
        sys.modules.update(modules)


def test_every_recorded_input_is_still_converted(today: dict[str, dict[str, list[str]]]) -> None:
    assert sorted(today) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_output_and_messages_are_byte_identical_to_the_recorded_ones(
    name: str, today: dict[str, dict[str, list[str]]]
) -> None:
    assert today[name] == EXPECTED[name]
