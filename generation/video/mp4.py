"""MP4 files: RGB frames (+ music) -> an H.264 / AAC MP4, and what an MP4 holds.

Why the ffmpeg binary of ``imageio-ffmpeg``: its wheel carries a static ffmpeg with libx264 and AAC, so no
system package is needed, and raw frames piped to its stdin are encoded in a second process while the
next frames render (the two overlap on a multi-core machine). The files play everywhere a video is
shared: H.264 High profile, yuv420p tagged BT.709 (even width and height: odd ones are padded by one
pixel), AAC audio, ``+faststart`` (the index first, so a browser starts playing before the download ends).

Writes are atomic: ffmpeg writes a hidden temporary file beside ``out`` that is renamed into place only
when ffmpeg succeeded; on any failure (bad frame, ffmpeg error, Ctrl-C) it is removed, so ``out`` is
either the complete new video or untouched.

There is no ``ffprobe`` in the wheel: :func:`probe_mp4` parses ``ffmpeg -i`` (stream headers) and a
stream copy to the null muxer (its frame counter), which reads the file without decoding it.
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from collections.abc import Iterable, Iterator, Sized
from typing import Any

import numpy as np

from encoders.atomic_io import atomic_path, storage_error
from encoders.errors import DanceSearchError, InputError

INSTALL_HINT = 'pip install -e ".[video]"'
#: Last and first lines of ffmpeg's stderr quoted in an error.
STDERR_TAIL, STDERR_HEAD = 4, 2
#: RGB -> BT.709 limited-range YUV 4:2:0, tagged as such (matrix, primaries, transfer): an untagged file is
#: shown with BT.601 by some players and BT.709 by others, shifting the colours.
COLOUR_FILTER = ("scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,"
                 "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv")
_TIMEOUT_S = 60.0      # probing and finishing an encode; encoding itself is paced by the frames


class EncoderUnavailable(DanceSearchError):
    """No ffmpeg to encode with: the optional package imageio-ffmpeg is missing or has no binary."""


class EncodeError(DanceSearchError):
    """ffmpeg failed; the message quotes its stderr (first and last lines, on one line)."""


@dataclass(frozen=True)
class Mp4Info:
    """What an MP4 file holds (``probe_mp4``) or what ``write_mp4`` wrote.

    ``frames``: video frames; ``fps``: their rate; ``duration_s``: the container's duration; ``width`` /
    ``height``: of the coded video; ``video_codec``: e.g. ``"h264"``; ``has_audio`` / ``audio_codec``
    (e.g. ``"aac"``) / ``audio_sample_rate``; ``bytes``: file size.
    """

    path: str
    frames: int
    fps: float
    duration_s: float
    width: int
    height: int
    video_codec: str | None
    has_audio: bool
    audio_codec: str | None = None
    audio_sample_rate: int | None = None
    bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ffmpeg_exe() -> str:
    """Path of imageio-ffmpeg's ffmpeg binary; :class:`EncoderUnavailable` naming the install otherwise."""
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise EncoderUnavailable(
            f"writing video needs the optional package imageio-ffmpeg, which is not installed: {INSTALL_HINT}"
        ) from exc
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:   # no binary for this platform and none on PATH
        raise EncoderUnavailable(f"imageio-ffmpeg found no ffmpeg binary ({exc}): reinstall it with "
                                 f"{INSTALL_HINT}") from exc


def encoder_available() -> tuple[bool, str]:
    """(True, ffmpeg path) when videos can be written here, else (False, why): for skips and diagnostics."""
    try:
        return True, ffmpeg_exe()
    except EncoderUnavailable as exc:
        return False, str(exc)


def _tail(stderr: str, n: int = STDERR_TAIL) -> str:
    """ffmpeg's report on one line: its last ``n`` lines, and its first few too when it is longer (the cause
    of a failure is usually said first, the consequences last), joined with `` | ``."""
    lines = [ln.strip() for ln in stderr.replace("\r", "\n").splitlines() if ln.strip()]
    if not lines:
        return "(no output)"
    if len(lines) > n + STDERR_HEAD:
        lines = lines[:STDERR_HEAD] + ["..."] + lines[-n:]
    return " | ".join(lines)


