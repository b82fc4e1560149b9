"""Imaging AI benchmark: end-to-end seconds per image through the API (upload -> analysis result with its
Grad-CAM heatmap) for each architecture at 224 px on CPU, throughput with several images in flight, and
the worker's peak memory.

Run as its own process: ``python bench/imaging.py [--images 10] [--inflight 4] [--burst 12]
[--archs basic_cnn,resnet50,efficientnet] [--quick]``.

It builds a fresh SQLite deployment in a temp directory (``caresync migrate``; a hospital, a licensed doctor
with MFA and a patient in their care), registers an UNTRAINED demonstration model per architecture at 224 px
for the ``pneumonia`` task (EfficientNet starts from the ImageNet Lite0 weights, as training would; its head
is random), and starts two processes as in production: ``caresync serve`` (the API) and ``caresync worker
--threads 4`` (a Huey consumer with 4 threads on the SQLite queue). Speed does not depend on what the
weights learnt, so untrained models measure the real cost. For each architecture, the serving version is
switched to it (no restart) and:

1. *cold*: the first image after the switch (the worker loads the version and builds Grad-CAM);
2. *sequential*: ``--images`` images one after another; each one is ``POST /api/v1/imaging/studies`` (the
   shipped 1955x1841 CR chest X-ray ``RG1_UNCI.dcm``, 7 MB, MONOCHROME1), ``POST .../analyses``, polling
   its job (``GET /api/v1/jobs/{id}``, every 20 ms) until it succeeds, then ``GET`` the analysis and its
   heatmap PNG. Reported: median and p95 end-to-end seconds (target: median < 1 s for EfficientNet and
   ResNet50), and its parts: the upload request, the wait in the queue, the whole job (decode, model,
   heatmap PNG, storing) and the model's own seconds (inference + Grad-CAM, stored with the result);
3. *in flight*: ``--burst`` images through ``--inflight`` concurrent clients; throughput in images/s.

The worker's peak resident memory is read from ``/proc/<pid>/status`` (VmHWM) before it stops (Linux;
``resource.getrusage`` cannot tell one child from another). Prints one JSON object on stdout; progress on
stderr. Traffic stays on 127.0.0.1; the processes are stopped and the temp directory removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from api_load import Server, patient_in_care, percentile

TARGET_S = {"efficientnet": 1.0, "resnet50": 1.0}  # end-to-end p50 per image at 224 px
ARCHS = ("basic_cnn", "resnet50", "efficientnet")
TASK = "pneumonia"
SIZE = 224
PASSWORD = "Imaging-Bench-Lantern-42"
DOCTOR = "doctor@imaging.bench.caresync.dev"
POLL_S = 0.02
JOB_TIMEOUT_S = 120.0
API = "/api/v1/imaging"


def log(message: str) -> None:
    """Progress to stderr (stdout carries only the JSON result)."""
    print(f"[imaging] {message}", file=sys.stderr, flush=True)


# --- the deployment -----------------------------------------------------------------------------------------


def setup_people() -> tuple[str, str]:
    """A hospital, a licensed doctor with MFA and a patient in their care; the patient's id and the
    doctor's TOTP secret."""
    from datetime import date, timedelta

    import pyotp

    from caresync.core import crypto
    from caresync.db import session_factory, transaction
    from caresync.identity.credentials import service as credentials
    from caresync.identity.models import Organisation
    from caresync.identity.rules import Role
    from caresync.identity.service import create_user

    secret = pyotp.random_base32()
    with transaction(session_factory()) as s:
        org = Organisation(name="Imaging Bench Hospital", kind="hospital", city="Lisbon", country="PT")
        s.add(org)
        s.flush()
        doctor = create_user(
            s,
            email=DOCTOR,
            password=PASSWORD,
            full_name="Bench Doctor",
            role=Role.DOCTOR,
            organisation_id=org.id,
        )
        doctor.mfa_secret_encrypted = crypto.encrypt_text(secret, aad=str(doctor.id))
        doctor.mfa_enabled = True
        credentials.record_verified(
            s,
            doctor,
            registration_number="LIC-BENCH-1",
            issuing_body="Bench licensing board",
            document=b"%PDF-1.4\n% licence\n%%EOF\n",
            issued_on=date.today() - timedelta(days=365),
            expires_on=date.today() + timedelta(days=365),
        )
        patient = patient_in_care(
            s, doctor, given_name="Bench", family_name="Patient", sex="female", birth_date=date(1970, 1, 1)
        )
        return str(patient.id), secret


