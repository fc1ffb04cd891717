"""Video quality metrics (generation/video/quality): SSIM/PSNR, VMAF through real ffmpeg, warping error,
pose following with real mediapipe on a rendered dancer."""
from __future__ import annotations

import numpy as np
import pytest

from encoders.errors import InputError
from generation.video.quality import (PSNR_CAP_DB, box_fidelity, compare_keypoints, fidelity, person_boxes,
                                      pose_following, psnr_frames, ssim_frames, vmaf, vmaf_available, warping_error)

cv2 = pytest.importorskip("cv2")


def texture(h: int = 300, w: int = 300, seed: int = 0) -> np.ndarray:
    """A smooth, high-contrast random RGB texture (structure for SSIM and for optical flow)."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 3).astype(np.float64)
    return ((img - img.mean()) * 4 + 128).clip(0, 255).astype(np.uint8)


def noisy(frames: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (frames + rng.normal(0, sigma, frames.shape)).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """8 frames of a texture panning 2 px right and 1 px down per frame, 256x256."""
    big = texture()
    return np.stack([big[i:i + 256, 2 * i:2 * i + 256] for i in range(8)])


def test_ssim_psnr_identity_and_noise_ordering(clip):
    same = fidelity(clip, clip)
    assert np.allclose(same.ssim, 1.0) and np.all(same.psnr == PSNR_CAP_DB)
    light, heavy = fidelity(noisy(clip, 5), clip), fidelity(noisy(clip, 25), clip)
    assert 1.0 > light.ssim_mean > heavy.ssim_mean > 0.0
    assert PSNR_CAP_DB > light.psnr_mean > heavy.psnr_mean
    # sigma 25 noise: PSNR = 10 log10(255^2 / ~25^2) ~ 20 dB (a little more: clipping at 0/255)
    assert 19.0 < heavy.psnr_mean < 23.0
    assert ssim_frames(clip[0], clip[0]).shape == (1,) and psnr_frames(clip, clip).shape == (8,)


def test_ssim_matches_scikit_image(clip):
    from skimage.metrics import structural_similarity

    a, b = clip[0, :100, :77], noisy(clip, 15)[0, :100, :77]       # odd sizes: the cropped border must agree
    want = structural_similarity(a, b, data_range=255, channel_axis=-1)
    assert ssim_frames(b, a)[0] == pytest.approx(want, abs=1e-9)


def test_box_fidelity_scores_only_the_dancer(clip):
    masks = np.zeros(clip.shape[:3], bool)
    masks[:, 100:150, 60:90] = True                     # a 30 x 50 "dancer"
    boxes = person_boxes(masks, pad=0.1)
    assert boxes[0].tolist() == [57, 95, 93, 155]
    assert person_boxes(np.zeros((1, 40, 30), bool))[0].tolist() == [0, 0, 30, 40]
    damaged = clip.copy()
    damaged[:, 100:150, 60:90] = 0                      # the dancer wiped out, background intact
    whole, box = fidelity(damaged, clip), box_fidelity(damaged, clip, boxes)
    assert box.ssim_mean < whole.ssim_mean - 0.3 and box.psnr_mean < whole.psnr_mean - 5.0
    assert np.all(box_fidelity(clip, clip, boxes).psnr == PSNR_CAP_DB)


def test_fidelity_rejects_bad_input(clip):
    with pytest.raises(InputError, match="differ in shape"):
        fidelity(clip, clip[:4])
    with pytest.raises(InputError, match="bad distorted"):
        fidelity(clip.astype(np.float32), clip)


def test_vmaf_identical_high_blurred_low(clip):
    ok, why = vmaf_available()
    if not ok:
        pytest.skip(f"no ffmpeg with libvmaf: {why}")
    same = vmaf(clip, clip)
    assert same.mean >= 90.0 and same.frames.shape == (8,) and not same.small
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 4) for f in clip])
    low = vmaf(blurred, clip)
    assert low.mean < same.mean - 30.0
    assert vmaf(clip[:, :128, :128], clip[:, :128, :128]).small


def test_warping_error_static_translation_flicker(clip):
    static = np.repeat(clip[:1], 6, axis=0)
    flicker = np.stack([np.clip(f.astype(int) + (40 if i % 2 else 0), 0, 255).astype(np.uint8)
                        for i, f in enumerate(static)])
    e_static, e_pan, e_flicker = (warping_error(x).mean for x in (static, clip, flicker))
    assert e_static < 0.5
    assert e_pan < 1.0                  # the flow compensates the motion
    assert e_flicker > 20.0             # ~40 levels of brightness jump on most pixels
    # with another sequence's flow (frozen), the pan is no longer explained
    assert warping_error(clip[:6], flow_from=static).mean > 5.0 * max(e_pan, 0.1)


def test_compare_keypoints_pck_and_misses():
    rng = np.random.default_rng(0)
    target = rng.uniform(20, 220, (5, 18, 2))
    valid = np.ones((5, 18), bool)
    perfect = compare_keypoints(target, valid, target, valid)
    assert perfect.pck == 1.0 and perfect.mean_error_px == 0.0 and perfect.detection_rate == 1.0
    diag = np.linalg.norm(target.max(1) - target.min(1), axis=1)
    shifted = target.copy()
    shifted[:, :9, 0] += 0.2 * diag[:, None]            # half the points pushed beyond alpha=0.1
    s = compare_keypoints(shifted, valid, target, valid, alpha=0.1)
    assert s.pck == pytest.approx(9 / 18) and s.mean_error_px > 0
    assert compare_keypoints(shifted, valid, target, valid, alpha=0.3).pck == 1.0
    missing = valid.copy()
    missing[0] = False                                  # frame 0: nobody found
    m = compare_keypoints(target, missing, target, valid)
    assert m.pck == pytest.approx(4 / 5) and m.detection_rate == pytest.approx(4 / 5)
    assert m.mean_error_px == 0.0
    with pytest.raises(InputError):
        compare_keypoints(target[:, :5], valid, target, valid)


@pytest.fixture(scope="module")
def dancer_frames(gl, dance):
    """Frames of B's textured synthetic dancer and their target keypoints (skipped until that module exists)."""
    try:
        from generation.video.appearance.synthetic import render_textured_dancer
        from generation.video.appearance.detect import detect_pose  # noqa: F401 - the detector under test
    except ImportError as exc:
        pytest.skip(f"generation.video.appearance is not available yet: {exc}")
    pytest.importorskip("mediapipe")
    from generation.video import GuidanceRenderer

    with GuidanceRenderer(dance.slice(0, 4), 256) as r:
        frames = render_textured_dancer(r, seed=0)
        return frames, r.keypoints[:, :18].copy(), r.keypoint_valid[:, :18].copy()


def test_pose_following_perfect_on_detectors_own_output(dancer_frames):
    from generation.video.quality import detect_sequence

    frames, target, target_valid = dancer_frames
    det = detect_sequence(frames)
    assert det.found.all(), "mediapipe found no person in the rendered dancer"
    own = det.found[:, None] & (det.visibility >= 0.5)
    assert own.sum() >= 10 * len(frames)
    pf = pose_following(frames, det.keypoints, own)     # a second, real detector run against the first
    assert pf.pck == 1.0 and pf.mean_error_px < 0.5 and pf.detection_rate == 1.0
    # against the renderer's projected keypoints the detector is close, but definitions differ (hips, face)
    real = pose_following(frames, target, target_valid, detections=det)
    assert real.pck > 0.5
    # the same keypoints moved by 60 px no longer follow
    moved = pose_following(frames, target + np.array([60.0, 0.0]), target_valid, detections=det)
    assert moved.pck < real.pck - 0.3
