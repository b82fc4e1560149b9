"""Transcription and speaker separation of synthetic consultations (two espeak-ng voices).

The Whisper model is loaded once for the module and the main dialogue (~30 s) is transcribed once.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from caresync.core.errors import ValidationFailed
from caresync.documents.transcription import (
    Segment,
    Transcript,
    Word,
    guess_roles,
    load_audio,
    load_model,
    recognise,
    separate_speakers,
    transcribe,
)
from caresync.documents.transcription.audio import SAMPLE_RATE
from tests.documents.speech import (
    CONSULTATION,
    ESPEAK,
    Dialogue,
    encode,
    speaker_accuracy,
    synthesise,
    word_error_rate,
    write_wav,
)

pytestmark = [pytest.mark.no_db, pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed")]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("transcription")


@pytest.fixture(scope="module")
def dialogue(workdir: Path) -> Dialogue:
    return synthesise(workdir, CONSULTATION[:9])


@pytest.fixture(scope="module")
def short(workdir: Path) -> Dialogue:
    return synthesise(workdir, CONSULTATION[:4], name="short.wav")


@pytest.fixture(scope="module")
def progress_and_transcript(dialogue: Dialogue) -> tuple[list[float], Transcript]:
    seen: list[float] = []
    return seen, transcribe(dialogue.path, progress=seen.append)


@pytest.fixture(scope="module")
def transcript(progress_and_transcript: tuple[list[float], Transcript]) -> Transcript:
    return progress_and_transcript[1]


def test_transcribes_the_dialogue_with_timestamps(transcript: Transcript, dialogue: Dialogue) -> None:
    assert word_error_rate(dialogue.text, transcript.text) < 0.2
    assert transcript.language == "en"
    assert transcript.duration == pytest.approx(dialogue.duration, abs=0.1)
    assert [s.index for s in transcript.segments] == list(range(len(transcript.segments)))
    for before, after in zip(transcript.segments, transcript.segments[1:], strict=False):
        assert before.end <= after.start + 0.05
    for segment in transcript.segments:
        assert 0 <= segment.start < segment.end <= transcript.duration + 0.05
        assert segment.words
        assert segment.start <= segment.words[0].start <= segment.words[-1].end <= segment.end
        assert segment.avg_logprob < 0
        assert 0 <= segment.no_speech_prob <= 1


def test_separates_the_two_speakers(transcript: Transcript, dialogue: Dialogue) -> None:
    assert transcript.speakers == ("speaker 1", "speaker 2")
    assert transcript.segments[0].speaker == "speaker 1"
    assert speaker_accuracy(transcript, dialogue) >= 0.8
    assert all(0.5 <= (s.speaker_confidence or 0) <= 1 for s in transcript.segments)


def test_guesses_the_doctor_and_takes_corrections(transcript: Transcript) -> None:
    assert transcript.roles == {"speaker 1": "doctor", "speaker 2": "patient"}  # the doctor speaks first
    corrected = transcript.with_roles({"speaker 1": "patient", "speaker 2": "doctor"})
    assert corrected.roles == {"speaker 1": "patient", "speaker 2": "doctor"}
    assert transcript.roles["speaker 1"] == "doctor"  # the original is unchanged
    with pytest.raises(ValidationFailed, match="Unknown speaker"):
        transcript.with_roles({"speaker 3": "doctor"})
    with pytest.raises(ValidationFailed, match="must be one of"):
        transcript.with_roles({"speaker 1": "surgeon"})


def test_reports_progress_up_to_done(progress_and_transcript: tuple[list[float], Transcript]) -> None:
    seen = progress_and_transcript[0]
    assert len(seen) >= 3
    assert seen == sorted(seen)
    assert 0 <= seen[0] < seen[-1] == 1.0


def test_splits_a_segment_where_the_speaker_changes(transcript: Transcript, dialogue: Dialogue) -> None:
    first, second = transcript.segments[0], transcript.segments[1]
    assert first.speaker != second.speaker
    text, words = f"{first.text} {second.text}", first.words + second.words
    merged = replace(first, end=second.end, text=text, words=words, speaker=None, speaker_confidence=None)
    rest = tuple(replace(s, speaker=None, speaker_confidence=None) for s in transcript.segments[2:])
    split = separate_speakers(load_audio(dialogue.path), (merged, *rest))
    assert [s.text for s in split[:2]] == [" ".join(w.text for w in first.words), second.text]
    assert split[0].speaker != split[1].speaker
    assert split[1].start == second.words[0].start
    assert [s.speaker for s in split] == [s.speaker for s in transcript.segments]


def test_transcribes_a_browser_recording(short: Dialogue) -> None:
    result = transcribe(encode(short.path, ".webm"))  # Opus in WebM, as MediaRecorder produces
    assert word_error_rate(short.text, result.text) < 0.2
    assert speaker_accuracy(result, short) >= 0.8


@pytest.mark.parametrize("suffix", [".mp3", ".m4a", ".webm"])
def test_decodes_compressed_recordings(short: Dialogue, suffix: str) -> None:
    original, decoded = load_audio(short.path), load_audio(encode(short.path, suffix))
    assert decoded.size / SAMPLE_RATE == pytest.approx(short.duration, abs=0.1)  # encoder padding aside
    windows = min(original.size, decoded.size) // 1600  # 100 ms each
    loudness = [np.abs(x[: windows * 1600]).reshape(windows, 1600).mean(axis=1) for x in (original, decoded)]
    assert np.corrcoef(*loudness)[0, 1] > 0.9  # the same speech, in the same place


def test_silence_and_noise_give_no_text(workdir: Path) -> None:
    silent = write_wav(workdir / "silent.wav", np.zeros(5 * SAMPLE_RATE), rate=SAMPLE_RATE)
    with pytest.raises(ValidationFailed, match="silent"):
        transcribe(silent)
    hiss = np.random.default_rng(7).normal(0, 300, 5 * SAMPLE_RATE)  # about -40 dB of white noise
    with pytest.raises(ValidationFailed, match="No speech"):
        transcribe(write_wav(workdir / "hiss.wav", hiss, rate=SAMPLE_RATE))
    assert recognise(hiss.astype(np.float32) / 32768) == ()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"hello, this is not audio",
        bytes(np.random.default_rng(3).integers(0, 256, 4000, dtype=np.uint8)),
        b"RIFF\x24\x00\x00\x00WAVEfmt ",
    ],
    ids=["empty", "text", "random", "truncated-header"],
)
def test_unreadable_files_are_refused(workdir: Path, content: bytes) -> None:
    path = workdir / "upload.wav"
    path.write_bytes(content)
    with pytest.raises(ValidationFailed, match="not a readable audio recording"):
        transcribe(path)


def test_too_long_and_too_short_recordings_are_refused(workdir: Path, dialogue: Dialogue) -> None:
    with pytest.raises(ValidationFailed, match=r"longer than the limit of 0\.25 minutes"):
        load_audio(dialogue.path, max_seconds=15)
    beep = np.sin(np.arange(SAMPLE_RATE // 5) * 0.2) * 8000
    with pytest.raises(ValidationFailed, match=r"shorter than 0\.5 seconds"):
        load_audio(write_wav(workdir / "beep.wav", beep, rate=SAMPLE_RATE))


def test_the_model_is_loaded_once_across_threads() -> None:
    models: list[object] = []
    threads = [threading.Thread(target=lambda: models.append(load_model())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(models) == 4
    assert all(model is models[0] for model in models)


def _said(speaker: str, text: str) -> Segment:
    return Segment(0, 0.0, 1.0, text, (Word(0.0, 1.0, text, 1.0),), -0.1, 0.0, speaker, 1.0)


@pytest.mark.parametrize(
    ("lines", "doctor"),
    [
        ([("speaker 1", "I have a headache."), ("speaker 2", "How long have you had it?")], "speaker 2"),
        ([("speaker 1", "What brings you in?"), ("speaker 2", "My knee hurts.")], "speaker 1"),
        (
            [("speaker 1", "Should I stop the tablets?"), ("speaker 2", "I will prescribe something else.")],
            "speaker 2",
        ),
        ([("speaker 1", "Hello."), ("speaker 2", "Hello.")], "speaker 1"),  # a tie: the first speaker
    ],
)
def test_role_heuristic(lines: list[tuple[str, str]], doctor: str) -> None:
    roles = guess_roles(_said(speaker, text) for speaker, text in lines)
    assert roles == {speaker: "doctor" if speaker == doctor else "patient" for speaker, _ in lines}


def test_word_error_rate() -> None:
    assert word_error_rate("The cat sat.", "the cat sat") == 0
    assert word_error_rate("a b c d", "a x c") == 0.5  # one substitution, one deletion
    assert word_error_rate("a b", "a b c d") == 1.0  # two insertions
