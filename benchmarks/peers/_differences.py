"""What differs inside between the two sides of the lightly comparison: the differences every
run has (``ALWAYS``) and those read off one method's recipe and the lightly side's report."""

from __future__ import annotations

from typing import Any

ALWAYS = (
    "views: anyssl makes the views of the whole uint8 batch at once in the training process "
    "(per-sample parameters; crop by bilinear grid_sample; jitter fused into one affine map "
    "and clamped once); lightly makes them image by image with torchvision on PIL images in "
    "the DataLoader (PIL bilinear resize with antialiasing; jitter clamped after each op). Both "
    "draw the jitter order per image; saturation, hue and grayscale do nothing to 1-channel "
    "images on either side. The random draws differ.",
    "data order: anyssl's seeded permutation per epoch, lightly's seeded DataLoader shuffle; "
    "both drop the last partial batch, so both run the same number of steps.",
    "LARS (where the optimizer is lars): anyssl's trust ratio is eta*||w||/||g + wd*w||, "
    "lightly's eta*||w||/(||g|| + wd*||w||); both leave biases and norm parameters out of the "
    "weight decay and the ratio.",
    "momentum targets: anyssl updates after each optimizer step with m(step) and copies the "
    "BatchNorm buffers into the target; lightly's examples update before each step "
    "(update_momentum, parameters only; cosine_schedule reaches 1 one step earlier). The "
    "target's running statistics are not used in training and the online backbone is "
    "evaluated.",
    "MoCo queue: lightly's memory bank drops keys that overflow its end instead of wrapping "
    "(the same when the queue is a multiple of the batch, as anyssl's scaled queue is).",
    "BYOL loss: lightly's NegativeCosineSimilarity summed as anyssl's (2 - 2cos) + (2 - 2cos), "
    "the same gradient scale (lightly's example takes 0.5 x the sum of -cos, a quarter of it).",
    "timing: anyssl's loop includes writing last.pt after each epoch; lightly's includes "
    "starting its DataLoader workers (persistent across epochs).",
)


def method_differences(recipe: dict[str, Any], lightly: dict[str, Any],
                       init_checksum: float) -> list[str]:
    """Differences of one method: heads whose layers differ, anyssl view orders lightly cannot
    follow, MoCo's BatchNorm groups, and initial weights that are not the same."""
    method, args = recipe["method"], recipe["method_args"]
    notes = []
    for name, spec in args.items():
        if isinstance(spec, dict) and "summary" in spec:
            theirs = lightly["heads"].get(name)
            if theirs != spec["summary"]:
                notes.append(f"{method} {name}: anyssl {spec['summary']}; lightly {theirs}")
    notes += [f"{method} {n}" for n in recipe["view_order_notes"]]
    if int(args.get("split_bn") or 0) > 1:
        notes.append(f"{method}: BatchNorm in {args['split_bn']} groups on both sides (lightly's "
                     "SplitBatchNorm, its one-GPU MoCo benchmark's); anyssl averages the "
                     "groups' running statistics every step, lightly when switched to eval")
        if args.get("head", {}).get("hidden_bn"):
            notes.append(f"{method}: anyssl also splits the head's BatchNorm1d; lightly's "
                         "SplitBatchNorm is 2-d only, so its head BatchNorm is not split")
    if args.get("symmetric") and "queue_size" in args:
        notes.append(f"{method}: symmetric loss; lightly's memory bank takes the first "
                     "direction's keys before the second loss, anyssl enqueues both after")
    if abs(lightly["init_checksum"] - init_checksum) > 1e-6 * max(1.0, abs(init_checksum)):
        notes.append(f"{method}: the initial backbone weights differ between the sides "
                     f"(checksums {init_checksum:.6f} and {lightly['init_checksum']:.6f})")
    return notes
