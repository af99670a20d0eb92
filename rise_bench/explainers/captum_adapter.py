"""Captum's attribution methods by name: ``captum:IntegratedGradients``, ``captum:Occlusion``... (extra ``[captum]``).

Each name is a small class over ``CaptumAdapter``, registered when Captum is installed
(Captum itself is imported only when a map is asked for). The adapter hands Captum the
model as ``ScoreModule`` (``model.scores(x, kind)``: the logit for gradient and layer
methods, the softmax probability for perturbation methods, as for the native ones) and
calls ``attribute`` once per image and target with Captum's defaults, except:

- baselines are 0, the data set's mean colour in the model's normalised input (for
  ``GradientShap`` and ``DeepLiftShap``, which need a distribution: 0 and the black image);
- ``FeatureAblation``, ``ShapleyValueSampling``, ``KernelShap`` and ``Lime`` get SLIC
  superpixels as the feature mask (the segmentation of our ``lime``, ``num_segments``
  and ``compactness``); ``Occlusion`` slides a 3 x 16 x 16 window with stride 8;
- the batch size goes to ``internal_batch_size`` / ``perturbations_per_eval``;
- stochastic methods (and noise tunnels) draw from torch's RNG seeded per image.

``--param captum:Saliency.noise_tunnel=smoothgrad`` (``smoothgrad_sq``, ``vargrad``) wraps
the method in Captum's ``NoiseTunnel`` (``nt_samples``, ``stdevs``). ``attribute`` returns
exactly what Captum returns; the map is its sum of absolute values over channels, except
for ``LayerGradCam``, whose one-channel map at the layer's resolution is upsampled
bilinearly to the input (Captum's sign kept; ``relu_attributions`` is its option).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from ..errors import ModelError, UsageError
from .adapters import ScoreModule, library_available, require_library, seeded_global_rng
from .base import Explainer, ExplainerParams
from .lime import superpixels
from .registry import register_explainer

PREFIX = "captum:"
NoiseTunnelType = Literal["none", "smoothgrad", "smoothgrad_sq", "vargrad"]


@dataclass(frozen=True)
class Option:
    """One parameter of an adapter: its name, type, default, description, and the ``attribute`` keyword it feeds."""

    name: str
    kind: Any
    default: Any
    doc: str
    keyword: str | None = None


@dataclass(frozen=True)
class Spec:
    """How one Captum class is called.

    Attributes:
        family: ``gradient``, ``perturbation`` or ``layer`` (which score, which reduction).
        module: the class is built on an ``nn.Module`` (it hooks the network's layers).
        options: the method's own parameters.
        baselines: ``zero``, ``distribution`` (0 and black) or None (the method takes none).
        batch_keyword: the ``attribute`` keyword that takes the batch size, if any.
    """

    family: str
    module: bool = False
    options: tuple[Option, ...] = ()
    baselines: str | None = None
    batch_keyword: str | None = None


_SEGMENTS = (
    Option("num_segments", int, 50, "SLIC's target number of superpixels of the feature mask (50, as lime)."),
    Option("compactness", float, 10.0, "SLIC's colour/space trade-off (10, as lime)."),
)
_PERTURBATION = {"family": "perturbation", "baselines": "zero", "batch_keyword": "perturbations_per_eval"}

SPECS: dict[str, Spec] = {
    "IntegratedGradients": Spec(
        "gradient",
        options=(
            Option("n_steps", int, 50, "integration steps (Captum's 50).", "n_steps"),
            Option(
                "method",
                Literal["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"],
                "gausslegendre",
                "integration rule (Captum's gausslegendre).",
                "method",
            ),
        ),
        baselines="zero",
        batch_keyword="internal_batch_size",
    ),
    "Saliency": Spec(
        "gradient", options=(Option("abs", bool, True, "absolute value of the gradient (Captum's true).", "abs"),)
    ),
    "InputXGradient": Spec("gradient"),
    "GuidedBackprop": Spec("gradient", module=True),
    "Deconvolution": Spec("gradient", module=True),
    "DeepLift": Spec("gradient", module=True, baselines="zero"),
    "DeepLiftShap": Spec("gradient", module=True, baselines="distribution"),
    "GradientShap": Spec(
        "gradient",
        options=(
            Option("n_samples", int, 5, "random points per input (Captum's 5).", "n_samples"),
            Option("stdevs", float, 0.0, "std of the noise added to each point (Captum's 0).", "stdevs"),
        ),
        baselines="distribution",
    ),
    "Occlusion": Spec(
        **_PERTURBATION,
        options=(
            Option("window", int, 16, "side of the 3 x window x window occluding patch (16)."),
            Option("stride", int, 8, "step of the patch in pixels (8)."),
        ),
    ),
    "FeatureAblation": Spec(**_PERTURBATION, options=_SEGMENTS),
    "ShapleyValueSampling": Spec(
        **_PERTURBATION,
        options=(Option("n_samples", int, 25, "feature permutations (Captum's 25).", "n_samples"), *_SEGMENTS),
    ),
    "KernelShap": Spec(
        **_PERTURBATION,
        options=(Option("n_samples", int, 25, "coalitions sampled (Captum's 25).", "n_samples"), *_SEGMENTS),
    ),
    "Lime": Spec(
        **_PERTURBATION,
        options=(Option("n_samples", int, 25, "perturbed samples (Captum's 25).", "n_samples"), *_SEGMENTS),
    ),
    "LayerGradCam": Spec(
        "layer",
        options=(Option("relu_attributions", bool, False, "ReLU on the map (Captum's false).", "relu_attributions"),),
    ),
}

#: Settings small enough for the tests' tiny models and single images.
_TINY = {
    "IntegratedGradients": {"n_steps": 8},
    "GradientShap": {"n_samples": 4},
    "ShapleyValueSampling": {"n_samples": 2, "num_segments": 40},
    "KernelShap": {"n_samples": 40, "num_segments": 40},
    "Lime": {"n_samples": 40, "num_segments": 40},
    "FeatureAblation": {"num_segments": 40},
    "Occlusion": {"window": 8, "stride": 8},
}


class CaptumAdapter(Explainer):
    """A Captum attribution class behind the explainer contract (see the module docstring)."""

    captum_name: str
    spec: Spec
    library = "captum"

    def attribute(self, model, image: torch.Tensor, target: int, seed: int = 0, batch_size: int = 8) -> torch.Tensor:
        """What Captum's ``attribute`` returns for one normalised ``[1,3,H,W]`` image and one target."""
        import captum.attr

        params = self.params
        spec = self.spec
        scorer = ScoreModule(model, params.score)
        if spec.family == "layer":
            layer = getattr(model, "cam_layer", None)
            if layer is None or getattr(model, "cam_reshape", None) is not None:
                raise ModelError(
                    f"{self.name} needs a convolutional cam_layer; model '{getattr(model, 'name', model)}' has none"
                )
            method = getattr(captum.attr, self.captum_name)(scorer, layer)
        else:
            method = getattr(captum.attr, self.captum_name)(scorer)
        keywords: dict[str, Any] = {"target": target}
        keywords.update({o.keyword: getattr(params, o.name) for o in spec.options if o.keyword})
        if spec.batch_keyword:
            keywords[spec.batch_keyword] = batch_size
        if spec.baselines == "zero":
            keywords["baselines"] = torch.zeros_like(image)
        elif spec.baselines == "distribution":
            keywords["baselines"] = torch.cat([torch.zeros_like(image), model.normalise(torch.zeros_like(image))])
        if any(o.name == "num_segments" for o in spec.options):
            segments = superpixels(model.denormalise(image[0]), params.num_segments, params.compactness)
            keywords["feature_mask"] = segments.to(image.device)[None, None]
        if self.captum_name == "Occlusion":
            keywords["sliding_window_shapes"] = (image.shape[1], params.window, params.window)
            keywords["strides"] = (image.shape[1], params.stride, params.stride)
        if params.noise_tunnel != "none":
            if "stdevs" in keywords:  # GradientShap: its own stdevs would be the tunnel's
                raise UsageError(f"{self.name} adds its own noise (stdevs); it takes no noise_tunnel")
            keywords.update(nt_type=params.noise_tunnel, nt_samples=params.nt_samples, stdevs=params.stdevs)
            method = captum.attr.NoiseTunnel(method)
        with torch.enable_grad(), seeded_global_rng(seed, image.device):
            return method.attribute(image, **keywords)

    def reduce(self, attribution: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Captum's output ``[1,C,h,w]`` as one ``[H,W]`` map (see the module docstring)."""
        if self.spec.family == "layer":
            return F.interpolate(attribution[:, :1].float(), size=size, mode="bilinear", align_corners=False)[0, 0]
        return attribution[0].float().abs().sum(dim=0)

    def _explain(self, model, images, targets, seeds, execution):
        batch, count = targets.shape
        size = tuple(images.shape[-2:])
        out = torch.empty(batch, count, *size, device=images.device)
        for index in range(batch):
            for column in range(count):
                image, target, seed = images[index : index + 1], int(targets[index, column]), int(seeds[index])
                raw = self.attribute(model, image, target, seed, execution.batch_size)
                out[index, column] = self.reduce(raw.detach(), size)
                execution.report(index * count + column + 1, batch * count)
        return out


def _params_class(name: str, spec: Spec) -> type:
    score = "softmax" if spec.family == "perturbation" else "logit"
    common = (
        Option("score", Literal["logit", "softmax", "sigmoid"], score, f"explained score (``{score}`` by default)."),
        Option("noise_tunnel", NoiseTunnelType, "none", "Captum's NoiseTunnel: smoothgrad, smoothgrad_sq, vargrad."),
        Option("nt_samples", int, 5, "noisy copies of a noise tunnel (Captum's 5)."),
        Option("stdevs", float, 1.0, "noise std of a noise tunnel, in normalised input units (Captum's 1)."),
        Option("seed", int, 0, "seed of torch's RNG for stochastic methods and noise tunnels (per image)."),
    )
    options = [*spec.options, *(o for o in common if o.name not in {s.name for s in spec.options})]
    params = dataclasses.make_dataclass(
        f"Captum{name}Params",
        [(o.name, o.kind, dataclasses.field(default=o.default)) for o in options],
        bases=(ExplainerParams,),
        frozen=True,
    )
    params.__doc__ = f"Parameters of Captum's {name}.\n\n    Attributes:\n" + "".join(
        f"        {o.name}: {o.doc}\n" for o in options
    )
    return params


def register_adapters() -> list[str]:
    """Register ``captum:NAME`` for every class of ``SPECS`` (when Captum is installed); returns the names."""
    if not library_available("captum"):
        return []
    names = []
    for name, spec in SPECS.items():
        cls = type(
            f"Captum{name}",
            (CaptumAdapter,),
            {
                "Params": _params_class(name, spec),
                "captum_name": name,
                "spec": spec,
                "needs_gradients": spec.family != "perturbation",
                "tiny_params": _TINY.get(name, {}),
                "__doc__": f"Captum's {name} ({spec.family} method).",
            },
        )
        register_explainer(PREFIX + name)(cls)
        names.append(PREFIX + name)
    return names


require_library(PREFIX, "captum", "captum")
register_adapters()