def _last_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.replace("\r", "\n").splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def _run_ffmpeg_info(args: list[str]) -> str:
    """stderr of an ffmpeg run that only reads (``-i`` with or without a null output)."""
    try:
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", *args], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise EncodeError(f"ffmpeg did not answer within {_TIMEOUT_S:.0f} s") from exc
    return proc.stderr.decode("utf-8", "replace")


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM = re.compile(r"^\s*Stream #\d+:\d+\S*:\s*(Video|Audio):\s*([A-Za-z0-9_]+)(.*)$", re.MULTILINE)


def _duration(text: str) -> float | None:
    m = _DURATION.search(text)
    return None if m is None else int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])


def _input_section(text: str) -> str:
    """The ``Input #0`` part of ffmpeg's report (output streams are listed in the same format after it)."""
    start = text.find("Input #0")
    if start < 0:
        return ""
    end = min((i for i in (text.find("Stream mapping:", start), text.find("Output #0", start)) if i >= 0),
              default=len(text))
    return text[start:end]


def audio_duration(path: str | Path) -> float | None:
    """Seconds of audio in ``path`` (None when the container does not say); ``InputError`` naming the file
    when it is missing or ffmpeg finds no audio stream in it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "audio file not found")
    text = _run_ffmpeg_info(["-i", str(path)])
    section = _input_section(text)
    if not any(kind == "Audio" for kind, _, _ in _STREAM.findall(section)):
        last = _last_line(text)
        raise InputError(path, "not a readable audio file", expected="an audio file ffmpeg can decode "
                         "(wav, ogg, mp3, flac, m4a)", got=last if section == "" else "no audio stream")
    return _duration(section)


def _rate(fps: float) -> str:
    """fps as the exact fraction ffmpeg should use (29.97 -> 30000/1001)."""
    frac = Fraction(float(fps)).limit_denominator(1001)
    return f"{frac.numerator}/{frac.denominator}"


def write_mp4(frames: Iterable[np.ndarray], fps: float, out: str | Path, audio: str | Path | None = None,
              audio_start_s: float = 0.0, *, num_frames: int | None = None, crf: int = 18, preset: str = "medium",
              audio_bitrate: str = "160k", threads: int | None = None) -> Mp4Info:
    """Encode RGB ``frames`` (each (H, W, 3) uint8, all the same size) at ``fps`` into the MP4 ``out``.

    ``audio``: a sound file muxed as AAC, read from ``audio_start_s`` seconds on, cut to the video's length
    (padded with silence when shorter), so the file lasts exactly frames / fps. ``num_frames``: how many
    frames ``frames`` yields (taken from ``len(frames)`` when it has one); when known, video and audio are
    encoded in one pass, else the audio is muxed in a second pass (video stream copied). ``crf`` /
    ``preset``: libx264 quality (0-51, lower is better; 18 is visually lossless for these flat images) and
    speed. ``threads``: ffmpeg's thread count (None: ffmpeg's choice). An existing ``out`` is replaced,
    atomically. Frames are streamed: the iterable is consumed while ffmpeg encodes, never held whole.
    Returns what was written.

    Raises :class:`EncoderUnavailable` without imageio-ffmpeg, ``InputError`` for bad frames, fps, a frame
    count that differs from ``num_frames`` or an unreadable audio file (naming it), :class:`EncodeError`
    with ffmpeg's last stderr lines if it fails.
    """
    out = Path(out)
    if not (np.isfinite(fps) and 0.0 < float(fps) <= 1000.0):
        raise InputError(None, "bad frame rate", field="fps", expected="0 < fps <= 1000", got=repr(fps))
    if not (np.isfinite(audio_start_s) and audio_start_s >= 0.0):
        raise InputError(None, "bad audio start", field="audio_start_s", expected=">= 0 seconds",
                         got=repr(audio_start_s))
    if not 0 <= int(crf) <= 51:
        raise InputError(None, "bad quality", field="crf", expected="0 to 51", got=repr(crf))
    if num_frames is None and isinstance(frames, Sized):
        num_frames = len(frames)
    exe = ffmpeg_exe()
    if audio is not None:
        length = audio_duration(audio)
        if length is not None and audio_start_s >= length:
            raise InputError(audio, "the audio ends before the start asked for", field="audio_start_s",
                             expected=f"< {length:.2f} s", got=f"{audio_start_s:g} s")
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise InputError(None, "no frames to write", field="frames", expected="at least one frame", got="none")
    first = _check_frame(first, None, 0)
    h, w = first.shape[:2]
    filters = (["pad=ceil(iw/2)*2:ceil(ih/2)*2"] if h % 2 or w % 2 else []) + [COLOUR_FILTER]
    video_args = ["-vf", ",".join(filters), "-c:v", "libx264", "-preset", preset, "-crf", str(int(crf)),
                  "-pix_fmt", "yuv420p"]
    if threads is not None:
        video_args += ["-threads", str(int(threads))]
    one_pass = audio is None or num_frames is not None
    temps: list[Path] = []
    try:
        with atomic_path(out, suffix=".tmp") as tmp:
            cmd = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo",
                   "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", _rate(fps), "-i", "pipe:0"]
            if one_pass and audio is not None:
                cmd += [*_audio_input(audio, audio_start_s), "-map", "0:v:0", "-map", "1:a:0", *video_args,
                        *_audio_output(audio_bitrate, num_frames / float(fps))]
            else:
                cmd += [*video_args, "-an"]
            video_out = tmp if one_pass else _temp_beside(out, temps)
            count = _pipe_frames(cmd + ["-movflags", "+faststart", "-f", "mp4", str(video_out)], first, it, (h, w),
                                 out)
            if num_frames is not None and count != num_frames:
                raise InputError(None, "the frames are not as many as announced", field="num_frames",
                                 expected=str(num_frames), got=f"{count} frames")
            if not one_pass:
                _run_ffmpeg([exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(video_out),
                             *_audio_input(audio, audio_start_s), "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy",
                             *_audio_output(audio_bitrate, count / float(fps)), "-movflags", "+faststart",
                             "-f", "mp4", str(tmp)], out)
    finally:
        for t in temps:
            _unlink(t)
    return Mp4Info(str(out), count, float(fps), count / float(fps), w + w % 2, h + h % 2, "h264",
                   audio is not None, "aac" if audio is not None else None, None, out.stat().st_size)


def _temp_beside(out: Path, temps: list[Path]) -> Path:
    """A hidden temporary file beside ``out``, recorded in ``temps`` for removal."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".video.tmp", dir=out.parent)
    except OSError as exc:
        err = storage_error(exc, out)
        if err is None:
            raise
        raise err from exc
    os.close(fd)
    temps.append(Path(name))
    return temps[-1]


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _audio_input(audio: str | Path, start_s: float) -> list[str]:
    return (["-ss", f"{start_s:.6f}"] if start_s > 0 else []) + ["-i", str(audio)]


