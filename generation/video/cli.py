"""``dancesearch render``: a dance -> a shareable MP4 (H.264 + AAC) with its music.

    dancesearch render (--clip ID | --motion FILE.npz|.bvh) [--music FILE | --no-music] [--size 256]
                       [--view body|pose|grid|side-by-side|dancer|dancer-side-by-side] [--reference photo.jpg]
                       [--backend preview|diffusion --weights DIR] [--body capsule|anny|smplx [--body-model PATH]]
                       [--seconds S] [--out dance.mp4] [--home H] [--json]

``--reference photo.jpg`` makes the person of the photo dance (view ``dancer`` by default then, or
``dancer-side-by-side`` next to the skeleton): ``--backend preview`` (default) is the CPU preview of
:mod:`generation.video.appearance` (not photoreal), ``--backend diffusion --weights DIR`` the pose-guided video
diffusion network of :mod:`generation.video.diffusion_backend` loaded from a local folder (a GPU machine).
``--body`` picks the body of the guidance maps (capsules by default; ``anny`` is a skinned mesh built on first
use, ``smplx`` needs the user's SMPL-X model file in ``--body-model``).

``--clip`` takes a catalog clip's motion and its audio (the files ``/v1/clips/{id}/motion`` and
``/v1/clips/{id}/audio`` serve, checked the same way: :func:`generation.video.clip_media.clip_files`, which
``GET /v1/clips/{id}/video`` uses too); ``--motion`` a motion record npz (what ``dancesearch
generate --out x.npz`` writes) or a BVH file, silent unless ``--music FILE`` is given (``--music`` also
replaces a clip's own audio). Frames are rendered in chunks and piped to ffmpeg as they come, so memory
stays bounded and encoding overlaps rendering. Exit codes: 2 for usage errors (both or neither of
--clip / --motion, an unknown clip id, --size out of range, --out not an .mp4), 1 with one ``error:`` line
for failures (unreadable files, a missing ``video`` extra). Rendering and encoding are
:func:`generation.video.clip_media.render_mp4`.

Everything heavy (moderngl, imageio-ffmpeg, the catalog) is imported by the handler, not at registration.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from encoders.cliutil import (EXIT_OK, UsageError, add_common_options, bounded_number, emit, info, progress_enabled,
                              sigterm_as_interrupt)
from encoders.errors import DanceSearchError, InputError

# Importing generation.video (this package) costs ~30 ms at registration: torch, which its joints module
# imports, is already loaded by the other commands; moderngl and imageio-ffmpeg are not imported here.
from .bodies import BODIES
from .clip_media import BACKENDS, DANCER_VIEWS
from .compose import VIEWS

MIN_SIZE, MAX_SIZE = 32, 2048
MAX_SECONDS = 3600.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "render", help="render a dance to an MP4 video with its music",
        description="Render a catalog --clip or a --motion file (npz from `dancesearch generate`, or BVH) as a "
                    "shareable MP4 (H.264, AAC music): the shaded capsule body, the DWPose skeleton map, both side "
                    "by side, or a grid of the pose-guidance maps. Needs the video extra: pip install -e \".[video]\".")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--clip", type=int, metavar="ID", help="a catalog clip (its motion and its music)")
    src.add_argument("--motion", type=Path, metavar="FILE", help="a motion record .npz or a .bvh file")
    music = p.add_mutually_exclusive_group()
    music.add_argument("--music", type=Path, metavar="FILE",
                       help="audio file to play with the dance (wav, ogg, mp3, flac, m4a); replaces a clip's own")
    music.add_argument("--no-music", action="store_true", help="a silent video, even for a clip with music")
    p.add_argument("--size", type=bounded_number(int, MIN_SIZE, MAX_SIZE, "--size"), default=256,
                   help=f"frame size in pixels, square ({MIN_SIZE}..{MAX_SIZE}; default 256); grid and side-by-side "
                        "views put 2x2 / 2 panels of this size together")
    p.add_argument("--view", choices=VIEWS + DANCER_VIEWS, default=None,
                   help="body: shaded body (default without --reference); pose: DWPose skeleton map; grid: depth, "
                        "normal, semantic and pose maps; side-by-side: body and pose; dancer: the person of "
                        "--reference dancing (default with it); dancer-side-by-side: dancer and pose")
    p.add_argument("--reference", type=Path, metavar="PHOTO",
                   help="a photo of the dancer (jpg, png, webp; one person, whole body, >= 128 px): the video shows "
                        "them performing the dance")
    p.add_argument("--backend", choices=BACKENDS, default="preview",
                   help="how the dancer is made: preview (CPU, a textured 3D body; not photoreal; default) or "
                        "diffusion (a pose-guided video diffusion network from --weights; needs a GPU to be usable)")
    p.add_argument("--weights", type=Path, metavar="DIR",
                   help="local folder of the diffusion back-end's network (vae, reference_unet, denoising_unet, ...)")
    p.add_argument("--body", choices=BODIES, default=None,
                   help="body of the guidance maps: capsule (default for videos: the fastest), anny (a skinned mesh, "
                        "shipped; default for --champ), smplx (your SMPL-X model file, --body-model)")
    p.add_argument("--body-model", type=Path, metavar="PATH",
                   help="SMPL-X model file or folder for --body smplx")
    p.add_argument("--seconds", type=bounded_number(float, 0.1, MAX_SECONDS, "--seconds"), default=None,
                   metavar="S", help="render at most the first S seconds (default: the whole dance)")
    p.add_argument("--out", type=Path, default=Path("dance.mp4"), metavar="FILE.mp4",
                   help="output video (default dance.mp4; replaced atomically if it exists)")
    p.add_argument("--champ", type=Path, metavar="DIR",
                   help="instead of a video, write the pose guidance (SDGPip: depth, normal, semantic_map, mask, "
                        "dwpose PNG sequences) in Champ's folder layout; the body is anny unless --body says")
    p.add_argument("--db", metavar="URL", default=None, help="SQLAlchemy catalog URL (default: HOME/catalog.sqlite)")
    add_common_options(p)
    p.set_defaults(handler=cmd_render)


# --- the dance and its music ---------------------------------------------------------------------------
def _clip_dance(args: argparse.Namespace) -> tuple[Any, Path | None, str]:
    """(motion record, audio path or None, a note on the audio) of catalog clip ``args.clip``."""
    from encoders.motion.record import MotionRecord
    from indexer.workspace import Workspace

    from .clip_media import clip_files

    ws = Workspace.from_args(args)
    if args.db is None and not ws.catalog_path.is_file():
        raise DanceSearchError(f"no catalog at {ws.catalog_path} to take clip {args.clip} from: ingest data first "
                               f"(or give --home)")
    catalog = ws.catalog(create=False)
    try:
        clip = catalog.clip(args.clip)
    finally:
        catalog.close()
    if clip is None:
        raise UsageError(f"no clip with id {args.clip} in the catalog of {ws.home}")
    own_music = not (args.no_music or args.music is not None)
    files = clip_files(ws.home, clip, music=own_music)
    record = MotionRecord.load(files.motion)
    return record, (files.audio if own_music else args.music), files.note


def _motion_file(path: Path) -> Any:
    """A motion record from a project npz or a BVH (.bvh / .bvh.gz) file."""
    from encoders.motion.record import MotionRecord

    name = path.name.lower()
    is_npz, is_bvh = name.endswith(".npz"), name.endswith((".bvh", ".bvh.gz"))
    if not (is_npz or is_bvh):
        raise UsageError(f"--motion must name a motion record .npz or a .bvh file, got {path}")
    if not path.is_file():
        raise InputError(path, "motion file not found")
    if is_bvh:
        from encoders.motion.bvh import read_bvh

        return read_bvh(path).to_record()
    return MotionRecord.load(path)


# --- the command ---------------------------------------------------------------------------------------
def cmd_render(args: argparse.Namespace) -> int:
    if args.clip is None and args.motion is None:
        raise UsageError("give the dance with --clip ID or --motion FILE")
    if args.champ is not None:
        return _cmd_champ(args)
    args.body = args.body or "capsule"
    if args.out.suffix.lower() != ".mp4":
        raise UsageError(f"--out must name an .mp4 file, got {args.out}")
    if args.view is None:
        args.view = "dancer" if args.reference is not None else "body"
    if args.view in DANCER_VIEWS and args.reference is None:
        raise UsageError(f"--view {args.view} shows the person of a photo: give it with --reference PHOTO")
    if args.reference is not None and args.view not in DANCER_VIEWS:
        raise UsageError(f"--reference needs a dancer view (--view {' or '.join(DANCER_VIEWS)}), not {args.view}")
    if args.backend == "diffusion" and args.weights is None:
        raise UsageError("--backend diffusion needs the network's local folder: --weights DIR")
    if args.weights is not None and args.backend != "diffusion":
        raise UsageError("--weights is for --backend diffusion")
    if (args.body == "smplx") != (args.body_model is not None):
        raise UsageError("--body smplx needs --body-model PATH (and --body-model is only for --body smplx)")
    if args.reference is not None and not args.reference.is_file():
        raise InputError(args.reference, "reference photo not found")
    from .clip_media import first_seconds, render_mp4, require_video_extra

    require_video_extra()

    if args.clip is not None:
        record, audio, note = _clip_dance(args)
    else:
        record, audio, note = _motion_file(args.motion), args.music, ""
        if audio is None and not args.no_music:
            note = "no --music given: the video is silent"
    source = args.motion or f"clip {args.clip}"
    if first_seconds(record, args.seconds).num_frames < 1:
        raise InputError(source, "the dance has no frames")
    if note:
        info(note)
    with sigterm_as_interrupt():               # `kill` stops ffmpeg and removes the temporary file, like Ctrl-C
        done = render_mp4(record, args.out, view=args.view, size=args.size, audio=audio, seconds=args.seconds,
                          progress=progress_enabled(args), source=source, body=args.body, body_model=args.body_model,
                          reference=args.reference, backend=args.backend, weights=args.weights)
    written, render_s, encode_s = done.info, done.render_s, done.encode_s
    payload = {"out": str(args.out), "frames": written.frames, "fps": written.fps,
               "seconds": round(written.duration_s, 3), "size": args.size, "width": written.width,
               "height": written.height, "view": args.view, "audio": None if audio is None else str(audio),
               "clip": args.clip, "motion": None if args.motion is None else str(args.motion),
               "render_seconds": round(render_s, 3), "encode_seconds": round(encode_s, 3), "bytes": written.bytes,
               "reference": None if args.reference is None else str(args.reference),
               "backend": args.backend if args.reference is not None else None, "body": args.body,
               "notes": list(done.notes)}

    def human() -> None:
        for note in done.notes:
            info(note)
        music = f"music {audio}" if audio is not None else "no music"
        info(f"{written.frames} frames, {written.duration_s:.1f} s at {written.fps:g} fps, {written.width}x"
             f"{written.height}, {args.view} view, {music} -> {args.out} (render {render_s:.1f} s, encode "
             f"{encode_s:.1f} s)")

    emit(args, payload, human)
    return EXIT_OK


def _cmd_champ(args: argparse.Namespace) -> int:
    """``--champ DIR``: the dance's guidance maps in Champ's layout (no video, no music)."""
    if args.reference is not None or (args.view is not None and args.view in DANCER_VIEWS):
        raise UsageError("--champ writes guidance maps; it takes no --reference or dancer view")
    from .champ import render_to_champ
    from .clip_media import first_seconds, require_video_extra

    require_video_extra()
    record = _clip_dance(args)[0] if args.clip is not None else _motion_file(args.motion)
    record = first_seconds(record, args.seconds)
    if record.num_frames < 1:
        raise InputError(args.motion or f"clip {args.clip}", "the dance has no frames")
    body = args.body or "anny"
    with sigterm_as_interrupt():
        out = render_to_champ(record, args.champ, args.size, overwrite=True, body=body,
                              **({"body_model": args.body_model} if args.body_model is not None else {}))
    payload = {"champ": str(out), "frames": record.num_frames, "size": args.size, "body": body}
    emit(args, payload, lambda: info(f"{record.num_frames} frames of guidance ({body} body, {args.size} px) -> {out}"))
    return EXIT_OK