def register_models(archs: list[str]) -> dict[str, str]:
    """An untrained demonstration version of the task per architecture (none serving yet); their ids."""
    import torch

    from caresync.db import session_factory, transaction
    from caresync.imaging import catalog, networks
    from caresync.imaging.registry import service as registry
    from caresync.imaging.training import TrainConfig, TrainingResult

    task = catalog.get_task(TASK)
    ids = {}
    for arch in archs:
        torch.manual_seed(0)
        pretrained = networks.has_pretrained_weights(arch)
        model = networks.build(
            arch, in_channels=task.channels, num_classes=len(task.labels), pretrained=pretrained
        )
        result = TrainingResult(
            model=model.eval(),
            arch=arch,
            in_channels=task.channels,
            input_size=SIZE,
            label_names=task.labels,
            multilabel=task.multilabel,
            temperature=1.0,
            metrics={"n_test": 0},
            history=[],
            epochs_run=0,
            seconds=0.0,
            fingerprint="0" * 64,
            config=TrainConfig(arch=arch, size=SIZE, epochs=0, pretrained=pretrained),
        )
        with transaction(session_factory()) as s:
            ids[arch] = str(
                registry.register(
                    s,
                    result,
                    task=TASK,
                    data_source="untrained (benchmark)",
                    intended_use=None,
                    demonstration=True,
                    created_by=None,
                ).id
            )
    return ids


def serve_version(model_id: str) -> None:
    """Switch the task's serving version (what an administrator does; no restart)."""
    import uuid

    from caresync.core.auth import system_principal
    from caresync.db import session_factory, transaction
    from caresync.imaging.registry import service as registry

    with transaction(session_factory()) as s:
        registry.serve(s, system_principal("imaging benchmark"), uuid.UUID(model_id))


def study_bytes() -> bytes:
    """The image every request uploads: the chest X-ray pydicom-data ships."""
    from pydicom.data import get_testdata_file

    return Path(str(get_testdata_file("RG1_UNCI.dcm"))).read_bytes()


class Worker:
    """``caresync worker --threads N`` as a subprocess of the deployment."""

    def __init__(self, server: Server, threads: int) -> None:
        self.server, self.threads = server, threads
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.server.log_path.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                [sys.executable, "-m", "caresync.cli", "worker", "--threads", str(self.threads)],
                cwd=self.server.root, env=self.server.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def peak_rss_mb(self) -> float | None:
        """The worker's peak resident set size so far (VmHWM), in MB."""
        if self.proc is None:
            return None
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
        return None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


# --- the client ---------------------------------------------------------------------------------------------


def sign_in(client: httpx.Client, secret: str) -> dict[str, str]:
    """Bearer headers of the doctor's fully signed-in session."""
    import pyotp

    body = {"email": DOCTOR, "password": PASSWORD, "otp": pyotp.TOTP(secret).now()}
    response = client.post("/api/v1/auth/login", json=body, timeout=60)
    response.raise_for_status()
    if response.json().get("stage") != "full":
        raise RuntimeError(f"sign-in did not complete: {response.text[:300]}")
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def one_image(
    client: httpx.Client, headers: dict[str, str], patient_id: str, data: bytes
) -> dict[str, float]:
    """Upload, ask for the analysis, wait for it, read the result and the heatmap; the times (s)."""
    started = time.perf_counter()
    upload = client.post(
        f"{API}/studies",
        data={"patient_id": patient_id},
        files={"file": ("chest.dcm", data, "application/dicom")},
        headers=headers,
    )
    upload.raise_for_status()
    uploaded = time.perf_counter()
    asked = client.post(f"{API}/studies/{upload.json()['id']}/analyses", json={"task": TASK}, headers=headers)
    asked.raise_for_status()
    analysis = asked.json()
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while True:
        job = client.get(f"/api/v1/jobs/{analysis['job']['id']}", headers=headers).json()
        if job["status"] in ("succeeded", "failed"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"analysis {analysis['id']} not done after {JOB_TIMEOUT_S}s")
        time.sleep(POLL_S)
    result = client.get(f"{API}/analyses/{analysis['id']}", headers=headers).json()
    if result["status"] != "done":
        raise RuntimeError(f"analysis failed: {result.get('error')}")
    client.get(result["heatmap_url"], headers=headers).raise_for_status()
    submitted, began, finished = (
        datetime.fromisoformat(result[key]) for key in ("submitted_at", "started_at", "completed_at")
    )
    return {
        "e2e_s": time.perf_counter() - started,
        "upload_s": uploaded - started,
        "queue_wait_s": (began - submitted).total_seconds(),
        "job_s": (finished - began).total_seconds(),
        "model_s": float(result["seconds"]),
    }


