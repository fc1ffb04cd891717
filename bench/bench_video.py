"""Benchmark: how fast is the dance video path of issue 16 (guidance maps, views, Champ export, MP4)?

Procedural dances of ``--genres`` (one corpus clip per genre, built in memory with its synthesised music,
as ``dancesearch corpus demo`` would write them) are cut to ``--seconds`` and measured at each of
``--sizes`` (square pixels):

- guidance: ``GuidanceRenderer.render`` of the first ``--frames`` frames (depth, normal, part labels, mask and
  the DWPose map as arrays; the renderer is built once on the whole dance, its set-up is reported apart);
- compose: ``generation.video.compose.compose`` of those frames for each view (body, pose, grid, side-by-side);
- champ: ``write_champ_layout`` of those frames (5 PNGs a frame, into a temporary folder; rendering excluded);
- video: a whole ``--seconds`` video with its music through ``dancesearch render --view body``'s own handler,
  in this process (the parser of ``ui.cli`` and ``cmd_render``: it reads the dance as an npz and the music as
  an ogg, renders in chunks, pipes to ffmpeg and probes the result), and once per size as a separate
  ``dancesearch render`` process, to give the command's wall time including interpreter start-up and imports.

Every figure is the median of ``--runs`` runs (one untimed warm-up first builds the EGL context). Writes the
JSON to ``--out`` and a markdown report to ``--md`` (``--report JSON`` rewrites the report from a result file).

    OMP_NUM_THREADS=1 python bench/bench_video.py [--sizes 256 512] [--genres popping jazz hantang] [--runs 3]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info  # noqa: E402
from encoders.atomic_io import atomic_write_json, atomic_write_text  # noqa: E402

VIEWS = ("body", "pose", "grid", "side-by-side")
TARGET_SECONDS = 30.0          # issue 16: a 10-s 256x256 video in at most 30 s on the 2-core machine
TARGET_SIZE = 256


def load3() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else []


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def procedural_dance(genre: str, seed: int):
    """(spec, MotionRecord, music array) of the first planned corpus clip of ``genre``."""
    from generation.procedural.choreographer import choreograph
    from generation.procedural.music import synthesize
    from generation.procedural.plan import plan_corpus

    spec = next(s for s in plan_corpus(72, seed) if s.genre == genre)
    return spec, choreograph(spec).record(), synthesize(spec)


def timed(fn, runs: int) -> tuple[list[float], object]:
    """Seconds of each of ``runs`` calls of ``fn`` and the last result."""
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def measure_maps(record, size: int, frames: int, runs: int, scratch: Path) -> dict:
    """Set-up, guidance, compose (per view) and Champ PNG export of the first ``frames`` frames at ``size``."""
    from generation.video import GuidanceRenderer, write_champ_layout
    from generation.video.compose import compose

    setup_s, renderer = timed(lambda: GuidanceRenderer(record, size), 1)
    try:
        n = min(frames, renderer.num_frames)
        render_s, maps = timed(lambda: renderer.render(0, n), runs)
    finally:
        renderer.close()
    out = {"frames": n, "hands": bool(maps.meta.get("hands")), "setup_ms": round(setup_s[0] * 1e3, 1),
           "guidance_ms_per_frame": [round(t / n * 1e3, 3) for t in render_s], "compose_ms_per_frame": {}}
    for view in VIEWS:
        ts, _ = timed(lambda: compose(maps, view), runs)
        out["compose_ms_per_frame"][view] = [round(t / n * 1e3, 3) for t in ts]
    champ = []
    for i in range(runs):
        folder = scratch / f"champ-{size}-{i}"
        ts, _ = timed(lambda: write_champ_layout(maps, folder), 1)
        champ.append(round(ts[0] / n * 1e3, 3))
        out["champ_bytes_per_frame"] = int(sum(p.stat().st_size for p in folder.rglob("*.png")) / n)
        shutil.rmtree(folder, ignore_errors=True)
    out["champ_ms_per_frame"] = champ
    return out


def render_args(npz: Path, music: Path, size: int, seconds: float, out: Path, home: Path) -> list[str]:
    return ["render", "--motion", str(npz), "--music", str(music), "--size", str(size), "--view", "body",
            "--seconds", f"{seconds:g}", "--out", str(out), "--home", str(home), "--json"]


def video_in_process(argv: list[str]) -> tuple[float, dict]:
    """Wall seconds and the JSON payload of ``dancesearch render`` run through its parser and handler here."""
    from ui.cli import build_parser

    args = build_parser().parse_args(argv)
    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        rc = args.handler(args)
    wall = time.perf_counter() - t0
    if rc:
        raise RuntimeError(f"render returned {rc}")
    return wall, json.loads(buf.getvalue().strip().splitlines()[-1])


def video_cli(argv: list[str]) -> tuple[float, dict]:
    """Wall seconds and payload of ``dancesearch render`` as a separate process (start-up included)."""
    exe = Path(sys.executable).with_name("dancesearch")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "ui.cli"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd + argv, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"dancesearch render failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


def summarise(per_genre: dict, sizes: list[int]) -> dict:
    """Per size: the median over genres of each genre's median."""
    out = {}
    for size in sizes:
        rows = [g["sizes"][str(size)] for g in per_genre.values()]
        maps = [r["maps"] for r in rows]
        vid = [r["video"] for r in rows]
        s = {"guidance_ms_per_frame": median([median(m["guidance_ms_per_frame"]) for m in maps]),
             "setup_ms": median([m["setup_ms"] for m in maps]),
             "compose_ms_per_frame": {v: median([median(m["compose_ms_per_frame"][v]) for m in maps]) for v in VIEWS},
             "champ_ms_per_frame": median([median(m["champ_ms_per_frame"]) for m in maps]),
             "champ_bytes_per_frame": median([m["champ_bytes_per_frame"] for m in maps]),
             "video_s": median([median(v["wall_s"]) for v in vid]),
             "video_render_s": median([median(v["render_s"]) for v in vid]),
             "video_encode_s": median([median(v["encode_s"]) for v in vid]),
             "mp4_bytes": median([v["bytes"] for v in vid])}
        s = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in s.items()}
        s["compose_ms_per_frame"] = {k: round(v, 3) for k, v in s["compose_ms_per_frame"].items()}
        out[str(size)] = s
    return out


