"""``AdaFocusNet``: glance (f_G) -> policy (pi) -> patch -> focus (f_L) -> classifier (f_C).

Two variants:
- ``frame`` (ActivityNet/FCVID/Mini-K): the glance sees the same T frames as the focus network, one
  location per frame, classifier (pooling or GRU) on concat(glance pooled, focus pooled) per frame;
  logits ``[B,T,K]`` with one entry per step (early exit).
- ``video`` (Sth-Sth/Jester): a separate set of Tg glance frames, one location per video applied to
  all T focus frames, TSN fusion avg(glance logits) + avg(focus logits); logits ``[B,1,K]``.

Every piece is usable alone (V1's staged/RL training, V2's random-patch pass reuses the glance).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from bench.models.backbones import Backbone
from bench.models.classifiers import AuxHead, TSNAverage
from bench.models.crops import centre_locations, hard_crop, interp_crop, random_locations
from bench.models.policies import PolicyOutput

PATCH_MODES = ("policy", "random", "centre")
CROPS = ("interp", "hard")
VARIANTS = ("frame", "video")


class GlanceNet(nn.Module):
    """Backbone + optional bilinear resize of the input to ``glance_size`` + auxiliary head.

    The "res50 glance" is ResNet-50 on the frame resized to 96x96. The resize uses plain bilinear
    interpolation with ``align_corners`` as given (True in the V2 code) and ``antialias`` off by
    default (what the papers did, and what fvcore counts).
    forward(x [N,3,H,W]) -> (fmap [N,C,h,w], pooled [N,C]) (pooled after ``feature_dropout``);
    ``head(pooled)`` -> [N,K].
    """

    def __init__(
        self,
        backbone: Backbone,
        num_classes: int,
        glance_size: Optional[int] = None,
        dropout: float = 0.0,
        align_corners: bool = True,
        antialias: bool = False,
        feature_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        # on the pooled feature, before every head that reads it (TSN: one mask for the fused and the aux
        # head)
        self.feature_dropout = nn.Dropout(feature_dropout)
        self.head = AuxHead(backbone.out_channels, num_classes, dropout)
        self.glance_size, self.align_corners, self.antialias = glance_size, align_corners, antialias
        self.out_channels = backbone.out_channels

    def resize(self, x: torch.Tensor) -> torch.Tensor:
        """x [N,3,H,W] -> [N,3,glance_size,glance_size] (unchanged without glance_size).

        The plain bilinear resize runs on the frames stacked as channels ``[1, N*3, H, W]``, as the V2
        code resizes its ``[B, T*3, H, W]`` input: PyTorch's CPU kernel rounds 3-channel inputs
        differently (~5e-7), enough to show in train-mode gradients when compared with that code.
        """
        if self.glance_size and tuple(x.shape[-2:]) != (self.glance_size, self.glance_size):
            size = (self.glance_size, self.glance_size)
            if self.antialias:
                return F.interpolate(
                    x, size=size, mode="bilinear", align_corners=self.align_corners, antialias=True
                )
            n, c, h, w = x.shape
            x = F.interpolate(
                x.reshape(1, n * c, h, w), size=size, mode="bilinear", align_corners=self.align_corners
            ).view(n, c, *size)
        return x

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        fmap, pooled = self.backbone(self.resize(x))
        return fmap, self.feature_dropout(pooled)

    def map_size(self, frame_size: int) -> int:
        """Side of the feature map this network gives for ``frame_size`` frames."""
        return self.backbone.map_size(self.glance_size or frame_size)


class FocusNet(GlanceNet):
    """Backbone on the patch + auxiliary head (no resize)."""

    def __init__(
        self, backbone: Backbone, num_classes: int, dropout: float = 0.0, feature_dropout: float = 0.0
    ) -> None:
        super().__init__(backbone, num_classes, None, dropout, feature_dropout=feature_dropout)


class AdaFocusNet(nn.Module):
    """The composed network; see the module docstring for the two variants."""

    def __init__(
        self,
        glance: GlanceNet,
        focus: FocusNet,
        policy: nn.Module,
        classifier: nn.Module,
        *,
        patch_size: int,
        variant: str = "frame",
        crop: str = "interp",
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
        if (variant == "video") != isinstance(classifier, TSNAverage):
            raise ValueError("the video variant uses TSNAverage; the frame variant a sequence classifier")
        self.glance, self.focus, self.policy, self.classifier = glance, focus, policy, classifier
        self.patch_size, self.variant, self.crop = patch_size, variant, crop

    # ------------------------------------------------------------------ pieces
    def glance_forward(self, glance: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """glance frames [B,Tg,3,H,W] -> (maps [B,Tg,C,h,w], pooled [B,Tg,C])."""
        b, t = glance.shape[:2]
        fmap, pooled = self.glance(glance.flatten(0, 1))
        return fmap.view(b, t, *fmap.shape[1:]), pooled.view(b, t, -1)

    def policy_forward(self, maps: torch.Tensor, detach: bool = True) -> PolicyOutput:
        """maps [B,Tg,C,h,w] -> PolicyOutput (T' = Tg for the frame variant, 1 for the video variant).

        ``detach`` stops the policy's gradient at the glance maps (V2's stop-gradient).
        """
        return self.policy(maps.detach() if detach else maps)

    def focus_forward(
        self, frames: torch.Tensor, locations: torch.Tensor, crop: Optional[str] = None
    ) -> torch.Tensor:
        """frames [B,T,3,H,W], locations [B,T,2] or [B,1,2] (broadcast) -> focus pooled [B,T,Df]."""
        b, t = frames.shape[:2]
        patches = self.crop_patches(frames, locations, crop)
        _, pooled = self.focus(patches.flatten(0, 1))
        return pooled.view(b, t, -1)

    def crop_patches(
        self, frames: torch.Tensor, locations: torch.Tensor, crop: Optional[str] = None
    ) -> torch.Tensor:
        """frames [B,T,3,H,W], locations [B,T|1,2] -> patches [B,T,3,P,P]."""
        b, t = frames.shape[:2]
        loc = locations.expand(b, t, 2).reshape(b * t, 2)
        fn = interp_crop if (crop or self.crop) == "interp" else hard_crop
        patches = fn(frames.flatten(0, 1), loc.to(frames.dtype), self.patch_size)
        return patches.view(b, t, *patches.shape[1:])

    def classify(self, glance_pooled: torch.Tensor, focus_pooled: torch.Tensor) -> torch.Tensor:
        """-> logits [B,T,K] (frame variant, one per step) or [B,1,K] (video variant)."""
        if self.variant == "video":
            return self.classifier(glance_pooled, focus_pooled)
        return self.classifier(torch.cat([glance_pooled, focus_pooled], dim=-1))

    def decision_shape(self, frames: torch.Tensor, glance: Optional[torch.Tensor]) -> Tuple[int, int]:
        """(B, T'): one location per focus frame (frame variant) or per video (video variant)."""
        return frames.shape[0], (frames.shape[1] if self.variant == "frame" else 1)

    # ------------------------------------------------------------------ composed
    def forward(
        self,
        frames: torch.Tensor,
        glance: Optional[torch.Tensor] = None,
        *,
        patch_mode: str = "policy",
        locations: Optional[torch.Tensor] = None,
        detach_glance: bool = True,
        policy_mode: str = "greedy",
        aux: bool = True,
        generator: Optional[torch.Generator] = None,
    ) -> Dict[str, Any]:
        """frames [B,T,3,H,W]; glance [B,Tg,3,H,W] (video variant; defaults to ``frames``).

        Locations come from ``locations`` if given ([B,T,2] or [B,1,2]), else from ``patch_mode``:
        the policy (``policy_mode`` greedy or sample), uniform random, or the centre.
        Returns a dict: ``logits`` [B,T,K] or [B,1,K] (last step = prediction), ``glance_logits``
        [B,Tg,K] and ``focus_logits`` [B,T,K] (None when ``aux=False``), ``locations`` [B,T,2],
        ``actions`` (policy actions or None), ``policy`` (PolicyOutput or None), ``glance_maps``,
        ``glance_feats`` [B,Tg,Dg], ``focus_feats`` [B,T,Df].
        """
        if patch_mode not in PATCH_MODES:
            raise ValueError(f"patch_mode must be one of {PATCH_MODES}, got {patch_mode!r}")
        glance = frames if glance is None else glance
        maps, glance_feats = self.glance_forward(glance)
        policy_out, actions = None, None
        if locations is None:
            shape = self.decision_shape(frames, glance)
            if patch_mode == "policy":
                policy_out = self.policy_forward(maps, detach=detach_glance)
                actions, locations = policy_out.act(policy_mode, generator)
            elif patch_mode == "random":
                locations = random_locations(shape, frames.device, generator)
            else:
                locations = centre_locations(shape, frames.device)
        b, t = frames.shape[:2]
        locations = locations.expand(b, t, 2)
        focus_feats = self.focus_forward(frames, locations)
        return {
            "logits": self.classify(glance_feats, focus_feats),
            "glance_logits": self.glance.head(glance_feats) if aux else None,
            "focus_logits": self.focus.head(focus_feats) if aux else None,
            "locations": locations,
            "actions": actions,
            "policy": policy_out,
            "glance_maps": maps,
            "glance_feats": glance_feats,
            "focus_feats": focus_feats,
        }
