"""Cross-encoder fine-tuning on judged data (``rankwise train cross-encoder``): examples with hard negatives
(:mod:`.examples`), sentence-transformers' trainer around them (:mod:`.fit`). Needs ``pip install 'rankwise[train]'``."""

from rankwise.train.finetune.examples import NegativeMining
from rankwise.train.finetune.fit import TrainingPlan, TrainingReport, TrainingSettings, train_cross_encoder

__all__ = ["NegativeMining", "TrainingPlan", "TrainingReport", "TrainingSettings", "train_cross_encoder"]
