"""``PoseGuidedVideoPipeline``: reference photo + guidance maps -> video frames, Champ-style, with diffusers parts.

One call: encode the photo with the VAE (and CLIP when there is an image encoder), run the reference UNet once
to fill the reference bank, then denoise the video's latents with DDIM. Each step runs the motion UNet over
**overlapping windows** of ``segment_frames`` frames (the "context window" scheme of AnimateDiff / Champ's
long-video pipeline, here with linear cross-fade weights): a window's predictions for the frames it shares
with its neighbour are blended linearly (weights (L-k)/(L+1) and (k+1)/(L+1) over an overlap of L frames;
where three windows meet, the ramps are normalised to sum 1), so every frame has one latent, refined by all
windows that see it, and no seam is ever decoded twice.

Segment length: the paper generates 5-s segments (75 frames at its 15 fps). ``segment_frames`` defaults to
5 s at ``fps`` when given, but never more than the motion module's positional range
(``motion_max_seq_length``: 32 for AnimateDiff-style modules and Champ's, so about 1 s at 30 fps): a
temporal layer asked for more positions than it was trained on fails or degrades.

Why windows at every step and not whole segments generated one after another and cross-faded at the end:
two independently denoised segments differ in the overlap, and a cross-fade of two different images is a
visible dissolve; blending the predictions at every step makes the windows agree on the shared frames.
(The M2PEnc paper merges its 5-s segments with UniAnimate's noise conditioning, which needs a model trained
for it; this scheme works with any temporal UNet.) Memory stays that of one window whatever the length.

Classifier-free guidance follows Champ: the unconditional branch has a zero image context and no reference
attention; guidance maps are given to both branches.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDIMScheduler, MotionAdapter, UNet2DConditionModel
from diffusers.utils.torch_utils import randn_tensor
from tqdm.auto import tqdm

from encoders.atomic_io import atomic_folder, atomic_write_json
from encoders.errors import InputError

from .denoiser import GuidedDenoiser, ImageContext, build_denoising_unet
from .guidance_encoder import GuidanceEncoder, GuidanceFusion
from .reference import install_reference_attention, write_reference_bank
from .weights import GUIDANCE_PREFIX, IMAGE_ENCODER, PIPELINE_FILE, check_weights_dir

#: Segment length the paper generates at once (5 s), used when ``fps`` is given and the motion module allows it.
SEGMENT_SECONDS = 5.0


def default_device_dtype(device: str | torch.device | None = None,
                         dtype: torch.dtype | None = None) -> tuple[torch.device, torch.dtype]:
    """CUDA with fp16 when there is a GPU, else CPU with fp32 (fp16 on CPU is slow and partly unsupported)."""
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dtype is None:
        dtype = torch.float16 if dev.type == "cuda" else torch.float32
    return dev, dtype


def context_windows(num_frames: int, segment: int, overlap: int) -> list[tuple[int, int]]:
    """Windows ``[start, end)`` of ``segment`` frames covering ``num_frames``, neighbours sharing >= ``overlap``.

    As few windows as that allows, spread evenly from the first frame to the last (so every window has full
    length, which is what a temporal UNet was trained on, and the extra overlap is shared out, not piled on
    the last seam).
    """
    if num_frames <= segment:
        return [(0, num_frames)]
    n = -(-(num_frames - overlap) // (segment - overlap))          # ceil
    span = num_frames - segment
    return [((i * span) // (n - 1), (i * span) // (n - 1) + segment) for i in range(n)]


def window_weights(windows: Sequence[tuple[int, int]], num_frames: int) -> list[torch.Tensor]:
    """Per-window frame weights, linear ramps over each overlap, normalised to sum 1 per frame."""
    raw = []
    for i, (s, e) in enumerate(windows):
        w = torch.ones(e - s, dtype=torch.float64)
        if i > 0:
            lp = max(0, windows[i - 1][1] - s)
            if lp:
                w[:lp] = torch.minimum(w[:lp], torch.arange(1, lp + 1, dtype=torch.float64) / (lp + 1))
        if i + 1 < len(windows):
            ln = max(0, e - windows[i + 1][0])
            if ln:
                w[e - s - ln:] = torch.minimum(w[e - s - ln:], torch.arange(ln, 0, -1, dtype=torch.float64) / (ln + 1))
        raw.append(w)
    total = torch.zeros(num_frames, dtype=torch.float64)
    for (s, e), w in zip(windows, raw):
        total[s:e] += w
    return [(w / total[s:e]).float() for (s, e), w in zip(windows, raw)]


def _image_tensor(image: Any, height: int, width: int) -> torch.Tensor:
    """A PIL image, uint8 (H, W, 3) array or float (3, H, W) tensor in [0, 1] -> (1, 3, height, width) float."""
    if hasattr(image, "convert") and hasattr(image, "size"):        # PIL
        image = np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
            raise InputError(None, "bad reference image", field="reference_image",
                             expected="uint8 (H, W, 3) RGB", got=f"{image.dtype} {image.shape}")
        t = torch.from_numpy(np.ascontiguousarray(image[..., :3])).permute(2, 0, 1).float() / 255.0
    elif isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3 or not image.is_floating_point():
            raise InputError(None, "bad reference image", field="reference_image",
                             expected="float (3, H, W) in [0, 1]", got=f"{image.dtype} {tuple(image.shape)}")
        t = image.detach().float().cpu().clamp(0, 1)
    else:
        raise InputError(None, "bad reference image", field="reference_image",
                         expected="a PIL image, uint8 (H, W, 3) array or float (3, H, W) tensor",
                         got=type(image).__name__)
    t = t[None]
    if t.shape[-2:] != (height, width):
        t = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return t.clamp(0, 1)


@contextmanager
def _quiet_transformers(hf_logging: Any) -> Iterator[None]:
    """transformers draws progress bars for loading and writing even a 40-tensor file; not in our output."""
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


class PoseGuidedVideoPipeline:
    """Reference image + Champ guidance maps -> uint8 frames (T, H, W, 3). Follows diffusers' pipeline interface.

    Build with :meth:`from_pretrained` (a local weights folder, see ``weights.py``) or from modules. Parts:
    ``vae``, ``reference_unet`` (UNet2DConditionModel), ``denoiser`` (:class:`GuidedDenoiser` over a
    UNetMotionModel), ``guidance`` (:class:`GuidanceFusion`), ``image_context`` (:class:`ImageContext`),
    ``scheduler`` (DDIM).
    """

    def __init__(self, vae: AutoencoderKL, reference_unet: UNet2DConditionModel, denoising_unet: UNet2DConditionModel,
                 motion_adapter: MotionAdapter, guidance_encoders: Mapping[str, GuidanceEncoder],
                 scheduler: DDIMScheduler, image_encoder: torch.nn.Module | None = None) -> None:
        self._unet_config = dict(denoising_unet.config)
        self._motion_config = dict(motion_adapter.config)
        self.vae = vae
        self.reference_unet = reference_unet
        self.denoiser = GuidedDenoiser(build_denoising_unet(denoising_unet, motion_adapter))
        self.guidance = GuidanceFusion(guidance_encoders)
        self.image_context = ImageContext(int(denoising_unet.config.cross_attention_dim), image_encoder)
        self.scheduler = DDIMScheduler.from_config(scheduler.config)
        self.bank = install_reference_attention(reference_unet, self.denoiser.unet)
        self.max_segment_frames = int(self._motion_config.get("motion_max_seq_length") or 32)
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self._progress: dict[str, Any] = {}
        for m in self._modules():
            m.eval().requires_grad_(False)

    # -- diffusers-like plumbing ---------------------------------------------------------------------------------
    def _modules(self) -> list[torch.nn.Module]:
        mods = [self.vae, self.reference_unet, self.denoiser, self.guidance]
        if self.image_context.image_encoder is not None:
            mods.append(self.image_context.image_encoder)
        return mods

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.denoiser.parameters()).dtype

    @property
    def guidance_types(self) -> tuple[str, ...]:
        return self.guidance.types

    @property
    def has_image_encoder(self) -> bool:
        return self.image_context.image_encoder is not None

    def to(self, device: str | torch.device | None = None,
           dtype: torch.dtype | None = None) -> "PoseGuidedVideoPipeline":
        """Move every part. ``torch.nn.Module.to`` directly: diffusers' ``ModelMixin.to`` warns on every dtype
        cast about fp32-pinned modules, which these models do not have."""
        for m in self._modules():
            torch.nn.Module.to(m, device=device, dtype=dtype)
        return self

    def set_progress_bar_config(self, **kwargs: Any) -> None:
        """tqdm options for the denoising progress bar (e.g. ``disable=True``), as in diffusers."""
        self._progress = dict(kwargs)

    def num_parameters(self) -> dict[str, int]:
        """Parameter count per part (the denoiser counts spatial + temporal layers)."""
        out = {"vae": self.vae, "reference_unet": self.reference_unet, "denoising_unet": self.denoiser,
               "guidance_encoders": self.guidance}
        if self.has_image_encoder:
            out["image_encoder"] = self.image_context.image_encoder
        return {k: sum(p.numel() for p in m.parameters()) for k, m in out.items()}

    @classmethod
    def from_pretrained(cls, path: str | Path, *, device: str | torch.device | None = None,
                        dtype: torch.dtype | None = None) -> "PoseGuidedVideoPipeline":
        """Load from a local weights folder (checked first: an incomplete one raises InputError naming the part).

        Never downloads (``local_files_only``). Device/dtype default to CUDA + fp16 with a GPU, else CPU + fp32.
        """
        layout = check_weights_dir(path)
        dev, dt = default_device_dtype(device, dtype)
        root = layout.root

        def load(cls_: Any, part: str, **opts: Any) -> Any:
            try:
                return cls_.from_pretrained(root / part, local_files_only=True, **opts)
            except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
                first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
                raise InputError(root / part, f"cannot load part '{part}'", expected="weights that match its config",
                                 got=f"{type(exc).__name__}: {first}") from exc

        def model(cls_: Any, part: str) -> Any:
            # low_cpu_mem_usage=False: the fast path needs `accelerate`; without it diffusers prints a notice
            return load(cls_, part, variant=layout.variants.get(part), torch_dtype=dt, low_cpu_mem_usage=False)

        vae = model(AutoencoderKL, "vae")
        ref = model(UNet2DConditionModel, "reference_unet")
        den = model(UNet2DConditionModel, "denoising_unet")
        mm = model(MotionAdapter, "motion_module")
        enc = {t: model(GuidanceEncoder, GUIDANCE_PREFIX + t) for t in layout.guidance_types}
        sched = load(DDIMScheduler, "scheduler")
        image_encoder = None
        if layout.image_encoder:
            try:
                from transformers import CLIPVisionModelWithProjection
                from transformers.utils import logging as hf_logging
            except ImportError as exc:
                raise InputError(root / IMAGE_ENCODER, "the image encoder needs the transformers package",
                                 expected="pip install transformers, or remove the image_encoder folder",
                                 got="transformers missing") from exc
            with _quiet_transformers(hf_logging):
                image_encoder = load(CLIPVisionModelWithProjection, IMAGE_ENCODER, dtype=dt)
        pipe = cls(vae, ref, den, mm, enc, sched, image_encoder)
        return pipe.to(dev)

    def save_pretrained(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the pipeline as a weights folder (atomically: a crash leaves no half folder)."""
        state = self.denoiser.unet.state_dict()
        spatial = UNet2DConditionModel.from_config(self._unet_config)
        spatial.load_state_dict({k: v for k, v in state.items() if "motion_modules" not in k})
        motion = MotionAdapter.from_config(self._motion_config)
        motion.load_state_dict({k: v for k, v in state.items() if "motion_modules" in k})
        with atomic_folder(path, overwrite=overwrite) as tmp:
            self.vae.save_pretrained(tmp / "vae")
            self.reference_unet.save_pretrained(tmp / "reference_unet")
            spatial.save_pretrained(tmp / "denoising_unet")
            motion.save_pretrained(tmp / "motion_module")
            for kind, enc in self.guidance.encoders.items():
                enc.save_pretrained(tmp / f"{GUIDANCE_PREFIX}{kind}")
            if self.has_image_encoder:
                from transformers.utils import logging as hf_logging

                with _quiet_transformers(hf_logging):
                    self.image_context.image_encoder.save_pretrained(tmp / IMAGE_ENCODER)
            self.scheduler.save_pretrained(tmp / "scheduler")
            atomic_write_json(tmp / PIPELINE_FILE, {"guidance_types": list(self.guidance_types)})
        return Path(path)

    # -- inputs --------------------------------------------------------------------------------------------------
    def _check_guidance(self, guidance: Mapping[str, torch.Tensor]) -> tuple[int, int, int]:
        if not isinstance(guidance, Mapping):
            raise InputError(None, "bad guidance", field="guidance", expected="a dict of (T, C, H, W) tensors",
                             got=type(guidance).__name__)
        missing = [t for t in self.guidance_types if t not in guidance]
        if missing:
            raise InputError(None, "guidance type missing", field="guidance",
                             expected=", ".join(self.guidance_types), got=", ".join(sorted(guidance)) or "none")
        shape = None
        for kind in self.guidance_types:
            g = guidance[kind]
            want_c = self.guidance.input_channels(kind)
            if not isinstance(g, torch.Tensor) or g.ndim != 4 or g.shape[1] not in {want_c, 1} \
                    or not g.is_floating_point():
                raise InputError(None, "bad guidance tensor", field=f"guidance.{kind}",
                                 expected=f"float (T, {want_c}, H, W) in [0, 1]",
                                 got=f"{getattr(g, 'dtype', type(g).__name__)} {tuple(getattr(g, 'shape', ()))}")
            if shape is None:
                shape = (g.shape[0], g.shape[2], g.shape[3])
            elif (g.shape[0], g.shape[2], g.shape[3]) != shape:
                raise InputError(None, "guidance maps disagree in frames or size", field=f"guidance.{kind}",
                                 expected=f"T, H, W = {shape}", got=str((g.shape[0], g.shape[2], g.shape[3])))
        t, h, w = shape
        f = self.vae_scale_factor
        if t < 1 or h % f or w % f:
            raise InputError(None, "bad guidance size", field="guidance", expected=f"T >= 1, H and W multiples of {f}",
                             got=f"T={t}, {h}x{w}")
        return t, h, w

    def _segment(self, segment_frames: int | None, overlap: int, fps: float | None) -> tuple[int, int]:
        cap = self.max_segment_frames
        if segment_frames is None:
            segment_frames = min(cap, int(round(SEGMENT_SECONDS * fps))) if fps else cap
        if not 1 <= segment_frames <= cap:
            raise InputError(None, "segment too long for the motion module", field="segment_frames",
                             expected=f"1 to {cap} frames (its motion_max_seq_length)", got=str(segment_frames))
        if not 0 <= overlap < segment_frames:
            raise InputError(None, "bad overlap", field="overlap", expected=f"0 to {segment_frames - 1} frames",
                             got=str(overlap))
        return segment_frames, overlap

    # -- the call ------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, reference_image: Any, guidance: Mapping[str, torch.Tensor], num_inference_steps: int = 25,
                 guidance_scale: float = 3.5, generator: torch.Generator | None = None, *,
                 segment_frames: int | None = None, overlap: int = 4, fps: float | None = None,
                 guidance_weights: Mapping[str, float] | None = None, eta: float = 0.0,
                 latents: torch.Tensor | None = None, output_type: str = "uint8",
                 decode_chunk: int = 8) -> np.ndarray | torch.Tensor:
        """Generate the video: uint8 frames (T, H, W, 3), or with ``output_type="latent"`` the final latents
        (1, C, T, H/8, W/8).

        ``guidance``: ``GuidanceFrames.as_tensors()``-style float (T, C, H, W) maps in [0, 1], one per guidance
        type of the model (extra keys are ignored); they fix the output's T, H and W. ``reference_image`` is
        resized to (H, W). ``segment_frames`` (default: 5 s at ``fps`` when given, capped at the motion module's
        ``motion_max_seq_length``; else that maximum) and ``overlap``: the denoising windows (module
        docstring). ``guidance_scale`` <= 1 disables classifier-free guidance. ``latents``: the initial noise
        (1, C, T, h, w), for reproducible comparisons. ``guidance_weights``: per-type multipliers (default 1).
        """
        if num_inference_steps < 1:
            raise InputError(None, "bad step count", field="num_inference_steps", expected=">= 1",
                             got=str(num_inference_steps))
        if output_type not in ("uint8", "latent"):
            raise InputError(None, "bad output type", field="output_type", expected="uint8 or latent",
                             got=str(output_type))
        frames, height, width = self._check_guidance(guidance)
        segment, overlap = self._segment(segment_frames, overlap, fps)
        device, dtype = self.device, self.dtype
        cfg = guidance_scale > 1.0
        lh, lw = height // self.vae_scale_factor, width // self.vae_scale_factor
        channels = int(self.denoiser.unet.config.in_channels)

        ref = _image_tensor(reference_image, height, width).to(device, dtype)
        ref_latents = self.vae.encode(ref * 2 - 1).latent_dist.mean * self.vae.config.scaling_factor
        context = self.image_context(ref).to(dtype)
        write_reference_bank(self.reference_unet, self.bank, ref_latents, context)
        ctx = torch.cat([self.image_context.uncond(context), context]) if cfg else context

        shape = (1, channels, frames, lh, lw)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif tuple(latents.shape) != shape:
            raise InputError(None, "bad initial latents", field="latents", expected=str(shape),
                             got=str(tuple(latents.shape)))
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        latents = latents.to(device, dtype) * self.scheduler.init_noise_sigma
        windows = context_windows(frames, segment, overlap)
        weights = [w.to(device, dtype) for w in window_weights(windows, frames)]
        maps = {k: guidance[k] for k in self.guidance_types}

        bar = tqdm(total=len(self.scheduler.timesteps) * len(windows), **{"desc": "denoising", **self._progress})
        try:
            self.bank.mode, self.bank.uncond = "read", 0
            for t in self.scheduler.timesteps:
                pred_sum = torch.zeros_like(latents)
                for (s, e), w in zip(windows, weights):
                    x = self.scheduler.scale_model_input(latents[:, :, s:e], t)
                    # recomputed each step, not cached: a few GFLOPs a frame against the UNet's hundreds, and a
                    # cache of every frame's features would grow with the video (~2.6 MB a frame at 512 px, fp16)
                    feats = self.guidance({k: v[s:e].to(device, dtype) for k, v in maps.items()}, guidance_weights)
                    if cfg:
                        x, feats = torch.cat([x, x]), torch.cat([feats, feats])
                        self.bank.uncond = e - s       # (b f) order: the first e - s items are unconditional
                    pred = self.denoiser(x, t, ctx, feats)
                    if cfg:
                        uncond, cond = pred.chunk(2)
                        pred = uncond + guidance_scale * (cond - uncond)
                    pred_sum[:, :, s:e] += pred * w.view(1, 1, -1, 1, 1)
                    bar.update(1)
                latents = self.scheduler.step(pred_sum, t, latents, eta=eta, generator=generator).prev_sample
        finally:
            self.bank.clear()
            bar.close()
        if output_type == "latent":
            return latents
        return self.decode(latents, decode_chunk)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, chunk: int = 8) -> np.ndarray:
        """Latents (1, C, T, h, w) -> uint8 frames (T, H, W, 3), decoded ``chunk`` frames at a time."""
        x = latents[0].permute(1, 0, 2, 3) / self.vae.config.scaling_factor      # (T, C, h, w)
        out = []
        for i in range(0, x.shape[0], max(1, chunk)):
            img = self.vae.decode(x[i:i + chunk]).sample
            img = ((img.float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
            out.append(img.permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(out, axis=0)
