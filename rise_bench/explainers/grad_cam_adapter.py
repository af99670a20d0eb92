"""pytorch-grad-cam's CAM methods by name: ``grad-cam:GradCAM``, ``grad-cam:ScoreCAM``... (extra ``[grad-cam]``).

Each name is a small class over ``GradCamLibraryAdapter``, registered when
pytorch-grad-cam is installed (imported only when a map is asked for). The library gets
the model as ``ScoreModule`` (its logit by default, as our ``gradcam``), the model's
``cam_layer`` as its one target layer and the model's ``cam_reshape`` as its
``reshape_transform`` (ViT token grids), and one ``ClassifierOutputTarget`` per image;
ScoreCAM and AblationCAM score their masked copies in batches of the run's batch size.

**The maps are the library's: rescaled to [0, 1] per image** (pytorch-grad-cam
normalises every CAM), an exception to DESIGN's raw values. Scores that depend only on
the ranking of pixels (deletion, insertion, ROAD, pointing) are unaffected.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import ModelError
from .adapters import ScoreModule, library_available, require_library
from .base import Explainer, ExplainerParams
from .registry import register_explainer

PREFIX = "grad-cam:"
#: The classes offered, pytorch-grad-cam's names (``pytorch_grad_cam.<NAME>``).
CAM_CLASSES = (
    "GradCAM",
    "HiResCAM",
    "GradCAMPlusPlus",
    "XGradCAM",
    "ScoreCAM",
    "AblationCAM",
    "EigenCAM",
    "EigenGradCAM",
    "LayerCAM",
    "FullGrad",
    "GradCAMElementWise",
)
#: Methods that score masked copies in batches (the batch size is passed through).
BATCHED = ("ScoreCAM", "AblationCAM")


@dataclass(frozen=True)
class GradCamLibraryParams(ExplainerParams):
    """Parameters of a pytorch-grad-cam method (its own defaults).

    Attributes:
        score: explained score handed to the library: the ``logit`` (default), ``softmax`` or ``sigmoid``.
        aug_smooth: test-time augmentation (flips, brightness), the library's aug_smooth.
        eigen_smooth: first principal component of the weighted activations, the library's eigen_smooth.
    """

    score: Literal["logit", "softmax", "sigmoid"] = "logit"
    aug_smooth: bool = False
    eigen_smooth: bool = False


class _SilentTqdm:
    """Stands in for the ``tqdm`` module in ScoreCAM's and AblationCAM's modules: bars off (the run has its own)."""

    @staticmethod
    def tqdm(iterable, *args, **kwargs):
        return iterable


@contextlib.contextmanager
def _quiet_progress():
    """ScoreCAM and AblationCAM draw a tqdm bar per image on stderr, with no switch; silence them for a call."""
    import importlib

    modules = [importlib.import_module(f"pytorch_grad_cam.{name}") for name in ("score_cam", "ablation_cam")]
    saved = [getattr(module, "tqdm", None) for module in modules]
    for module in modules:
        module.tqdm = _SilentTqdm
    try:
        yield
    finally:
        for module, original in zip(modules, saved, strict=True):
            module.tqdm = original


class GradCamLibraryAdapter(Explainer):
    """A pytorch-grad-cam class behind the explainer contract (see the module docstring)."""

    Params = GradCamLibraryParams
    cam_name: str
    library = "pytorch-grad-cam"
    needs_gradients = True

    def cam(self, model, batch_size: int = 8):
        """The library's CAM object for ``model`` (its ``cam_layer``, ``cam_reshape`` and the explained score)."""
        import pytorch_grad_cam

        layer = getattr(model, "cam_layer", None)
        if layer is None:
            raise ModelError(f"{self.name} needs the model's cam_layer; '{getattr(model, 'name', model)}' has none")
        cls = getattr(pytorch_grad_cam, self.cam_name, None)
        if cls is None:
            raise ModelError(f"the installed pytorch-grad-cam has no {self.cam_name}; upgrade it")
        cam = cls(
            model=ScoreModule(model, self.params.score),
            target_layers=[layer],
            reshape_transform=getattr(model, "cam_reshape", None),
        )
        if self.cam_name in BATCHED:
            cam.batch_size = batch_size
        return cam

    def _explain(self, model, images, targets, seeds, execution):
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        batch, count = targets.shape
        cam = self.cam(model, execution.batch_size)
        out = torch.empty(batch, count, *images.shape[-2:], device=images.device)
        try:
            for column in range(count):
                chosen = [ClassifierOutputTarget(int(t)) for t in targets[:, column].tolist()]
                with torch.enable_grad(), _quiet_progress():
                    # parameters are frozen, so the input carries the graph the library differentiates
                    maps = cam(
                        input_tensor=images.clone().requires_grad_(True),
                        targets=chosen,
                        aug_smooth=self.params.aug_smooth,
                        eigen_smooth=self.params.eigen_smooth,
                    )
                out[:, column] = torch.from_numpy(maps).to(images.device, torch.float32)
                execution.report(column + 1, count)
        finally:
            cam.activations_and_grads.release()
        return out


def register_adapters() -> list[str]:
    """Register ``grad-cam:NAME`` for every class of ``CAM_CLASSES`` (when pytorch-grad-cam is installed)."""
    if not library_available("pytorch_grad_cam"):
        return []
    names = []
    for name in CAM_CLASSES:
        cls = type(
            f"GradCamLibrary{name}",
            (GradCamLibraryAdapter,),
            {"cam_name": name, "__doc__": f"pytorch-grad-cam's {name} (maps rescaled to [0, 1] by the library)."},
        )
        register_explainer(PREFIX + name)(cls)
        names.append(PREFIX + name)
    return names


require_library(PREFIX, "pytorch_grad_cam", "grad-cam")
register_adapters()
