"""Dataset distillation: condense a training set into a few synthetic samples.

Image methods behind one call, :func:`distill` (one module per method):
DC and DSA (:class:`DCConfig`, gradient matching; DSA = ``augment=True``), DM (:class:`DMConfig`,
distribution matching) and MTT (:class:`MTTConfig`, trajectory matching).
:func:`distill_side_by_side` distils several DM seeds at once, in one vmapped loop.
``config_for(method, profile)`` gives each method's reference (``"paper"``) config and the
``"smoke"`` one of its unit tests; reduced (``"cpu"``) protocols are the studies' own.
:data:`METHODS` is the explicit table of the methods (name → config class, run function,
profile configs); every config extends :class:`DistillConfig`, whose ``network`` is a
:class:`fairdd.models.NetworkSpec`.
"""

from fairdd.distill._common import DistillConfig, SyntheticSet, evaluation_config
from fairdd.distill._methods import METHODS, Method, config_for, distill, distill_side_by_side
from fairdd.distill.dc import DCConfig, dsa_config, match_distance
from fairdd.distill.dm import DMConfig
from fairdd.distill.mtt import MTTConfig, expert_cache_dir, train_experts

__all__ = [
    "DCConfig",
    "DMConfig",
    "DistillConfig",
    "METHODS",
    "MTTConfig",
    "Method",
    "SyntheticSet",
    "config_for",
    "distill",
    "distill_side_by_side",
    "dsa_config",
    "evaluation_config",
    "expert_cache_dir",
    "match_distance",
    "train_experts",
]

# Han et al. (2022): distillation of feature vectors (embeddings) with learnable labels and step sizes.
from fairdd.distill.embedding import (  # noqa: E402
    DistilledSteps,
    EmbeddingDDConfig,
    EmbeddingDDResult,
    distill_embeddings,
    replay,
    retrain,
)

__all__ += ["DistilledSteps", "EmbeddingDDConfig", "EmbeddingDDResult", "distill_embeddings", "replay", "retrain"]
