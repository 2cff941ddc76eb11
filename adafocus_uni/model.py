"""``UniNet``: Uni-AdaFocus, frame variant (ActivityNet / FCVID / Mini-Kinetics).

A clip has S segments (48 in the paper). The glance f_G sees Tg of them (one per group of S/Tg: a random one
in training, the middle one in evaluation) and gives feature maps, pooled features and logits. The spatial
policy reads the detached maps and gives (row, col, scale_row, scale_col) per glance frame, linearly
interpolated to all S segments; the temporal policy reads the pooled features and gives weights over the
glance frames; Tf focus segments are drawn from the S by inverse-CDF sampling of those weights (random offsets
in training, the strata's centres in evaluation). f_L sees the scaled patch of each focus segment; the
classifier reads both branches.

``forward`` has the call signature of ``bench.models.AdaFocusNet`` so the shared evaluation, FLOPs and
throughput code run it unchanged: ``logits`` [B, Tf+1, K] are the exits after 0..Tf focus frames (the last is
the prediction; ``all_logits`` [B, Tg+Tf, K] are every head's). ``training_outputs`` is what one training step
needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from adafocus_uni.costs import components, exit_costs
from adafocus_uni.parts import (
    UniClassifier,
    UniPolicy,
    gumbel_drop_masks,
    inverse_cdf_indices,
    mc_temporal_logits,
    scale_for_side,
    scaled_crop,
)
from bench.models.network import FocusNet, GlanceNet

PATCH_MODES = ("policy", "random", "centre")


@dataclass
class Draws:
    """The random numbers of one training forward (drawn by ``UniNet.draw`` unless given, e.g. by a test).

    glance [B,Tg] int64: which segment of each group the glance sees; focus [B,Tf] in [0,1): the inverse-CDF
    offsets; random_patch [B,Tf,2] in [0,1): the diversity pass's patch positions; mc_drop [B,D,L,Tg] bool:
    the glance frames each Monte-Carlo draw removes."""

    glance: torch.Tensor
    focus: torch.Tensor
    random_patch: torch.Tensor
    mc_drop: Optional[torch.Tensor] = None  # None: drawn by the temporal weights, known only in the forward


class UniNet(nn.Module):
    def __init__(
        self,
        glance: GlanceNet,
        focus: FocusNet,
        policy: UniPolicy,
        classifier: UniClassifier,
        spatial_head: nn.Module,
        *,
        segments: int,
        glance_segments: int,
        focus_segments: int,
        patch_size: int,
        input_size: int,
        map_patch: int,
        learned_scale: bool = True,
        temporal_policy: bool = True,
        mc_draws: int = 128,
    ) -> None:
        super().__init__()
        if segments % glance_segments or focus_segments > segments:
            raise ValueError(
                f"segments={segments} must be a multiple of glance_segments={glance_segments} "
                f"and at least focus_segments={focus_segments}"
            )
        self.glance, self.focus, self.policy, self.classifier = glance, focus, policy, classifier
        self.spatial_head = spatial_head  # auxiliary: spatial logits from the glance map's patch (training)
        self.segments, self.glance_segments, self.focus_segments = segments, glance_segments, focus_segments
        self.patch_size, self.input_size, self.map_patch = patch_size, input_size, map_patch
        self.learned_scale, self.temporal_policy, self.mc_draws = learned_scale, temporal_policy, mc_draws
        self.fixed_scale = scale_for_side(patch_size, input_size)  # the scale action of a P x P patch
        self.variant = "frame"

    # ------------------------------------------------------------------ pieces
    @property
    def mc_levels(self) -> int:
        """Monte-Carlo levels: 0..Tg//3 - 1 glance frames removed (the official estimator's T1 = Tg // 3)."""
        return max(1, self.glance_segments // 3)

    def draw(self, b: int, device: torch.device, generator: Optional[torch.Generator] = None) -> Draws:
        times = self.segments // self.glance_segments
        rand = lambda *shape: torch.rand(*shape, device=device, generator=generator)  # noqa: E731
        return Draws(
            glance=(rand(b, self.glance_segments) * times).long().clamp_max(times - 1),
            focus=rand(b, self.focus_segments),
            random_patch=rand(b, self.focus_segments, 2),
        )

    def glance_indices(self, b: int, device: torch.device, offsets: Optional[torch.Tensor]) -> torch.Tensor:
        """[B,Tg] segment indices: group start + offset (evaluation: the second of each group, as the official
        code; the middle one of the paper's groups of 3)."""
        times = self.segments // self.glance_segments
        start = torch.arange(self.glance_segments, device=device) * times
        if offsets is None:
            return (start + min(1, times - 1)).expand(b, -1)
        return start + offsets.to(device)

    def glance_forward(self, frames: torch.Tensor, idx: torch.Tensor):
        """frames [B,S,3,H,W], idx [B,Tg] -> (maps [B,Tg,C,h,w], feats [B,Tg,C])."""
        b = frames.shape[0]
        picked = _take(frames, idx)
        fmap, pooled = self.glance(picked.flatten(0, 1))
        return fmap.view(b, -1, *fmap.shape[1:]), pooled.view(b, self.glance_segments, -1)

    def spatial_actions(self, maps: torch.Tensor, detach: bool = True) -> torch.Tensor:
        """-> [B,Tg,4]; with the learned scale off, every patch is P x P."""
        actions = self.policy.spatial(maps.detach() if detach else maps)
        return actions if self.learned_scale else self.with_fixed_scale(actions)

    def with_fixed_scale(self, positions: torch.Tensor) -> torch.Tensor:
        """positions [...,2+] -> actions [...,4] whose patches are P x P."""
        pos = positions[..., :2]
        return torch.cat([pos, torch.full_like(pos, self.fixed_scale)], dim=-1)

    def to_segments(self, actions: torch.Tensor) -> torch.Tensor:
        """[B,Tg,4] -> [B,S,4] by linear interpolation over time."""
        return F.interpolate(
            actions.transpose(1, 2), self.segments, mode="linear", align_corners=False
        ).transpose(1, 2)

    def temporal_weights(self, feats: torch.Tensor):
        """-> (weights, tempered weights) [B,Tg]; uniform with the temporal policy off."""
        if not self.temporal_policy:
            w = feats.new_full(feats.shape[:2], 1.0 / self.glance_segments)
            return w, w
        return self.policy.temporal(feats)

    def focus_forward(self, frames: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """frames [N',Tf,3,H,W] patches by actions [N',Tf,4] -> pooled [N',Tf,Df]."""
        n, t = frames.shape[:2]
        patches = scaled_crop(
            frames.flatten(0, 1),
            actions.flatten(0, 1).to(frames.dtype),
            self.patch_size,
            patch=self.patch_size,
            frame=self.input_size,
        )
        return self.focus(patches)[1].view(n, t, -1)

    def spatial_logits(self, maps: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Auxiliary spatial logits: each glance map's patch (detached map, differentiable in the actions),
        averaged over positions and glance frames, through ``spatial_head``. -> [B,K]."""
        b, t = maps.shape[:2]
        patch = scaled_crop(
            maps.detach().flatten(0, 1),
            actions.flatten(0, 1).to(maps.dtype),
            self.map_patch,
            patch=self.patch_size,
            frame=self.input_size,
        )
        return self.spatial_head(patch.view(b, t, *patch.shape[1:]).mean(dim=(1, 3, 4)))

    def step_flops(self, by_module: Dict[str, int]) -> List[float]:
        """FLOPs of exits 0..Tf from fvcore's per-module counts (``bench.models.flops.count_flops`` asks)."""
        return [g * 1e9 for g in exit_costs(components(by_module), self.focus_segments)]

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
        """Inference (evaluation, FLOPs, throughput). frames [B,S,3,H,W]; ``glance`` is unused (the glance
        frames are a subset of the segments). ``patch_mode``: the policy's patches, or P x P patches at
        uniformly random or centre positions (the frames are still chosen by the temporal policy)."""
        if patch_mode not in PATCH_MODES:
            raise ValueError(f"patch_mode must be one of {PATCH_MODES}, got {patch_mode!r}")
        b, device = frames.shape[0], frames.device
        maps, feats = self.glance_forward(frames, self.glance_indices(b, device, None))
        _, weights_t = self.temporal_weights(feats)
        focus_idx = inverse_cdf_indices(weights_t.detach(), self.segments, self.focus_segments)
        if locations is not None:
            actions = self.with_fixed_scale(locations.expand(b, self.segments, 2))
        elif patch_mode == "policy":
            actions = self.to_segments(self.spatial_actions(maps, detach_glance))
        else:
            pos = (
                torch.rand(b, self.segments, 2, device=device, generator=generator)
                if patch_mode == "random"
                else torch.full((b, self.segments, 2), 0.5, device=device)
            )
            actions = self.with_fixed_scale(pos)
        focus_feats = self.focus_forward(_take(frames, focus_idx), _take(actions, focus_idx))
        logits = self.classifier(feats, focus_feats)
        return {
            "logits": logits[:, self.glance_segments - 1 :],
            "all_logits": logits,
            "glance_logits": self.glance.head(feats) if aux else None,
            "focus_logits": self.focus.head(focus_feats) if aux else None,
            "locations": actions[..., :2],
            "actions": actions,
            "focus_indices": focus_idx,
            "glance_feats": feats,
            "focus_feats": focus_feats,
            "policy": None,
        }

    def training_outputs(
        self, frames: torch.Tensor, draws: Optional[Draws] = None, *, diversity: bool = True
    ) -> Dict[str, Any]:
        """Everything one training step scores (the official trainer's two passes share the glance):

        ``all_logits`` [B,Tg+Tf,K] on the policy's patches and, with ``diversity``, ``random_all_logits`` on
        random P x P patches of the same focus frames (f_L runs once on both passes' patches, as the official
        code batches them); ``glance_logits`` [B,Tg,K]; ``focus_logits`` (and ``random_focus_logits``)
        [B,Tf,K]; ``temporal_logits`` [B,K] (None with the temporal policy off); ``spatial_logits`` [B,K];
        ``actions`` [B,Tg,4] (the spatial policy's, not detached); ``weights`` [B,Tg]."""
        b, device = frames.shape[0], frames.device
        draws = draws or self.draw(b, device)
        maps, feats = self.glance_forward(frames, self.glance_indices(b, device, draws.glance))
        glance_logits = self.glance.head(feats)
        actions = self.spatial_actions(maps)  # gradient: spatial + norm losses only
        weights, weights_t = self.temporal_weights(feats)
        temporal_logits = None
        if self.temporal_policy:
            drop = (
                draws.mc_drop
                if draws.mc_drop is not None
                else gumbel_drop_masks(weights, self.mc_draws, self.mc_levels)
            )
            temporal_logits = mc_temporal_logits(glance_logits, weights, drop)
        focus_idx = inverse_cdf_indices(weights_t.detach(), self.segments, self.focus_segments, draws.focus)
        policy_actions = _take(self.to_segments(actions), focus_idx).detach()
        focus_frames = _take(frames, focus_idx)
        if diversity:
            random_actions = self.with_fixed_scale(draws.random_patch.to(policy_actions))
            both = self.focus_forward(
                torch.cat([focus_frames, focus_frames]), torch.cat([policy_actions, random_actions])
            )
            focus_feats, random_feats = both[:b], both[b:]
        else:
            focus_feats, random_feats = self.focus_forward(focus_frames, policy_actions), None
        out = {
            "all_logits": self.classifier(feats, focus_feats),
            "glance_logits": glance_logits,
            "focus_logits": self.focus.head(focus_feats),
            "temporal_logits": temporal_logits,
            "spatial_logits": self.spatial_logits(maps, actions),
            "actions": actions,
            "weights": weights,
            "focus_indices": focus_idx,
        }
        if diversity:
            out["random_all_logits"] = self.classifier(feats, random_feats)
            out["random_focus_logits"] = self.focus.head(random_feats)
        return out


def _take(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x [B,S,...], idx [B,T] -> x[b, idx[b]] [B,T,...] (one gather, no loop)."""
    return x[torch.arange(x.shape[0], device=x.device)[:, None], idx.to(x.device)]
