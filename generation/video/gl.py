"""Headless OpenGL rasterisation of the body: depth, normal and part label in one pass.

Why moderngl on EGL: it needs no display and no X server, runs on Mesa's software rasteriser (llvmpipe)
on a CPU-only machine and on the NVIDIA driver on a GPU one, with the same code. The capsule body is one
draw call instancing the capsule template for every bone (:class:`CapsuleRasterizer`); a skinned mesh
(anny, SMPL-X) is one indexed draw of its triangles with per-vertex positions and normals uploaded each
frame (:class:`MeshRasterizer`). Both write the same two render targets: (camera-space normal, view
depth) as float32 and the part label (the mask is label > 0). ``moderngl`` is an optional extra and is
imported only here, when a renderer is first built.
"""
from __future__ import annotations

import os
import threading

import numpy as np

from encoders.errors import DanceSearchError

from .camera import Camera
from .capsules import capsule_template

INSTALL_HINT = 'pip install -e ".[video]"'


class RendererUnavailable(DanceSearchError):
    """The headless renderer cannot run here: moderngl is missing or no EGL context can be created."""


_VERTEX = """
#version 330
uniform mat4 u_view;
uniform mat4 u_proj;
in vec4 in_tpl;            // unit direction xyz, end flag w
in vec3 i_a;
in vec3 i_b;
in vec3 i_x;
in vec3 i_y;
in vec3 i_z;
in float i_label;
out vec3 v_normal;
out float v_depth;
flat out float v_label;
void main() {
    vec3 n = in_tpl.xyz;
    vec3 world = mix(i_a, i_b, in_tpl.w) + i_x * n.x + i_y * n.y + i_z * n.z;
    // normal of the scaled shape: inverse-transpose of [x y z] (orthogonal columns)
    vec3 wn = i_x * (n.x / dot(i_x, i_x)) + i_y * (n.y / dot(i_y, i_y)) + i_z * (n.z / dot(i_z, i_z));
    vec4 view = u_view * vec4(world, 1.0);
    v_normal = mat3(u_view) * wn;
    v_depth = -view.z;
    v_label = i_label;
    gl_Position = u_proj * view;
}
"""

_FRAGMENT = """
#version 330
in vec3 v_normal;
in float v_depth;
flat in float v_label;
layout(location = 0) out vec4 o_geometry;
layout(location = 1) out vec4 o_label;
void main() {
    o_geometry = vec4(normalize(v_normal), v_depth);
    o_label = vec4(v_label / 255.0, 0.0, 0.0, 1.0);
}
"""

# An EGL context is current in the thread that made it only: one context per (process, thread, backend).
_LOCAL = threading.local()


def _import_moderngl():
    try:
        import moderngl
    except ImportError as exc:
        raise RendererUnavailable(
            f"guidance rendering needs the optional package moderngl, which is not installed: {INSTALL_HINT}"
        ) from exc
    return moderngl


def gl_context(backend: str = "egl"):
    """This thread's headless moderngl context for ``backend`` (created once per thread: EGL start-up ~0.5 s).

    Why per thread: an EGL context is current in the thread that created it, and GL calls from another
    thread fail; a renderer must be used in the thread that built it (:class:`CapsuleRasterizer` checks).
    """
    moderngl = _import_moderngl()
    contexts = getattr(_LOCAL, "contexts", None)
    if contexts is None or getattr(_LOCAL, "pid", None) != os.getpid():    # a forked child starts afresh
        contexts = _LOCAL.contexts = {}
        _LOCAL.pid = os.getpid()
    ctx = contexts.get(backend)
    if ctx is None:
        try:
            ctx = moderngl.create_context(standalone=True, backend=backend, require=330)
        except Exception as exc:  # noqa: BLE001 - glcontext raises bare Exception types
            raise RendererUnavailable(
                f"cannot create a headless OpenGL 3.3 context with the '{backend}' backend: {exc}. "
                "Install EGL (Debian/Ubuntu: libegl1 and libgl1-mesa-dri for Mesa's software renderer, "
                "or an NVIDIA driver)") from exc
        contexts[backend] = ctx
    return ctx


