"""Document AI benchmarks (issue #9), each part in its own process (they load different models):

- ``document_ai/ocr.py``: OCR seconds per page through CareSync against the ``ocrmypdf`` command on the
  same file with the same options (target: ratio <= 1.2);
- ``document_ai/search.py``: search p95 over 100,000 documents, one patient and a whole organisation
  (target < 100 ms), plus retrieval quality (nDCG@10, recall@10) of full text against hybrid;
- ``document_ai/transcription.py``: transcription and speaker separation real-time factor (target < 0.3
  on 2 cores), word error rate and speaker accuracy;
- ``document_ai/summaries.py``: the SOAP draft's section accuracy and its time for a 15-minute consultation.

Run: ``python bench/documents.py [--only ocr,search] [--quick]`` (``--quick``: smaller sizes, for a smoke
run). Prints one JSON object with every part's result.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "document_ai"
PARTS = ("ocr", "search", "transcription", "summaries")
QUICK = {
    "ocr": ["--pages", "1", "--rounds", "1"],
    "search": ["--documents", "5000", "--patients", "250"],
    "transcription": ["--rounds", "1"],
    "summaries": ["--repeats", "5", "--no-model"],
}


def run_part(name: str, quick: bool) -> dict[str, Any]:
    """One part's JSON result (its progress goes to stderr), or why it failed."""
    command = [sys.executable, str(HERE / f"{name}.py"), *(QUICK[name] if quick else [])]
    print(f"[documents] {name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 (our own script)
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        return {"failed": done.returncode, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts to run")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = parser.parse_args()
    chosen = [name for name in args.only.split(",") if name]
    unknown = set(chosen) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    results = {name: run_part(name, args.quick) for name in chosen}
    print(json.dumps({"benchmark": "documents", "cores": os.cpu_count(), "quick": args.quick, **results}))
    return 1 if any("failed" in result for result in results.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
