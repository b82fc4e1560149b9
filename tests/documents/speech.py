"""Synthetic doctor-patient consultations for the transcription tests and benchmark (espeak-ng, no sox).

``synthesise(directory)`` speaks each line of a dialogue with one of two clearly different espeak-ng voices
(the doctor a low male voice, the patient a higher female one), joins the lines with pauses using ``wave``
and numpy, and returns the WAV file with the ground truth: who said what, and roughly when.
``encode(wav, suffix)`` re-encodes it as MP3, WebM/Opus (what browsers' MediaRecorder produce) or M4A/AAC
with PyAV. ``word_error_rate(reference, hypothesis)`` is the word-level Levenshtein distance after
normalisation, divided by the number of reference words; ``speaker_accuracy(transcript, dialogue)`` the
share of recognised words given to the right speaker.

Other document-AI tests may import this module (e.g. to build a transcript for summaries).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import av
import numpy as np

from caresync.documents.samples import ESPEAK as ESPEAK  # the synthesis the demo uses too, re-exported
from caresync.documents.samples import SAMPLE_RATE as SAMPLE_RATE
from caresync.documents.samples import Dialogue
from caresync.documents.samples import synthesise as _synthesise
from caresync.documents.samples import write_wav as write_wav
from caresync.documents.transcription import Transcript

# (role, text, pause before the next line in seconds). The short pauses make the recogniser merge two turns
# into one segment, so the speaker separation has to split inside a segment.
CONSULTATION: tuple[tuple[str, str, float], ...] = (
    ("doctor", "Good morning. What brings you in today?", 0.8),
    ("patient", "I have had a sore throat and a fever since Monday.", 0.8),
    ("doctor", "Do you have a cough or any trouble breathing?", 0.5),
    ("patient", "Yes, a dry cough, but my breathing is fine.", 0.9),
    ("doctor", "Are you taking any medicine at the moment?", 0.8),
    ("patient", "Only paracetamol for the headache.", 0.4),
    ("doctor", "Let me take a look at your throat.", 1.0),
    ("patient", "Is it serious, doctor?", 0.8),
    ("doctor", "Your tonsils are swollen. I will prescribe a course of antibiotics.", 0.8),
    ("patient", "How often should I take them?", 0.7),
    ("doctor", "Twice a day with food for one week.", 0.9),
    ("patient", "Thank you. Should I come back?", 0.6),
    ("doctor", "Come back next week if the fever does not go away.", 0.8),
    ("patient", "I will. I also feel very tired in the evenings.", 0.8),
    ("doctor", "Drink plenty of water and rest at home for a few days.", 0.9),
    ("patient", "Can I go to work on Friday?", 0.7),
    ("doctor", "Only if the fever has gone by then.", 0.8),
    ("patient", "Thank you for your help.", 0.5),
)


# suffix -> (container format, codec, sample rate)
CODECS = {
    ".mp3": ("mp3", "libmp3lame", 22_050),
    ".webm": ("webm", "libopus", 48_000),
    ".m4a": ("mp4", "aac", 22_050),
}


def synthesise(
    directory: Path, lines: tuple[tuple[str, str, float], ...] = CONSULTATION, **options: Any
) -> Dialogue:
    """:func:`caresync.documents.samples.synthesise`, speaking :data:`CONSULTATION` unless told otherwise."""
    return _synthesise(directory, lines, **options)


def encode(wav: Path, suffix: str) -> Path:
    """Re-encode a WAV file as ``.mp3``, ``.webm`` (Opus) or ``.m4a`` (AAC) beside it, with PyAV."""
    container_format, codec, rate = CODECS[suffix]
    target = wav.with_suffix(suffix)
    with av.open(str(wav)) as source, av.open(str(target), "w", format=container_format) as sink:
        stream = sink.add_stream(codec, rate=rate, layout="mono")
        assert isinstance(stream, av.audio.stream.AudioStream)
        resampler = av.AudioResampler(format=stream.codec_context.format, layout="mono", rate=rate)
        for frame in source.decode(audio=0):
            for resampled in resampler.resample(frame):
                sink.mux(stream.encode(resampled))
        for resampled in resampler.resample(None):
            sink.mux(stream.encode(resampled))
        sink.mux(stream.encode(None))
    return target


def normalise(text: str) -> list[str]:
    """Lower-case words without punctuation (apostrophes kept), for comparing transcripts."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, over :func:`normalise`'d words."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, start=1):
        current = [i]
        for j, other in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other)))
        previous = current
    return previous[-1] / max(len(ref), 1)


def speaker_accuracy(transcript: Transcript, dialogue: Dialogue) -> float:
    """Share of recognised words attributed to the right speaker (best of the two label permutations); a
    word belongs to the reference turn nearest its middle."""
    truth, said = [], []
    for segment in transcript.segments:
        for word in segment.words:
            middle = (word.start + word.end) / 2
            nearest = min(dialogue.turns, key=lambda t: max(t.start - middle, middle - t.end, 0.0))
            truth.append(nearest.speaker == "doctor")
            said.append(segment.speaker == "speaker 1")
    same = float(np.mean(np.array(truth) == np.array(said)))
    return max(same, 1 - same)
