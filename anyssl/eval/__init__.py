"""Evaluation protocols every modality reuses: embed a dataset with a frozen encoder, then a
linear probe, weighted kNN, SVM (cross-validated or on a split), or low-label fine-tuning; and a
report of a pretrained encoder next to a random-init one.

Every protocol, built-in or a plugin's, resolves through ``anyssl.registry.EVAL_PROTOCOLS``
(``register_protocol``; ``anyssl list protocols``); importing this package registers the
built-in ones, the whole-method ones (zero-shot, retrieval) included."""

from anyssl.eval import pair_protocols  # registers zeroshot and retrieval
from anyssl.eval.embed import embed, topk_accuracies
from anyssl.eval.finetune import balanced_subset, finetune
from anyssl.eval.knn import knn_classify
from anyssl.eval.linear import linear_probe
from anyssl.eval.report import (
    PROTOCOLS,
    EvalProtocol,
    check_protocols,
    evaluate,
    format_report,
    get_protocol,
    print_report,
    protocol_names,
    register_protocol,
    report_text,
)
from anyssl.eval.svm import svm_cv, svm_split

__all__ = [
    "PROTOCOLS", "EvalProtocol", "balanced_subset", "check_protocols", "embed", "evaluate",
    "finetune", "format_report", "get_protocol", "knn_classify", "linear_probe",
    "pair_protocols", "print_report", "protocol_names", "register_protocol", "report_text",
    "svm_cv", "svm_split", "topk_accuracies",
]
