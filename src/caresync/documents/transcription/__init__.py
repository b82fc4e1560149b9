"""Transcription of consultations (faster-whisper) and separation of the two speakers.

``transcribe(path, progress=...) -> Transcript`` is the whole pipeline: :mod:`.audio` decodes and checks
the upload, :mod:`.engine` recognises speech, :mod:`.diarization` separates the speakers (voice features
from :mod:`.features`), :mod:`.roles` guesses who the doctor is; :mod:`.transcript` holds the result.
"""

from caresync.documents.transcription.audio import MAX_SECONDS, load_audio
from caresync.documents.transcription.diarization import separate_speakers
from caresync.documents.transcription.engine import load_model, recognise, transcribe
from caresync.documents.transcription.roles import guess_roles
from caresync.documents.transcription.transcript import ROLES, Segment, Transcript, Word

__all__ = [
    "MAX_SECONDS",
    "ROLES",
    "Segment",
    "Transcript",
    "Word",
    "guess_roles",
    "load_audio",
    "load_model",
    "recognise",
    "separate_speakers",
    "transcribe",
]
