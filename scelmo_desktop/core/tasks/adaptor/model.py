"""A trained adaptor as AnnData-facing code uses it: embed cells, map gene vectors, predict labels, save, and load
a saved one (``torch.load(weights_only=True)``: no arbitrary pickles)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from scelmo_desktop.core._infra.errors import ScelmoError
from scelmo_desktop.core.tasks.adaptor.module import _torch, build_module


@dataclass
class TrainedAdaptor:
    """A trained adaptor: its torch module, classes, training genes, history, device and provenance."""

    module: object
    classes: list[str]
    genes: list[str]
    dim: int
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    provenance: dict = field(default_factory=dict)
    split: tuple[np.ndarray, np.ndarray] | None = None  # (train, validation) cell indices of this training run

    def embed(self, X, E: np.ndarray, *, batch: int = 4096) -> np.ndarray:
        """z for every cell of ``X`` (cells x genes) with table ``E`` aligned to those genes."""
        return _forward(self.module, X, E, self.device, batch)[1]

    def gene_vectors(self, E: np.ndarray) -> np.ndarray:
        """E' = the MLP applied to every gene row (genes x 32); z of a cell is its expression times E'."""
        torch = _torch()
        self.module.eval()
        with torch.no_grad():
            return (
                self.module.gene_mlp(torch.as_tensor(np.asarray(E, dtype=np.float32), device=self.device)).cpu().numpy()
            )

    def predict(self, X, E: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Head labels, their probabilities (cells x classes) and z."""
        logits, z = _forward(self.module, X, E, self.device, 4096)
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        return np.asarray(self.classes)[probabilities.argmax(axis=1)], probabilities, z

    def save(self, path: str | Path) -> None:
        from scelmo_desktop.core._infra.atomic import write_atomic

        torch = _torch()
        # plain Python types only: torch.load(weights_only=True) accepts nothing else (no numpy scalars)
        # the batch classifier only shapes training; predictions never use it
        state = {k: v for k, v in self.module.state_dict().items() if not k.startswith("batch_head.")}
        payload = {
            "state_dict": state,
            "classes": [str(c) for c in self.classes],
            "genes": [str(g) for g in self.genes],
            "dim": int(self.dim),
            "history": [{k: float(v) for k, v in h.items()} for h in self.history],
            "best_epoch": int(self.best_epoch),
            "provenance": {k: str(v) for k, v in self.provenance.items()},
        }
        write_atomic(path, lambda tmp: torch.save(payload, tmp))


def _read_saved(path: str | Path, device: str = "cpu") -> dict:
    try:
        return _torch().load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file becomes one clear message
        raise ScelmoError(f"{path} is not a readable scELMo adaptor: {exc}") from exc


def saved_adaptor_genes(path: str | Path) -> list[str]:
    """The genes a saved adaptor was trained on (the gene table must give them vectors)."""
    return list(_read_saved(path)["genes"])


def load_adaptor(
    path: str | Path, *, table_dim: int, genes: list[str] | None = None, device: str = "cpu"
) -> tuple[TrainedAdaptor, dict]:
    """Load a saved adaptor; refuses a gene-table dimension other than the one it was trained on and reports
    the overlap between its training genes and ``genes`` (the new data's)."""
    payload = _read_saved(path, device)
    if payload["dim"] != table_dim:
        raise ScelmoError(
            f"The adaptor in {path} was trained on {payload['dim']}-d gene vectors but the gene table "
            f"has {table_dim}-d vectors; use the same embedder as for training."
        )
    module = build_module(payload["dim"], len(payload["classes"]))
    module.load_state_dict(payload["state_dict"])
    module.to(device).eval()
    adaptor = TrainedAdaptor(
        module=module,
        classes=list(payload["classes"]),
        genes=list(payload["genes"]),
        dim=payload["dim"],
        history=payload["history"],
        best_epoch=payload["best_epoch"],
        device=device,
        provenance=payload["provenance"],
    )
    overlap = {}
    if genes is not None:
        shared = len(set(genes) & set(adaptor.genes))
        overlap = {
            "training_genes": len(adaptor.genes),
            "data_genes": len(genes),
            "shared": shared,
            "fraction_of_training_genes": shared / max(1, len(adaptor.genes)),
        }
    return adaptor, overlap


def _dense_rows(X, rows) -> np.ndarray:
    block = X[rows]
    if sp.issparse(block):  # toarray() is already a fresh array: no second copy of the rows x genes block
        return block.toarray().astype(np.float32, copy=False)
    return np.array(block, dtype=np.float32)  # a copy: a view would tie the tensor to X (maybe read-only)


def _forward(module, X, E, device, batch):
    torch = _torch()
    module.eval()
    table = torch.as_tensor(np.asarray(E, dtype=np.float32), device=device)
    logits, zs = [], []
    with torch.no_grad():
        for start in range(0, X.shape[0], batch):
            x = torch.as_tensor(_dense_rows(X, slice(start, start + batch)), device=device)
            out, z = module(table, x)
            logits.append(out.cpu().numpy())
            zs.append(z.cpu().numpy())
    return np.concatenate(logits), np.concatenate(zs)
