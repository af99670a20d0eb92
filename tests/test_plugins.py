"""Methods from outside the package: entry points of installed packages, and a class in a local file."""

from __future__ import annotations

import textwrap
from importlib import metadata

import pytest
import torch
from typer.testing import CliRunner

from rise_bench.cli import app
from rise_bench.errors import UsageError
from rise_bench.explainers import list_explainers, plugins
from rise_bench.explainers.registry import EXPLAINERS, expand_methods

from .helpers.models import TINY_SIZE, texture_images

#: A method in a file of its own: the map is the image's brightness (no model needed).
PLUGIN = textwrap.dedent(
    """
    from rise_bench.explainers import Explainer


    class Brightness(Explainer):
        name = "brightness"

        def _explain(self, model, images, targets, seeds, execution):
            value = images.mean(1, keepdim=True)
            return value.expand(-1, targets.shape[1], -1, -1).clone()
    """
)


@pytest.fixture
def forget_plugins():
    """Unregister what a test registers (the registry is global)."""
    before = set(EXPLAINERS.names())
    yield
    for name in set(EXPLAINERS.names()) - before:
        EXPLAINERS._classes.pop(name)


def test_a_class_in_a_file_is_a_method(tmp_path, forget_plugins, region_model):
    file = tmp_path / "brightness.py"
    file.write_text(PLUGIN)
    assert expand_methods([f"rise,{file}:Brightness"]) == ["rise", "brightness"]
    assert "brightness" in list_explainers()
    assert expand_methods([f"{file}:Brightness"]) == ["brightness"]  # a second time: the same class
    images = texture_images(1)
    saliency = EXPLAINERS.get("brightness")().explain(region_model, images, [0])
    assert saliency.shape == (1, *TINY_SIZE) and torch.allclose(saliency[0], images[0].mean(0))


def test_bad_file_methods_get_one_line(tmp_path, forget_plugins):
    file = tmp_path / "broken.py"
    file.write_text("raise RuntimeError('boom')\n")
    unnamed = tmp_path / "unnamed.py"
    unnamed.write_text(PLUGIN.replace('name = "brightness"', "pass"))
    cases = [
        (f"{tmp_path / 'missing.py'}:X", "not found"),
        (f"{file}:X", "failed to import: RuntimeError: boom"),
        (f"{unnamed}:Missing", "has no class 'Missing'"),
        (f"{unnamed}:Explainer", "give the class a 'name'"),
        (f"{unnamed}:Brightness", "give the class a 'name'"),
    ]
    for item, message in cases:
        with pytest.raises(UsageError, match=message):
            expand_methods([item])
    renamed = tmp_path / "clash.py"
    renamed.write_text(PLUGIN.replace('name = "brightness"', 'name = "rise"'))
    with pytest.raises(UsageError, match="belongs to another method"):
        expand_methods([f"{renamed}:Brightness"])


def test_the_file_method_runs_from_the_command_line(tmp_path, forget_plugins):
    file = tmp_path / "brightness.py"
    file.write_text(PLUGIN)
    out = tmp_path / "explained"
    result = CliRunner().invoke(app, ["explain", "sample:chelsea", "--method", f"{file}:Brightness", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert any(path.suffix == ".png" for path in out.rglob("*"))


def test_entry_points_register_their_classes_and_broken_ones_are_reported(tmp_path, forget_plugins, monkeypatch):
    file = tmp_path / "entry_brightness.py"
    file.write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    points = [
        metadata.EntryPoint("glow", "entry_brightness:Brightness", plugins.GROUP),
        metadata.EntryPoint("ghost", "no_such_module:Nothing", plugins.GROUP),
    ]
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: [p for p in points if p.group == group])
    heard = []
    monkeypatch.setattr(plugins, "warn", heard.append)
    assert plugins.load_entry_points() == ["glow"]
    assert "glow" in list_explainers() and expand_methods(["all"])[-1] == "glow"
    assert len(heard) == 1 and "'ghost'" in heard[0] and "not loaded" in heard[0]
