"""Training and evaluation of the embedded victims (seeded, resumable, with progress bars).

Recipe: SGD with Nesterov momentum 0.9, weight decay 5e-4, one-cycle learning rate
(peak 0.1; Smith & Topin 2019), batch 128, random 2-pixel shifts and horizontal flips,
channels-last tensors on the CPU. Each epoch ends with a checkpoint in
``ADV2_CACHE_DIR/train`` (:mod:`adv2lib.checkpoints`); an interrupted run resumes from the last
finished epoch.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..checkpoints import Checkpoint, checkpoint_path, save_weights
from ..utils import resolve_device, versions


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 4
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    augment: bool = True


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shift by up to 2 pixels (zero padding) and random horizontal flip."""
    n = x.shape[0]
    padded = F.pad(x, (2, 2, 2, 2))
    dx = torch.randint(0, 5, (n,), generator=generator)
    dy = torch.randint(0, 5, (n,), generator=generator)
    rows = (dy.view(n, 1) + torch.arange(x.shape[2])).view(n, 1, -1, 1).expand(n, x.shape[1], -1, padded.shape[3])
    shifted = padded.gather(2, rows)
    cols = (dx.view(n, 1) + torch.arange(x.shape[3])).view(n, 1, 1, -1).expand(n, x.shape[1], x.shape[2], -1)
    shifted = shifted.gather(3, cols)
    flip = torch.rand(n, generator=generator) < 0.5
    shifted[flip] = shifted[flip].flip(-1)
    return shifted


@torch.no_grad()
def evaluate_accuracy(model, dataset, batch_size: int = 1000, device="auto") -> float:
    """Top-1 accuracy of ``model`` on the whole of ``dataset`` (a TensorImageDataset)."""
    device = resolve_device(device)
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(dataset), batch_size):
        x, y = dataset.tensors(range(start, min(start + batch_size, len(dataset))))
        correct += (model(x.to(device)).argmax(1).cpu() == y).sum().item()
    model.train(was_training)
    return correct / len(dataset)


def train_victim(name: str, config: TrainConfig = TrainConfig(), device="auto", resume: bool = True,
                 write: bool = True, progress: bool = True) -> dict:
    """Train the embedded victim ``name`` on Fashion-MNIST and (if ``write``) save its
    weights and model card under ``ADV2_WEIGHTS_DIR/embedded``. Returns the card."""
    from ..data import fashion_mnist
    from . import build_victim, victim_weights_path

    device = resolve_device(device)
    torch.manual_seed(config.seed)
    train, test = fashion_mnist("train"), fashion_mnist("test")
    model = build_victim(name, "embedded").to(device).to(memory_format=torch.channels_last)
    steps_per_epoch = (len(train) + config.batch_size - 1) // config.batch_size
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay, nesterov=True)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr,
                                                    total_steps=config.epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed)
    checkpoint = Checkpoint(checkpoint_path(f"{name}-seed{config.seed}"), asdict(config),
                            model=model, optimizer=optimizer, scheduler=scheduler, generator=generator)
    start_epoch, elapsed, history = 0, 0.0, []
    ckpt = checkpoint.restore() if resume else None
    if ckpt is not None:
        start_epoch, elapsed, history = ckpt["epoch"], ckpt["elapsed"], ckpt["history"]
        print(f"resuming {name} from epoch {start_epoch}")
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(train), generator=generator)
        bar = tqdm(range(steps_per_epoch), desc=f"{name} epoch {epoch + 1}/{config.epochs}", disable=not progress)
        running = 0.0
        for step in bar:
            idx = order[step * config.batch_size : (step + 1) * config.batch_size]
            x, y = train.tensors(idx)
            if config.augment:
                x = augment_batch(x, generator)
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running = 0.9 * running + 0.1 * loss.item() if step else loss.item()
            bar.set_postfix(loss=f"{running:.3f}")
        elapsed += time.perf_counter() - t0
        acc = evaluate_accuracy(model, test, device=device)
        history.append({"epoch": epoch + 1, "train_loss": running, "test_accuracy": acc})
        print(f"{name} epoch {epoch + 1}: loss {running:.4f}, test accuracy {acc:.4f}")
        checkpoint.save(epoch=epoch + 1, elapsed=elapsed, history=history)
    model.eval()
    state = {k: v.contiguous().cpu() for k, v in model.state_dict().items()}
    card = {
        "name": name,
        "profile": "embedded",
        "architecture": type(model).__name__,
        "description": (model.__doc__ or "").strip().splitlines()[0],
        "parameters": sum(p.numel() for p in model.parameters()),
        "cam_grid": list(model.features(torch.zeros(1, 1, 28, 28, device=device)).shape[-2:]),
        "dataset": "Fashion-MNIST",
        "test_accuracy": evaluate_accuracy(model, test, device=device),
        "test_images": len(test),
        "training_seconds": round(elapsed, 1),
        "training_device": str(device),
        "torch_threads": torch.get_num_threads(),
        "config": asdict(config),
        "history": history,
        "versions": versions(),
    }
    if write:
        save_weights(victim_weights_path(name), state, card)
    return card
