import math

import pytest
import torch
import torch.nn.functional as F

from kdlab.losses import CrossEntropy, Distillation, kd_loss, smoothed_targets
from kdlab.data import Batch


def hand_kd(zs, zt, y, T, alpha):
    """Hinton et al.'s KD loss written out with explicit sums: (1-α)·CE + α·T²·KL(p_t ‖ p_s)."""
    n, k = zs.shape
    kl = 0.0
    for i in range(n):
        pt = [math.exp(zt[i, j] / T) for j in range(k)]
        ps = [math.exp(zs[i, j] / T) for j in range(k)]
        pt = [p / sum(pt) for p in pt]
        ps = [p / sum(ps) for p in ps]
        kl += sum(pt[j] * math.log(pt[j] / ps[j]) for j in range(k))
    kl /= n  # batchmean: sum over classes, mean over the batch
    ce = 0.0
    for i in range(n):
        ce -= zs[i, y[i]] - math.log(sum(math.exp(zs[i, j]) for j in range(k)))
    ce /= n
    return (1 - alpha) * ce + alpha * T * T * kl


@pytest.mark.parametrize("T,alpha", [(1.0, 0.5), (4.0, 0.9), (2.5, 0.0), (8.0, 1.0)])
def test_kd_loss_matches_hand_computation(T, alpha):
    g = torch.Generator().manual_seed(0)
    zs, zt = torch.randn(5, 7, generator=g) * 3, torch.randn(5, 7, generator=g) * 3
    y = torch.randint(7, (5,), generator=g)
    got = kd_loss(zs, zt, y, T, alpha).item()
    want = hand_kd(zs, zt, y, T, alpha)
    assert got == pytest.approx(float(want), rel=1e-5)


def test_kl_term_is_batchmean_and_scaled_by_t_squared():
    g = torch.Generator().manual_seed(1)
    zs, zt = torch.randn(8, 10, generator=g), torch.randn(8, 10, generator=g)
    T = 3.0
    kl_sum_over_classes = F.kl_div(F.log_softmax(zs / T, 1), F.softmax(zt / T, 1), reduction="sum") / 8
    assert kd_loss(zs, zt, None, T, 1.0).item() == pytest.approx(T * T * kl_sum_over_classes.item(), rel=1e-5)
    # the common bug, averaging over classes too, would be K = 10 times smaller
    kl_mean = F.kl_div(F.log_softmax(zs / T, 1), F.softmax(zt / T, 1), reduction="mean")
    assert kd_loss(zs, zt, None, T, 1.0).item() == pytest.approx(10 * T * T * kl_mean.item(), rel=1e-5)


def test_alpha_convention_weights_the_kd_term():
    g = torch.Generator().manual_seed(2)
    zs, zt = torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)
    y = torch.randint(5, (4,), generator=g)
    ce = F.cross_entropy(zs, y).item()
    assert kd_loss(zs, zt, y, 4.0, 0.0).item() == pytest.approx(ce, rel=1e-6)
    assert kd_loss(zs, zs, y, 4.0, 0.3).item() == pytest.approx(0.7 * ce, rel=1e-5)  # KL(p||p) = 0


def test_kd_loss_gradient_check():
    g = torch.Generator().manual_seed(3)
    zs = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    zt = torch.randn(3, 4, generator=g, dtype=torch.float64)
    y = torch.randint(4, (3,), generator=g)
    # kd_loss computes in float32 internally; check the analytic gradient numerically in float64
    def f(z):
        T, a = 2.0, 0.6
        soft = F.kl_div(F.log_softmax(z / T, 1), F.log_softmax(zt / T, 1), reduction="batchmean", log_target=True)
        return a * T * T * soft + (1 - a) * F.cross_entropy(z, y)
    assert torch.autograd.gradcheck(f, (zs,))
    z32 = zs.detach().float().requires_grad_(True)
    kd_loss(z32, zt.float(), y, 2.0, 0.6).backward()
    zs64 = zs.detach().clone().requires_grad_(True)
    f(zs64).backward()
    assert torch.allclose(z32.grad.double(), zs64.grad, atol=1e-6)


def test_t_squared_keeps_gradient_scale():
    g = torch.Generator().manual_seed(4)
    zt = torch.randn(64, 10, generator=g) * 4
    norms = []
    for T in (4.0, 8.0, 16.0):
        z = torch.zeros(64, 10, requires_grad=True)
        kd_loss(z, zt, None, T, 1.0).backward()
        norms.append(z.grad.norm().item())
    # without T² the gradient would fall like 1/T² (16x from T=4 to T=16); with it, it stays within 2x
    assert max(norms) / min(norms) < 2.0


def test_smoothed_targets_and_cross_entropy_agree():
    y = torch.tensor([0, 2, 1])
    t = smoothed_targets(y, 4, 0.2)
    assert torch.allclose(t.sum(1), torch.ones(3))
    assert t[0, 0].item() == pytest.approx(0.8 + 0.05) and t[0, 1].item() == pytest.approx(0.05)
    logits = torch.randn(3, 4)
    manual = -(t * F.log_softmax(logits, 1)).sum(1).mean()
    model = lambda x: logits
    loss, _ = CrossEntropy(0.2)(model, None, Batch(x=torch.zeros(3), y=y, index=torch.arange(3)))
    assert loss.item() == pytest.approx(manual.item(), rel=1e-6)


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="temperature"):
        Distillation(temperature=0)
    with pytest.raises(ValueError, match="alpha"):
        Distillation(alpha=1.5)
    with pytest.raises(ValueError, match="label_smoothing"):
        CrossEntropy(1.0)


def test_distillation_uses_stored_teacher_logits():
    zt = torch.randn(4, 3)
    batch = Batch(x=torch.zeros(4, 1), y=torch.tensor([0, 1, 2, 0]), index=torch.arange(4),
                  extras={"teacher_logits": zt})
    student = lambda x: torch.zeros(4, 3)
    loss, _ = Distillation(2.0, 0.5)(student, None, batch)
    assert loss.item() == pytest.approx(kd_loss(torch.zeros(4, 3), zt, batch.y, 2.0, 0.5).item())
    with pytest.raises(ValueError, match="teacher"):
        Distillation()(student, None, Batch(x=batch.x, y=batch.y, index=batch.index))