def summary(values: list[float]) -> dict[str, Any]:
    """n, median, p95 and max (seconds)."""
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_s": round(statistics.median(ordered), 3),
        "p95_s": round(percentile(ordered, 95), 3),
        "max_s": round(ordered[-1], 3),
    }


def measure_arch(
    arch: str, base_url: str, headers: dict[str, str], patient_id: str, data: bytes, args: Any
) -> dict[str, Any]:
    """Cold, sequential and in-flight figures of the architecture now serving."""
    with httpx.Client(base_url=base_url, timeout=JOB_TIMEOUT_S) as client:
        cold = one_image(client, headers, patient_id, data)
        runs = [one_image(client, headers, patient_id, data) for _ in range(args.images)]
    median = statistics.median(r["e2e_s"] for r in runs)
    log(f"{arch}: cold {cold['e2e_s']:.2f}s, sequential p50 {median:.2f}s")

    def client_loop(count: int) -> list[dict[str, float]]:
        with httpx.Client(base_url=base_url, timeout=JOB_TIMEOUT_S) as own:
            return [one_image(own, headers, patient_id, data) for _ in range(count)]

    shares = [args.burst // args.inflight + (i < args.burst % args.inflight) for i in range(args.inflight)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.inflight) as pool:
        burst = [r for done in pool.map(client_loop, shares) for r in done]
    wall = time.perf_counter() - started
    e2e = summary([r["e2e_s"] for r in runs])
    target = TARGET_S.get(arch)
    return {
        "cold_first_image_s": round(cold["e2e_s"], 3),
        "e2e": e2e,
        "upload": summary([r["upload_s"] for r in runs]),
        "queue_wait": summary([r["queue_wait_s"] for r in runs]),
        "job": summary([r["job_s"] for r in runs]),
        "model_inference_gradcam": summary([r["model_s"] for r in runs]),
        "in_flight": {
            "clients": args.inflight,
            "images": len(burst),
            "throughput_images_per_s": round(len(burst) / wall, 2),
            "e2e": summary([r["e2e_s"] for r in burst]),
        },
        "target_p50_s": target,
        "met": None if target is None else bool(e2e["p50_s"] < target),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10, help="sequential images per architecture")
    parser.add_argument("--inflight", type=int, default=4, help="concurrent clients for the throughput run")
    parser.add_argument("--burst", type=int, default=12, help="images in the throughput run")
    parser.add_argument("--archs", default=",".join(ARCHS), help="comma-separated architectures")
    parser.add_argument("--threads", type=int, default=4, help="worker threads")
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--quick", action="store_true", help="3 images and a burst of 4 (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.images, args.burst = 3, 4
    archs = [a for a in args.archs.split(",") if a]
    if set(archs) - set(ARCHS):
        parser.error(f"unknown architecture(s): {', '.join(sorted(set(archs) - set(ARCHS)))}")

    server = Server(args.port, workers=1, patients=0)
    server.env["CARESYNC_ARGON2_FAST"] = "1"
    os.environ.update({k: v for k, v in server.env.items() if k.startswith("CARESYNC_")})
    worker = Worker(server, args.threads)
    results: dict[str, Any] = {}
    try:
        server._run("migrate")
        patient_id, secret = setup_people()
        ids = register_models(archs)
        data = study_bytes()
        server.start()
        worker.start()
        with httpx.Client(base_url=server.base_url) as client:
            headers = sign_in(client, secret)
        for arch in archs:
            serve_version(ids[arch])
            results[arch] = measure_arch(arch, server.base_url, headers, patient_id, data, args)
        peak = worker.peak_rss_mb()
    finally:
        worker.stop()
        server.stop()
        server.cleanup()
    print(
        json.dumps(
            {
                "benchmark": "imaging",
                "cores": os.cpu_count(),
                "input_size": SIZE,
                "image": "RG1_UNCI.dcm (CR chest X-ray 1955x1841, MONOCHROME1, 7 MB)",
                "worker_threads": args.threads,
                "worker_peak_rss_mb": peak,
                "architectures": results,
                "met": all(r["met"] is not False for r in results.values()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
