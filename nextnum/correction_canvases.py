"""Training canvases made from saved corrections, mixed into training batches."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .corrections import Corrections
from .inputs import ImageError

log = logging.getLogger("nextnum.corrections")


class CorrectionCanvases:
    """The trained-on corrections as model canvases, mixed into training batches.

    Each image goes through preprocess() once, as a reading would (the model's own settings); every draw
    then jitters it a little (scale, shift, rotation).
    Corrections have no digit boxes, so the box-guided losses skip them (Batch.boxed).
    """

    def __init__(self, root: str | Path, cfg) -> None:
        import torch
        from .config import EOS, PAD
        from .preprocess import preprocess
        train, held = Corrections(root).split()
        K = cfg.data.max_len  # the length training targets have
        hw = (cfg.model.img_h, cfg.model.img_w)
        canvases, targets = [], []
        for name, label in train.items():
            try:
                pre = preprocess(Corrections(root).root / name, hw, match_strokes=cfg.model.match_strokes)
            except ImageError as e:  # a file that is not (or no longer) readable is left out of training
                log.warning("corrections: skipped %s: %s", name, e)
                continue
            if pre.empty or len(label) > K:
                continue
            canvases.append(torch.from_numpy(pre.canvas))
            targets.append([int(c) for c in label] + [EOS] + [PAD] * (K - len(label)))
        if not canvases:
            raise FileNotFoundError(f"{root}: no corrections to train on ({len(held)} held out, none readable left)")
        self.images = torch.stack(canvases)[:, None].float()  # (N, 1, H, W), ink = 1
        self.targets = torch.tensor(targets)  # (N, K + 1)
        self.held_out = len(held)
        self.root = Path(root)

    def __len__(self) -> int:
        return len(self.images)

    def report(self, before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
        """metrics.json's record of a run on corrections: how many, and the held-out part's score before and after."""
        acc = lambda r: None if r is None else r["sequence_accuracy"]  # noqa: E731
        return {"folder": str(self.root), "trained_on": len(self), "held_out": self.held_out,
                "held_out_before": acc(before), "held_out_after": acc(after)}

    def mix_into(self, b, n: int, data_cfg, gen):
        """Batch b with n correction canvases appended (b.boxed marks where the boxed rows end)."""
        import torch
        import torch.nn.functional as F
        from .data import Batch
        if n <= 0:
            return b
        idx = torch.randint(0, len(self), (n,), generator=gen)
        th = torch.deg2rad((torch.rand(n, generator=gen) * 2 - 1) * min(data_cfg.rotate, 6.0))
        sc = 1 / (0.9 + 0.15 * torch.rand(n, generator=gen))  # shown at 0.9-1.05 of its size
        A = torch.zeros(n, 2, 3)
        A[:, 0, 0], A[:, 0, 1] = sc * torch.cos(th), -sc * torch.sin(th)
        A[:, 1, 0], A[:, 1, 1] = sc * torch.sin(th), sc * torch.cos(th)
        A[:, :, 2] = (torch.rand(n, 2, generator=gen) * 2 - 1) * 0.05  # up to 5% of the canvas
        grid = F.affine_grid(A, [n, 1, *self.images.shape[-2:]], align_corners=False)
        img = F.grid_sample(self.images[idx], grid, align_corners=False)
        tgt = self.targets[idx]
        K = b.boxes.shape[1]
        lengths = (tgt < 10).sum(1)
        return Batch(torch.cat([b.images, img]), torch.cat([b.targets, tgt[:, :K + 1]]), torch.cat([b.lengths, lengths]),
                     torch.cat([b.boxes, torch.zeros(n, K, 4)]), boxed=len(b.images) if b.boxed is None else b.boxed)
