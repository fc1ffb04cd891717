"""A small, real search API for the UI tests: FastAPI over real HTTP (uvicorn in a thread).

It serves exactly the shapes of docs/ARCHITECTURE.md ("Search API response") from a handful of clips
built here with numpy (SMPL-X 52 joint positions that really move, fingers included) and soundfile
(a real OGG Vorbis beat track per clip), so the UI's client, player and app are exercised end to end
without depending on the model, the catalog or the index. Scoring is plain word overlap with the
caption: enough to rank deterministically and to produce ``no_match`` for unrelated text.
It records every request so tests can check what the UI asked for (e.g. refinement filters).
"""
from __future__ import annotations

import io
import re
import socket
import threading
import time
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

    def as_result(self) -> dict[str, Any]:
        base = f"/v1/clips/{self.id}"
        return {"id": self.id, "key": f"test/{self.genre}_{self.id:04d}#0", "genre": self.genre, "bpm": self.bpm,
                "duration_s": self.seconds, "dancer": f"d{self.id % 3:02d}", "split": "test",
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


def build_app(clips: list[FakeClip], requests_log: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI(title="DanceSearch UI test API")
    by_id = {c.id: c for c in clips}
    sk = smplx52()

    @app.middleware("http")
    async def log_requests(request: Request, call_next):  # noqa: ANN001, ANN202
        requests_log.append({"path": request.url.path, "params": list(request.query_params.multi_items())})
        return await call_next(request)

    def search_body(q: str, k: int, offset: int, genres: list[str], bpm_min: float | None, bpm_max: float | None,
                    exclude: int | None = None, anchor: FakeClip | None = None) -> dict[str, Any]:
        qw = _words(q) if anchor is None else _words(anchor.caption) | {anchor.genre}
        scored = []
        for c in clips:
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
        return {"query": {"q": q, "k": k, "offset": offset, "genres": genres, "bpm_min": bpm_min, "bpm_max": bpm_max},
                "mode": "text" if q.strip() else "genre", "no_match": bool(q.strip()) and best < THRESHOLD,
                "threshold": THRESHOLD, "model": "test-word-overlap", "took_ms": 1.0, "results": results}

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
        return c if isinstance(c, JSONResponse) else Response(c.audio, media_type="audio/ogg")

    @app.get("/v1/genres")
    def genres():  # noqa: ANN202
        counts: dict[str, int] = {}
        for c in clips:
            counts[c.genre] = counts.get(c.genre, 0) + 1
        return {"genres": [{"name": g, "count": n} for g, n in sorted(counts.items(), key=lambda x: (-x[1], x[0]))]}

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


def serve(seconds: float = 3.0) -> Iterator[RunningApi]:
    """Start the API on a free 127.0.0.1 port in a thread; yields once it answers; always shuts down."""
    clips = build_clips(seconds)
    log: list[dict[str, Any]] = []
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(clips, log), host="127.0.0.1", port=port, log_level="warning",
                                          access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test API did not start")
        time.sleep(0.02)
    try:
        yield RunningApi(f"http://127.0.0.1:{port}", clips, log)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
