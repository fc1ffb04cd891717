"""A self-contained HTML skeleton player: animated 3D joints, in sync with the clip's music.

Why this shape:
- no CDN and no three.js (the demo runs offline): a ~200-line inline 2D-canvas renderer projects the
  3D joints through a perspective camera, draws every bone from the parents list (fingers included,
  thinner), colours left / right sides, and draws a ground grid and a shadow;
- sync by construction: the frame shown is ``audio.currentTime * fps`` read on every animation frame,
  so play / pause / seek on the ``<audio>`` controls drive the motion and the two cannot drift; clips
  without audio get a play button and a wall-clock timer instead;
- small pages: positions are quantised to millimetres as little-endian int16 relative to the clip's
  floor-centre, base64-encoded (a 12 s, 52-joint clip is ~150 kB instead of ~1 MB of JSON floats).

The output is a complete HTML document for ``st.iframe``.
"""
from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from encoders.errors import InputError

QUANT_M = 0.001  # one int16 step = 1 mm


@dataclass(frozen=True)
class PlayerSettings:
    """Look and limits of the player."""

    height: int = 320
    max_frames: int = 1800           # longer clips are temporally strided to stay small
    fov_deg: float = 40.0
    camera_distance_m: float = 3.2
    camera_azimuth_deg: float = 25.0
    camera_elevation_deg: float = 12.0
    background: str = "#0f172a"
    grid_color: str = "#334155"
    left_color: str = "#60a5fa"
    right_color: str = "#fb923c"
    center_color: str = "#e2e8f0"


@dataclass(frozen=True)
class EncodedMotion:
    """Motion packed for the page: ``data`` is base64 int16 (T, J, 3) in mm relative to ``origin``."""

    fps: float
    num_frames: int
    num_joints: int
    parents: tuple[int, ...]
    joint_names: tuple[str, ...]
    origin: tuple[float, float, float]
    data: str

    def decode(self) -> np.ndarray:
        """Back to metres (T, J, 3); what the JavaScript does, for tests."""
        q = np.frombuffer(base64.b64decode(self.data), dtype="<i2").astype(np.float32)
        return q.reshape(self.num_frames, self.num_joints, 3) * QUANT_M + np.asarray(self.origin, np.float32)


