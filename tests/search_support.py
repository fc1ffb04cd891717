"""Helpers for the index / API tests: a deterministic word embedder, a small real workspace, a server thread.

``WordEmbedder`` implements the ``indexer.index.embedder.Embedder`` protocol with real (if simple)
computation: texts become hashed bag-of-words vectors; a dance becomes the vector of the words that
describe it, read from its motion (the pelvis's x at frame 0 codes the genre, its speed the tempo).
It lets the API tests run before / without a trained model; the end-to-end test uses the real one.
"""
from __future__ import annotations

import hashlib
import socket
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from encoders.motion.convert import from_smplx_axis_angle
from encoders.motion.record import MotionRecord
from encoders.motion.skeleton import SMPL_BODY_22

GENRES = ("waltz", "salsa", "hiphop", "ballet")
DIM = 64


def _word_vec(word: str) -> np.ndarray:
    h = hashlib.sha1(word.encode()).digest()
    v = np.zeros(DIM, dtype=np.float32)
    v[h[0] % DIM] += 1.0 if h[1] % 2 else -1.0
    v[h[2] % DIM] += 0.5
    return v


class WordEmbedder:
    model_id = "test-words-v1"
    dim = DIM

    def encode_text(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._embed(t.lower().split()) for t in texts]) if texts else np.zeros((0, DIM), np.float32)

    def describe(self, motion: MotionRecord) -> list[str]:
        genre = GENRES[int(round(float(motion.trans[0, 0]))) % len(GENRES)]
        speed = float(np.linalg.norm(np.diff(motion.trans[:, 2])) * motion.fps / max(len(motion.trans) - 1, 1) ** 0.5)
        return [genre, "fast" if speed > 0.3 else "slow", "dance"]

    def encode_dances(self, items: Sequence[Any]) -> np.ndarray:
        return np.stack([self._embed(self.describe(it.motion)) for it in items])

    def _embed(self, words: list[str]) -> np.ndarray:
        v = np.full(DIM, 0.05, dtype=np.float32) + sum((_word_vec(w) for w in words), np.zeros(DIM, np.float32))
        return (v / np.linalg.norm(v)).astype(np.float32)


def _motion(genre_idx: int, fast: bool, seed: int, rotations: bool) -> MotionRecord:
    rng = np.random.default_rng(seed)
    t = 45
    trans = np.zeros((t, 3))
    trans[:, 0] = genre_idx
    trans[:, 1] = 0.9
    trans[:, 2] = np.linspace(0, 1.5 if fast else 0.1, t)
    if rotations:
        poses = rng.normal(scale=0.2, size=(t, 52, 3))
        return from_smplx_axis_angle(trans, poses, 30.0)
    pos = trans[:, None, :] + rng.normal(scale=0.3, size=(1, 22, 3)) + rng.normal(scale=0.01, size=(t, 22, 3))
    return MotionRecord(30.0, trans, pos, list(SMPL_BODY_22))


def make_workspace(home: Path, clips_per_genre: int = 6, with_audio: bool = True) -> Any:
    """A real workspace: SQLite catalog + motion / music / audio files, 4 genres, train / val / test."""
    import soundfile as sf

    from indexer.catalog import ClipRow, SequenceRow
    from indexer.workspace import Workspace

    ws = Workspace(home).ensure()
    cat = ws.catalog()
    for g, genre in enumerate(GENRES):
        for s in range(clips_per_genre):
            name = f"{genre}_{s:02d}"
            fast = s % 2 == 0
            split = ("val", "test", "train")[s % 3]
            seq_dir = ws.sequence_media_dir("demo", name)
            seq_dir.mkdir(parents=True, exist_ok=True)
            rec = _motion(g, fast, seed=g * 100 + s, rotations=(s % 2 == 1))
            rec.save(seq_dir / "0.motion.npz")
            np.save(seq_dir / "0.music.npy", np.zeros((len(rec.trans), 35), dtype=np.float32))
            audio = None
            if with_audio and s % 3 != 2:
                sf.write(seq_dir / "0.wav", np.zeros(1600, dtype=np.float32), 16000)
                audio = ws.relative(seq_dir / "0.wav")
            bpm = 130.0 + s if fast else 80.0 + s
            speed = "fast" if fast else "slow"
            cat.replace_sequence(
                SequenceRow("demo", name, None, genre, f"d{s % 3}", 30.0, len(rec.trans), bpm, audio is not None, split),
                [ClipRow(0, 0, len(rec.trans), len(rec.trans) / 30.0, ws.relative(seq_dir / "0.motion.npz"),
                         ws.relative(seq_dir / "0.music.npy"), audio, {"energy": "high" if fast else "low"},
                         [(f"a {speed} {genre} dance", "file")])],
                content_changed=False)
    cat.close()
    return ws


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """A real uvicorn server on 127.0.0.1 (ephemeral port) in a background thread; always stopped."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()


class ConfiguredServerThread(ServerThread):
    """A :class:`ServerThread` configured like ``dancesearch serve`` (``search_api.serving.uvicorn_config``:
    keep-alive from the settings), for tests of connection behaviour."""

    def __init__(self, app: Any, settings: Any) -> None:
        import uvicorn

        from search_api.serving import uvicorn_config

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.server = uvicorn.Server(uvicorn_config(app, settings, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
