"""The adaptor's torch module: a gene-wise MLP (d → 64 → 32, shared by all genes) mapping each gene's vector,
cells as expression-weighted sums of the mapped vectors (``z = X · E'``), a linear head on z, and for
integration a batch classifier behind gradient reversal. Also the exact folding of a whitening map into the
first layer, so that a module trained on whitened table rows takes raw rows."""

from __future__ import annotations


def _torch():
    import torch

    return torch


def build_module(dim: int, n_classes: int, hidden: int = 64, out: int = 32, n_batches: int = 0):
    """A fresh adaptor module for ``dim``-d gene vectors and ``n_classes`` labels, with a batch classifier behind
    gradient reversal when ``n_batches`` > 1; ``module(E, X)`` returns (head logits, z)."""
    torch = _torch()
    nn = torch.nn

    class ReverseGradient(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.view_as(x)

        @staticmethod
        def backward(ctx, grad):
            return -grad

    class GeneAdaptor(nn.Module):
        def __init__(self):
            super().__init__()
            self.gene_mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, out))
            self.head = nn.Linear(out, n_classes)
            if n_batches > 1:
                self.batch_head = nn.Sequential(nn.Linear(out, hidden), nn.ReLU(), nn.Linear(hidden, n_batches))

        def batch_logits(self, z):
            """Batch classifier on the normalised z, its gradient reversed into the adaptor."""
            return self.batch_head(ReverseGradient.apply(nn.functional.normalize(z, dim=1)))

        def forward(self, E, X):
            z = X @ self.gene_mlp(E)  # sum over genes, no 1/G and no 1/ΣX (as in the paper's adaptor)
            return self.head(z), z

    return GeneAdaptor()


def fold_whitening(module, whitening, *, n_classes: int, n_batches: int = 0):
    """A module on raw table rows equal to ``module`` on whitened rows: the first layer's x = (e - m) @ M
    becomes e @ (M W1ᵀ) + (b1 - m M W1ᵀ). Exact up to float rounding; every other weight is copied."""
    torch = _torch()
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    weight, bias = state["gene_mlp.0.weight"].double(), state["gene_mlp.0.bias"].double()
    M = torch.as_tensor(whitening.matrix, dtype=torch.float64)
    m = torch.as_tensor(whitening.mean, dtype=torch.float64)
    state["gene_mlp.0.weight"] = (weight @ M.T).float()
    state["gene_mlp.0.bias"] = (bias - (m @ M) @ weight.T).float()
    folded = build_module(int(M.shape[0]), n_classes, n_batches=n_batches)
    folded.load_state_dict(state)
    folded.eval()
    return folded