def encode_motion(motion: Mapping[str, Any], settings: PlayerSettings = PlayerSettings()) -> EncodedMotion:
    """Validate the API's motion JSON and pack it (see module docstring)."""
    try:
        pos = np.asarray(motion["positions"], dtype=np.float64)
        names = tuple(str(n) for n in motion["joint_names"])
        parents = tuple(int(p) for p in motion["parents"])
        fps = float(motion["fps"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(None, f"motion for the player is malformed: {exc!r}") from exc
    if pos.ndim != 3 or pos.shape[-1] != 3 or pos.shape[0] == 0:
        raise InputError(None, "bad joint positions", field="positions", expected="(T, J, 3), T > 0", got=str(pos.shape))
    if len(names) != pos.shape[1] or len(parents) != pos.shape[1]:
        raise InputError(None, "joint names / parents disagree with positions", field="parents",
                         expected=f"{pos.shape[1]} entries", got=f"{len(names)} names, {len(parents)} parents")
    if any(p >= len(parents) or p < -1 for p in parents) or not np.isfinite(pos).all() or fps <= 0:
        raise InputError(None, "motion for the player has bad parents, fps or non-finite positions")
    stride = max(1, int(np.ceil(pos.shape[0] / settings.max_frames)))
    pos = pos[::stride]
    fps = fps / stride
    root = pos[:, 0, :]
    origin = (float(root[:, 0].mean()), float(pos[..., 1].min()), float(root[:, 2].mean()))
    q = np.clip(np.rint((pos - np.asarray(origin)) / QUANT_M), -32767, 32767).astype("<i2")
    return EncodedMotion(fps=fps, num_frames=int(pos.shape[0]), num_joints=int(pos.shape[1]), parents=parents,
                         joint_names=names, origin=origin, data=base64.b64encode(q.tobytes()).decode("ascii"))


def audio_data_url(content: bytes, content_type: str) -> str:
    """Embed audio bytes so the iframe needs no route to the API (works behind any proxy)."""
    return f"data:{content_type};base64,{base64.b64encode(content).decode('ascii')}"


def _side(name: str) -> int:
    """-1 right, 1 left, 0 centre: bones take the colour of their child joint's side."""
    return 1 if name.startswith("left") else -1 if name.startswith("right") else 0


_HAND_WORDS = ("index", "middle", "ring", "pinky", "thumb", "hand")


def _is_hand(name: str) -> bool:
    return any(w in name for w in _HAND_WORDS)


def player_html(motion: EncodedMotion, audio_src: str | None = None, *, title: str = "",
                settings: PlayerSettings = PlayerSettings(), player_id: str = "p") -> str:
    """A complete HTML document with the canvas player; ``audio_src`` is a data: URL or an http URL."""
    config = {
        "fps": motion.fps, "n": motion.num_frames, "j": motion.num_joints, "parents": list(motion.parents),
        "side": [_side(n) for n in motion.joint_names], "hand": [_is_hand(n) for n in motion.joint_names],
        "head": motion.joint_names.index("head") if "head" in motion.joint_names else -1,
        "origin": list(motion.origin), "q": QUANT_M, "data": motion.data,
        "fov": settings.fov_deg, "dist": settings.camera_distance_m, "az": settings.camera_azimuth_deg,
        "el": settings.camera_elevation_deg,
        "colors": {"bg": settings.background, "grid": settings.grid_color, "l": settings.left_color,
                   "r": settings.right_color, "c": settings.center_color},
    }
    canvas_h = settings.height - 44
    audio = (f'<audio class="ds-audio" controls preload="auto" src="{html.escape(audio_src, quote=True)}"></audio>'
             if audio_src else '<button class="ds-play" type="button">&#9654; play</button>')
    return _TEMPLATE.format(
        pid=html.escape(player_id, quote=True), title=html.escape(title), canvas_h=canvas_h, audio=audio,
        bg=settings.background, config=json.dumps(config, separators=(",", ":")).replace("</", "<\\/"),
        duration=f"{motion.num_frames / motion.fps:.1f}",
    )


_TEMPLATE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><style>
html,body{{margin:0;padding:0;background:transparent;font-family:system-ui,sans-serif;color:#cbd5e1}}
.ds-player{{position:relative;border-radius:8px;overflow:hidden;background:{bg}}}
.ds-player canvas{{display:block;width:100%;height:{canvas_h}px;cursor:grab;touch-action:none}}
.ds-bar{{display:flex;align-items:center;gap:8px;padding:4px 6px;height:36px;box-sizing:border-box}}
.ds-bar audio{{flex:1;height:30px;min-width:0}}
.ds-play{{background:#1e293b;color:#e2e8f0;border:1px solid #475569;border-radius:6px;padding:4px 12px;cursor:pointer}}
.ds-time{{font-size:12px;font-variant-numeric:tabular-nums;white-space:nowrap}}
.ds-title{{position:absolute;left:8px;top:6px;font-size:12px;opacity:.8;pointer-events:none}}
.ds-hint{{position:absolute;right:8px;top:6px;font-size:11px;opacity:.5;pointer-events:none}}
</style></head><body>
<div class="ds-player" id="{pid}">
<canvas class="ds-canvas" data-frame="0" data-drawn="0"></canvas>
<div class="ds-title">{title}</div><div class="ds-hint">drag: orbit &middot; wheel: zoom &middot; dbl-click: reset</div>
<div class="ds-bar">{audio}<span class="ds-time">0.0 / {duration} s</span></div>
</div>
<script>
(function(){{
"use strict";
var C = {config};
var root = document.getElementById("{pid}");
var canvas = root.querySelector("canvas"), ctx = canvas.getContext("2d");
var audio = root.querySelector("audio"), btn = root.querySelector(".ds-play"), timeEl = root.querySelector(".ds-time");
// --- decode int16 mm positions (little endian) -> Float32Array metres, world coordinates
var bin = atob(C.data), n3 = C.n * C.j * 3, P = new Float32Array(n3), i;
for (i = 0; i < n3; i++) {{
  var v = bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8);
  if (v >= 32768) v -= 65536;
  P[i] = v * C.q + C.origin[i % 3];
}}
var floorY = C.origin[1];
// smoothed root path for the camera target (keeps travelling dances in view without jitter)
var TX = new Float32Array(C.n), TZ = new Float32Array(C.n), W = Math.round(C.fps);
for (var f = 0; f < C.n; f++) {{
  var sx = 0, sz = 0, c = 0;
  for (var g = Math.max(0, f - W); g <= Math.min(C.n - 1, f + W); g++) {{ sx += P[g * C.j * 3]; sz += P[g * C.j * 3 + 2]; c++; }}
  TX[f] = sx / c; TZ[f] = sz / c;
}}
var cam = {{az: C.az * Math.PI / 180, el: C.el * Math.PI / 180, dist: C.dist}};
var state = {{frame: -1, dirty: true, playing: false, t0: 0, tOffset: 0}};
var duration = C.n / C.fps;

function resize() {{
  var r = canvas.getBoundingClientRect(), d = window.devicePixelRatio || 1;
  var w = Math.max(1, Math.round(r.width * d)), h = Math.max(1, Math.round(r.height * d));
  if (canvas.width !== w || canvas.height !== h) {{ canvas.width = w; canvas.height = h; state.dirty = true; }}
}}
function currentTime() {{
  if (audio) return audio.currentTime || 0;
  if (!state.playing) return state.tOffset;
  var t = state.tOffset + (performance.now() - state.t0) / 1000;
  return t % duration;
}}
function basis(tx, tz) {{
  var ty = floorY + 1.0;
  var ex = tx + cam.dist * Math.sin(cam.az) * Math.cos(cam.el);
  var ey = ty + cam.dist * Math.sin(cam.el);
  var ez = tz + cam.dist * Math.cos(cam.az) * Math.cos(cam.el);
  var fx = tx - ex, fy = ty - ey, fz = tz - ez, fl = Math.hypot(fx, fy, fz); fx /= fl; fy /= fl; fz /= fl;
  var rx = -fz, rz = fx, rl = Math.hypot(rx, rz); rx /= rl; rz /= rl;          // right = forward x up
  var ux = -rz * fy, uy = rz * fx - rx * fz, uz = rx * fy;                       // up = right x forward
  var focal = canvas.height / (2 * Math.tan(C.fov * Math.PI / 360));
  return {{ex: ex, ey: ey, ez: ez, fx: fx, fy: fy, fz: fz, rx: rx, rz: rz, ux: ux, uy: uy, uz: uz, focal: focal}};
}}
function toCam(B, x, y, z) {{
  var dx = x - B.ex, dy = y - B.ey, dz = z - B.ez;
  return [dx * B.rx + dz * B.rz, dx * B.ux + dy * B.uy + dz * B.uz, dx * B.fx + dy * B.fy + dz * B.fz];
}}
function proj(B, c) {{ return [canvas.width / 2 + B.focal * c[0] / c[2], canvas.height / 2 - B.focal * c[1] / c[2]]; }}
function line3(B, a, b) {{   // a, b camera-space points; clipped to the near plane
  var near = 0.05;
  if (a[2] < near && b[2] < near) return;
  if (a[2] < near || b[2] < near) {{
    var t = (near - a[2]) / (b[2] - a[2]), m = [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]), near];
    if (a[2] < near) a = m; else b = m;
  }}
  var p = proj(B, a), q = proj(B, b);
  ctx.moveTo(p[0], p[1]); ctx.lineTo(q[0], q[1]);
}}
function draw(fr) {{
  var frac = fr - Math.floor(fr), f0 = Math.min(C.n - 1, Math.floor(fr)), f1 = Math.min(C.n - 1, f0 + 1);
  var B = basis(TX[f0], TZ[f0]), d = window.devicePixelRatio || 1;
  ctx.fillStyle = C.colors.bg; ctx.fillRect(0, 0, canvas.width, canvas.height);
  // ground grid, 0.5 m cells, fixed in the world so travel is visible
  var gx = Math.round(TX[f0] * 2) / 2, gz = Math.round(TZ[f0] * 2) / 2, R = 4, k;
  ctx.strokeStyle = C.colors.grid; ctx.lineWidth = 1 * d; ctx.beginPath();
  for (k = -R; k <= R; k += 0.5) {{
    line3(B, toCam(B, gx + k, floorY, gz - R), toCam(B, gx + k, floorY, gz + R));
    line3(B, toCam(B, gx - R, floorY, gz + k), toCam(B, gx + R, floorY, gz + k));
  }}
  ctx.stroke();
  // joints of this (interpolated) frame, in camera space
  var J = C.j, cs = new Array(J), o0 = f0 * J * 3, o1 = f1 * J * 3, j;
  for (j = 0; j < J; j++) {{
    var x = P[o0 + 3 * j] * (1 - frac) + P[o1 + 3 * j] * frac;
    var y = P[o0 + 3 * j + 1] * (1 - frac) + P[o1 + 3 * j + 1] * frac;
    var z = P[o0 + 3 * j + 2] * (1 - frac) + P[o1 + 3 * j + 2] * frac;
    cs[j] = [x, y, z, toCam(B, x, y, z)];
  }}
  // shadow under the pelvis
  var sh = toCam(B, cs[0][0], floorY, cs[0][2]);
  if (sh[2] > 0.1) {{
    var sp = proj(B, sh), rad = B.focal * 0.35 / sh[2];
    ctx.fillStyle = "rgba(0,0,0,0.35)"; ctx.beginPath();
    ctx.ellipse(sp[0], sp[1], rad, rad * Math.max(0.15, Math.abs(Math.sin(cam.el)) + 0.1), 0, 0, 2 * Math.PI); ctx.fill();
  }}
  // bones, far to near
  var bones = [];
  for (j = 0; j < J; j++) {{ var p = C.parents[j]; if (p >= 0) bones.push([j, p, (cs[j][3][2] + cs[p][3][2]) / 2]); }}
  bones.sort(function (a, b) {{ return b[2] - a[2]; }});
  ctx.lineCap = "round";
  for (var bi = 0; bi < bones.length; bi++) {{
    var ch = bones[bi][0], pa = bones[bi][1], a = cs[ch][3], b2 = cs[pa][3];
    if (a[2] < 0.05 || b2[2] < 0.05) continue;
    var s = C.side[ch];
    ctx.strokeStyle = s > 0 ? C.colors.l : s < 0 ? C.colors.r : C.colors.c;
    var wm = C.hand[ch] ? 0.012 : 0.04;
    ctx.lineWidth = Math.max(1 * d, B.focal * wm / bones[bi][2]);
    ctx.beginPath(); line3(B, a, b2); ctx.stroke();
  }}
  if (C.head >= 0 && cs[C.head][3][2] > 0.05) {{
    var hp = proj(B, cs[C.head][3]);
    ctx.fillStyle = C.colors.c; ctx.beginPath(); ctx.arc(hp[0], hp[1], B.focal * 0.09 / cs[C.head][3][2], 0, 2 * Math.PI); ctx.fill();
  }}
}}
function tick() {{
  resize();
  var t = Math.min(currentTime(), duration), fr = Math.min(C.n - 1, t * C.fps);
  if (fr !== state.frame || state.dirty) {{
    draw(fr); state.frame = fr; state.dirty = false;
    canvas.dataset.frame = String(Math.floor(fr));
    canvas.dataset.drawn = String(Number(canvas.dataset.drawn) + 1);
    timeEl.textContent = t.toFixed(1) + " / " + duration.toFixed(1) + " s";
  }}
  window.requestAnimationFrame(tick);
}}
if (btn) btn.addEventListener("click", function () {{
  if (state.playing) {{ state.tOffset = currentTime(); state.playing = false; btn.innerHTML = "&#9654; play"; }}
  else {{ state.t0 = performance.now(); state.playing = true; btn.innerHTML = "&#10074;&#10074; pause"; }}
}});
// orbit / zoom
var drag = null;
canvas.addEventListener("pointerdown", function (e) {{ drag = [e.clientX, e.clientY]; canvas.setPointerCapture(e.pointerId); }});
canvas.addEventListener("pointermove", function (e) {{
  if (!drag) return;
  cam.az -= (e.clientX - drag[0]) * 0.01;
  cam.el = Math.max(-0.2, Math.min(1.4, cam.el + (e.clientY - drag[1]) * 0.01));
  drag = [e.clientX, e.clientY]; state.dirty = true;
}});
canvas.addEventListener("pointerup", function () {{ drag = null; }});
canvas.addEventListener("wheel", function (e) {{
  e.preventDefault(); cam.dist = Math.max(1.0, Math.min(12, cam.dist * Math.exp(e.deltaY * 0.001))); state.dirty = true;
}}, {{passive: false}});
canvas.addEventListener("dblclick", function () {{
  cam.az = C.az * Math.PI / 180; cam.el = C.el * Math.PI / 180; cam.dist = C.dist; state.dirty = true;
}});
tick();
}})();
</script></body></html>
"""