def _audio_output(bitrate: str, seconds: float) -> list[str]:
    """AAC, padded with silence and cut at ``seconds``: the file is exactly as long as its video."""
    return ["-c:a", "aac", "-b:a", bitrate, "-af", "apad", "-t", f"{seconds:.6f}"]


def _pipe_frames(cmd: list[str], first: np.ndarray, it: Iterator[Any], hw: tuple[int, int], out: Path) -> int:
    """Run ffmpeg ``cmd`` with the frames on its stdin; the number of frames written. Kills ffmpeg on any error."""
    with tempfile.TemporaryFile() as errlog:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errlog)
        assert proc.stdin is not None
        count, frame, stopped = 0, first, False
        try:
            while frame is not None:
                try:
                    proc.stdin.write(memoryview(frame).cast("B"))
                except BrokenPipeError:
                    stopped = True   # ffmpeg stopped reading: its exit status and stderr say why
                    break
                count += 1
                nxt = next(it, None)
                frame = None if nxt is None else _check_frame(nxt, hw, count)
            try:
                proc.stdin.close()
            except BrokenPipeError:
                stopped = True
            rc = proc.wait(timeout=_TIMEOUT_S + count * 0.5)
        except subprocess.TimeoutExpired as exc:
            _kill(proc)
            raise EncodeError(f"ffmpeg did not finish {out} in time after the last frame") from exc
        except BaseException:
            _kill(proc)
            raise
        if rc != 0:
            errlog.seek(0)
            raise EncodeError(f"ffmpeg failed (exit status {rc}) writing {out}: "
                              f"{_tail(errlog.read().decode('utf-8', 'replace'))}")
        if stopped:   # only a length limit (-t) ends ffmpeg successfully before its input does
            raise InputError(None, "more frames than announced", field="num_frames",
                             expected=f"at most {count} frames", got="more")
    return count


