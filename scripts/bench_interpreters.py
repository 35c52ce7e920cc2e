"""Time per image of each interpreter on the embedded victims (CPU), issue 3.

For GRAD and CAM it also times the reference implementations on the same inputs and prints
the ratio ours / reference:

* GRAD vs captum ``Saliency(abs=True)`` (captum returns the raw |gradient|; ours adds the
  channel max, pooling and min-max normalisation) -- and GRAD's ``attack_map`` (surrogate
  backward with ``create_graph=True``) vs the same;
* CAM vs pytorch-grad-cam's ``GradCAM`` (forward + backward through hooks, maps upsampled to
  the input size in NumPy) and captum's ``LayerGradCam``; ours is one forward pass.

Each timing is the median over ``--repeats`` runs after one warm-up run, divided by the batch
size. MASK and RTS run once per repeat on a smaller batch (MASK is 150 Adam steps).

    python scripts/bench_interpreters.py [--batch 64] [--mask-batch 16] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd
import torch

from adv2lib.data import fashion_mnist
from adv2lib.interpreters import CAM, GRAD, MASK, build_interpreter
from adv2lib.models import load_victim
from adv2lib.utils import versions


def per_image_ms(fn, n_images: int, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times) / n_images


def cam_layer(victim):
    """The module whose output is ``victim.features(x)`` (where Grad-CAM hooks)."""
    return victim.layer3 if victim.name == "resnet" else victim.final_relu


def bench_victim(name: str, batch: int, mask_batch: int, repeats: int) -> list[dict]:
    from captum.attr import LayerGradCam, Saliency
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    victim = load_victim(name, device="cpu")
    x, _ = fashion_mnist("test").tensors(range(batch))
    with torch.no_grad():
        y = victim(x).argmax(1)
    rows = []

    def add(interp, ms, ref=None, ref_ms=None, n=batch):
        rows.append({"victim": name, "interpreter": interp, "batch": n, "ms_per_image": ms, "reference": ref or "",
                     "ref_ms_per_image": ref_ms, "ratio_ours_to_ref": (ms / ref_ms) if ref_ms else None})

    grad = GRAD(victim)
    saliency = Saliency(victim)
    ref = per_image_ms(lambda: saliency.attribute(x.clone().requires_grad_(), target=y, abs=True), batch, repeats)
    add("grad", per_image_ms(lambda: grad(x, y), batch, repeats), "captum Saliency(abs=True)", ref)
    add("grad.attack_map", per_image_ms(lambda: grad.attack_map(x.clone().requires_grad_(), y), batch, repeats),
        "captum Saliency(abs=True)", ref)

    cam = CAM(victim)
    ours = per_image_ms(lambda: cam(x, y), batch, repeats)
    targets = [ClassifierOutputTarget(int(c)) for c in y]
    with GradCAM(model=victim, target_layers=[cam_layer(victim)]) as gradcam:
        ref = per_image_ms(lambda: gradcam(input_tensor=x.clone().requires_grad_(), targets=targets), batch, repeats)
    add("cam", ours, "pytorch-grad-cam GradCAM", ref)
    layer_gc = LayerGradCam(victim, cam_layer(victim))
    ref = per_image_ms(lambda: layer_gc.attribute(x, target=y, relu_attributions=True), batch, repeats)
    add("cam", ours, "captum LayerGradCam", ref)

    mask = MASK(victim)
    xm, ym = x[:mask_batch], y[:mask_batch]
    add(f"mask ({mask.config.iterations} steps)", per_image_ms(lambda: mask(xm, ym), mask_batch, max(1, repeats // 3)),
        n=mask_batch)

    try:
        rts = build_interpreter("rts", victim)
    except Exception as err:  # no trained RTS weights, or rts.py missing
        rows.append({"victim": name, "interpreter": "rts", "batch": batch,
                     "reference": f"skipped: {type(err).__name__}"})
    else:
        add("rts", per_image_ms(lambda: rts(x, y), batch, repeats))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--victims", nargs="+", default=["resnet", "densenet"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--mask-batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: stable timings on a shared machine)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [row for name in args.victims for row in bench_victim(name, args.batch, args.mask_batch, args.repeats)]
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 160)
    v = versions()
    print(f"CPU, {torch.get_num_threads()} thread(s); torch {v['torch']}, adv2lib {v['adv2lib']}; "
          f"median of {args.repeats} runs after a warm-up")
    print(table.to_string(index=False, float_format="%.3f", na_rep="-"))


if __name__ == "__main__":
    main()
