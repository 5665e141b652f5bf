"""The adaptor's former triplet loss, kept as the reference the exact O(B^2 log B) one is checked against
(tests/test_adaptor.py) and timed against (benchmarks/bench_adaptor_epoch.py): every (anchor, positive,
negative) enumerated in B x B x B masks, ~1 s per 512-cell batch on one core."""

import torch


def brute_force_triplet_loss(z, labels, margin=0.05, anchor_chunk=64):
    """Mean over non-zero terms of max(0, d(a,p) - d(a,n) + margin), z L2-normalised."""
    z = torch.nn.functional.normalize(z, dim=1)
    distance = torch.cdist(z, z)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=z.device)
    positive, negative = same & ~eye, ~same
    total, count = z.new_zeros(()), 0
    for start in range(0, len(labels), anchor_chunk):
        d = distance[start : start + anchor_chunk]
        valid = positive[start : start + anchor_chunk, :, None] & negative[start : start + anchor_chunk, None, :]
        terms = torch.relu(d[:, :, None] - d[:, None, :] + margin)[valid]
        nonzero = terms > 0
        total = total + terms[nonzero].sum()
        count += int(nonzero.sum())
    return total / count if count else total
