"""Quality and speed metrics of pose-guided dance video (issue 16): how close, how well posed, how steady.

Weight-free by design (no LPIPS / FVD network can be downloaded here), one job per module:

- ``fidelity``: per-frame SSIM and PSNR against a ground truth (scikit-image's SSIM), on whole frames or
  on the box around the dancer (the paper's crop), and VMAF (ffmpeg's libvmaf,
  built-in ``vmaf_v0.6.1`` model; uncalibrated below ~256-px frames, flagged as ``small``);
- ``pose_following``: mediapipe Pose on the output frames vs the target's projected OpenPose keypoints:
  PCK@alpha of the target's keypoint-box diagonal, mean pixel error, detection rate;
- ``stability``: optical-flow warping error (Farneback, forward-backward occlusion mask), lower is steadier.

``bench/bench_video_quality.py`` runs them on the CPU preview (``generation.video.appearance``) against a
rendered ground truth and writes ``docs/results/video_quality.md``. Importing this package is light: numpy
only; scikit-image, OpenCV, ffmpeg and mediapipe are imported when a metric runs.
"""
from .fidelity import (PSNR_CAP_DB, VMAF_MIN_SIDE, Fidelity, Vmaf, VmafUnavailable, box_fidelity, fidelity,
                       person_boxes, psnr_frames, ssim_frames, vmaf, vmaf_available)
from .pose_following import (DEFAULT_ALPHA, Detections, PoseFollowing, compare_keypoints, detect_sequence,
                             pose_following)
from .stability import PairFlows, WarpingError, pair_flows, warping_error

__all__ = ["PSNR_CAP_DB", "VMAF_MIN_SIDE", "Fidelity", "Vmaf", "VmafUnavailable", "box_fidelity", "fidelity",
           "person_boxes", "psnr_frames",
           "ssim_frames", "vmaf", "vmaf_available", "DEFAULT_ALPHA", "Detections", "PoseFollowing",
           "compare_keypoints", "detect_sequence", "pose_following", "PairFlows", "WarpingError", "pair_flows",
           "warping_error"]