def _run_ffmpeg(cmd: list[str], out: Path) -> None:
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              timeout=_TIMEOUT_S * 5)
    except subprocess.TimeoutExpired as exc:
        raise EncodeError(f"ffmpeg did not finish muxing {out} within {_TIMEOUT_S * 5:.0f} s") from exc
    if proc.returncode != 0:
        raise EncodeError(f"ffmpeg failed (exit status {proc.returncode}) writing {out}: "
                          f"{_tail(proc.stderr.decode('utf-8', 'replace'))}")


def _check_frame(frame: Any, hw: tuple[int, int] | None, index: int) -> np.ndarray:
    a = np.asarray(frame)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or (hw is not None and a.shape[:2] != hw):
        want = "(H, W, 3) uint8" if hw is None else f"({hw[0]}, {hw[1]}, 3) uint8 like frame 0"
        raise InputError(None, f"bad video frame {index}", field="frames", expected=want,
                         got=f"{a.shape} {a.dtype}")
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise InputError(None, f"video frame {index} too small", field="frames", expected="at least 2x2 pixels",
                         got=f"{a.shape[1]}x{a.shape[0]}")
    return np.ascontiguousarray(a)


def _kill(proc: subprocess.Popen) -> None:
    """Stop a running ffmpeg and reap it."""
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:   # pragma: no cover - a killed process always ends
        pass
    if proc.stdin is not None:
        try:
            proc.stdin.close()
        except OSError:
            pass


_FRAME_COUNTER = re.compile(r"frame=\s*(\d+)")
_SIZE = re.compile(r",\s*(\d{2,5})x(\d{2,5})")
_FPS = re.compile(r",\s*(\d+(?:\.\d+)?)(k?)\s*fps")
_TBR = re.compile(r",\s*(\d+(?:\.\d+)?)(k?)\s*tbr")
_SAMPLE_RATE = re.compile(r",\s*(\d+)\s*Hz")


def probe_mp4(path: str | Path) -> Mp4Info:
    """Frames, fps, duration, size and streams of a video file, from ffmpeg's own report (no ffprobe).

    Frames are counted by copying the first video stream to the null muxer (no decoding: fast).
    ``InputError`` naming the file when it is missing or holds no video stream.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "video file not found")
    text = _run_ffmpeg_info(["-i", str(path), "-map", "0:v:0?", "-c", "copy", "-f", "null", "-"])
    section = _input_section(text)
    streams = _STREAM.findall(section)
    video = next(((codec, rest) for kind, codec, rest in streams if kind == "Video"), None)
    if video is None:
        raise InputError(path, "not a readable video file", expected="a video stream",
                         got=_last_line(text) if not section else "none")
    codec, rest = video
    size = _SIZE.search(rest)
    rate = _FPS.search(rest) or _TBR.search(rest)
    fps = 0.0 if rate is None else float(rate[1]) * (1000.0 if rate[2] else 1.0)
    counters = _FRAME_COUNTER.findall(text[len(section):] if section else text)
    audio = next(((c, r) for kind, c, r in streams if kind == "Audio"), None)
    sr = None if audio is None else _SAMPLE_RATE.search(audio[1])
    return Mp4Info(str(path), int(counters[-1]) if counters else 0, fps, _duration(section) or 0.0,
                   int(size[1]) if size else 0, int(size[2]) if size else 0, codec, audio is not None,
                   None if audio is None else audio[0], None if sr is None else int(sr[1]), path.stat().st_size)


__all__ = ["EncodeError", "EncoderUnavailable", "Mp4Info", "audio_duration", "encoder_available", "ffmpeg_exe",
           "probe_mp4", "write_mp4"]
