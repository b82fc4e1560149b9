"""Guessing which speaker is the doctor: a simple, documented heuristic the doctor corrects afterwards.

Each speaker scores one point per clinician phrase (asking about the patient - "do you", "are you
taking", "what brings you" - examining, prescribing, advising) and loses one per patient phrase (talking
about themselves - "I have", "my", "I feel" - or asking what to do - "should I", "can I"). The highest score
is the doctor; on a tie the first speaker is (the clinician usually opens the consultation). Everyone else
is a patient.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from caresync.documents.transcription.transcript import Segment

DOCTOR = re.compile(
    r"\b(what brings you|how can i help|do you|are you|have you|did you|does it|is there|"
    r"any (pain|fever|allerg\w*|other)|how long|let me|let's|take a look|examine|listen to|prescrib\w*|"
    r"i recommend|you should|i will (give|refer|order|send)|blood test|come back|follow up)\b"
)
PATIENT = re.compile(r"\b(i have|i've|i had|i feel|i am|i'm|my|should i|can i|do i|thank you|doctor)\b")


def guess_roles(segments: Iterable[Segment]) -> Mapping[str, str]:
    """Speaker -> "doctor" / "patient" for the speakers of ``segments`` (see the module docstring)."""
    scores: dict[str, int] = {}
    for segment in segments:
        if segment.speaker is not None:
            text = segment.text.lower()
            score = len(DOCTOR.findall(text)) - len(PATIENT.findall(text))
            scores[segment.speaker] = scores.get(segment.speaker, 0) + score
    doctor = max(scores, key=scores.__getitem__, default=None)  # the first of equal scores wins
    return MappingProxyType({speaker: "doctor" if speaker == doctor else "patient" for speaker in scores})
