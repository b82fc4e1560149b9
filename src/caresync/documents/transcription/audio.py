"""Decoding uploaded recordings (WAV, MP3, WebM/Opus, M4A/AAC, ...) to 16 kHz mono samples with PyAV.

Anything a user can get wrong - not audio at all, a damaged file, no sound, longer than
:data:`MAX_SECONDS` - raises :class:`~caresync.core.errors.ValidationFailed` with a message they can act on.
Damaged frames inside an otherwise readable file (a recording cut short) are skipped, as faster-whisper does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from caresync.core.errors import ValidationFailed

SAMPLE_RATE = 16_000  # what Whisper expects
MAX_SECONDS = 60 * 60  # one hour: a long consultation; longer uploads are refused
MIN_SECONDS = 0.5
SILENCE_PEAK = 1e-3  # a recording whose loudest sample is below this (full scale 1.0) is silent


def _frames(container: av.container.InputContainer) -> Iterator[av.AudioFrame]:
    """The audio frames of the first audio stream, skipping damaged ones."""
    frames = container.decode(audio=0)
    while True:
        try:
            yield next(frames)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue


def load_audio(path: Path, *, max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """The recording at ``path`` as float32 samples in [-1, 1], mono, :data:`SAMPLE_RATE` Hz.

    Raises ValidationFailed if it is not readable audio, is shorter than :data:`MIN_SECONDS`, longer than
    ``max_seconds`` or silent.
    """
    limit = int(max_seconds * SAMPLE_RATE)
    too_long = ValidationFailed(f"The recording is longer than the limit of {max_seconds / 60:g} minutes.")
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise ValidationFailed("The file has no audio track.")
            if container.duration is not None and container.duration / av.time_base > max_seconds:
                raise too_long
            for frame in _frames(container):
                chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
                if sum(chunk.size for chunk in chunks) > limit:
                    raise too_long
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except av.error.FFmpegError as error:
        raise ValidationFailed("The file is not a readable audio recording (WAV, MP3, WebM, M4A).") from error
    samples = np.concatenate(chunks).astype(np.float32) / 32768.0 if chunks else np.zeros(0, np.float32)
    if samples.size > limit:
        raise too_long
    if samples.size < MIN_SECONDS * SAMPLE_RATE:
        raise ValidationFailed(f"The recording is empty or shorter than {MIN_SECONDS:g} seconds.")
    if float(np.abs(samples).max()) < SILENCE_PEAK:
        raise ValidationFailed("The recording is silent.")
    return samples
