"""A small, real search API for the UI tests: FastAPI over real HTTP (uvicorn in a thread).

It serves exactly the shapes of docs/ARCHITECTURE.md ("Search API response") from a handful of clips
built here with numpy (SMPL-X 52 joint positions that really move, fingers included) and soundfile
(a real OGG Vorbis beat track per clip), so the UI's client, player and app are exercised end to end
without depending on the model, the catalog or the index. Scoring is plain word overlap with the
caption: enough to rank deterministically and to produce ``no_match`` for unrelated text.
It records every request so tests can check what the UI asked for (e.g. refinement filters).

Search outcomes (issue 15): a query naming one of :data:`GAP_WORDS` is a ``gap`` with a ``proposal``
(genre :data:`GAP_GENRE`, catalog music suggestions), one naming :data:`NOT_DANCE_WORDS` is ``not_dance``;
otherwise ``match``, or ``gap`` without a proposal when the best score is below the threshold.
Generation: ``POST /v1/generate`` (JSON or multipart with an ``audio`` file, the real route's checks
and error shapes, the API key when ``serve(api_key=...)``), ``GET`` / ``DELETE /v1/jobs/{id}`` with a job
that is ``queued``, then ``running`` with rising progress, then ``done`` over ``job_seconds``; the result is a
clip of source ``generated`` (new id, left out of searches) served by the usual clip / motion / audio
routes and ``/v1/clips/{id}/provenance``. A request with ``seed`` :data:`FAILING_SEED` ends ``failed``.
"""
from __future__ import annotations

import io
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import soundfile as sf
import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from encoders.motion.skeleton import smplx52

FPS = 30
THRESHOLD = 0.2
GAP_WORDS = ("flamenco", "sword")
GAP_GENRE = "jazz"
NOT_DANCE_WORDS = ("sourdough", "mortgage")
FAILING_SEED = 13
GENERATED_ID_BASE = 1000


@dataclass
class FakeClip:
    id: int
    genre: str
    bpm: float
    caption: str
    tags: dict[str, str]
    seconds: float = 3.0
    positions: np.ndarray = field(default=None, repr=False)   # type: ignore[assignment]
    audio: bytes = field(default=b"", repr=False)
    audio_type: str = "audio/ogg"
    source: str = "test"
    provenance: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return f"{self.source}/{self.genre}_{self.id:04d}#0"

    def as_result(self) -> dict[str, Any]:
        base = f"/v1/clips/{self.id}"
        return {"id": self.id, "key": self.key, "genre": self.genre, "bpm": self.bpm, "source": self.source,
                "duration_s": self.seconds, "dancer": f"d{self.id % 3:02d}",
                "split": "gen" if self.source == "generated" else "test",
                "caption": self.caption, "captions": [self.caption, f"a {self.genre} dance"], "tags": dict(self.tags),
                "media": {"motion_npz": f"{base}/motion?format=npz", "motion_json": f"{base}/motion?format=json",
                          "motion_bvh": f"{base}/motion?format=bvh", "audio": f"{base}/audio"}}


CLIP_SPECS: tuple[tuple[str, float, str, dict[str, str]], ...] = (
    ("waltz", 88.0, "a slow lyrical waltz that travels in circles", {"energy": "low", "body_part": "whole body"}),
    ("waltz", 92.0, "a gentle waltz turning with raised arms", {"energy": "low", "body_part": "arms"}),
    ("popping", 104.0, "a sharp popping sequence with isolated arm movements", {"energy": "medium", "body_part": "arms"}),
    ("hiphop", 96.0, "energetic hip-hop with fast footwork", {"energy": "high", "body_part": "legs"}),
    ("house", 124.0, "bouncy house dance with quick steps", {"energy": "high", "body_part": "legs"}),
    ("jazz", 132.0, "jumping and spinning with high energy", {"energy": "high", "body_part": "whole body"}),
)


def _subtree(parents: tuple[int, ...], root: int) -> list[int]:
    out = [root]
    for j, p in enumerate(parents):
        if p in out:
            out.append(j)
    return out


