"""Shared by the benchmark scripts: print a result and keep it in benchmarks/results/."""

import json
from pathlib import Path


def report(name: str, result: dict) -> dict:
    print(json.dumps(result, indent=2))
    folder = Path(__file__).parent / "results"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(result, indent=2))
    return result
