"""What an e²KD training step costs, as a ratio to a KD step measured side by side.

    .venv/bin/python bench/bench_e2kd.py [--batch 128] [--rounds 7] [--device auto]

One run times, interleaved round by round so that machine noise hits all of them alike:
  GradCAM pair (resnet8 -> resnet8_w8):  KD online | e²KD GradCAM online | KD frozen logits |
                                         e²KD GradCAM frozen
  B-cos pair (bcos_resnet8 -> bcos_resnet8_w8): KD online | e²KD B-cos online | e²KD B-cos frozen
A step is what kdlab.train.fit does per batch: the objective (teacher pass or stored outputs,
student forward, explanations), backward and an optimizer step. Ratios use the median over
rounds. Targets (issue 4): GradCAM e²KD <= 1.3x KD; frozen e²KD <= 1.15x KD.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import kdlab.bcos  # noqa: E402
from kdlab.data import Batch  # noqa: E402
from kdlab.explain import explanation_pass  # noqa: E402
from kdlab.losses import Distillation, ExplanationDistillation  # noqa: E402
from kdlab.models import get_model  # noqa: E402
from kdlab.train import pick_device  # noqa: E402

kdlab.bcos.register_models()  # the B-cos networks this bench builds


def make_step(objective, student, teacher, batch, device):
    optimizer = torch.optim.SGD(student.parameters(), lr=1e-3, momentum=0.9)
    on_cuda = device.type == "cuda"

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=on_cuda):
            loss, _ = objective(student, teacher, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if on_cuda:
            torch.cuda.synchronize()
    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3, help="steps per measurement")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    torch.manual_seed(0)
    x = torch.rand(args.batch, 3, 32, 32, device=device)
    y = torch.randint(12, (args.batch,), device=device)

    def pair(teacher_arch, student_arch):
        teacher = get_model(teacher_arch, 12).to(device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        return teacher, get_model(student_arch, 12).to(device).train()

    teacher, student = pair("resnet8", "resnet8_w8")
    bteacher, bstudent = pair("bcos_resnet8", "bcos_resnet8_w8")
    t_logits, t_maps = explanation_pass(teacher, x, None, "gradcam", size=(32, 32))
    b_logits, b_maps = explanation_pass(bteacher, x, None, "bcos")

    def batch(extras=None):
        return Batch(x=x, y=y, index=torch.arange(args.batch, device=device), extras=extras or {})

    T, alpha, lam = 4.0, 0.9, 1.0
    cases = {
        "KD online": make_step(Distillation(T, alpha), student, teacher, batch(), device),
        "e2KD GradCAM online": make_step(ExplanationDistillation(T, alpha, lam, "gradcam"), student,
                                         teacher, batch(), device),
        "KD frozen logits": make_step(Distillation(T, alpha), student, None,
                                      batch({"teacher_logits": t_logits}), device),
        "e2KD GradCAM frozen": make_step(ExplanationDistillation(T, alpha, lam, "gradcam"), student, None,
                                         batch({"teacher_logits": t_logits, "teacher_maps": t_maps}), device),
        "B-cos KD online": make_step(Distillation(T, alpha), bstudent, bteacher, batch(), device),
        "e2KD B-cos online": make_step(ExplanationDistillation(T, alpha, lam, "bcos"), bstudent,
                                       bteacher, batch(), device),
        "e2KD B-cos frozen": make_step(ExplanationDistillation(T, alpha, lam, "bcos"), bstudent, None,
                                       batch({"teacher_logits": b_logits, "teacher_maps": b_maps}), device),
    }
    times = {name: [] for name in cases}
    for step in cases.values():  # warm-up
        step()
    for _ in range(args.rounds):
        for name, step in cases.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - t0) / args.steps)
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"e²KD step cost on {device} ({torch.get_num_threads()} threads), batch {args.batch} of 32x32 "
          f"images, median of {args.rounds} interleaved rounds x {args.steps} steps")
    print(f"{'step':24s} {'ms/step':>9s} {'ratio':>8s}  reference")
    rows = [("KD online", "KD online"), ("e2KD GradCAM online", "KD online"),
            ("KD frozen logits", "KD online"), ("e2KD GradCAM frozen", "KD online"),
            ("e2KD GradCAM frozen", "KD frozen logits"),
            ("B-cos KD online", "B-cos KD online"), ("e2KD B-cos online", "B-cos KD online"),
            ("e2KD B-cos frozen", "B-cos KD online")]
    for name, ref in rows:
        print(f"{name:24s} {1e3 * med[name]:9.1f} {med[name] / med[ref]:7.2f}x  {ref}")
    gradcam, frozen = med["e2KD GradCAM online"] / med["KD online"], med["e2KD GradCAM frozen"] / med["KD online"]
    print(f"targets: GradCAM e2KD {gradcam:.2f}x KD (<= 1.3x: {'met' if gradcam <= 1.3 else 'MISSED'}); "
          f"frozen e2KD {frozen:.2f}x KD (<= 1.15x: {'met' if frozen <= 1.15 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