def make_positions(seed: int, seconds: float, bpm: float) -> np.ndarray:
    """(T, 52, 3) positions: rest pose standing on y=0, arms swinging with the beat, fingers curling,
    a bounce, and a slow circular travel, so every part of the player has something to show."""
    sk = smplx52()
    rest = sk.rest_positions()
    rest[:, 1] += sk.root_standing_height()
    t = np.arange(int(seconds * FPS)) / FPS
    beat = 2 * np.pi * bpm / 60.0
    pos = np.repeat(rest[None], len(t), axis=0)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        sh = sk.index(f"{side}_shoulder")
        idx = _subtree(sk.parents, sh)
        ang = sign * (0.6 + 0.5 * np.sin(beat * t / 2 + seed))            # about z: raise / lower the arm
        c, s = np.cos(ang), np.sin(ang)
        rel = pos[:, idx] - pos[:, [sh]]
        x, y = rel[..., 0].copy(), rel[..., 1].copy()
        rel[..., 0] = c[:, None] * x - s[:, None] * y
        rel[..., 1] = s[:, None] * x + c[:, None] * y
        pos[:, idx] = pos[:, [sh]] + rel
        wrist = sk.index(f"{side}_wrist")
        fingers = [j for j in _subtree(sk.parents, wrist) if j != wrist]
        curl = 0.03 * (1 + np.sin(beat * t))[:, None, None]
        pos[:, fingers] += curl * np.array([0.0, -1.0, 0.5])
    pos[..., 1] += 0.04 * np.abs(np.sin(beat * t / 2))[:, None]
    travel = 0.5 * np.stack([np.sin(t * 0.5 + seed), np.zeros_like(t), np.cos(t * 0.5 + seed) - 1], axis=1)
    return (pos + travel[:, None, :]).astype(np.float32)


def make_audio(seconds: float, bpm: float, sr: int = 22050) -> bytes:
    """A real OGG Vorbis file: a soft tone with a click on every beat."""
    t = np.arange(int(seconds * sr)) / sr
    y = 0.1 * np.sin(2 * np.pi * 220 * t)
    beat_phase = (t * bpm / 60.0) % 1.0
    y += 0.5 * np.exp(-beat_phase * 40) * np.sin(2 * np.pi * 1000 * t)
    buf = io.BytesIO()
    sf.write(buf, y.astype(np.float32), sr, format="OGG", subtype="VORBIS")
    return buf.getvalue()


def build_clips(seconds: float = 3.0) -> list[FakeClip]:
    clips = []
    for i, (genre, bpm, caption, tags) in enumerate(CLIP_SPECS):
        clip = FakeClip(i + 1, genre, bpm, caption, tags, seconds)
        clip.positions = make_positions(i, seconds, bpm)
        clip.audio = make_audio(seconds, bpm)
        clips.append(clip)
    return clips


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2}


def _error(status: int, code: str, field_name: str | None, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "field": field_name, "message": message}}, status_code=status)


@dataclass
class FakeJob:
    id: str
    params: dict[str, Any]
    music: bytes
    music_type: str
    created: float
    duration_s: float
    cancelled_at: float | None = None
    clip: FakeClip | None = None


def outcome_of(q: str) -> str | None:
    """``gap`` / ``not_dance`` for the chosen words, else None (decided by the scores)."""
    words = set(re.findall(r"[a-z]+", q.lower()))
    if words & set(GAP_WORDS):
        return "gap"
    if words & set(NOT_DANCE_WORDS):
        return "not_dance"
    return None


