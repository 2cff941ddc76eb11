"""Model parts shared by AdaFocusV1 and V2: backbones, crops, policies, classifiers, AdaFocusNet.

Names follow the papers' roles: glance (f_G), focus (f_L), classifier (f_C), policy (pi).
"""

from bench.models.backbones import BACKBONES, Backbone, create_backbone, load_state
from bench.models.build import build_network, without_weight_files
from bench.models.classifiers import AuxHead, GRUClassifier, PerStepHeads, PoolingClassifier, TSNAverage
from bench.models.crops import (
    centre_locations,
    crop_offsets,
    grid_positions,
    hard_crop,
    interp_crop,
    random_locations,
    random_pixel_locations,
)
from bench.models.importing import ImportReport, OfficialLayout, Rule, load_model, model_info, save_model
from bench.models.network import AdaFocusNet, FocusNet, GlanceNet
from bench.models.policies import PolicyOutput, RecurrentPolicy, VideoPolicy
from bench.models.temporal_shift import temporal_shift
from bench.models.weights import WeightSource, resolve_pretrained, weight_sources

__all__ = [
    "random_pixel_locations",
    "BACKBONES",
    "Backbone",
    "create_backbone",
    "load_state",
    "build_network",
    "without_weight_files",
    "AuxHead",
    "GRUClassifier",
    "PerStepHeads",
    "PoolingClassifier",
    "TSNAverage",
    "centre_locations",
    "crop_offsets",
    "grid_positions",
    "hard_crop",
    "interp_crop",
    "random_locations",
    "ImportReport",
    "OfficialLayout",
    "Rule",
    "load_model",
    "model_info",
    "save_model",
    "AdaFocusNet",
    "FocusNet",
    "GlanceNet",
    "PolicyOutput",
    "RecurrentPolicy",
    "VideoPolicy",
    "temporal_shift",
    "WeightSource",
    "resolve_pretrained",
    "weight_sources",
]
