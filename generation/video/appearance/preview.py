"""The CPU preview of "this dance, on this dancer": a reference photo + a dance -> RGB video frames.

Pipeline (one module per step): :mod:`.detect` finds the person (landmarks + mask), :mod:`.fit` fits our
body and a camera to them, :mod:`.background` paints the person out of the photo once; then per frame the
target body (any :class:`generation.video.guidance.GuidanceRenderer`) is textured from the photo in 3D
(:mod:`.texture`), over the silhouette margin warped per limb in 2D (:mod:`.warp`), over the background.

It is a preview, not photoreal: the body is the renderer's (capsules by default), unseen sides are filled
from the mirrored side or the part's mean colour, clothes do not move on their own. The diffusion back-end
is the photoreal path.

Public API::

    person = load_reference("photo.jpg")                  # ReferencePerson (InputError on a bad photo)
    renderer = preview_renderer(record, person, 256)      # the dance on the person's body, framed like the photo
    frames = PreviewAnimator(person, renderer).render()    # uint8 (T, 256, 256, 3)
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from encoders.errors import InputError
from encoders.motion.record import MotionRecord
from encoders.motion.skeleton import SMPL_BODY_22

from ..guidance import GuidanceRenderer, image_size
from ..parts import NUM_PARTS, BodyPart
from .background import INPAINT_METHODS, cover_camera, cover_image, inpaint_person
from .detect import Detection, cv2_module, detect_person, read_image
from .fit import PHOTO_FOV_DEG, BodyFit, fit_body, place_record
from .frames import part_frames, part_transforms
from .texture import NOT_BODY, ReferenceView, texture_frame
from .warp import RIGID_PARTS, bone_affine, bone_points_2d, margin_layers, pixels_per_metre, warp_layers

#: Photos are worked on at most this many pixels on their longer side (texture detail beyond a 512-px
#: output is wasted, and the reference render and inpainting scale with the area).
WORK_SIDE = 1024
#: Target frames whose guidance maps are rendered at once (bounded memory whatever the clip's length).
MAPS_CHUNK = 8


@dataclass
class ReferencePerson:
    """A reference photo, ready to animate.

    ``image`` uint8 (H, W, 3) (the photo, at most :data:`WORK_SIDE` px on its longer side); ``mask``
    float32 (H, W) the person; ``landmarks`` (33, 2) pixels and ``visibility`` (33,) (mediapipe order);
    ``world`` (33, 3) mediapipe world landmarks (metres); ``body``: the fitted :class:`.fit.BodyFit`
    (reference pose ``joints`` (22, 3), photo ``camera``, ``rest`` skeleton, bone ``lengths``);
    ``background`` uint8 (H, W, 3) the photo with the person painted out; ``notes`` for the user;
    ``path`` of the photo (None for an array).
    """

    image: np.ndarray
    mask: np.ndarray
    landmarks: np.ndarray
    visibility: np.ndarray
    world: np.ndarray
    body: BodyFit
    background: np.ndarray
    notes: list[str] = field(default_factory=list)
    path: str | None = None

    @property
    def joints(self) -> np.ndarray:
        """(22, 3) the photo's pose (SMPL body joints, reference world)."""
        return self.body.joints

    @property
    def camera(self):
        """The photo's :class:`generation.video.camera.Camera`."""
        return self.body.camera

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def record(self, frames: int = 1, fps: float = 30.0) -> MotionRecord:
        """The photo's pose as a still :class:`MotionRecord` (22 SMPL joints) of ``frames`` frames."""
        pos = np.repeat(self.joints[None].astype(np.float32), frames, axis=0)
        hips = 0.5 * (pos[:, 1] + pos[:, 2])
        return MotionRecord(fps, hips, pos, list(SMPL_BODY_22))


def _downscale(rgb: np.ndarray, det: Detection, max_side: int) -> tuple[np.ndarray, Detection]:
    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return rgb, det
    cv2 = cv2_module()
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(det.mask, size, interpolation=cv2.INTER_LINEAR)
    sx, sy = size[0] / w, size[1] / h
    return small, Detection(det.landmarks * [sx, sy], det.visibility, det.world, mask, det.notes)