def markdown(result: dict) -> str:
    a = result["args"]
    sizes = [str(s) for s in a["sizes"]]
    summ = result["summary"]
    m = result["machine"]
    labels = ", ".join(result["dances"][g]["label"] for g in a["genres"])
    lines = [
        "# Dance video: speed of the guidance maps, views, Champ export and MP4 (issue 16)", "",
        f"Measured {result['date']} with `bench/bench_video.py` on {m['cpu']} ({m['cpu_count']} cores), "
        f"Python {m['python']}, renderer {result['renderer']}; load average (1, 5, 15 min) "
        f"{result['load_average_start']} at the start and {result['load_average_end']} at the end"
        + (f" ({result['note']})" if result.get("note") else "") + ".", "",
        "## What was measured", "",
        f"Procedural dances of {len(a['genres'])} genres ({labels}; SMPL-X motion and synthesised music built in "
        f"memory, as the demo corpus makes them) cut to {a['seconds']:g} s ({result['video_frames']} frames at 30 "
        f"fps). Every figure is the median of {a['runs']} runs per genre, then the median over the genres.", "",
        f"- **guidance**: `GuidanceRenderer.render` of the first {a['frames']} frames: capsule-body depth, normal, "
        "part labels and mask (moderngl on EGL, Mesa llvmpipe) plus the DWPose skeleton map, as numpy arrays "
        "(keypoint heatmaps are computed on demand and are not included). The renderer's one-off set-up (joints, "
        "capsules, camera fitted to the whole dance, GL objects) is the `set-up ms` column.",
        "- **body / pose / grid / side-by-side**: `compose(frames, view)` on those arrays (numpy only).",
        "- **Champ PNGs**: `write_champ_layout` of those arrays: 5 PNGs a frame (depth, normal, semantic_map, mask, "
        "dwpose; zlib level 1) into a temporary folder on local disk; rendering excluded.",
        f"- **video s**: a whole {a['seconds']:g}-s MP4 with its music (ogg, AAC 160k), the `--view body` path of "
        "`dancesearch render`, run in this process through the command's own parser and handler (reads the npz and "
        "ogg, renders in chunks, pipes to ffmpeg's libx264 `-preset medium -crf 18`, probes the file); "
        "`render s` / `encode s` are the split the command reports (rendering overlaps encoding).",
        "- **CLI wall s**: one `dancesearch render` process per size (first genre), start-up and imports included.", "",
        "## Results", "",
        "| size | guidance ms/frame | set-up ms | body ms/frame | pose ms/frame | grid ms/frame "
        f"| side-by-side ms/frame | Champ PNGs ms/frame | video s ({a['seconds']:g}-s, body) | render s | encode s "
        "| CLI wall s | MP4 bytes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in sizes:
        r = summ[s]
        c = r["compose_ms_per_frame"]
        cli = result["cli"].get(s, {})
        lines.append(f"| {s}x{s} | {r['guidance_ms_per_frame']:.1f} | {r['setup_ms']:.0f} | {c['body']:.2f} | "
                     f"{c['pose']:.3f} | {c['grid']:.2f} | {c['side-by-side']:.2f} | {r['champ_ms_per_frame']:.1f} | "
                     f"{r['video_s']:.2f} | {r['video_render_s']:.2f} | {r['video_encode_s']:.2f} | "
                     f"{cli.get('wall_s', float('nan')):.2f} | {r['mp4_bytes']:,.0f} |")
    lines += ["", "Per genre, whole video (median of the runs; all runs are in the JSON):", "",
              "| genre | size | video s | render s | encode s | MP4 bytes |", "|---|---|---:|---:|---:|---:|"]
    for g in a["genres"]:
        for s in sizes:
            v = result["per_genre"][g]["sizes"][s]["video"]
            lines.append(f"| {result['dances'][g]['label']} | {s}x{s} | {median(v['wall_s']):.2f} | "
                         f"{median(v['render_s']):.2f} | {median(v['encode_s']):.2f} | {v['bytes']:,} |")
    lines += ["", "Spread and start-up:", ""]
    for s in sizes:
        walls = [w for g in a["genres"] for w in result["per_genre"][g]["sizes"][s]["video"]["wall_s"]]
        guid = [t for g in a["genres"] for t in result["per_genre"][g]["sizes"][s]["maps"]["guidance_ms_per_frame"]]
        cli = result["cli"].get(s)
        extra = ""
        if cli:
            pl = cli["payload"]
            extra = (f"; the CLI process took {cli['wall_s']:.1f} s, of which {pl['render_seconds']:.1f} s "
                     f"rendering and {pl['encode_seconds']:.1f} s encoding as it reports: the other "
                     f"{cli['wall_s'] - pl['render_seconds'] - pl['encode_seconds']:.1f} s are interpreter start-up, "
                     "imports (torch among them), the EGL context, reading the files and probing the result")
        lines.append(f"- {s}x{s}: all {len(walls)} video runs took {min(walls):.2f}-{max(walls):.2f} s, the guidance "
                     f"runs {min(guid):.1f}-{max(guid):.1f} ms/frame{extra}.")
    lines += ["", "The pose view is the DWPose map already drawn by the guidance render, so composing it costs "
              "nothing (a contiguous array is returned as is); its cost is inside the guidance column. The body "
              "view's cost (shading the body pixels) is part of `render s` in the video."]
    p = result["probe"]
    lines += ["", f"Probe of one output ({p['genre']}, {p['size']}x{p['size']}, `probe_mp4`): {p['frames']} frames, "
              f"{p['fps']:g} fps, {p['duration_s']:.3f} s, {p['width']}x{p['height']} {p['video_codec']}, audio "
              f"{p['audio_codec']} {p['audio_sample_rate']} Hz, {p['bytes']:,} bytes.", ""]
    t = result["target"]
    verdict = "met" if t["met"] else "NOT met"
    lines += ["## Against the target", "",
              f"Issue 16: a {a['seconds']:g}-s {TARGET_SIZE}x{TARGET_SIZE} video in at most {TARGET_SECONDS:g} s on "
              f"this 2-core machine: **{verdict}**: {t['video_s']:.1f} s in process (median over genres and runs), "
              f"{t['cli_wall_s']:.1f} s for the whole `dancesearch render` command.", "",
              "## What this is", "",
              "A **capsule-body guidance preview**: the dance drawn as one capsule per bone in part colours, "
              "Lambert-shaded, with the DWPose skeleton map and the depth / normal / semantic / mask maps a "
              "pose-guided video model (Champ-style) is conditioned on. It is not a video of a person: the "
              "photo-based dancer "
              "(a reference image animated by those maps), the M2PEnc music-to-pose encoder and the diffusion "
              "back-end that would turn the guidance into photoreal frames are **not built yet**, so none of "
              "their cost is in these figures. The GL part runs on Mesa's software rasteriser (llvmpipe, its own "
              "threads on both cores; `OMP_NUM_THREADS=1` only limits numpy/torch) and ffmpeg encodes in a second "
              "process, so rendering and encoding share the 2 cores; a hardware GL driver was not measured.", "",
              "## Reproduce", "", "```bash", result["command"], "```", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--genres", nargs="+", default=["popping", "jazz", "hantang"])
    ap.add_argument("--seed", type=int, default=0, help="seed of the corpus plan the dances come from")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the videos")
    ap.add_argument("--frames", type=int, default=90, help="frames rendered for the per-frame measures")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--note", default="", help="a remark on the conditions, printed in the report")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "video.json")
    ap.add_argument("--md", type=Path, default=ROOT / "docs" / "results" / "video.md")
    ap.add_argument("--report", type=Path, default=None, metavar="JSON",
                    help="only write --md from an earlier result file (no measuring)")
    args = ap.parse_args()
    if args.report is not None:
        atomic_write_text(args.md, markdown(json.loads(args.report.read_text())))
        return 0

    from generation.procedural.corpus import encode_ogg
    from generation.video import probe_mp4, renderer_available
    from generation.video.mp4 import ffmpeg_exe

    ok, renderer = renderer_available()
    if not ok:
        raise SystemExit(f"no headless renderer: {renderer}")
    ffmpeg_exe()
    start_load = load3()
    t_start = time.perf_counter()
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine_info(),
              "renderer": renderer, "load_average_start": start_load, "note": args.note,
              "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "LP_NUM_THREADS",
                                                     "MESA_LOADER_DRIVER_OVERRIDE")},
              "args": {"sizes": args.sizes, "genres": args.genres, "seed": args.seed, "seconds": args.seconds,
                       "frames": args.frames, "runs": args.runs},
              "command": "OMP_NUM_THREADS=1 python bench/bench_video.py --sizes " + " ".join(map(str, args.sizes))
                         + " --genres " + " ".join(args.genres)
                         + f" --runs {args.runs} --frames {args.frames} --seconds {args.seconds:g}",
              "dances": {}, "per_genre": {}, "cli": {}}
    with tempfile.TemporaryDirectory(prefix="bench_video_") as tmp:
        scratch = Path(tmp)
        home = scratch / "home"
        home.mkdir()
        inputs = {}
        for g in args.genres:
            spec, record, audio = procedural_dance(g, args.seed)
            npz, ogg = scratch / f"{spec.name}.npz", scratch / f"{spec.name}.ogg"
            record.save(npz)
            ogg.write_bytes(encode_ogg(audio))
            video = record.slice(0, int(round(args.seconds * record.fps)))
            inputs[g] = (record, video, npz, ogg)
            result["dances"][g] = {"label": f"{g} {spec.bpm:g} BPM", "clip": spec.name, "bpm": spec.bpm,
                                   "dance_frames": record.num_frames, "joints": len(record.joint_names)}
        result["video_frames"] = int(round(args.seconds * 30.0))
        # warm-up (untimed): EGL context, GL programs, ffmpeg binary and page cache
        g0 = args.genres[0]
        video_in_process(render_args(inputs[g0][2], inputs[g0][3], 64, 1.0, scratch / "warm.mp4", home))
        for g in args.genres:
            record, video, npz, ogg = inputs[g]
            result["per_genre"][g] = {"sizes": {}}
            for size in args.sizes:
                maps = measure_maps(video, size, args.frames, args.runs, scratch)
                runs = []
                out = scratch / f"{g}-{size}.mp4"
                for _ in range(args.runs):
                    wall, payload = video_in_process(render_args(npz, ogg, size, args.seconds, out, home))
                    runs.append((wall, payload))
                probe = probe_mp4(out).as_dict()
                vid = {"wall_s": [round(w, 3) for w, _ in runs], "render_s": [p["render_seconds"] for _, p in runs],
                       "encode_s": [p["encode_seconds"] for _, p in runs], "bytes": probe["bytes"],
                       "frames": probe["frames"], "probe": probe, "load_average_1m": load3()[0]}
                result["per_genre"][g]["sizes"][str(size)] = {"maps": maps, "video": vid}
                print(f"{g} {size}: guidance {median(maps['guidance_ms_per_frame']):.1f} ms/frame, body "
                      f"{median(maps['compose_ms_per_frame']['body']):.2f}, champ "
                      f"{median(maps['champ_ms_per_frame']):.1f} ms/frame; video {median(vid['wall_s']):.2f} s "
                      f"({vid['bytes']} bytes), load {load3()}",
                      file=sys.stderr)
                if g == g0 and size == min(args.sizes):
                    result["probe"] = {"genre": result["dances"][g]["label"], "size": size, **probe}
        for size in args.sizes:
            record, video, npz, ogg = inputs[g0]
            wall, payload = video_cli(render_args(npz, ogg, size, args.seconds, scratch / f"cli-{size}.mp4", home))
            result["cli"][str(size)] = {"genre": g0, "wall_s": round(wall, 3), "payload": payload}
            print(f"cli {size}: {wall:.2f} s", file=sys.stderr)
    result["summary"] = summarise(result["per_genre"], args.sizes)
    small = str(TARGET_SIZE) if TARGET_SIZE in args.sizes else str(min(args.sizes))
    result["target"] = {"size": int(small), "seconds_limit": TARGET_SECONDS,
                        "video_s": result["summary"][small]["video_s"],
                        "cli_wall_s": result["cli"][small]["wall_s"],
                        "met": max(result["summary"][small]["video_s"],
                                   result["cli"][small]["wall_s"]) <= TARGET_SECONDS}
    result["load_average_end"] = load3()
    result["bench_seconds"] = round(time.perf_counter() - t_start, 1)
    atomic_write_json(args.out, result)
    atomic_write_text(args.md, markdown(result))
    print(json.dumps({"summary": result["summary"], "cli": {k: v["wall_s"] for k, v in result["cli"].items()},
                      "target": result["target"], "load": [start_load, result["load_average_end"]]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
