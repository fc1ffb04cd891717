"""A ground truth for the preview: a dancer whose clothes are painted on the body surface, rendered per frame.

Why: there is no photo-and-video pair of one person dancing our dances to score the preview against.
A body (any :class:`generation.video.guidance.GuidanceRenderer` body) wearing a fixed texture defined in
each part's own frame (:mod:`.frames`: stripes round the shirt, stripes down the trousers, hair on the back
of the head) looks the same from every side the way a real dancer's clothes do, so frame 0 can serve as
the reference photo and the other frames as what the preview should produce. Shading is Lambert under the
body view's light (:func:`generation.video.compose.lambert`), so the reference has shading baked in like a
photo. Optimistic as a test (the preview's body matches the dancer's exactly), but it measures
what the method itself loses: unseen sides, foreshortening, seams.
"""
from __future__ import annotations

import numpy as np

from ..compose import lambert
from ..guidance import GuidanceRenderer
from ..parts import BodyPart
from .background import cover_image
from .frames import part_frames
from .texture import unproject

SKIN_PARTS = (BodyPart.HEAD, BodyPart.NECK, BodyPart.LEFT_FOREARM, BodyPart.RIGHT_FOREARM, BodyPart.LEFT_HAND,
              BodyPart.RIGHT_HAND)
SHIRT_PARTS = (BodyPart.TORSO, BodyPart.LEFT_UPPER_ARM, BodyPart.RIGHT_UPPER_ARM)
TROUSER_PARTS = (BodyPart.PELVIS, BodyPart.LEFT_THIGH, BodyPart.RIGHT_THIGH, BodyPart.LEFT_SHIN, BodyPart.RIGHT_SHIN)
SHOE_PARTS = (BodyPart.LEFT_FOOT, BodyPart.RIGHT_FOOT)