def load_reference(source: str | Path | np.ndarray, *, min_size: int = 128, max_side: int = WORK_SIDE,
                   fov_deg: float = PHOTO_FOV_DEG, inpaint: str = "ns") -> ReferencePerson:
    """Detect, fit and inpaint the person of a reference photo (a path, or an RGB/RGBA/grey array).

    Raises ``InputError`` naming the file when it is not a readable image, smaller than ``min_size`` px on
    its short side, shows no person, or the person is too small; several people: the largest is used
    and ``notes`` says so. ``fov_deg``: the photo's assumed vertical field of view. ``inpaint``: how the
    person is painted out of the background (:data:`.background.INPAINT_METHODS`).
    """
    if inpaint not in INPAINT_METHODS:
        raise InputError(None, "unknown inpainting method", field="inpaint", expected=" | ".join(INPAINT_METHODS),
                         got=repr(inpaint))
    rgb, path = read_image(source)
    det = detect_person(rgb, path, min_size=min_size)
    rgb, det = _downscale(rgb, det, max_side)
    h, w = rgb.shape[:2]
    try:
        body = fit_body(det, w, h, fov_deg=fov_deg)
    except InputError as exc:
        raise InputError(path, exc.reason, field=exc.field, expected=exc.expected, got=exc.got) from exc
    return ReferencePerson(rgb, det.mask.astype(np.float32), det.landmarks, det.visibility, det.world, body,
                           inpaint_person(rgb, det.mask, det.landmarks, method=inpaint), list(det.notes), path)


def preview_renderer(record: MotionRecord, person: ReferencePerson, size: int | tuple[int, int] = 256, *,
                     retarget: bool = True, **render_kwargs) -> GuidanceRenderer:
    """A :class:`GuidanceRenderer` of ``record`` danced by ``person``: their bone lengths (``retarget``),
    starting where and facing as they stand in the photo, seen by the photo's camera cropped to the output
    size (the same crop :class:`PreviewAnimator` takes of the background). ``render_kwargs`` go to the
    renderer (``hands``, ``smooth_sigma``, ``backend``...; not ``camera``). A dance that travels may leave
    the photo's frame, as it would in front of that camera."""
    if "camera" in render_kwargs:
        raise InputError(None, "the preview's camera is the photo's", field="camera", expected="no camera argument",
                         got="a camera")
    h, w = image_size(size)
    placed = place_record(record, person.body, retarget=retarget)
    cam = cover_camera(person.camera, h, w)
    depth = -cam.to_view(placed.positions.reshape(-1, 3))[:, 2]
    near = max(0.02, 0.5 * float(depth.min()) - 0.3)
    cam = replace(cam, near=near, far=float(depth.max()) * 2.0 + 1.0,
                  depth_range=(max(float(depth.min()) - 0.15, 0.0), float(depth.max()) + 0.15))
    return GuidanceRenderer(placed, (h, w), camera=cam, **render_kwargs)


def _hand_tips(renderer: GuidanceRenderer) -> np.ndarray | None:
    """(T, 2, 3) points the target hands point at: middle-finger bases, or palms, or None (forearm line)."""
    joints = renderer.joints
    if joints.fingers is not None:
        return 0.5 * (joints.fingers[:, :, 1, 0] + joints.fingers[:, :, 4, 0])      # index & pinky bases
    if joints.palms is not None:
        return joints.palms
    return None


