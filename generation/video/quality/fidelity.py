"""Frame fidelity of a rendered video against a ground truth: SSIM, PSNR (per frame) and VMAF (per clip).

Why these three: the M2PEnc paper (section 4.2) reports SSIM and PSNR; VMAF is the perceptual video score
that needs no downloaded network (libvmaf's ``vmaf_v0.6.1`` model is built into imageio-ffmpeg's ffmpeg),
while LPIPS / FVD need weights this project cannot fetch. SSIM is scikit-image's definition on the RGB frames
(``data_range=255``, ``channel_axis=-1``, the default 7x7 uniform window; computed with OpenCV box filters,
same figures, 10x faster), PSNR the plain one (peak 255, MSE over all channels); VMAF runs ffmpeg's
``libvmaf`` filter on both sequences converted to BT.709 limited-range YUV 4:2:0, the format VMAF was
trained on.

Caveat, said wherever VMAF is reported: its model was trained on 1080p-class content viewed at three picture
heights; on 256-px frames the score is still monotone in distortion but not calibrated (a 256-px clip is not
"the same quality" as a 1080p clip of the same score). The frames are fed losslessly (raw RGB), so the
score measures the rendering, not a codec.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from encoders.errors import DanceSearchError, InputError

#: PSNR of identical frames is infinite; this cap keeps means finite and JSON-safe (48 dB is already
#: a one-level error on every pixel, so 100 dB only ever means "identical").
PSNR_CAP_DB = 100.0
#: VMAF's built-in model; ``vmaf_v0.6.1`` is the default every published VMAF figure uses.
VMAF_MODEL = "version=vmaf_v0.6.1"
#: Frames below this short side are scored, but flagged: VMAF's model is meant for >= ~256-px content.
VMAF_MIN_SIDE = 256
_YUV = "scale=out_color_matrix=bt709:out_range=tv:in_range=pc,format=yuv420p"
_TIMEOUT_S = 600.0


class VmafUnavailable(DanceSearchError):
    """No ffmpeg with the libvmaf filter (the optional imageio-ffmpeg package is missing or built without it)."""


def check_pair(distorted: Any, reference: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both sequences as uint8 (T, H, W, 3) arrays of the same shape; ``InputError`` naming the mismatch."""
    arrays = []
    for name, seq in (("distorted", distorted), ("reference", reference)):
        a = np.asarray(seq)
        if a.ndim == 3 and a.shape[-1] == 3:
            a = a[None]
        if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8:
            raise InputError(None, f"bad {name} frames", field=name, expected="uint8 (T, H, W, 3) RGB frames",
                             got=f"{a.dtype} {a.shape}")
        if a.shape[0] < 1 or min(a.shape[1:3]) < 7:
            raise InputError(None, f"{name} frames too small for SSIM", field=name,
                             expected="at least 1 frame of 7x7 pixels", got=str(a.shape))
        arrays.append(a)
    if arrays[0].shape != arrays[1].shape:
        raise InputError(None, "distorted and reference frames differ in shape", field="distorted",
                         expected=str(arrays[1].shape), got=str(arrays[0].shape))
    return arrays[0], arrays[1]


def _ssim_cv2(x: np.ndarray, y: np.ndarray) -> float:
    """scikit-image's default SSIM (7x7 uniform window, sample covariances, K1 0.01, K2 0.03, border of 3
    cropped, mean over channels) with OpenCV box filters: the same numbers (to ~1e-12), ~10x faster.

    Border handling cannot differ: the filtered values within 3 px of the edge, the only ones a border mode
    touches, are cropped before the mean, as scikit-image does.
    """
    import cv2

    win, pad = 7, 3
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    cov_norm = win * win / (win * win - 1.0)

    def box(a: np.ndarray) -> np.ndarray:
        return cv2.blur(a, (win, win), borderType=cv2.BORDER_REFLECT)

    ux, uy = box(x), box(y)
    vx = cov_norm * (box(x * x) - ux * ux)
    vy = cov_norm * (box(y * y) - uy * uy)
    vxy = cov_norm * (box(x * y) - ux * uy)
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s[pad:-pad, pad:-pad].mean())


def ssim_frames(distorted: Any, reference: Any) -> np.ndarray:
    """float64 (T,) SSIM of each RGB frame pair (1.0 = identical): scikit-image's
    ``structural_similarity(data_range=255, channel_axis=-1)`` (computed with OpenCV's box filter when
    OpenCV is installed: identical figures, see :func:`_ssim_cv2`)."""
    d, r = check_pair(distorted, reference)
    try:
        import cv2  # noqa: F401 - only probing for the fast path
    except ImportError:
        from skimage.metrics import structural_similarity

        return np.array([structural_similarity(r[t], d[t], data_range=255, channel_axis=-1)
                         for t in range(d.shape[0])], dtype=np.float64)
    return np.array([_ssim_cv2(r[t], d[t]) for t in range(d.shape[0])], dtype=np.float64)


