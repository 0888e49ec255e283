"""Shared training machinery for inverters: the loop, stages, schedules, losses, checkpoints."""

from invbench.training.checkpoint import load_checkpoint
from invbench.training.feature_cache import TargetFeatureCache
from invbench.training.losses import (
    ARCFACE_FACE_BOX,
    FeatureLoss,
    center_crop,
    crop_box,
    frozen,
    gradient_loss,
    image_gradients,
    mae_loss,
    mse_loss,
    perceptual_loss,
)
from invbench.training.optim import LossFn, OptimizerSpec, Stage, StepDecay
from invbench.training.trainer import Trainer, train

__all__ = [
    "ARCFACE_FACE_BOX",
    "FeatureLoss",
    "LossFn",
    "OptimizerSpec",
    "Stage",
    "StepDecay",
    "TargetFeatureCache",
    "Trainer",
    "center_crop",
    "crop_box",
    "frozen",
    "gradient_loss",
    "image_gradients",
    "load_checkpoint",
    "mae_loss",
    "mse_loss",
    "perceptual_loss",
    "train",
]
