"""BVH motion files (``.bvh`` and ``.bvh.gz``) for any skeleton, and their conversion to a MotionRecord.

Reading is strict about structure (a malformed file raises :class:`InputError` naming the line
and what was expected) and tolerant about layout: any whitespace, tabs, CRLF or mixed line
endings, ``{`` on the keyword's line or its own, joint names with spaces, empty lines.

Conventions implemented here (BVH has no formal spec; these are what Blender, MotionBuilder
and the CMU conversions agree on):

- Rotation channels apply as intrinsic rotations in the order they are listed:
  ``R_local = R(first) @ R(second) @ R(third)`` (:func:`encoders.motion.rotations.euler_to_matrix`),
  in degrees. Any subset or order of X/Y/Z rotation channels is accepted.
- Position channels (on the root, or on any joint) replace the matching component of the
  joint's OFFSET for that frame; a joint without position channels is translated by its OFFSET.
  Roots nearly always have OFFSET 0, so this agrees with the "add to OFFSET" reading too.
- ``End Site`` blocks become extra points named ``<parent>_EndSite`` (toe tips, head top,
  finger tips); they are returned by :meth:`BvhMotion.positions` and used by the joint map
  (e.g. the DAZ foot has no toe joint, its End Site is the toe).

Units: BVH files carry no unit. :meth:`BvhMotion.detect_scale` picks metres per file unit by
the size of the rest pose, see there; pass ``scale=`` to override.
"""
from __future__ import annotations

import gzip
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from .joint_map import CONVENTIONS, apply_mapping, detect_convention, map_to_smpl22
from .kinematics import TARGET_FPS, resample_linear
from .record import MotionRecord
from .rotations import euler_to_matrix
from .skeleton import FOOT_JOINTS, SMPL_BODY_22

_POS_CHANNELS = ("xposition", "yposition", "zposition")
_ROT_CHANNELS = ("xrotation", "yrotation", "zrotation")

# Metres per file unit tried by detect_scale, with the name reported for each.
UNIT_CANDIDATES: tuple[tuple[str, float], ...] = (
    ("metres", 1.0),
    ("CMU ASF units (inch / 0.45)", 0.0254 / 0.45),
    ("inches", 0.0254),
    ("centimetres", 0.01),
    ("millimetres", 0.001),
)
REFERENCE_SIZE_M = 1.6
"""Assumed size of a rest-pose human (height, or arm span of a T-pose), metres."""

KNOWN_SKELETONS: dict[str, tuple[float, dict[str, float]]] = {
    # cgspeed's DAZ / Second Life conversion of the CMU database gives EVERY subject this one
    # skeleton, in centimetres (bone lengths = norm of the joint's OFFSET). Copies rescaled by
    # a constant circulate (e.g. the three-vrm salsa demo's "_scaled" files are these / 128),
    # so a file with these proportions is brought back to centimetres whatever its factor.
    "cgspeed CMU DAZ skeleton": (0.01, {"abdomen": 20.701, "chest": 11.7145, "neck": 22.2977,
                                        "lShin": 36.8272, "lFoot": 45.406, "lForeArm": 28.2303}),
}
"""Skeletons of known real size: name -> (metres per reference unit, {joint: OFFSET length in reference units})."""


