"""Losses shared by all methods; they never import a method."""
from ovfer.losses.arpl import arpl_logits, arpl_margin
from ovfer.losses.ce import kl_divergence, soft_cross_entropy, smooth_one_hot
from ovfer.losses.infonce import symmetric_infonce
from ovfer.losses.supcon import supcon_loss

__all__ = ["arpl_logits", "arpl_margin", "kl_divergence", "soft_cross_entropy", "smooth_one_hot",
           "symmetric_infonce", "supcon_loss"]