def renderer_available(backend: str = "egl") -> tuple[bool, str]:
    """(True, renderer name) when a context can be made here, else (False, why): for skips and diagnostics."""
    try:
        ctx = gl_context(backend)
    except RendererUnavailable as exc:
        return False, str(exc)
    return True, str(ctx.info.get("GL_RENDERER", "unknown"))


class _GuidanceTarget:
    """What both rasterisers share: the thread's EGL context, the shader program, the two render targets
    (normal + view depth, part label) with a depth buffer, the camera uniforms and the read-back."""

    def __init__(self, width: int, height: int, vertex_shader: str, *, backend: str, cull: bool) -> None:
        moderngl = _import_moderngl()
        self.width, self.height = int(width), int(height)
        self.ctx = gl_context(backend)
        self._thread = threading.get_ident()
        self.prog = self.ctx.program(vertex_shader=vertex_shader, fragment_shader=_FRAGMENT)
        self.geometry = self.ctx.texture((self.width, self.height), 4, dtype="f4")
        self.labels = self.ctx.texture((self.width, self.height), 1, dtype="f1")
        self.depth = self.ctx.depth_renderbuffer((self.width, self.height))
        self.fbo = self.ctx.framebuffer(color_attachments=[self.geometry, self.labels], depth_attachment=self.depth)
        self._flags = moderngl.DEPTH_TEST | (moderngl.CULL_FACE if cull else 0)
        self._camera_id: int | None = None

    def set_camera(self, camera: Camera) -> None:
        if (camera.width, camera.height) != (self.width, self.height):
            raise ValueError(f"camera is {camera.width}x{camera.height}, rasterizer {self.width}x{self.height}")
        self.prog["u_view"].write(camera.view_matrix().T.astype("f4").tobytes())   # GLSL is column-major
        self.prog["u_proj"].write(camera.projection_matrix().T.astype("f4").tobytes())
        self._camera_id = id(camera)

    def _begin(self) -> None:
        """Checks, then the cleared targets bound for drawing."""
        if self._camera_id is None:
            raise RuntimeError("set_camera() first")
        if threading.get_ident() != self._thread:
            raise RuntimeError(f"a {type(self).__name__} renders only in the thread that created it (its EGL "
                               "context)")
        self.fbo.use()
        self.ctx.enable_only(self._flags)
        self.fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)

    def _read(self) -> tuple[np.ndarray, np.ndarray]:
        """geometry (H, W, 4) float32 and labels (H, W) uint8, row 0 at the top of the image."""
        geo = np.frombuffer(self.fbo.read(components=4, attachment=0, dtype="f4"), dtype=np.float32)
        lab = np.frombuffer(self.fbo.read(components=1, attachment=1, dtype="f1"), dtype=np.uint8)
        return geo.reshape(self.height, self.width, 4)[::-1], lab.reshape(self.height, self.width)[::-1]

    def _release(self, *objects: object) -> None:
        for obj in (*objects, self.fbo, self.geometry, self.labels, self.depth, self.prog):
            obj.release()


