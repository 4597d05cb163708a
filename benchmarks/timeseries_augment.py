"""Time-series augmentation throughput: series/s of each native augmentation, next to tsaug.

Native: the ``anyssl.modalities.timeseries`` augmentations on one float32 ``N x C x T`` batch
(default 256 x 3 x 512, no padding) on ``--device`` with ``--threads`` torch threads (default 2).
tsaug 0.2.1 where it has a clear equivalent, on the CPU: called directly on the ``N x T x C``
float64 numpy array (tsaug's own cost) and through our ``tsaug_*`` wrapper (host copies, the
per-length grouping and the dtype conversions included). Pairs: jitter ~ ``AddNoise`` (fixed
scale, not normalized), time_warp ~ ``TimeWarp`` (tsaug's own warp model and defaults),
window_slice ~ ``Crop`` + resize to ``T``, crop ~ ``Crop``. The other native augmentations have no
exact tsaug twin and are timed natively only.

    .venv/bin/python benchmarks/timeseries_augment.py            # 256 x 3 x 512, 2 threads, CPU
    .venv/bin/python benchmarks/timeseries_augment.py --quick    # small batch, < 1 min
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from _common import (
    common_parser,
    contention_limit,
    contention_note,
    markdown_table,
    per_second,
    save,
    setup,
)

# registers the native augmentations (augment_warp imports augment) and the tsaug wrappers
from anyssl.modalities.timeseries import augment_warp, tsaug_augment  # noqa: F401
from anyssl.views import parse_spec


def cases(length: int) -> list[tuple[str, tuple[str, dict[str, Any], str] | None]]:
    """(native spec, (tsaug class, its kwargs, our wrapper's spec) or None) at series ``length``."""
    window = round(0.9 * length)
    return [
        ("jitter(sigma=0.03)",
         ("AddNoise", {"scale": 0.03, "normalize": False},
          "tsaug_add_noise(scale=0.03,normalize=false)")),
        ("scale(sigma=0.1)", None),
        ("magnitude_warp(sigma=0.2,knots=4)", None),
        ("time_warp(sigma=0.2,knots=4)",
         ("TimeWarp", {"n_speed_change": 3, "max_speed_ratio": 3.0},
          "tsaug_time_warp(n_speed_change=3,max_speed_ratio=3.0)")),
        ("window_slice(ratio=0.9)",
         ("Crop", {"size": window, "resize": length},
          f"tsaug_crop(size={window},resize={length})")),
        ("window_warp(ratio=0.1,scales=0.5-2.0)", None),
        ("permute(max_segments=5)", None),
        ("time_mask(ratio=0.1,spans=1)", None),
        ("channel_dropout(rate=0.1)", None),
        (f"crop(length={window})", ("Crop", {"size": window}, f"tsaug_crop(size={window})")),
    ]


def main() -> None:
    p = common_parser(__doc__.splitlines()[0])
    p.set_defaults(threads=2)
    p.add_argument("--batch-size", type=int, default=None, help="series per batch (default 256)")
    p.add_argument("--length", type=int, default=None, help="time steps T (default 512)")
    p.add_argument("--channels", type=int, default=3, help="channels C (default 3)")
    p.add_argument("--block", type=float, default=None,
                   help="seconds of back-to-back calls per timed block (default 1, quick 0.2)")
    p.add_argument("--no-tsaug", action="store_true", help="time the native ones only")
    args = p.parse_args()
    args.batch_size = args.batch_size or (64 if args.quick else 256)
    args.length = args.length or (128 if args.quick else 512)
    args.repeats = args.repeats or (2 if args.quick else 5)
    args.block = args.block or (0.2 if args.quick else 1.0)
    device = setup(args)
    n, cpu = args.batch_size, torch.device("cpu")
    x = torch.randn(n, args.channels, args.length, generator=torch.Generator().manual_seed(0))
    x = x.to(device)
    arr = x.cpu().double().permute(0, 2, 1).numpy()  # N x T x C, what tsaug takes
    gen = torch.Generator(device=device).manual_seed(0)

    rows, results = [], []
    contention: list[float | None] = []
    for spec, twin in cases(args.length):
        aug = parse_spec(spec, scope="timeseries")
        print(f"{spec} ...", flush=True)
        native = per_second(functools.partial(aug, x, gen), n, device, args, contention)
        row: dict[str, Any] = {"spec": spec, "native": native}
        if twin is not None and not args.no_tsaug:
            import tsaug

            cls, kwargs, wrapper_spec = twin
            direct = getattr(tsaug, cls)(**kwargs, seed=0)
            wrapper = parse_spec(wrapper_spec, scope="timeseries")
            row.update(tsaug=f"{cls}({', '.join(f'{k}={v}' for k, v in kwargs.items())})",
                       tsaug_direct=per_second(functools.partial(direct.augment, arr), n, cpu,
                                               args, contention),
                       tsaug_wrapper=per_second(functools.partial(wrapper, x, gen), n, device,
                                                args, contention))
            row["native_over_tsaug"] = native / row["tsaug_direct"]
        results.append(row)
        rows.append([spec, round(native), row.get("tsaug", "-"),
                     round(row["tsaug_direct"]) if "tsaug_direct" in row else "-",
                     round(row["tsaug_wrapper"]) if "tsaug_wrapper" in row else "-",
                     f"{row['native_over_tsaug']:.1f}x" if "native_over_tsaug" in row else "-"])
    headers = ["augmentation", "native series/s", "tsaug equivalent", "tsaug series/s",
               "tsaug_* wrapper series/s", "native / tsaug"]
    notes = [f"batch {n} x {args.channels} x {args.length} float32, {args.threads} torch "
             f"threads, {args.device}; tsaug on the CPU (numpy, float64); median of "
             f"{args.repeats} blocks of ~{args.block:g} s of calls after {args.warmup} warm-up",
             contention_note(contention, contention_limit(args))]
    try:
        import tsaug

        tsaug_version = tsaug.__version__
    except ImportError:
        tsaug_version = None
    payload = {"batch": n, "channels": args.channels, "length": args.length,
               "numpy": np.__version__, "tsaug": tsaug_version, "rows": results,
               "contention": contention}
    save("timeseries_augment", args, device, markdown_table(headers, rows), payload, notes)


if __name__ == "__main__":
    main()
