"""``render_guidance``: a dance -> per-frame depth, normal, part, mask and DWPose maps from one fixed camera.

Why one entry point over several modules: the maps must agree (same joints, same smoothing, same camera)
or a model is guided by contradicting images. :class:`GuidanceRenderer` prepares everything once (joints,
body, camera, keypoints) and renders any frame range; :func:`render_guidance` renders the whole dance
into arrays, and :func:`generation.video.champ.write_champ_layout` streams a renderer to disk in chunks so
a long dance at 512 px never sits in memory whole.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from encoders.errors import InputError
from encoders.motion.record import MotionRecord

from .bodies import MeshBody, check_body, mesh_body
from .camera import Camera, fit_camera, mean_facing
from .capsules import CapsuleBody, capsule_body
from .draw import draw_pose_map, keypoint_heatmaps
from .gl import CapsuleRasterizer, MeshRasterizer
from .joints import GuidanceJoints, guidance_joints
from .openpose import project_keypoints
from .parts import colour_parts

MIN_SIZE, MAX_SIZE = 16, 4096
#: Depth images: the farthest body surface of the dance maps to this grey, the nearest to 255, background 0.
DEPTH_FAR_GREY = 48
#: Mesh bodies are skinned this many frames at a time (anny: ~0.9 MB of vertices per frame, 4x that while blending).
SKIN_CHUNK = 16


def image_size(size: int | tuple[int, int]) -> tuple[int, int]:
    """(height, width) from an int (square) or a (height, width) pair, each in [16, 4096]."""
    if isinstance(size, (int, np.integer)):
        hw: tuple = (size, size)
    elif isinstance(size, (tuple, list)):
        hw = tuple(size)
    else:
        hw = ()
    if len(hw) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in hw):
        raise InputError(None, "bad image size", field="size", expected="an int or (height, width) ints",
                         got=repr(size))
    if not all(MIN_SIZE <= v <= MAX_SIZE for v in hw):
        raise InputError(None, "image size out of range", field="size", expected=f"{MIN_SIZE} to {MAX_SIZE} pixels",
                         got=repr(size))
    return int(hw[0]), int(hw[1])


@dataclass
class GuidanceFrames:
    """Guidance maps of frames ``start .. start + T`` of a dance, all (T, H, W, C).

    - ``depth`` float32 (T, H, W, 1): view depth of the body surface in metres, 0 where there is no body;
    - ``normal`` float32 (T, H, W, 3): camera-space unit normals (x right, y up, z towards the camera), 0 off-body;
    - ``labels`` uint8 (T, H, W, 1): :class:`generation.video.parts.BodyPart` ids, 0 off-body;
    - ``mask`` uint8 (T, H, W, 1): 255 on the body, 0 elsewhere;
    - ``pose`` uint8 (T, H, W, 3): DWPose/OpenPose-coloured skeleton map (RGB);
    - ``keypoints`` float32 (T, K, 2) pixel positions (K = 18 body, + 2 x 21 hand points with fingers),
      ``keypoint_depth`` float32 (T, K), ``keypoint_valid`` bool (T, K).
    Heatmaps are computed on demand (:meth:`heatmaps`): 60 float channels per frame would dwarf the rest.
    """

    depth: np.ndarray
    normal: np.ndarray
    labels: np.ndarray
    mask: np.ndarray
    pose: np.ndarray
    keypoints: np.ndarray
    keypoint_depth: np.ndarray
    keypoint_valid: np.ndarray
    camera: Camera
    fps: float = 30.0
    start: int = 0
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.depth.shape[0])

    @property
    def height(self) -> int:
        return int(self.depth.shape[1])

    @property
    def width(self) -> int:
        return int(self.depth.shape[2])

    def depth_image(self) -> np.ndarray:
        """uint8 (T, H, W, 3) grey depth: nearest surface of the dance 255, farthest ``DEPTH_FAR_GREY``, background 0.

        The range is the camera's, fixed for the dance, so a frame's brightness does not depend on its neighbours.
        """
        near, far = self.camera.depth_range
        d = self.depth[..., 0]
        t = np.clip((far - d) / max(far - near, 1e-6), 0.0, 1.0)
        grey = np.where(self.mask[..., 0] > 0, DEPTH_FAR_GREY + t * (255 - DEPTH_FAR_GREY), 0.0)
        return np.repeat(np.rint(grey).astype(np.uint8)[..., None], 3, axis=-1)

    def normal_image(self) -> np.ndarray:
        """uint8 (T, H, W, 3): RGB = (n + 1) / 2 of the camera-space normal, black background."""
        rgb = np.rint((self.normal * 0.5 + 0.5) * 255.0).clip(0, 255).astype(np.uint8)
        return np.where(self.mask > 0, rgb, np.uint8(0))

    def semantic_image(self) -> np.ndarray:
        """uint8 (T, H, W, 3): parts in :data:`generation.video.parts.PART_PALETTE` colours, black background."""
        return colour_parts(self.labels)

    def mask_image(self) -> np.ndarray:
        """uint8 (T, H, W): 255 body, 0 background."""
        return self.mask[..., 0]

    def heatmaps(self, start: int = 0, stop: int | None = None, sigma: float | None = None) -> np.ndarray:
        """float32 (n, H, W, K) Gaussian keypoint heatmaps of frames ``start:stop`` (relative to this chunk)."""
        sl = slice(start, stop)
        return keypoint_heatmaps(self.keypoints[sl], self.keypoint_valid[sl], self.height, self.width, sigma)

    def as_tensors(self) -> dict[str, "torch.Tensor"]:  # noqa: F821 - torch imported lazily
        """float32 torch tensors (T, C, H, W) in [0, 1], keyed like Champ's guidance types.

        ``depth`` (1 channel, near = 1), ``normal`` (3), ``semantic_map`` (3), ``mask`` (1), ``dwpose`` (3).
        """
        import torch

        def t(a: np.ndarray) -> torch.Tensor:
            arr = a if a.ndim == 4 else a[..., None]
            return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2))).float().div_(255.0)

        return {"depth": t(self.depth_image()[..., :1]), "normal": t(self.normal_image()),
                "semantic_map": t(self.semantic_image()), "mask": t(self.mask), "dwpose": t(self.pose)}


class GuidanceRenderer:
    """Everything a dance's guidance needs, prepared once: joints, body (capsules or a mesh), camera, keypoints.

    Use as a context manager (or call :meth:`close`) to free the GL objects; the EGL context itself is kept
    for the thread (one per thread), and a renderer renders only in the thread that built it. Parameters
    are those of :func:`render_guidance`.
    """

    def __init__(self, record: MotionRecord, size: int | tuple[int, int] = 256, *, hands: bool | None = None,
                 smooth_sigma: float = 0.0, projection: str = "perspective", fov_deg: float = 35.0,
                 margin: float = 0.08, yaw_deg: float = 0.0, elevation_deg: float = 0.0,
                 camera: Camera | None = None, backend: str = "egl", body: str = "capsule",
                 body_model: str | Path | object | None = None) -> None:
        self._raster: CapsuleRasterizer | MeshRasterizer | None = None
        self.height, self.width = image_size(size)
        self.body_name = check_body(body)
        self.joints: GuidanceJoints = guidance_joints(record, hands=hands, smooth_sigma=smooth_sigma)
        self.body: CapsuleBody | MeshBody = capsule_body(self.joints) if body == "capsule" \
            else mesh_body(body, self.joints, body_model)
        if camera is None:
            pts, pad = self.body.extent_points()
            camera = fit_camera(pts, pad, self.width, self.height, facing=mean_facing(self.joints.trunk_frames()),
                                projection=projection, fov_deg=fov_deg, margin=margin, yaw_deg=yaw_deg,
                                elevation_deg=elevation_deg)
        elif (camera.width, camera.height) != (self.width, self.height):
            raise InputError(None, "camera and image size disagree", field="camera",
                             expected=f"{self.width}x{self.height}", got=f"{camera.width}x{camera.height}")
        self.camera = camera
        self.keypoints, self.keypoint_depth, self.keypoint_valid = project_keypoints(self.joints, camera)
        self.meta = {"hands": self.joints.has_fingers, "smooth_sigma": float(smooth_sigma),
                     "num_keypoints": int(self.keypoints.shape[1]), "body": self.body_name}
        if isinstance(self.body, CapsuleBody):
            self._instances = self.body.instances()
            self._raster = CapsuleRasterizer(self.width, self.height, backend=backend,
                                             max_instances=self.body.num_capsules)
            self.meta["capsules"] = self.body.num_capsules
        else:
            self._raster = MeshRasterizer(self.width, self.height, self.body.faces, self.body.labels,
                                          backend=backend)
            self.meta.update(vertices=self.body.num_vertices, triangles=self.body.num_triangles,
                             body_scale=round(float(self.body.scale), 4))
        self._raster.set_camera(camera)

    @property
    def num_frames(self) -> int:
        return self.joints.num_frames

    def __enter__(self) -> "GuidanceRenderer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._raster is not None:
            self._raster.release()
            self._raster = None

    def render(self, start: int = 0, stop: int | None = None, *, pose: bool = True) -> GuidanceFrames:
        """Maps of frames ``start:stop`` (clipped to the dance). ``pose=False`` leaves the skeleton map black
        (callers that only need the body maps skip its drawing: ~5 ms/frame at 256 px, ~20 at 512)."""
        if self._raster is None:
            raise RuntimeError("renderer is closed")
        stop = self.num_frames if stop is None else min(stop, self.num_frames)
        start = max(0, start)
        n = max(stop - start, 0)
        h, w = self.height, self.width
        depth = np.zeros((n, h, w, 1), dtype=np.float32)
        normal = np.zeros((n, h, w, 3), dtype=np.float32)
        labels = np.zeros((n, h, w, 1), dtype=np.uint8)
        skeleton = np.zeros((n, h, w, 3), dtype=np.uint8)
        mesh = self.body if isinstance(self.body, MeshBody) else None
        verts, first = None, start
        for i, t in enumerate(range(start, stop)):
            if mesh is not None:
                if verts is None or t - first >= len(verts):     # skin SKIN_CHUNK frames at a time: bounded memory
                    first, verts = t, mesh.vertices(t, min(t + SKIN_CHUNK, stop))
                v = verts[t - first]
                geo, lab = self._raster.render(v, mesh.normals(v))
            else:
                geo, lab = self._raster.render(self._instances[t])
            normal[i] = geo[..., :3]
            depth[i, ..., 0] = geo[..., 3]
            labels[i, ..., 0] = lab
            if pose:
                skeleton[i] = draw_pose_map(self.keypoints[t], self.keypoint_valid[t], h, w)
        mask = np.where(labels > 0, np.uint8(255), np.uint8(0))
        sl = slice(start, stop)
        return GuidanceFrames(depth, normal, labels, mask, skeleton, self.keypoints[sl], self.keypoint_depth[sl],
                              self.keypoint_valid[sl], self.camera, self.joints.fps, start, dict(self.meta))

    def chunks(self, chunk: int = 32) -> Iterator[GuidanceFrames]:
        """Render the dance ``chunk`` frames at a time (bounded memory)."""
        if chunk < 1:
            raise InputError(None, "bad chunk size", field="chunk", expected=">= 1", got=str(chunk))
        for s in range(0, self.num_frames, chunk):
            yield self.render(s, s + chunk)


def render_guidance(record: MotionRecord, size: int | tuple[int, int] = 256, *, hands: bool | None = None,
                    smooth_sigma: float = 0.0, projection: str = "perspective", fov_deg: float = 35.0,
                    margin: float = 0.08, yaw_deg: float = 0.0, elevation_deg: float = 0.0,
                    camera: Camera | None = None, backend: str = "egl", body: str = "capsule",
                    body_model: str | Path | object | None = None) -> GuidanceFrames:
    """Render every frame of ``record``'s guidance maps from one camera fitted to the whole dance.

    ``size``: int (square) or (height, width), 16..4096 px. ``hands``: None = finger maps when the record
    has SMPL-X fingers, True = require them, False = body only. ``smooth_sigma``: low-pass of the joints in
    frames (0 = off; 1 steadies mocap jitter). ``projection``: "perspective" (``fov_deg`` vertical field of
    view) or "orthographic". ``margin``: free border, fraction of the body's half-extent. ``yaw_deg`` /
    ``elevation_deg``: move the camera around / above the dancer's mean facing. ``camera``: use this camera
    instead of fitting one (e.g. the same framing for several dances). ``body``: what draws depth, normal,
    part and mask: "capsule" (built in, fast), "anny" (a skinned anny mesh; the first use in a process
    builds the model) or "smplx" (the user's SMPL-X file, given as ``body_model``: the file or its
    folder); :func:`generation.video.bodies.available_bodies` says which work here. The pose map and
    keypoints do not depend on the body. Raises ``InputError`` on bad input (also when a body's package
    or file is missing) and :class:`generation.video.gl.RendererUnavailable` when moderngl or EGL is missing.
    """
    with GuidanceRenderer(record, size, hands=hands, smooth_sigma=smooth_sigma, projection=projection,
                          fov_deg=fov_deg, margin=margin, yaw_deg=yaw_deg, elevation_deg=elevation_deg,
                          camera=camera, backend=backend, body=body, body_model=body_model) as renderer:
        return renderer.render()