@dataclass
class BvhMotion:
    """A parsed BVH file: its hierarchy (joints and End Sites) and its channel values.

    ``names``/``parents``/``offsets`` list every node in file order, End Sites included
    (``is_end_site`` tells which); ``channels[k]`` are the channel names of node k (lower case,
    empty for End Sites) and ``channel_start[k]`` the column of its first channel in ``motion``.
    """

    path: str
    names: list[str]
    parents: list[int]
    offsets: np.ndarray             # (N, 3) file units
    channels: list[tuple[str, ...]]
    channel_start: list[int]
    is_end_site: list[bool]
    frame_time: float
    motion: np.ndarray              # (F, C) float64, degrees and file units
    meta: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def fps(self) -> float:
        """Frame rate; snapped to the nearest integer when within 0.1 % of it.

        Files write Frame Time with 4 to 8 digits (0.008333, .0083333); without snapping,
        120.0048 fps would drift a 30 fps resampling by a third of a frame per minute.
        """
        fps = 1.0 / self.frame_time
        nearest = round(fps)
        return float(nearest) if nearest > 0 and abs(fps - nearest) < 1e-3 * fps else fps

    @property
    def duration_s(self) -> float:
        return self.num_frames * self.frame_time

    @property
    def joint_names(self) -> list[str]:
        """Names of the real joints (End Sites excluded)."""
        return [n for n, e in zip(self.names, self.is_end_site) if not e]

    def local_transforms(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame local rotations (F, N, 3, 3) and translations (F, N, 3) in file units."""
        f, n = self.num_frames, len(self.names)
        rot = np.broadcast_to(np.eye(3), (f, n, 3, 3)).copy()
        trans = np.broadcast_to(self.offsets, (f, n, 3)).copy()
        # Joints sharing an Euler order are converted in one call (one call per joint is ~40x
        # more torch dispatches for the same arithmetic).
        groups: dict[str, tuple[list[int], list[np.ndarray]]] = {}
        for k, chans in enumerate(self.channels):
            if not chans:
                continue
            cols = self.motion[:, self.channel_start[k]:self.channel_start[k] + len(chans)]
            rot_axes = ""
            rot_cols: list[int] = []
            for c, name in enumerate(chans):
                if name in _POS_CHANNELS:
                    trans[:, k, _POS_CHANNELS.index(name)] = cols[:, c]
                else:
                    rot_axes += name[0].upper()
                    rot_cols.append(c)
            if rot_axes:
                # euler_to_matrix wants three axes: pad the order with the unused ones at angle 0.
                order = rot_axes + "".join([a for a in "XYZ" if a not in rot_axes][: 3 - len(rot_axes)])
                angles = np.zeros((f, 3))
                angles[:, : len(rot_cols)] = cols[:, rot_cols]
                joints, arrays = groups.setdefault(order, ([], []))
                joints.append(k)
                arrays.append(angles)
        for order, (joints, arrays) in groups.items():
            rot[:, joints] = euler_to_matrix(np.stack(arrays, axis=1), order, degrees=True)
        return rot, trans

    def positions(self, scale: float = 1.0) -> np.ndarray:
        """Global positions (F, N, 3) of every node (End Sites included) by forward kinematics, times ``scale``."""
        rot, trans = self.local_transforms()
        f, n = rot.shape[:2]
        glob_r = np.empty_like(rot)
        pos = np.empty((f, n, 3))
        for k, p in enumerate(self.parents):
            if p < 0:
                glob_r[:, k] = rot[:, k]
                pos[:, k] = trans[:, k]
            else:
                glob_r[:, k] = glob_r[:, p] @ rot[:, k]
                pos[:, k] = pos[:, p] + np.einsum("fij,fj->fi", glob_r[:, p], trans[:, k])
        return pos * scale

    def rest_positions(self) -> np.ndarray:
        """(N, 3) node positions with every rotation zero and position channels ignored (file units)."""
        pos = np.zeros((len(self.names), 3))
        for k, p in enumerate(self.parents):
            pos[k] = self.offsets[k] if p < 0 else pos[p] + self.offsets[k]
        return pos

    def detect_scale(self) -> tuple[float, str]:
        """(metres per file unit, unit name), chosen from the size of the rest pose.

        Rule 1: a skeleton of :data:`KNOWN_SKELETONS` (bone lengths proportional to the
        reference within 0.5 %) gets the scale that restores its known size.
        Rule 2: the rest pose's size is the largest side of its bounding box (End Sites included:
        a T-pose's height and arm span are both about a body height). The unit among
        :data:`UNIT_CANDIDATES` (metres, CMU ASF units, inches, centimetres, millimetres) that
        makes this size closest to 1.6 m on a log scale wins. Adults from 1.2 to 2.1 m are
        classified correctly in every unit; children in inches or centimetres may not be, so
        pass ``scale=`` for them. CMU's DAZ conversions come out in centimetres (rule 1, which
        also catches rescaled copies), its "mb" and ASF-named conversions in ASF units.
        """
        for name, (unit, bones) in KNOWN_SKELETONS.items():
            if not all(b in self.names for b in bones):
                continue
            ratios = np.array([np.linalg.norm(self.offsets[self.names.index(b)]) / ref for b, ref in bones.items()])
            if ratios.min() > 0 and ratios.max() / ratios.min() < 1.005:
                factor = float(ratios.mean())
                label = name if abs(factor - 1) < 5e-3 else f"{name} rescaled by {factor:.6g}"
                return unit / factor, label
        rest = self.rest_positions()
        size = float((rest.max(axis=0) - rest.min(axis=0)).max())
        if not math.isfinite(size) or size <= 0:
            raise InputError(self.path, "cannot detect the unit: the rest pose has no extent", field="OFFSET",
                             expected="non-zero joint offsets", got=f"size {size}")
        name, unit = min(UNIT_CANDIDATES, key=lambda c: abs(math.log(c[1] * size / REFERENCE_SIZE_M)))
        return unit, name

    def to_record(self, scale: float | None = None, keep_all_joints: bool = False,
                  ground: bool = True) -> MotionRecord:
        """A 30 fps :class:`MotionRecord` in metres with the 22 SMPL body joints.

        Joint positions come from FK with the file's own offsets, times ``scale`` metres per
        file unit (:meth:`detect_scale` when None), renamed to SMPL body names by the joint map
        (:mod:`encoders.motion.joint_map`; a file whose convention is unknown raises InputError).
        The record holds the 22 SMPL joints, in SMPL order; with ``keep_all_joints`` every other
        node follows under its original name (End Sites as ``<parent>_EndSite``).
        With ``ground`` the clip is translated vertically so that the floor (see
        :func:`floor_height`, from the SMPL ankle and foot joints) is at y = 0. No rotations: ``rotations_6d``
        is None (BVH joint frames differ from SMPL-X's).
        """
        if scale is None:
            scale, unit = self.detect_scale()
        else:
            if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
                raise InputError(self.path, "scale must be a positive number of metres per file unit",
                                 field="scale", expected="> 0", got=repr(scale))
            unit = "given"
        pos = self.positions(scale)
        convention = detect_convention(self.names)
        try:
            mapping = map_to_smpl22(self.names)
        except InputError as exc:
            raise InputError(self.path, exc.reason, field=exc.field, expected=exc.expected, got=exc.got) from None
        body = apply_mapping(pos, mapping)
        names = list(SMPL_BODY_22)
        if keep_all_joints:
            used = {v for v in mapping.values() if isinstance(v, int)}
            extra = [k for k in range(len(self.names)) if k not in used]
            extra_names = [self.names[k] if self.names[k] not in SMPL_BODY_22 else f"src:{self.names[k]}" for k in extra]
            body = np.concatenate([body, pos[:, extra]], axis=1)
            names += extra_names
        if ground:
            feet = [names.index(n) for n in FOOT_JOINTS]
            body[..., 1] -= floor_height(body[:, feet, 1])
        fps = self.fps
        body = resample_linear(body, fps, TARGET_FPS)
        trans = body[:, 0].copy()  # pelvis
        meta = {"source_format": "bvh", "source_fps": fps, "source_frames": self.num_frames,
                "scale_m_per_unit": float(scale), "unit": unit, "joint_convention": convention}
        if not np.isfinite(body).all():
            raise InputError(self.path, "motion gives NaN or infinite joint positions", field="MOTION")
        return MotionRecord(TARGET_FPS, trans, body, names, None, meta)


FLOOR_PERCENTILE = 5.0


def floor_height(foot_heights: np.ndarray) -> float:
    """Floor height from (T, K) foot joint heights: the lowest foot point per frame, 5th percentile over frames.

    Not the plain minimum: optical mocap has single-frame glitches (a marker swap drops a
    foot 10 cm for one frame; CMU salsa 60_04 has one), and one such frame would leave the
    dancer hovering for the whole clip. In clean data at least one foot is down in most
    frames, so low percentiles all sit within millimetres of the contact height.
    """
    lowest = np.asarray(foot_heights).reshape(len(foot_heights), -1).min(axis=1)
    return float(np.percentile(lowest, FLOOR_PERCENTILE)) if len(lowest) else 0.0


class _Tokens:
    """Whitespace tokens of the hierarchy with their 1-based line numbers, for error messages."""

    def __init__(self, lines: Sequence[str], path: str) -> None:
        self.path = path
        self.items: list[tuple[str, int]] = []
        self.lines = lines
        self.pos = 0

    def error(self, expected: str, got: str | None = None, line: int | None = None) -> InputError:
        if line is None:
            line = self.items[self.pos][1] if self.pos < len(self.items) else len(self.lines)
        if got is None:
            got = repr(self.items[self.pos][0]) if self.pos < len(self.items) else "end of file"
        return InputError(self.path, f"malformed BVH at line {line}", field="HIERARCHY", expected=expected, got=got)

    def peek(self) -> str | None:
        return self.items[self.pos][0] if self.pos < len(self.items) else None

    def next(self, expected: str) -> tuple[str, int]:
        if self.pos >= len(self.items):
            raise self.error(expected, "end of file")
        tok = self.items[self.pos]
        self.pos += 1
        return tok

    def expect(self, word: str) -> int:
        tok, line = self.next(f"'{word}'")
        if tok.upper() != word.upper():
            self.pos -= 1
            raise self.error(f"'{word}'")
        return line

    def number(self, what: str) -> float:
        tok, line = self.next(what)
        try:
            value = float(tok)
        except ValueError:
            self.pos -= 1
            raise self.error(what) from None
        if not math.isfinite(value):
            self.pos -= 1
            raise self.error(f"a finite {what}")
        return value


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot read file: {exc.strerror or exc}") from None
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the suffix
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputError(path, f"corrupt gzip data: {exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # joint names from old exporters; numbers are ASCII anyway


def read_bvh(path: str | Path) -> BvhMotion:
    """Parse a ``.bvh`` or ``.bvh.gz`` file (gzip is recognised by content) into a :class:`BvhMotion`."""
    path = Path(path)
    text = _read_text(path)
    return parse_bvh(text, str(path))


def parse_bvh(text: str, path: str = "<bvh>") -> BvhMotion:
    """Parse BVH text; ``path`` only names the source in error messages."""
    lines = text.splitlines()
    motion_line = None
    for i, line in enumerate(lines):
        if line.strip().upper() == "MOTION":
            motion_line = i
            break
    if motion_line is None:
        raise InputError(path, "malformed BVH: no MOTION section", field="MOTION", expected="a line 'MOTION'",
                         got="end of file")
    toks = _Tokens(lines, path)
    for i, line in enumerate(lines[:motion_line]):
        # Make braces separate tokens even when written as 'JOINT a{' or '{OFFSET'.
        for tok in line.replace("{", " { ").replace("}", " } ").split():
            toks.items.append((tok, i + 1))

    names: list[str] = []
    parents: list[int] = []
    offsets: list[tuple[float, float, float]] = []
    channels: list[tuple[str, ...]] = []
    is_end: list[bool] = []

    toks.expect("HIERARCHY")
    if toks.peek() is None or toks.peek().upper() != "ROOT":
        raise toks.error("'ROOT'")

    def node(parent: int, kind: str) -> None:
        kw, line = toks.next(kind)
        if kind == "End Site":
            toks.expect("Site")
            base = f"{names[parent]}_EndSite"
            name, n = base, 2
            while name in names:
                name, n = f"{base}{n}", n + 1
        else:
            name_parts = []
            while toks.peek() is not None and toks.peek() != "{" and toks.items[toks.pos][1] == line:
                name_parts.append(toks.next("a joint name")[0])
            if not name_parts:
                raise toks.error(f"a joint name after {kw}", line=line)
            name = " ".join(name_parts)
        toks.expect("{")
        idx = len(names)
        names.append(name)
        parents.append(parent)
        is_end.append(kind == "End Site")
        offset_line = toks.expect("OFFSET")
        xyz = []
        for axis in "xyz":
            tok = toks.peek()
            if tok is None or toks.items[toks.pos][1] != offset_line:
                # The line ended early: blame the OFFSET line, not the next keyword's.
                raise toks.error(f"an OFFSET {axis} value (3 numbers)", got=f"{len(xyz)} numbers", line=offset_line)
            xyz.append(toks.number(f"an OFFSET {axis} value"))
        offsets.append((xyz[0], xyz[1], xyz[2]))
        chans: tuple[str, ...] = ()
        if kind != "End Site":
            if toks.peek() is not None and toks.peek().upper() == "CHANNELS":
                toks.next("CHANNELS")
                count_tok, cline = toks.next("a channel count")
                if not count_tok.isdigit() or not 1 <= int(count_tok) <= 6:
                    toks.pos -= 1
                    raise toks.error("a channel count from 1 to 6")
                got: list[str] = []
                for _ in range(int(count_tok)):
                    ch, _l = toks.next(f"{count_tok} channel names")
                    if ch.lower() not in _POS_CHANNELS + _ROT_CHANNELS:
                        toks.pos -= 1
                        raise toks.error("a channel name (X/Y/Z position or rotation)")
                    if ch.lower() in got:
                        toks.pos -= 1
                        raise toks.error(f"each channel once in joint '{name}'")
                    got.append(ch.lower())
                chans = tuple(got)
        channels.append(chans)  # before the children, so channels[k] belongs to names[k]
        if kind != "End Site":
            while toks.peek() is not None and toks.peek().upper() in ("JOINT", "END"):
                node(idx, "End Site" if toks.peek().upper() == "END" else "JOINT")
        toks.expect("}")

    while toks.peek() is not None and toks.peek().upper() == "ROOT":
        node(-1, "ROOT")
    if toks.peek() is not None:
        raise toks.error("'ROOT' or 'MOTION'")

    # Channel columns in hierarchy (file) order.
    starts: list[int] = []
    total = 0
    for chans in channels:
        starts.append(total)
        total += len(chans)

    # MOTION section.
    def motion_error(line_no: int, expected: str, got: str) -> InputError:
        return InputError(path, f"malformed BVH at line {line_no}", field="MOTION", expected=expected, got=got)

    i = motion_line + 1
    header: dict[str, str] = {}
    for key in ("frames", "frame time"):
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i >= len(lines):
            raise motion_error(i, f"'{key.title()}:'", "end of file")
        head, sep, value = lines[i].partition(":")
        if not sep or " ".join(head.split()).lower() != key:
            raise motion_error(i + 1, f"'{key.title()}: <value>'", repr(lines[i].strip()[:40]))
        header[key] = value.strip()
        i += 1
    try:
        n_frames = int(header["frames"])
    except ValueError:
        raise motion_error(motion_line + 2, "an integer frame count", repr(header["frames"])) from None
    try:
        frame_time = float(header["frame time"])
    except ValueError:
        raise motion_error(motion_line + 3, "a frame time in seconds", repr(header["frame time"])) from None
    if n_frames < 1:
        raise motion_error(motion_line + 2, "at least one frame", str(n_frames))
    if not (math.isfinite(frame_time) and frame_time > 0):
        raise motion_error(motion_line + 3, "a positive frame time", header["frame time"])

    rows: list[str] = []
    for j in range(i, len(lines)):
        line = lines[j]
        if not line.strip():
            continue
        if len(rows) == n_frames:
            raise motion_error(j + 1, f"{n_frames} frame lines (Frames: {n_frames})", "more frame lines")
        count = len(line.split())
        if count != total:
            raise motion_error(j + 1, f"{total} channel values per frame", f"{count} values")
        rows.append(line)
    if len(rows) < n_frames:
        raise motion_error(len(lines), f"{n_frames} frame lines (Frames: {n_frames})", f"{len(rows)} frame lines")
    try:
        values = np.array(" ".join(rows).split(), dtype=np.float64)
    except ValueError:
        for j in range(i, len(lines)):
            for tok in lines[j].split():
                try:
                    float(tok)
                except ValueError:
                    raise motion_error(j + 1, "numbers", repr(tok)) from None
        raise
    motion = values.reshape(n_frames, total)
    if not np.isfinite(motion).all():
        bad = int(np.argwhere(~np.isfinite(motion))[0, 0])
        raise motion_error(i + 1 + bad, "finite channel values", "NaN or infinite value")
    return BvhMotion(path, names, parents, np.asarray(offsets, dtype=np.float64), channels, starts, is_end,
                     frame_time, motion)


def known_conventions() -> list[str]:
    """Joint naming conventions :meth:`BvhMotion.to_record` can rename (see :mod:`encoders.motion.joint_map`)."""
    return list(CONVENTIONS)