def build_app(clips: list[FakeClip], requests_log: list[dict[str, Any]], jobs: dict[str, FakeJob] | None = None,
              job_seconds: float = 2.0, api_key: str | None = None,
              generate_log: list[dict[str, Any]] | None = None) -> FastAPI:
    app = FastAPI(title="DanceSearch UI test API")
    catalog = [c for c in clips]              # what searches rank (generated clips are added to by_id only)
    by_id = {c.id: c for c in clips}
    jobs = {} if jobs is None else jobs
    generate_log = [] if generate_log is None else generate_log
    sk = smplx52()
    lock = threading.Lock()

    @app.middleware("http")
    async def log_requests(request: Request, call_next):  # noqa: ANN001, ANN202
        requests_log.append({"path": request.url.path, "params": list(request.query_params.multi_items())})
        return await call_next(request)

    def search_body(q: str, k: int, offset: int, genres: list[str], bpm_min: float | None, bpm_max: float | None,
                    exclude: int | None = None, anchor: FakeClip | None = None) -> dict[str, Any]:
        qw = _words(q) if anchor is None else _words(anchor.caption) | {anchor.genre}
        scored = []
        for c in catalog:
            if c.id == exclude or (genres and c.genre not in genres):
                continue
            if (bpm_min is not None and c.bpm < bpm_min) or (bpm_max is not None and c.bpm > bpm_max):
                continue
            cw = _words(c.caption) | {c.genre}
            score = len(qw & cw) / max(1, len(qw)) if qw else 0.5
            scored.append((round(score, 4), -c.id, c))
        scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
        page = scored[offset:offset + k]
        results = []
        for rank, (score, _, c) in enumerate(page, start=offset + 1):
            r = c.as_result()
            r.update(rank=rank, score=score,
                     explanation={"matched": ["genre"] if c.genre in qw else [], "text": f"shares words with '{c.caption}'"})
            results.append(r)
        best = page[0][0] if page else 0.0
        mode = "text" if q.strip() else "genre" if anchor is None else "similar"
        outcome, reason, proposal = "match", "the catalog has clips that fit this description", None
        chosen = outcome_of(q) if mode == "text" else None
        if not page:
            outcome, reason = "gap", "no clip satisfies the filters"
        elif chosen == "not_dance":
            outcome, reason = "not_dance", "this reads like a question about something else, not a description of a dance"
        elif chosen == "gap":
            outcome, reason = "gap", ("this describes a dance, but none of the catalog's clips fits it well "
                                      f"(best score {best:.2f})")
            music = sorted(catalog, key=lambda c: (c.genre != GAP_GENRE, -len(qw & _words(c.caption)), c.id))[:3]
            proposal = {"genre": GAP_GENRE, "confidence": 0.41, "genre_source": "genre_text",
                        "music": [{"clip_id": c.id, "key": c.key, "score": round(0.3 - 0.05 * i, 4), "genre": c.genre,
                                   "bpm": c.bpm, "audio": f"/v1/clips/{c.id}/audio"} for i, c in enumerate(music)]}
        elif mode == "text" and best < THRESHOLD:
            outcome, reason = "gap", f"the best result scores {best:.2f}, below the calibrated threshold {THRESHOLD:.2f}"
        scores = {"match": 0.1, "gap": 0.1, "not_dance": 0.1}
        scores[outcome] = 0.8
        return {"query": {"q": q, "k": k, "offset": offset, "genres": genres, "bpm_min": bpm_min, "bpm_max": bpm_max},
                "mode": mode, "no_match": outcome != "match", "threshold": THRESHOLD,
                "outcome": outcome, "outcome_reason": reason, "outcome_scores": scores, "proposal": proposal,
                "model": "test-word-overlap", "took_ms": 1.0, "total": len(scored), "results": results}

    @app.get("/v1/search")
    def search(q: str = "", k: int = 10, offset: int = 0, genre: list[str] = Query(default=[]),
               bpm_min: float | None = None, bpm_max: float | None = None, split: str | None = None):  # noqa: ANN202
        if not 1 <= k <= 100:
            return _error(422, "invalid_parameter", "k", "k must be between 1 and 100")
        if not q.strip() and not genre:
            return _error(422, "invalid_parameter", "q", "give a query text or at least one genre")
        return search_body(q, k, offset, genre, bpm_min, bpm_max)

    def get_clip(clip_id: int) -> FakeClip | JSONResponse:
        return by_id.get(clip_id) or _error(404, "not_found", "id", f"no clip with id {clip_id}")

    @app.get("/v1/clips/{clip_id}")
    def clip(clip_id: int):  # noqa: ANN202
        c = get_clip(clip_id)
        return c if isinstance(c, JSONResponse) else c.as_result()

    @app.get("/v1/clips/{clip_id}/similar")
    def similar(clip_id: int, k: int = 10):  # noqa: ANN202
        c = get_clip(clip_id)
        if isinstance(c, JSONResponse):
            return c
        return search_body("", k, 0, [], None, None, exclude=c.id, anchor=c)

    @app.get("/v1/clips/{clip_id}/motion")
    def motion(clip_id: int, format: str = "json"):  # noqa: ANN202, A002
        c = get_clip(clip_id)
        if isinstance(c, JSONResponse):
            return c
        if format == "json":
            return {"fps": FPS, "joint_names": list(sk.names), "parents": list(sk.parents),
                    "positions": np.round(c.positions, 4).tolist()}
        if format == "npz":
            buf = io.BytesIO()
            np.savez(buf, fps=np.float32(FPS), positions=c.positions, joint_names=np.array(sk.names))
            return Response(buf.getvalue(), media_type="application/octet-stream")
        if format == "bvh":
            return Response("HIERARCHY\nROOT pelvis\n{\n}\nMOTION\nFrames: 0\nFrame Time: 0.0333333\n",
                            media_type="text/plain")
        return _error(422, "invalid_parameter", "format", "format must be json, npz or bvh")

    @app.get("/v1/clips/{clip_id}/audio")
    def audio(clip_id: int):  # noqa: ANN202
        c = get_clip(clip_id)
        return c if isinstance(c, JSONResponse) else Response(c.audio, media_type=c.audio_type)

    @app.get("/v1/genres")
    def genres():  # noqa: ANN202
        counts: dict[str, int] = {}
        for c in clips:
            counts[c.genre] = counts.get(c.genre, 0) + 1
        return {"genres": [{"name": g, "count": n} for g, n in sorted(counts.items(), key=lambda x: (-x[1], x[0]))]}

    # --- generation ------------------------------------------------------------------------------------
    known_genres = sorted({c.genre for c in clips})

    def job_view(job: FakeJob) -> dict[str, Any]:
        """The job as it stands now: queued for the first 15 %, then running with rising progress, then done."""
        now = time.monotonic()
        frac = (now - job.created) / job.duration_s
        state, progress, stage, result, error, finished = "queued", 0.0, "queued", None, None, None
        if job.cancelled_at is not None:
            state, stage, progress, finished = "cancelled", "cancelled", min(1.0, max(0.0, frac)), job.cancelled_at
        elif frac >= 0.15:
            state, progress = "running", min(1.0, (frac - 0.15) / 0.85)
            steps = 20
            stage = f"candidate 1/1: denoising step {max(1, int(progress * steps))}/{steps}"
            if frac >= 1.0:
                finished = job.created + job.duration_s
                if job.params.get("seed") == FAILING_SEED:
                    state, stage, error = "failed", "failed", {"code": "generation_failed",
                                                               "message": "the generator failed on this music"}
                else:
                    state, stage, progress = "done", "done", 1.0
                    with lock:
                        if job.clip is None:
                            job.clip = make_generated(job)
                    c = job.clip
                    result = {"clips": [{"id": c.id, "key": c.key, "candidate": 0, "seed": job.params["seed"],
                                         "genre": c.genre, "duration_s": c.seconds,
                                         "media": c.as_result()["media"], "provenance": f"/v1/clips/{c.id}/provenance"}],
                              "genre": c.genre, "genre_source": "request" if job.params.get("genre") else "text",
                              "genre_confidence": None, "model_id": "test-generator", "seconds": c.seconds}
        return {"id": job.id, "state": state, "progress": round(progress, 4), "stage": stage,
                "cancel_requested": job.cancelled_at is not None, "created_at": time.time(), "started_at": None,
                "finished_at": finished, "params": dict(job.params), "result": result, "error": error,
                "links": {"self": f"/v1/jobs/{job.id}"}}

    def make_generated(job: FakeJob) -> FakeClip:
        new_id = GENERATED_ID_BASE + len([c for c in by_id if c >= GENERATED_ID_BASE]) + 1
        seconds = float(job.params["seconds"])
        c = FakeClip(new_id, job.params["genre"], 120.0, job.params.get("text") or "", {}, seconds,
                     source="generated", audio=job.music, audio_type=job.music_type)
        c.positions = make_positions(new_id, seconds, 120.0)
        c.provenance = {"clip_id": new_id, "job_id": job.id, "model_id": "test-generator",
                        "data": {"seed": job.params["seed"], "music": job.params["music"]}}
        by_id[new_id] = c
        return c

    def authorized(request: Request) -> bool:
        if not api_key:
            return True
        bearer = request.headers.get("authorization", "")
        return request.headers.get("x-api-key") == api_key or bearer == f"Bearer {api_key}"

    def unauthorized() -> JSONResponse:
        r = _error(401, "unauthorized", "x-api-key", "missing or wrong API key: send the server's "
                                                     "DANCESEARCH_API_KEY in the X-API-Key header")
        r.headers["WWW-Authenticate"] = "Bearer"
        return r

    @app.post("/v1/generate", status_code=202)
    async def generate(request: Request):  # noqa: ANN202
        if not authorized(request):
            return unauthorized()
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        upload: tuple[bytes, str, str] | None = None
        if media_type == "application/json":
            try:
                data = await request.json()
            except ValueError:
                return _error(400, "malformed_json", "body", "the request body is not valid JSON")
        elif media_type == "multipart/form-data":
            form = await request.form()
            data = {k: v for k, v in form.items() if isinstance(v, str)}
            f = form.get("audio")
            if f is not None and not isinstance(f, str):
                upload = (await f.read(), f.filename or "music", f.content_type or "application/octet-stream")
        else:
            return _error(415, "unsupported_media_type", "body", "POST /v1/generate takes application/json or "
                                                                 "multipart/form-data")
        generate_log.append({"content_type": media_type, "fields": dict(data),
                             "upload": None if upload is None else {"filename": upload[1], "bytes": len(upload[0])}})
        clip_id = data.get("clip_id")
        if (clip_id is None) == (upload is None):
            return _error(422, "invalid_parameter", "clip_id", "give the music: `clip_id` (a catalog clip) or an "
                                                               "uploaded `audio` file (multipart/form-data), not both")
        genre = data.get("genre")
        if genre and genre not in known_genres:
            return _error(422, "invalid_parameter", "genre", f"unknown genre {genre!r}; the generator knows: "
                                                             f"{', '.join(known_genres)}")
        if not genre and not data.get("text"):
            return _error(422, "invalid_parameter", "genre", "give `genre` or a `text` description")
        if upload is not None:
            if not upload[0].startswith((b"OggS", b"RIFF", b"fLaC", b"ID3")):
                return _error(415, "unsupported_media_type", "audio", f"{upload[1]} is not an audio file")
            music, music_type, available = upload[0], upload[2], 30.0
            music_desc: dict[str, Any] = {"kind": "upload", "filename": upload[1]}
        else:
            src = by_id.get(int(clip_id))
            if src is None or src.source == "generated":
                return _error(404, "not_found", "clip_id", f"no clip with id {clip_id}")
            music, music_type, available = src.audio, src.audio_type, src.seconds
            music_desc = {"kind": "clip", "clip_id": src.id, "clip_key": src.key}
        seconds = float(data["seconds"]) if data.get("seconds") not in (None, "") else available
        if not 4.0 <= seconds <= 300.0 or seconds > available + 1e-6:
            return _error(422, "invalid_parameter", "seconds", f"seconds: between 4 and {min(300.0, available):g}")
        params = {"text": data.get("text"), "genre": genre or GAP_GENRE, "music": music_desc, "seconds": seconds,
                  "seed": int(data.get("seed") or 7), "candidates": int(data.get("candidates") or 1),
                  "steps": int(data.get("steps") or 20), "guidance": float(data.get("guidance") or 2.0)}
        job = FakeJob(uuid.uuid4().hex, params, music, music_type, time.monotonic(), job_seconds)
        jobs[job.id] = job
        return JSONResponse(job_view(job), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})

    def find_job(job_id: str) -> FakeJob | JSONResponse:
        if not re.fullmatch(r"[0-9a-f]{32}", job_id):
            return _error(422, "invalid_parameter", "job_id", "the id is not 32 hex digits")
        return jobs.get(job_id) or _error(404, "not_found", "job_id", f"no job {job_id}")

    @app.get("/v1/jobs/{job_id}")
    def get_job(job_id: str):  # noqa: ANN202
        job = find_job(job_id)
        return job if isinstance(job, JSONResponse) else job_view(job)

    @app.delete("/v1/jobs/{job_id}")
    def cancel_job(job_id: str, request: Request):  # noqa: ANN202
        if not authorized(request):
            return unauthorized()
        job = find_job(job_id)
        if isinstance(job, JSONResponse):
            return job
        view = job_view(job)
        if view["state"] in ("done", "failed"):
            return _error(409, "job_finished", "job_id", f"job {job_id} already finished ({view['state']})")
        if job.cancelled_at is None:
            job.cancelled_at = time.time()
        return job_view(job)

    @app.get("/v1/clips/{clip_id}/provenance")
    def provenance(clip_id: int):  # noqa: ANN202
        c = get_clip(clip_id)
        if isinstance(c, JSONResponse):
            return c
        if c.provenance is None:
            return _error(404, "not_found", "clip_id", f"clip {clip_id} was not generated: it has no provenance")
        return c.provenance

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningApi:
    url: str
    clips: list[FakeClip]
    requests: list[dict[str, Any]]
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    generate_requests: list[dict[str, Any]] = field(default_factory=list)

    def searches(self) -> list[dict[str, list[str]]]:
        """Parameters of every /v1/search call so far, as ``{name: [values]}``."""
        out = []
        for r in self.requests:
            if r["path"] == "/v1/search":
                d: dict[str, list[str]] = {}
                for k, v in r["params"]:
                    d.setdefault(k, []).append(v)
                out.append(d)
        return out


def serve(seconds: float = 3.0, job_seconds: float = 2.0, api_key: str | None = None) -> Iterator[RunningApi]:
    """Start the API on a free 127.0.0.1 port in a thread; yields once it answers; always shuts down.
    ``job_seconds``: how long a generation job takes; ``api_key``: required on the write routes when set."""
    clips = build_clips(seconds)
    log: list[dict[str, Any]] = []
    jobs: dict[str, FakeJob] = {}
    gen_log: list[dict[str, Any]] = []
    port = free_port()
    app = build_app(clips, log, jobs, job_seconds=job_seconds, api_key=api_key, generate_log=gen_log)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                          access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test API did not start")
        time.sleep(0.02)
    try:
        yield RunningApi(f"http://127.0.0.1:{port}", clips, log, jobs, gen_log)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
