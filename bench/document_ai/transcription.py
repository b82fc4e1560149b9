"""Transcription benchmark: real-time factor of recognition and of speaker separation on a synthetic
consultation (about 60 s, two espeak-ng voices, see ``tests/documents/speech.py``).

Run as its own process: ``python bench/document_ai/transcription.py [--rounds 3]``.

In process, no server: the Whisper model is loaded once (timed apart), the WAV is decoded once, then each
round times :func:`caresync.documents.transcription.recognise` (faster-whisper with VAD and word
timestamps) and :func:`~caresync.documents.transcription.separate_speakers` (voice features + clustering)
on the same samples. The real-time factor is processing seconds / audio seconds (median of the rounds).
Target: < 0.3 for each, on the machine's cores. Also reported: the end-to-end :func:`transcribe` of the same
dialogue encoded as WebM/Opus (what browsers record: decoding included), the word error rate and the share
of words given to the right speaker.

Prints one JSON object on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.documents.speech import encode, speaker_accuracy, synthesise, word_error_rate

from caresync.documents.transcription import load_audio, load_model, recognise, separate_speakers, transcribe
from caresync.documents.transcription.audio import SAMPLE_RATE

TARGET = {"transcription_rtf": 0.3, "separation_rtf": 0.3}


def log(message: str) -> None:
    """Progress to stderr (stdout carries only the JSON result)."""
    print(f"[documents_transcription] {message}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-transcription-") as directory:
        dialogue = synthesise(Path(directory))
        started = time.perf_counter()
        load_model()
        load_seconds = time.perf_counter() - started
        samples = load_audio(dialogue.path)
        seconds = samples.size / SAMPLE_RATE
        log(f"{seconds:.1f} s of audio, model loaded in {load_seconds:.2f} s")
        recognition, separation = [], []
        for round_ in range(args.rounds):
            started = time.perf_counter()
            segments = recognise(samples)
            recognition.append(time.perf_counter() - started)
            started = time.perf_counter()
            separate_speakers(samples, segments)
            separation.append(time.perf_counter() - started)
            log(f"round {round_ + 1}: recognition {recognition[-1]:.2f} s, separation {separation[-1]:.2f} s")
        webm = encode(dialogue.path, ".webm")
        started = time.perf_counter()
        transcript = transcribe(webm)
        end_to_end = time.perf_counter() - started
    rtf = {
        "transcription_rtf": round(statistics.median(recognition) / seconds, 3),
        "separation_rtf": round(statistics.median(separation) / seconds, 3),
    }
    result = {
        "benchmark": "documents_transcription",
        "audio_seconds": round(seconds, 1),
        "model_load_s": round(load_seconds, 2),
        **rtf,
        "rounds_s": {
            "recognition": [round(s, 2) for s in recognition],
            "separation": [round(s, 3) for s in separation],
        },
        "end_to_end_webm_rtf": round(end_to_end / seconds, 3),
        "word_error_rate": round(word_error_rate(dialogue.text, transcript.text), 3),
        "speaker_accuracy": round(speaker_accuracy(transcript, dialogue), 3),
        "target": TARGET,
        "met": all(rtf[key] < limit for key, limit in TARGET.items()),
        "cores": os.cpu_count(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
