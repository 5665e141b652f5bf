"""The fine-tuned light adaptor (METHOD.md §3.4), without the original's bugs.

Module: a gene-wise MLP maps each gene's LLM vector to 32 dimensions (d → 64 → 32, shared by all genes), a cell
is the expression-weighted sum of its genes' mapped vectors (``z = X · E'``), and a linear head classifies z.
Loss: cross-entropy + 100 × triplet loss (all valid triplets in the batch, L2-normalised z, margin 0.05, mean
over the non-zero triplets — pytorch-metric-learning's defaults). Adam 1e-3, batch 512, up to 30 epochs; every
5 epochs the 10-NN accuracy of a 10% validation split (in z-space) is checked, training stops when it no longer
improves, and the best weights are really restored (the original kept the last ones).

Batch-aware variant (beyond the paper, for integration): with ``batches`` given, a batch classifier reads the
L2-normalised z through a gradient-reversal layer (Ganin & Lempitsky 2015), so the adaptor is trained to keep
labels apart while making batches indistinguishable; its weight is ``adversarial_weight``.

Because the MLP acts per gene, a trained adaptor applies to data with other genes: their table rows are mapped
by the same MLP. Saved files hold the weights, the training genes, the classes and provenance; loading uses
``torch.load(weights_only=True)`` (no arbitrary pickles).

The package is split as scvi-tools splits a model: ``module`` (the torch ``nn.Module``), ``model`` (the trained
adaptor as AnnData-facing code uses it: embed, predict, save, load) and ``train`` (the training loop and loss).
"""

from scelmo_desktop.core.tasks.adaptor.model import TrainedAdaptor, load_adaptor, saved_adaptor_genes
from scelmo_desktop.core.tasks.adaptor.train import auto_batch_size, train_adaptor, triplet_loss

__all__ = ["TrainedAdaptor", "auto_batch_size", "load_adaptor", "saved_adaptor_genes", "train_adaptor", "triplet_loss"]
