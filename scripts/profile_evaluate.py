"""Where an evaluate run spends its time (issue 4): wall time split into exclusive categories.

Wraps the functions that do the heavy work (the model's forward passes, backward passes,
SLIC, image decoding, file writing, the summary and plots) with timers that charge every
moment of the run to exactly one category: the innermost wrapped call running then, or
"other" (Python glue of explainers, metrics and the loop). Prints a Markdown table.

    python scripts/profile_evaluate.py configs/ci.toml            # the CI gate's config
    python scripts/profile_evaluate.py configs/ci.toml --out results/profile-ci.md --title after
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from pathlib import Path

import torch

import rise_bench.evaluation.runner as runner_module
import rise_bench.explainers.lime as lime_module
from rise_bench.evaluation.config import RunConfig
from rise_bench.evaluation.results import ResultWriter
from rise_bench.models import Classifier


class Attribution:
    """Exclusive wall time per category, driven by enter/leave calls from wrappers."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.stack: list[str] = []
        self.last = time.perf_counter()

    def _charge(self) -> None:
        now = time.perf_counter()
        category = self.stack[-1] if self.stack else "other (loop, explainer and metric glue)"
        self.seconds[category] = self.seconds.get(category, 0.0) + now - self.last
        self.last = now

    def wrap(self, function, category):
        """``function`` timed under ``category`` (a string, or a callable giving one per call)."""

        @functools.wraps(function)
        def timed(*args, **kwargs):
            name = category() if callable(category) else category
            self._charge()
            self.stack.append(name)
            self.calls[name] = self.calls.get(name, 0) + 1
            try:
                return function(*args, **kwargs)
            finally:
                self._charge()
                self.stack.pop()

        return timed


def forward_category() -> str:
    return (
        "model forward, with autograd"
        if torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
        else "model forward, no autograd"
    )


def instrument(attribution: Attribution) -> None:
    patches = [
        (Classifier, "forward", forward_category),
        (torch.Tensor, "backward", "backward passes"),
        (torch.autograd, "grad", "backward passes"),
        (lime_module, "superpixels", "SLIC superpixels"),
        (runner_module, "load_model", "model loading"),
        (runner_module, "save_maps", "writing maps, curves, rows"),
        (runner_module, "save_curves", "writing maps, curves, rows"),
        (ResultWriter, "write", "writing maps, curves, rows"),
        (runner_module, "write_outputs", "summary and plots"),
        (Classifier, "transform", "image decoding and resizing"),
    ]
    for owner, name, category in patches:
        if hasattr(owner, name):
            setattr(owner, name, attribution.wrap(getattr(owner, name), category))
    for module in ("imagenet", "voc", "coco", "folder"):
        dataset_module = __import__(f"rise_bench.datasets.{module}", fromlist=["x"])
        for value in vars(dataset_module).values():
            if isinstance(value, type) and "load" in vars(value):
                value.load = attribution.wrap(value.load, "image decoding and resizing")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="Run config TOML, e.g. configs/ci.toml.")
    parser.add_argument("--title", default="profile", help="Heading of the table.")
    parser.add_argument("--out", default=None, help="Append the Markdown table to this file.")
    args = parser.parse_args()
    attribution = Attribution()
    instrument(attribution)
    with tempfile.TemporaryDirectory() as folder:
        config = RunConfig.from_sources(args.config, out=str(Path(folder) / "run"))
        started = time.perf_counter()
        attribution.last = started
        runner_module.evaluate(config, log=lambda line: None)
        attribution._charge()
        total = time.perf_counter() - started
    lines = [
        f"### {args.title}: `{args.config}`, {torch.get_num_threads()} threads, {total:.1f} s wall",
        "",
        "| where | seconds | share | calls |",
        "|---|---|---|---|",
    ]
    for category, seconds in sorted(attribution.seconds.items(), key=lambda item: -item[1]):
        lines.append(f"| {category} | {seconds:.1f} | {seconds / total:.1%} | {attribution.calls.get(category, '')} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "a") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