def psnr_frames(distorted: Any, reference: Any, cap_db: float = PSNR_CAP_DB) -> np.ndarray:
    """float64 (T,) PSNR in dB of each RGB frame pair, identical frames capped at ``cap_db``.

    Computed directly (MSE over all channels, peak 255), as scikit-image's ``peak_signal_noise_ratio``
    does, but without its divide-by-zero warning on identical frames.
    """
    d, r = check_pair(distorted, reference)
    diff = d.astype(np.float64) - r.astype(np.float64)
    mse = np.mean(diff * diff, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        psnr = 10.0 * np.log10(255.0 ** 2 / mse)
    return np.minimum(psnr, cap_db)


@dataclass(frozen=True)
class Fidelity:
    """SSIM / PSNR of a sequence against its reference: per-frame arrays and their means."""

    ssim: np.ndarray
    psnr: np.ndarray

    @property
    def ssim_mean(self) -> float:
        return float(np.mean(self.ssim))

    @property
    def psnr_mean(self) -> float:
        return float(np.mean(self.psnr))

    def as_dict(self) -> dict[str, Any]:
        return {"ssim_mean": round(self.ssim_mean, 5), "psnr_mean": round(self.psnr_mean, 3),
                "ssim_min": round(float(self.ssim.min()), 5), "psnr_min": round(float(self.psnr.min()), 3),
                "frames": int(self.ssim.shape[0])}


def fidelity(distorted: Any, reference: Any, cap_db: float = PSNR_CAP_DB) -> Fidelity:
    """SSIM and PSNR of every frame of ``distorted`` against ``reference`` (same shape, uint8 RGB)."""
    d, r = check_pair(distorted, reference)
    return Fidelity(ssim_frames(d, r), psnr_frames(d, r, cap_db))


def person_boxes(masks: Any, pad: float = 0.1, min_side: int = 16) -> np.ndarray:
    """int (T, 4) boxes ``(x0, y0, x1, y1)`` (exclusive ends) around each frame's foreground ``masks``
    ((T, H, W) bool or 0/255), grown by ``pad`` x the box's size on every side and to at least ``min_side``
    pixels, clipped to the image. A frame without foreground gets the whole image.

    Why: the M2PEnc paper crops its frames to the dancer before SSIM / PSNR because a large static
    background masks the errors on the dancer; the ground truth's box is the place the dancer should be,
    so every method is scored on the same pixels.
    """
    m = np.asarray(masks)
    if m.ndim == 4 and m.shape[-1] == 1:
        m = m[..., 0]
    if m.ndim != 3:
        raise InputError(None, "bad masks", field="masks", expected="(T, H, W) masks", got=str(m.shape))
    t, h, w = m.shape
    out = np.tile(np.array([0, 0, w, h]), (t, 1))
    for i in range(t):
        ys, xs = np.nonzero(m[i])
        if ys.size == 0:
            continue
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        gx = max(pad * (x1 - x0), (min_side - (x1 - x0)) / 2.0, 0.0)
        gy = max(pad * (y1 - y0), (min_side - (y1 - y0)) / 2.0, 0.0)
        out[i] = (max(0, int(np.floor(x0 - gx))), max(0, int(np.floor(y0 - gy))),
                  min(w, int(np.ceil(x1 + gx))), min(h, int(np.ceil(y1 + gy))))
    return out


def box_fidelity(distorted: Any, reference: Any, boxes: Any, cap_db: float = PSNR_CAP_DB) -> Fidelity:
    """SSIM and PSNR of each frame pair restricted to that frame's box ``(x0, y0, x1, y1)`` (from
    :func:`person_boxes`); boxes must be at least 7x7 pixels."""
    d, r = check_pair(distorted, reference)
    b = np.asarray(boxes, dtype=np.int64)
    if b.shape != (d.shape[0], 4) or np.any(b[:, 2] - b[:, 0] < 7) or np.any(b[:, 3] - b[:, 1] < 7):
        raise InputError(None, "bad boxes", field="boxes", expected=f"({d.shape[0]}, 4) boxes of >= 7x7 px",
                         got=str(b.shape))
    ssim = np.empty(d.shape[0])
    psnr = np.empty(d.shape[0])
    for t, (x0, y0, x1, y1) in enumerate(b):
        dc, rc = d[t:t + 1, y0:y1, x0:x1], r[t:t + 1, y0:y1, x0:x1]
        ssim[t] = ssim_frames(dc, rc)[0]
        psnr[t] = psnr_frames(dc, rc, cap_db)[0]
    return Fidelity(ssim, psnr)


@dataclass(frozen=True)
class Vmaf:
    """libvmaf's verdict: pooled ``mean`` / ``harmonic_mean`` / ``min`` over frames and the per-frame scores.

    ``small``: True when the frames' short side is below :data:`VMAF_MIN_SIDE` (the model is uncalibrated
    there; report the flag with the score).
    """

    mean: float
    harmonic_mean: float
    min: float
    frames: np.ndarray
    width: int
    height: int
    model: str = VMAF_MODEL

    @property
    def small(self) -> bool:
        return min(self.width, self.height) < VMAF_MIN_SIDE

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["frames"] = int(self.frames.shape[0])
        d.update(mean=round(self.mean, 3), harmonic_mean=round(self.harmonic_mean, 3), min=round(self.min, 3),
                 small=self.small)
        return d


def vmaf_available() -> tuple[bool, str]:
    """(True, ffmpeg path) when this ffmpeg has the libvmaf filter, else (False, why): for skips."""
    try:
        exe = _ffmpeg()
    except VmafUnavailable as exc:
        return False, str(exc)
    try:
        proc = subprocess.run([exe, "-hide_banner", "-nostdin", "-filters"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"ffmpeg did not run: {exc}"
    if b"libvmaf" not in proc.stdout:
        return False, f"{exe} was built without the libvmaf filter"
    return True, exe


def _ffmpeg() -> str:
    from generation.video.mp4 import EncoderUnavailable, ffmpeg_exe

    try:
        return ffmpeg_exe()
    except EncoderUnavailable as exc:
        raise VmafUnavailable(f"VMAF needs ffmpeg with libvmaf: {exc}") from exc


def _escape(path: Path) -> str:
    """A path as a filter-graph option value (':' and '\\' and quotes escaped)."""
    return str(path).replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")


def vmaf(distorted: Any, reference: Any, *, fps: float = 30.0, threads: int = 1, subsample: int = 1,
         model: str = VMAF_MODEL) -> Vmaf:
    """VMAF of ``distorted`` against ``reference`` (uint8 (T, H, W, 3) RGB, same shape) through ffmpeg's libvmaf.

    Both sequences go to ffmpeg as raw RGB (the reference from a temporary file, the distorted one on its
    stdin), are converted to BT.709 YUV 4:2:0 in the filter graph and scored with ``model``; the JSON log is
    parsed. ``threads``: libvmaf's worker threads (1 on a shared machine). ``subsample``: score every n-th
    frame only (speed; the pooled figures then cover those frames). Raises :class:`VmafUnavailable` without
    a libvmaf ffmpeg and ``InputError`` for bad frames; a failing ffmpeg raises ``RuntimeError`` with its
    last stderr lines.
    """
    d, r = check_pair(distorted, reference)
    if int(subsample) < 1 or int(threads) < 1:
        raise InputError(None, "bad VMAF option", field="subsample/threads", expected=">= 1",
                         got=f"{subsample}/{threads}")
    ok, why = vmaf_available()
    if not ok:
        raise VmafUnavailable(why)
    exe = why
    t, h, w, _ = d.shape
    raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", f"{float(fps):g}"]
    with tempfile.TemporaryDirectory(prefix="vmaf_") as tmp:
        ref_path, log_path = Path(tmp) / "reference.rgb", Path(tmp) / "vmaf.json"
        np.ascontiguousarray(r).tofile(ref_path)
        graph = (f"[0:v]{_YUV}[dis];[1:v]{_YUV}[ref];[dis][ref]libvmaf=model={model}:log_fmt=json:"
                 f"log_path={_escape(log_path)}:n_threads={int(threads)}:n_subsample={int(subsample)}")
        cmd = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", *raw, "-i", "pipe:0", *raw, "-i",
               str(ref_path), "-lavfi", graph, "-f", "null", "-"]
        try:
            proc = subprocess.run(cmd, input=np.ascontiguousarray(d).tobytes(), capture_output=True,
                                  timeout=_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"ffmpeg libvmaf did not finish within {_TIMEOUT_S:.0f} s") from exc
        if proc.returncode != 0 or not log_path.is_file():
            tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-4:]
            raise RuntimeError(f"ffmpeg libvmaf failed (exit status {proc.returncode}): {' | '.join(tail)}")
        log = json.loads(log_path.read_text())
    per_frame = np.array([f["metrics"]["vmaf"] for f in log.get("frames", [])], dtype=np.float64)
    pooled = log.get("pooled_metrics", {}).get("vmaf", {})
    if per_frame.size == 0 or not pooled:
        raise RuntimeError("ffmpeg libvmaf wrote no scores")
    return Vmaf(float(pooled["mean"]), float(pooled["harmonic_mean"]), float(pooled["min"]), per_frame, w, h, model)
