"""Frame-level voice features of a recording: MFCCs (from Whisper's log-mel spectrogram) and pitch.

Frames are 10 ms apart (frame ``i`` is centred on sample ``i * HOP``), the same grid for both features, so a
time span in seconds maps to frames by :func:`frame_of`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from faster_whisper.feature_extractor import FeatureExtractor
from numpy.lib.stride_tricks import sliding_window_view
from scipy.fft import dct

from caresync.documents.transcription.audio import SAMPLE_RATE

HOP = 160  # 10 ms
N_MELS = 40
N_MFCC = 13  # coefficients 1..12 are kept: 0 is loudness, which says more about the microphone than the voice
PITCH_WINDOW = 640  # 40 ms: two periods of an 80 Hz voice
PITCH_RANGE = (70.0, 400.0)  # Hz
VOICING = 0.5  # minimum normalised autocorrelation of a voiced frame


@dataclass(frozen=True)
class Frames:
    """Per-frame features: ``mfcc`` (frames x 12), ``energy`` (mean log-mel, Whisper-scaled: 1.0 is 40 dB)
    and ``pitch`` (Hz, NaN where unvoiced)."""

    mfcc: np.ndarray
    energy: np.ndarray
    pitch: np.ndarray


def frame_of(seconds: float) -> int:
    """The index of the frame at ``seconds``."""
    return round(seconds * SAMPLE_RATE / HOP)


def _pitch(samples: np.ndarray, frames: int) -> np.ndarray:
    """Autocorrelation pitch per frame (Hz), NaN for unvoiced frames."""
    padded = np.pad(samples, (PITCH_WINDOW // 2, PITCH_WINDOW + frames * HOP))
    windows = sliding_window_view(padded, PITCH_WINDOW)[: frames * HOP : HOP]
    windows = (windows - windows.mean(axis=1, keepdims=True)) * np.hanning(PITCH_WINDOW)
    spectrum = np.fft.rfft(windows, n=2 * PITCH_WINDOW)
    autocorrelation = np.fft.irfft(np.abs(spectrum) ** 2)[:, :PITCH_WINDOW]
    low, high = int(SAMPLE_RATE / PITCH_RANGE[1]), int(SAMPLE_RATE / PITCH_RANGE[0])
    normalised = autocorrelation[:, low:high] / np.maximum(autocorrelation[:, :1], 1e-10)
    best = normalised.argmax(axis=1)
    pitch = SAMPLE_RATE / (best + low).astype(np.float64)
    pitch[normalised[np.arange(len(best)), best] < VOICING] = np.nan
    return pitch


def extract(samples: np.ndarray) -> Frames:
    """The features of a whole recording (float32 samples at :data:`SAMPLE_RATE`)."""
    log_mel = FeatureExtractor(feature_size=N_MELS)(samples, padding=0)  # (mels, frames)
    mfcc = dct(log_mel, type=2, axis=0, norm="ortho")[1:N_MFCC].T
    return Frames(mfcc=mfcc, energy=log_mel.mean(axis=0), pitch=_pitch(samples, log_mel.shape[1]))