class PreviewAnimator:
    """Renders ``person`` dancing ``renderer``'s dance, frame by frame, on a CPU.

    ``renderer``: a :class:`GuidanceRenderer` whose size is the output's (from :func:`preview_renderer`,
    or any other: its body, camera and proportions are respected). ``margin``: draw the per-limb 2D warp
    of the photo's silhouette margin under the textured body. ``relight`` (0..1): re-shade the photo's
    colours for each target pose under the body view's light (:func:`.texture.texture_frame`); the photo's
    real light is unknown, so it is off by default. ``backend``: the GL backend of the one
    reference render. Build and use it in one thread (GL).
    """

    def __init__(self, person: ReferencePerson, renderer: GuidanceRenderer, *, margin: bool = True,
                 relight: float = 0.0, backend: str = "egl") -> None:
        if not (0.0 <= relight <= 1.0):
            raise InputError(None, "bad relight strength", field="relight", expected="0 to 1", got=str(relight))
        if not isinstance(person, ReferencePerson):
            raise InputError(None, "not a reference person", field="person", expected="load_reference(...)'s result",
                             got=type(person).__name__)
        self.person = person
        self.renderer = renderer
        self.height, self.width = renderer.height, renderer.width
        self.background = cover_image(person.background, self.height, self.width).astype(np.float32)
        ref_frames = part_frames(person.joints[None], person.body.hand_tips[None])
        with GuidanceRenderer(person.record(), (person.height, person.width), camera=person.camera, hands=False,
                              backend=backend) as ref_renderer:
            ref_maps = ref_renderer.render(0, 1, pose=False)
        self.reference = ReferenceView.build(person.image, person.mask, ref_maps.depth[0, ..., 0],
                                             ref_maps.labels[0, ..., 0], person.camera, ref_frames,
                                             ref_maps.normal[0])
        self.relight = float(relight)
        self._target_frames = part_frames(renderer.joints.body, _hand_tips(renderer))
        self._ref_frames = ref_frames
        self._layers = []
        if margin:
            ref_bones = bone_points_2d(person.camera, *ref_frames)[0]
            self._layers = margin_layers(person.image, person.mask, self.reference.labels, ref_bones)
            self._ref_bones = ref_bones
            self._ref_ppm = pixels_per_metre(person.camera, ref_frames[0][0])

    @property
    def num_frames(self) -> int:
        return self.renderer.num_frames

    def _margin(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Warped silhouette margin of frame ``t``: premultiplied RGB and alpha at the output size."""
        o, r, l = (a[t:t + 1] for a in self._target_frames)
        cam = self.renderer.camera
        bones = bone_points_2d(cam, o, r, l)[0]
        ppm = pixels_per_metre(cam, o[0])
        shoulders = [BodyPart.LEFT_UPPER_ARM, BodyPart.RIGHT_UPPER_ARM]
        wide_t = np.linalg.norm(bones[shoulders[0], 0] - bones[shoulders[1], 0])
        wide_r = np.linalg.norm(self._ref_bones[shoulders[0], 0] - self._ref_bones[shoulders[1], 0])
        affines = np.zeros((NUM_PARTS, 2, 3))
        for k in range(1, NUM_PARTS):
            across = ppm[k] / max(self._ref_ppm[k], 1e-6)
            if k in (BodyPart.TORSO, BodyPart.PELVIS):      # the trunk narrows as it turns away
                across = float(np.clip(wide_t / max(wide_r, 1e-6), 0.3 * across, 1.2 * across))
            affines[k] = bone_affine(self._ref_bones[k], bones[k], across, k in RIGID_PARTS)
        depth = -cam.to_view(o[0] + 0.5 * r[0][:, :, 1] * l[0][:, None])[:, 2]
        order = np.argsort(-depth[1:]) + 1
        return warp_layers(self._layers, affines, order, self.height, self.width)

    def render(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """uint8 (T, H, W, 3) frames ``start:stop`` (clipped to the dance)."""
        stop = self.num_frames if stop is None else min(stop, self.num_frames)
        start = max(0, start)
        out = np.empty((max(stop - start, 0), self.height, self.width, 3), np.uint8)
        for s in range(start, stop, MAPS_CHUNK):          # the guidance maps are ~20 bytes a pixel: a few at a time
            maps = self.renderer.render(s, min(s + MAPS_CHUNK, stop), pose=False)
            for i in range(len(maps)):
                out[s - start + i] = self._frame(maps.start + i, maps.depth[i, ..., 0], maps.labels[i, ..., 0],
                                                 maps.normal[i])
        return out

    def frames(self, chunk: int = 32) -> Iterator[np.ndarray]:
        """Every frame in order, rendered ``chunk`` at a time (bounded memory; feed it to ``write_mp4``)."""
        if chunk < 1:
            raise InputError(None, "bad chunk size", field="chunk", expected=">= 1", got=str(chunk))
        for s in range(0, self.num_frames, chunk):
            yield from self.render(s, s + chunk)

    def _frame(self, t: int, depth: np.ndarray, labels: np.ndarray, normal: np.ndarray) -> np.ndarray:
        frame = self.background.copy()
        if self._layers:
            rgb, alpha = self._margin(t)
            frame *= (1.0 - alpha)[..., None]
            frame += rgb
        transforms = part_transforms(tuple(a[t:t + 1] for a in self._target_frames), self._ref_frames)[0]
        tex = texture_frame(self.reference, depth, labels, self.renderer.camera, transforms, normal, self.relight)
        keep = tex.source != NOT_BODY
        frame[tex.ys[keep], tex.xs[keep]] = tex.colour[keep]
        return np.clip(np.rint(frame), 0, 255).astype(np.uint8)