class Outfit:
    """Colours and pattern sizes of one seeded outfit; :meth:`colour` paints part-local points."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.skin = np.array([224, 172, 140]) * rng.uniform(0.75, 1.05)
        self.hair = rng.uniform(20, 90, 3)
        self.shirt = rng.uniform(60, 230, 3)
        self.shirt2 = 255 - self.shirt * rng.uniform(0.5, 0.9)
        self.trousers = rng.uniform(30, 140, 3)
        self.trousers2 = np.clip(self.trousers + rng.uniform(25, 60, 3), 0, 255)
        self.shoes = rng.uniform(10, 60, 3)
        self.stripe = rng.uniform(0.05, 0.09)        # shirt stripe period (m)
        self.pinstripes = 2 * int(rng.integers(4, 8))  # stripes round a trouser leg
        self.sleeve = rng.uniform(0.35, 0.8)         # forearm share covered by the sleeve (from the elbow)

    def colour(self, part: np.ndarray, local: np.ndarray, length: np.ndarray) -> np.ndarray:
        """RGB float (N, 3) of points ``local`` (N, 3) (x lateral, y along the bone, z forward) on ``part`` (N,)."""
        x, y, z = local[:, 0], local[:, 1], local[:, 2]
        out = np.zeros((len(part), 3))
        shirt = np.isin(part, SHIRT_PARTS) | (np.isin(part, (BodyPart.LEFT_FOREARM, BodyPart.RIGHT_FOREARM))
                                              & (y < self.sleeve * length))
        stripes = (np.sin(2 * np.pi * y / self.stripe) > 0.2)
        out[shirt] = np.where(stripes[shirt, None], self.shirt, self.shirt2)
        chest = (part == BodyPart.TORSO) & (z > 0) & (np.abs(x) < 0.05) & (np.abs(y - 0.22) < 0.05)
        out[chest] = (self.shirt2 + 255) / 2                          # a front badge: front and back differ
        trousers = np.isin(part, TROUSER_PARTS)
        theta = np.arctan2(z, x)
        # stripes running down the legs: checks made mediapipe lose the legs (no person found in some poses)
        stripes_down = (np.floor(theta * self.pinstripes / (2 * np.pi)) % 2) > 0
        out[trousers] = np.where(stripes_down[trousers, None], self.trousers, self.trousers2)
        skin = np.isin(part, SKIN_PARTS) & ~shirt
        out[skin] = self.skin
        head = part == BodyPart.HEAD
        hair = head & ((z < 0.01) | (y > 0.055))
        out[hair] = self.hair
        eyes = head & ~hair & (z > 0.05) & (np.abs(np.abs(x) - 0.032) < 0.012) & (np.abs(y - 0.03) < 0.01)
        out[eyes] = (40, 30, 30)
        mouth = head & ~hair & (z > 0.05) & (np.abs(x) < 0.025) & (np.abs(y + 0.03) < 0.006)
        out[mouth] = (150, 60, 60)
        out[np.isin(part, SHOE_PARTS)] = self.shoes
        return out


def textured_background(height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 (H, W, 3): a wall with soft colour blobs and a tiled floor in the lower third (seeded)."""
    rng = np.random.default_rng(seed + 1000)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = xx / width, yy / height
    base = rng.uniform(120, 200, 3)
    img = np.broadcast_to(base, (height, width, 3)).copy()
    for _ in range(6):
        c = rng.uniform(0, 1, 2)
        r = rng.uniform(0.08, 0.25)
        col = rng.uniform(-60, 60, 3)
        img += col * np.exp(-((u - c[0]) ** 2 + (v - c[1]) ** 2) / (2 * r * r))[..., None]
    img += 12 * np.sin(2 * np.pi * u * rng.uniform(6, 12))[..., None]        # wallpaper stripes
    floor = v > 0.72
    tiles = ((np.floor(u * 8) + np.floor((v - 0.72) * 20)) % 2 > 0)
    floor_col = np.where(tiles[..., None], rng.uniform(60, 110, 3), rng.uniform(140, 190, 3))
    img = np.where(floor[..., None], floor_col, img)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render_textured_dancer(renderer: GuidanceRenderer, *, seed: int = 0, background: np.ndarray | None = None,
                           start: int = 0, stop: int | None = None) -> np.ndarray:
    """uint8 (T, H, W, 3): ``renderer``'s body wearing :class:`Outfit` ``seed``, Lambert-shaded, over
    ``background`` (any RGB uint8 image, cropped and scaled to cover the frame; default
    :func:`textured_background`). Frames ``start:stop``; frame 0 serves as the reference photo."""
    h, w = renderer.height, renderer.width
    bg = textured_background(h, w, seed) if background is None else cover_image(np.asarray(background, np.uint8), h, w)
    outfit = Outfit(seed)
    maps = renderer.render(start, stop, pose=False)
    body = renderer.joints.body[maps.start:maps.start + len(maps)]
    tips = None
    if renderer.joints.fingers is not None:
        tips = 0.5 * (renderer.joints.fingers[:, :, 1, 0] + renderer.joints.fingers[:, :, 4, 0])
        tips = tips[maps.start:maps.start + len(maps)]
    elif renderer.joints.palms is not None:
        tips = renderer.joints.palms[maps.start:maps.start + len(maps)]
    origins, rots, lengths = part_frames(body, tips)
    out = np.repeat(bg[None], len(maps), axis=0)
    for i in range(len(maps)):
        labels = maps.labels[i, ..., 0]
        ys, xs = np.nonzero(labels)
        if len(ys) == 0:
            continue
        part = labels[ys, xs].astype(np.intp)
        world = unproject(renderer.camera, xs.astype(np.float64), ys.astype(np.float64),
                          maps.depth[i, ys, xs, 0].astype(np.float64))
        local = np.einsum("nji,nj->ni", rots[i][part], world - origins[i][part])
        rgb = outfit.colour(part, local, lengths[i][part]) * lambert(maps.normal[i, ys, xs])[:, None]
        out[i, ys, xs] = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return out