class CapsuleRasterizer(_GuidanceTarget):
    """Renders instanced capsules to (normal + depth, label) images of one size; reuse it across frames."""

    def __init__(self, width: int, height: int, *, backend: str = "egl", segments: int = 16, rings: int = 4,
                 max_instances: int = 128) -> None:
        super().__init__(width, height, _VERTEX, backend=backend, cull=True)
        ctx = self.ctx
        verts, tris = capsule_template(segments, rings)
        self.template = ctx.buffer(verts.astype("f4").tobytes())
        self.index = ctx.buffer(tris.astype("u4").tobytes())
        self.max_instances = int(max_instances)
        self.instances = ctx.buffer(reserve=self.max_instances * 16 * 4, dynamic=True)
        self.vao = ctx.vertex_array(self.prog, [
            (self.template, "4f", "in_tpl"),
            (self.instances, "3f 3f 3f 3f 3f 1f/i", "i_a", "i_b", "i_x", "i_y", "i_z", "i_label"),
        ], index_buffer=self.index, index_element_size=4)

    def render(self, instances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame: ``instances`` (S, 16) float32 -> geometry (H, W, 4) float32 (normal xyz, view depth;
        0 where empty) and labels (H, W) uint8, both with row 0 at the top of the image."""
        self._begin()
        data = np.ascontiguousarray(instances, dtype=np.float32)
        n = len(data)
        if n > self.max_instances:
            self.instances.orphan(n * 16 * 4)
            self.max_instances = n
        self.instances.write(data.tobytes())
        self.vao.render(instances=n)
        return self._read()

    def release(self) -> None:
        """Free the GL objects (the shared context stays for the next rasterizer)."""
        self._release(self.vao, self.instances, self.index, self.template)


_MESH_VERTEX = """
#version 330
uniform mat4 u_view;
uniform mat4 u_proj;
in vec3 in_pos;
in vec3 in_normal;
in float in_label;
out vec3 v_normal;
out float v_depth;
flat out float v_label;
void main() {
    vec4 view = u_view * vec4(in_pos, 1.0);
    v_normal = mat3(u_view) * in_normal;
    v_depth = -view.z;
    v_label = in_label;
    gl_Position = u_proj * view;
}
"""


class MeshRasterizer(_GuidanceTarget):
    """Renders one triangle mesh with per-vertex part labels to (normal + depth, label) images of one size.

    The topology (``faces`` (F, 3), counter-clockwise seen from outside) and ``labels`` (V,) are fixed at
    construction; each :meth:`render` uploads that frame's vertex positions and normals. Outputs match
    :meth:`CapsuleRasterizer.render`, so the guidance maps do not depend on which body drew them. A
    triangle takes the label of its last vertex (GL's provoking vertex): part borders follow mesh edges.
    """

    def __init__(self, width: int, height: int, faces: np.ndarray, labels: np.ndarray, *,
                 backend: str = "egl", cull: bool = True) -> None:
        faces = np.asarray(faces)
        labels = np.asarray(labels)
        if faces.ndim != 2 or faces.shape[1] != 3 or labels.ndim != 1:
            raise ValueError(f"faces must be (F, 3) and labels (V,), got {faces.shape} and {labels.shape}")
        if len(faces) and (faces.min() < 0 or faces.max() >= len(labels)):
            raise ValueError(f"faces index vertices 0..{len(labels) - 1} only")
        super().__init__(width, height, _MESH_VERTEX, backend=backend, cull=cull)
        self.num_vertices = int(len(labels))
        ctx = self.ctx
        self.positions = ctx.buffer(reserve=max(self.num_vertices, 1) * 12, dynamic=True)
        self.normals = ctx.buffer(reserve=max(self.num_vertices, 1) * 12, dynamic=True)
        self.label_buffer = ctx.buffer(labels.astype("f4").tobytes() or b"\0" * 4)
        self.index = ctx.buffer(faces.astype("u4").tobytes() or b"\0" * 12)
        self.num_indices = int(faces.size)
        self.vao = ctx.vertex_array(self.prog, [
            (self.positions, "3f", "in_pos"), (self.normals, "3f", "in_normal"), (self.label_buffer, "1f", "in_label"),
        ], index_buffer=self.index, index_element_size=4)

    def render(self, vertices: np.ndarray, normals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame: world ``vertices`` and unit ``normals`` (V, 3) -> geometry (H, W, 4) float32 (normal xyz,
        view depth; 0 where empty) and labels (H, W) uint8, both with row 0 at the top of the image."""
        v = np.ascontiguousarray(vertices, dtype=np.float32)
        n = np.ascontiguousarray(normals, dtype=np.float32)
        if v.shape != (self.num_vertices, 3) or n.shape != v.shape:
            raise ValueError(f"vertices and normals must be ({self.num_vertices}, 3), got {v.shape} and {n.shape}")
        self._begin()
        self.positions.write(v.tobytes())
        self.normals.write(n.tobytes())
        if self.num_indices:
            self.vao.render(vertices=self.num_indices)
        return self._read()

    def release(self) -> None:
        """Free the GL objects (the shared context stays for the next rasterizer)."""
        self._release(self.vao, self.positions, self.normals, self.label_buffer, self.index)
