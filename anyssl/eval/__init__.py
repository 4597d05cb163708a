"""Evaluation protocols every modality reuses: embed a dataset with a frozen encoder, then a
linear probe, weighted kNN, SVM (cross-validated or on a split), or low-label fine-tuning; and a
report of a pretrained encoder next to a random-init one."""

from anyssl.eval.embed import embed, topk_accuracies
from anyssl.eval.finetune import balanced_subset, finetune
from anyssl.eval.knn import knn_classify
from anyssl.eval.linear import linear_probe
from anyssl.eval.report import (
    PROTOCOLS,
    evaluate,
    format_report,
    print_report,
    report_text,
)
from anyssl.eval.svm import svm_cv, svm_split

__all__ = [
    "PROTOCOLS", "balanced_subset", "embed", "evaluate", "finetune", "format_report",
    "knn_classify", "linear_probe", "print_report", "report_text", "svm_cv", "svm_split",
    "topk_accuracies",
]
