"""One camera for the whole dance: fitted once to every frame's body, facing the dancer's mean direction.

Why fixed: a camera refitted per frame makes the body jump and breathe in the guidance, and a video model
copies that as camera shake. The camera looks at the dancer's mean facing direction (so a dance that
turns is seen mostly from the front), frames the bounding volume of all frames' capsules with a margin,
and never moves. The same matrices serve OpenGL and the numpy projection of keypoints, so the skeleton
map and the rendered maps agree to the pixel.

Conventions: view space is OpenGL's (x right, y up, camera looking down -z). Pixel coordinates put
(0, 0) at the top-left corner of the image; pixel (col, row) covers [col, col + 1) x [row, row + 1).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from encoders.errors import InputError

PROJECTIONS: tuple[str, ...] = ("perspective", "orthographic")
UP = np.array([0.0, 1.0, 0.0])


@dataclass(frozen=True)
class Camera:
    """A pinhole (or orthographic) camera with an image size and a fitted frustum.

    ``rotation``: (3, 3) world -> view, rows right, up, back. ``frustum``: (left, right, bottom, top), in
    tangent units (at unit distance) for a perspective camera and in metres for an orthographic one; it
    may be off-centre (a shifted principal point), which is how the body is centred exactly.
    ``depth_range``: the nearest and farthest body surface over the dance (view depth, metres): the
    fixed range the depth images are normalised with, so depth brightness does not flicker.
    """

    width: int
    height: int
    projection: str
    eye: np.ndarray
    rotation: np.ndarray
    frustum: tuple[float, float, float, float]
    near: float
    far: float
    depth_range: tuple[float, float] = field(default=(0.0, 1.0))

    def view_matrix(self) -> np.ndarray:
        """(4, 4) world -> view."""
        m = np.eye(4)
        m[:3, :3] = self.rotation
        m[:3, 3] = -self.rotation @ self.eye
        return m

    def projection_matrix(self) -> np.ndarray:
        """(4, 4) view -> clip, OpenGL conventions (glFrustum / glOrtho)."""
        l, r, b, t = self.frustum
        n, f = self.near, self.far
        m = np.zeros((4, 4))
        if self.projection == "perspective":
            m[0, 0], m[0, 2] = 2 / (r - l), (r + l) / (r - l)
            m[1, 1], m[1, 2] = 2 / (t - b), (t + b) / (t - b)
            m[2, 2], m[2, 3] = -(f + n) / (f - n), -2 * f * n / (f - n)
            m[3, 2] = -1.0
        else:
            m[0, 0], m[0, 3] = 2 / (r - l), -(r + l) / (r - l)
            m[1, 1], m[1, 3] = 2 / (t - b), -(t + b) / (t - b)
            m[2, 2], m[2, 3] = -2 / (f - n), -(f + n) / (f - n)
            m[3, 3] = 1.0
        return m

    def to_view(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) world points -> view space."""
        return (np.asarray(points, dtype=np.float64) - self.eye) @ self.rotation.T

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(..., 3) world points -> pixel coordinates (..., 2) (x right, y down) and view depth (...,) in metres."""
        v = self.to_view(points)
        clip = v @ self.projection_matrix()[:, :3].T + self.projection_matrix()[:, 3]
        ndc = clip[..., :2] / clip[..., 3:4]
        px = np.stack([(ndc[..., 0] + 1) * 0.5 * self.width, (1 - ndc[..., 1]) * 0.5 * self.height], axis=-1)
        return px, -v[..., 2]

    @property
    def back(self) -> np.ndarray:
        """Unit vector from the dancer towards the camera (world)."""
        return self.rotation[2]

    def to_dict(self) -> dict:
        """JSON-ready description (written beside the image sequences)."""
        return {"width": self.width, "height": self.height, "projection": self.projection,
                "eye": [float(x) for x in self.eye], "rotation": [[float(x) for x in r] for r in self.rotation],
                "frustum": [float(x) for x in self.frustum], "near": self.near, "far": self.far,
                "depth_range": [float(x) for x in self.depth_range]}


def mean_facing(trunk_frames: np.ndarray) -> np.ndarray:
    """(3,) horizontal unit vector: the mean of the per-frame trunk forward directions.

    A dance that spins evenly has no mean direction (the mean vector is short); the first frame's facing
    is used then, so the dancer starts facing the camera.
    """
    fwd = np.asarray(trunk_frames)[..., 2].copy()
    fwd[..., 1] = 0.0
    norms = np.linalg.norm(fwd, axis=-1, keepdims=True)
    valid = norms[..., 0] > 1e-6
    if not valid.any():
        return np.array([0.0, 0.0, 1.0])
    unit = fwd[valid] / norms[valid]
    mean = unit.mean(axis=0)
    if np.linalg.norm(mean) < 0.25:
        mean = unit[0]
    return mean / np.linalg.norm(mean)


def camera_rotation(facing: np.ndarray, yaw_deg: float = 0.0, elevation_deg: float = 0.0) -> np.ndarray:
    """(3, 3) world -> view rows (right, up, back) for a camera in front of ``facing``.

    ``yaw_deg`` turns the camera about +y around the dancer (90: the camera moves to the dancer's left);
    ``elevation_deg`` raises it (positive looks down at the dancer).
    """
    f = np.asarray(facing, dtype=np.float64)
    f = np.array([f[0], 0.0, f[2]])
    f = f / max(np.linalg.norm(f), 1e-9)
    yaw, el = np.radians(yaw_deg), np.radians(elevation_deg)
    c, s = np.cos(yaw), np.sin(yaw)
    horiz = np.array([c * f[0] + s * f[2], 0.0, -s * f[0] + c * f[2]])   # rotation about +y by yaw
    back = np.cos(el) * horiz + np.sin(el) * UP
    right = np.cross(UP, back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    return np.stack([right, up, back])


def fit_camera(points: np.ndarray, pad: np.ndarray, width: int, height: int, *, facing: np.ndarray,
               projection: str = "perspective", fov_deg: float = 35.0, margin: float = 0.08,
               yaw_deg: float = 0.0, elevation_deg: float = 0.0) -> Camera:
    """The one camera that keeps every sphere (``points`` (N, 3), radii ``pad`` (N,)) inside the image.

    ``margin``: free border as a fraction of the body's half-extent. ``fov_deg``: the vertical field of
    view that sets the camera distance (the perspective strength); the frustum is then tightened around
    the projected body, so the body fills the frame whatever the field of view.
    """
    if projection not in PROJECTIONS:
        raise InputError(None, "unknown projection", field="projection", expected=" or ".join(PROJECTIONS),
                         got=repr(projection))
    if not (0.0 <= margin < 1.0):
        raise InputError(None, "bad margin", field="margin", expected="0 <= margin < 1", got=str(margin))
    if not (5.0 <= fov_deg <= 120.0):
        raise InputError(None, "bad field of view", field="fov_deg", expected="5 to 120 degrees", got=str(fov_deg))
    rot = camera_rotation(facing, yaw_deg, elevation_deg)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    pad = np.broadcast_to(np.asarray(pad, dtype=np.float64), (len(pts),))
    q = pts @ rot.T
    lo, hi = (q - pad[:, None]).min(0), (q + pad[:, None]).max(0)
    centre = 0.5 * (lo + hi)
    rel = q - centre
    aspect = width / height
    if projection == "orthographic":
        x0, x1, y0, y1 = lo[0] - centre[0], hi[0] - centre[0], lo[1] - centre[1], hi[1] - centre[1]
        standoff = 1.0
        eye_cam = np.array([centre[0], centre[1], hi[2] + standoff])
        depth = eye_cam[2] - q[:, 2]
    else:
        tan_y = np.tan(np.radians(fov_deg) / 2)
        tan_x = tan_y * aspect
        dist = float(np.max(np.maximum(rel[:, 2] + pad + (np.abs(rel[:, 0]) + pad) / tan_x,
                                       rel[:, 2] + pad + (np.abs(rel[:, 1]) + pad) / tan_y)))
        eye_cam = centre + np.array([0.0, 0.0, dist])
        depth = dist - rel[:, 2]
        near_surface = depth - pad                     # > 0 by the choice of dist
        sx = np.concatenate([(rel[:, 0] - pad) / near_surface, (rel[:, 0] + pad) / near_surface])
        sy = np.concatenate([(rel[:, 1] - pad) / near_surface, (rel[:, 1] + pad) / near_surface])
        x0, x1, y0, y1 = sx.min(), sx.max(), sy.min(), sy.max()
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    half_y = max(0.5 * (y1 - y0), 0.5 * (x1 - x0) / aspect, 1e-3) * (1.0 + margin)
    half_x = half_y * aspect
    d_lo, d_hi = float((depth - pad).min()), float((depth + pad).max())
    near = max(0.01, 0.5 * d_lo)
    far = d_hi * 1.5 + 0.1
    return Camera(width=int(width), height=int(height), projection=projection, eye=eye_cam @ rot, rotation=rot,
                  frustum=(float(cx - half_x), float(cx + half_x), float(cy - half_y), float(cy + half_y)),
                  near=float(near), far=float(far), depth_range=(max(d_lo, 0.0), d_hi))
