"""Benchmark: from the click to a playable 12-s dance through the generation API (issue 15).

A real server (the app of ``dancesearch serve``, uvicorn in a thread of this process, so the back-end's
models are warmed up exactly as ``serve`` does it) over HTTP on a COPY of a workspace: ``POST /v1/generate``
for a 12-s dance to a test clip's music with default settings (1 candidate, 20 DDIM steps, guidance 2; the
text and genre a search proposal gives), poll ``GET /v1/jobs/{id}`` every ``--poll-ms``, then fetch the
motion (``GET /v1/clips/{id}/motion?format=json``, what the player loads). One warm-up request, then the
median of ``--repeats`` requests, for each back-end (``diffusion``: long-term sampling; ``gcrm``: GCRM over
diffusion + catalog candidates). Parts come from the job's own ``result.timing`` (queueing, candidate
generation, GS scoring, stitching, storing) and from the client's clock (the POST, the wait, the fetch).

    python bench/bench_generate_api.py --home /work/dh [--repeats 3] [--backends diffusion gcrm]

The workspace is copied to a temporary folder first (jobs add clips to the catalog); the original is not
touched.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info  # noqa: E402
from encoders.atomic_io import atomic_write_json, atomic_write_text  # noqa: E402

PARTS = ("queue_s", "music_s", "mel_s", "candidates_s", "diffusion_s", "retrieval_s", "scoring_s", "stitch_s",
         "store_s", "run_s")
CLIENT = ("post_s", "wait_s", "fetch_s", "click_to_playable_s")


class Server:
    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.sock.close()


def _med(xs: list[float | None]) -> float | None:
    xs = [x for x in xs if x is not None]
    return round(float(statistics.median(xs)), 3) if xs else None


def one_dance(client: Any, body: dict[str, Any], poll_s: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    r = client.post("/v1/generate", json=body)
    t_post = time.perf_counter()
    if r.status_code != 202:
        raise RuntimeError(f"POST /v1/generate: {r.status_code} {r.text}")
    job_id = r.json()["id"]
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            break
        time.sleep(poll_s)
    t_done = time.perf_counter()
    if job["state"] != "done":
        raise RuntimeError(f"job {job_id} ended {job['state']}: {job.get('error')}")
    clip = job["result"]["clips"][0]
    motion = client.get(clip["media"]["motion_json"])
    t_fetch = time.perf_counter()
    if motion.status_code != 200 or len(motion.json()["positions"]) != round(body["seconds"] * 30):
        raise RuntimeError(f"motion fetch: {motion.status_code}")
    prov = client.get(clip["provenance"]).json()["data"]
    row = {"job": job_id, "clip_id": clip["id"], "backend": job["result"].get("backend"),
           "post_s": round(t_post - t0, 3), "wait_s": round(t_done - t_post, 3), "fetch_s": round(t_fetch - t_done, 3),
           "click_to_playable_s": round(t_fetch - t0, 3), "timing": job["result"].get("timing") or {},
           "segments": [{k: s.get(k) for k in ("start_frame", "end_frame", "origin", "seed", "clip_id",
                                               "window_start_s")} for s in prov.get("segments", [])]}
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, required=True, help="workspace to copy (catalog, media, index)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--backends", nargs="+", default=["diffusion", "gcrm"], choices=("diffusion", "gcrm"))
    ap.add_argument("--poll-ms", type=float, default=50.0)
    ap.add_argument("--note", default="", help="free text for the report (e.g. what else ran on the machine)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "generate_api.json")
    ap.add_argument("--md", type=Path, default=ROOT / "docs" / "results" / "generate_api.md")
    args = ap.parse_args()

    import httpx

    from indexer.workspace import Workspace
    from search_api.app import create_app, load_engine
    from search_api.settings import ApiSettings

    t_all = time.perf_counter()
    machine0, load0 = machine_info(), os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench_generate_api_"))
    home = tmp / "home"
    shutil.copytree(args.home, home)
    try:
        ws = Workspace(home)
        cat = ws.catalog(create=False)
        clips = [c for c in cat.clips(split="test") if c.audio_path and c.music_path and c.duration_s >= args.seconds]
        cat.close()
        clip = clips[0]
        body = {"clip_id": clip.id, "text": f"a lively {clip.genre} dance", "genre": clip.genre,
                "seconds": args.seconds}
        t = time.perf_counter()
        engine = load_engine(ApiSettings(home=home))
        engine_load_s = time.perf_counter() - t
        results: dict[str, Any] = {}
        for backend in args.backends:
            settings = ApiSettings(home=home, reload_check_s=0, generator_backend=backend, generate_warm_up=True)
            app = create_app(settings, engine=engine, loader=lambda: engine)
            with Server(app) as srv, httpx.Client(base_url=srv.url, timeout=600) as client:
                t = time.perf_counter()
                jobs = app.state.jobs
                if hasattr(jobs.backend, "warm"):
                    jobs.backend.warm()                # what the server's warm-up thread does at start
                else:
                    jobs.backend.pipeline()
                warm_s = time.perf_counter() - t
                rows = []
                for i in range(args.repeats + 1):
                    row = one_dance(client, {**body, "seed": 1000 + i}, args.poll_ms / 1000.0)
                    row["warmup"] = i == 0
                    rows.append(row)
                    print(f"{backend} {'warm-up' if i == 0 else f'run {i}'}: click->playable "
                          f"{row['click_to_playable_s']:.2f} s | " + ", ".join(
                              f"{k} {row['timing'].get(k)}" for k in PARTS if k in row["timing"]), flush=True)
            measured = [r for r in rows if not r["warmup"]]
            results[backend] = {
                "warm_up_load_s": round(warm_s, 2),
                "median": {**{k: _med([r[k] for r in measured]) for k in CLIENT},
                           **{k: _med([r["timing"].get(k) for r in measured]) for k in PARTS}},
                "runs": rows}
        result = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "machine": {"start": machine0, "end": machine_info()},
                  "load_average_start": load0, "load_average_end": os.getloadavg(), "note": args.note,
                  "settings": {"home": str(args.home), "clip_id": clip.id, "clip_key": clip.key,
                               "request": body, "repeats": args.repeats, "poll_ms": args.poll_ms,
                               "defaults": {"candidates": 1, "steps": 20, "guidance": 2.0,
                                            "gcrm_diffusion_candidates": ApiSettings().gcrm_diffusion_candidates,
                                            "gcrm_catalog_candidates": ApiSettings().gcrm_catalog_candidates}},
                  "engine_load_s": round(engine_load_s, 2), "backends": results,
                  "command": "python bench/bench_generate_api.py " + " ".join(sys.argv[1:]),
                  "total_s": round(time.perf_counter() - t_all, 1)}
        atomic_write_json(args.out, result)
        atomic_write_text(args.md, markdown(result))
        print(json.dumps({b: v["median"] for b, v in results.items()}, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def markdown(r: dict[str, Any]) -> str:
    f = lambda x, d=2: "–" if x is None else f"{x:.{d}f}"  # noqa: E731
    s = r["settings"]
    m = r["machine"]["start"]
    names = {"diffusion": "diffusion (long-term sampling)",
             "gcrm": f"GCRM ({s['defaults']['gcrm_diffusion_candidates']} diffusion + "
                     f"{s['defaults']['gcrm_catalog_candidates']} catalog candidates per 4-s segment)"}
    b = r["backends"]
    lines = [
        "# Generation API: from the click to a playable 12-s dance (issue 15)", "",
        f"Date {r['date']}. A real server over HTTP (the `dancesearch serve` app, uvicorn in a thread, models "
        f"warmed up as `serve` does at start) on a copy of `{s['home']}`: `POST /v1/generate` "
        f"`{json.dumps(s['request'])}` (default settings: 1 candidate, 20 DDIM steps, guidance 2), poll "
        f"`GET /v1/jobs/{{id}}` every {s['poll_ms']:g} ms, then `GET /v1/clips/{{id}}/motion?format=json`. "
        f"Median of {s['repeats']} requests after one warm-up, per back-end.", "",
        f"Machine: {m.get('cpu', m.get('cpu_model', ''))}, {m.get('cpu_count', '')} CPUs. **Load:** load average "
        f"{r['load_average_start'][0]:.1f} at the start and {r['load_average_end'][0]:.1f} at the end. "
        + (r["note"] + " " if r["note"] else ""), "",
        "| seconds (median) | " + " | ".join(names[k] for k in b) + " |",
        "|---|" + "---:|" * len(b)]
    rows = [("click to playable (client: POST + wait + motion fetch)", "click_to_playable_s"),
            ("POST /v1/generate answered (202)", "post_s"), ("wait until `done` (client)", "wait_s"),
            ("motion fetch (JSON for the player)", "fetch_s"),
            ("job: queueing (created -> a worker took it)", "queue_s"), ("job: reading the music", "music_s"),
            ("job: mel of the music (GS input)", "mel_s"),
            ("job: candidate generation (diffusion + retrieval)", "candidates_s"),
            ("  of which diffusion sampling", "diffusion_s"), ("  of which catalog retrieval", "retrieval_s"),
            ("job: GS + coherence scoring", "scoring_s"), ("job: stitching / assembling + decoding", "stitch_s"),
            ("job: storing (files + catalog)", "store_s"), ("job: worker total", "run_s")]
    for label, key in rows:
        lines.append(f"| {label} | " + " | ".join(f(v["median"].get(key)) for v in b.values()) + " |")
    lines += ["", "Warm-up (models loaded once per process before the first job): "
              + ", ".join(f"{k} {v['warm_up_load_s']} s" for k, v in b.items())
              + f"; the search engine itself loaded in {r['engine_load_s']} s.", "",
              "Diffusion's `stitch_s` is its window assembly (placing the 5 overlapping windows and cross-fading); "
              "it has no scoring. GCRM samples all its diffusion candidates (3 segments x 2 seeds) in one batched "
              "sampler run and reads the catalog windows' GS embeddings from the workspace cache.", "",
              f"Reproduce: `{r['command']}` (writes bench/results/generate_api.json and this file). "
              f"The whole benchmark took {r['total_s']} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
