"""BVH export of a motion record (for Blender, Unity, MotionBuilder): the writer beside the reader (``bvh``).

Two layouts, chosen by what the record holds:
- Records with SMPL-X rotations (``rotations_6d``, e.g. FineDance and the demo corpus) are written
  as the SMPL-X 52 hierarchy with the skeleton's rest offsets (metres), root
  ``Xposition Yposition Zposition Zrotation Yrotation Xrotation`` and per-joint
  ``Zrotation Yrotation Xrotation`` channels (intrinsic Z-Y-X Euler angles of the local rotations,
  degrees).  Forward kinematics of the file gives back the record's positions.
- Records with positions only (BVH / CSV sources) cannot be given rotations without a rig fit, so
  each joint gets ``Xposition Yposition Zposition`` channels holding its translation from its
  parent (rotations are identity): every reader that honours position channels on joints (ours,
  Blender's importer) reproduces the positions exactly; the bones themselves do not rotate.
Leaf joints get an ``End Site`` (a short extension of the bone) as most importers expect.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from encoders.atomic_io import atomic_write_text
from encoders.motion.record import MotionRecord
from encoders.motion.rotations import matrix_to_euler_zyx, rot6d_to_matrix
from encoders.motion.skeleton import smplx52


def parents_for(joint_names: list[str]) -> list[int]:
    """Parent index of each joint within ``joint_names``: its nearest SMPL-X ancestor present, else the root."""
    skel = smplx52()
    where = {n: i for i, n in enumerate(joint_names)}
    root = where.get("pelvis", 0)
    out = []
    for i, name in enumerate(joint_names):
        if name in skel.names:
            p = skel.parents[skel.index(name)]
            while p >= 0 and skel.names[p] not in where:
                p = skel.parents[p]
            out.append(-1 if p < 0 else where[skel.names[p]])
        else:
            out.append(-1 if i == root else root)
    # the first joint must be the only root for a BVH tree; others without a parent hang off it
    return [(-1 if i == root else (root if p < 0 else p)) for i, p in enumerate(out)]


def _fmt(values: np.ndarray) -> str:
    return " ".join(f"{v:.6f}" for v in values)


def _hierarchy(names: list[str], parents: list[int], offsets: np.ndarray, channels: list[str],
               end_sites: dict[int, np.ndarray]) -> list[str]:
    children: dict[int, list[int]] = {i: [] for i in range(len(names))}
    for i, p in enumerate(parents):
        if p >= 0:
            children[p].append(i)
    lines: list[str] = ["HIERARCHY"]

    def node(j: int, depth: int) -> None:
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if parents[j] < 0 else 'JOINT'} {names[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {_fmt(offsets[j])}")
        lines.append(f"{pad}  CHANNELS {len(channels[j].split())} {channels[j]}")
        for c in children[j]:
            node(c, depth + 1)
        if not children[j]:
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET {_fmt(end_sites[j])}")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    roots = [j for j, p in enumerate(parents) if p < 0]
    node(roots[0], 0)
    return lines


def _depth_first(parents: list[int]) -> list[int]:
    children: dict[int, list[int]] = {i: [] for i in range(len(parents))}
    for i, p in enumerate(parents):
        if p >= 0:
            children[p].append(i)
    order: list[int] = []
    stack = [j for j, p in enumerate(parents) if p < 0][:1]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children[j]))
    return order


def _end_site(j: int, parents: list[int], offsets: np.ndarray) -> np.ndarray:
    """A short extension of the bone into a leaf joint (importers draw the leaf bone towards it)."""
    bone = offsets[j] if parents[j] >= 0 else np.array([0.0, 0.1, 0.0])
    n = np.linalg.norm(bone)
    return bone / n * 0.05 if n > 1e-9 else np.array([0.0, 0.05, 0.0])


def motion_bvh(record: MotionRecord) -> str:
    """The record as BVH text (metres, y up, the record's fps); see the module docstring for the two layouts."""
    frame_time = 1.0 / float(record.fps)
    if record.rotations_6d is not None:
        skel = smplx52()
        names, parents, offsets = list(skel.names), list(skel.parents), np.asarray(skel.offsets, dtype=np.float64)
        euler = matrix_to_euler_zyx(rot6d_to_matrix(record.rotations_6d.astype(np.float64)))  # (T, 52, 3)
        root_pos = record.trans.astype(np.float64) + offsets[0]
        channels = ["Xposition Yposition Zposition Zrotation Yrotation Xrotation"] + \
                   ["Zrotation Yrotation Xrotation"] * (len(names) - 1)
        order = _depth_first(parents)
        cols = [root_pos] + [euler[:, j] for j in order]
    else:
        names = list(record.joint_names)
        parents = parents_for(names)
        pos = record.positions.astype(np.float64)
        local = np.stack([pos[:, j] - (pos[:, p] if p >= 0 else 0.0) for j, p in enumerate(parents)], axis=1)
        offsets = local[0].copy()
        channels = ["Xposition Yposition Zposition"] * len(names)
        order = _depth_first(parents)
        cols = [local[:, j] for j in order]
    end_sites = {j: _end_site(j, parents, offsets) for j in range(len(names))}
    lines = _hierarchy(names, parents, offsets, channels, end_sites)
    motion = np.concatenate(cols, axis=1)
    lines += ["MOTION", f"Frames: {len(motion)}", f"Frame Time: {frame_time:.8f}"]
    buf = io.StringIO()
    buf.write("\n".join(lines) + "\n")
    np.savetxt(buf, motion, fmt="%.6f")
    return buf.getvalue()


def write_bvh(record: MotionRecord, path: str | Path) -> None:
    """Write :func:`motion_bvh` of ``record`` to ``path`` atomically (temp file + rename)."""
    atomic_write_text(path, motion_bvh(record))
