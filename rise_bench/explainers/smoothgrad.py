"""SmoothGrad (Smilkov et al. 2017) as a wrapper any gradient method takes: ``smoothgrad:<method>``.

``smoothgrad:gradient`` is the mean of ``gradient``'s maps over ``samples`` noisy copies of
the image, the noise Gaussian with std ``sigma`` times the image's value range (max - min),
drawn from the image's seed. It averages the wrapped method's maps, as Captum's
``NoiseTunnel`` averages attributions; for ``gradient`` these are ``max_c |grad|`` per copy.
The wrapper takes the wrapped method's parameters too (``--param
smoothgrad:gradient.score=softmax``). Its class is made and registered the first time its
name is used (``--method smoothgrad:gradcam``), so any gradient method, plugins and
adapters included, can be wrapped.
"""

from __future__ import annotations

import dataclasses

import torch

from ..errors import UsageError
from ..seeds import seeded_generator
from .base import Explainer, chunks
from .registry import EXPLAINERS, METHOD_RESOLVERS, expand_methods, explainer_class, register_explainer

PREFIX = "smoothgrad:"


class SmoothGradBase(Explainer):
    """The wrapper's behaviour; ``smoothgrad_class`` binds it to one wrapped method."""

    needs_gradients = True
    on_demand = True
    inner: type[Explainer]

    def _inner(self) -> Explainer:
        names = {f.name for f in dataclasses.fields(self.inner.Params)}
        return self.inner(**{k: v for k, v in self.resolved_params().items() if k in names})

    def _explain(self, model, images, targets, seeds, execution):
        inner = self._inner()
        samples, sigma = self.params.samples, self.params.sigma
        maps = []
        for index in range(images.shape[0]):
            image = images[index]
            spread = sigma * float(image.max() - image.min())
            generator = seeded_generator(int(seeds[index]))
            noise = torch.randn((samples, *image.shape), generator=generator).to(image.device, image.dtype) * spread
            total = torch.zeros(targets.shape[1], *image.shape[-2:], device=image.device)
            for start, stop in chunks(samples, execution.batch_size):
                count = stop - start
                noisy = image[None] + noise[start:stop]
                repeated = targets[index][None].expand(count, -1)
                copies = inner.explain(
                    model, noisy, repeated, seeds[index].repeat(count), batch_size=execution.batch_size
                )
                total += copies.sum(dim=0)
                execution.report(index * samples + stop, images.shape[0] * samples)
            maps.append(total / samples)
        return torch.stack(maps)


def smoothgrad_class(inner_name: str) -> type[Explainer]:
    """The class of ``smoothgrad:<inner_name>``, registered on first use.

    Raises:
        UsageError: the wrapped method is unknown, or does not use gradients.
    """
    name = PREFIX + inner_name
    if name in EXPLAINERS:
        return EXPLAINERS.get(name)
    inner = explainer_class(expand_methods([inner_name])[0])  # the wrapped name's own checks (a missing library)
    if not inner.needs_gradients or inner.baseline:
        gradient_methods = [n for n, c in EXPLAINERS.classes().items() if c.needs_gradients and ":" not in n]
        raise UsageError(
            f"smoothgrad wraps gradient methods; '{inner_name}' does not use gradients "
            f"(choose from {', '.join(gradient_methods)})"
        )
    own = [("samples", int, 50), ("sigma", float, 0.15)]
    inner_fields = {f.name for f in dataclasses.fields(inner.Params)}
    if "seed" not in inner_fields:
        own.append(("seed", int, 0))
    params = dataclasses.make_dataclass(
        f"SmoothGrad{inner.Params.__name__}",
        [(n, t, dataclasses.field(default=d)) for n, t, d in own],
        bases=(inner.Params,),
        frozen=True,
    )
    params.__doc__ = (
        f"SmoothGrad around {inner_name}: its parameters, and\n\n    Attributes:\n"
        "        samples: noisy copies per image (SmoothGrad paper: 50).\n"
        "        sigma: noise std as a fraction of the image's value range (0.15).\n"
        "        seed: seed of the noise (per image, see ``explain``'s ``seeds``).\n"
    )
    cls = type(
        f"SmoothGrad_{inner.__name__}",
        (SmoothGradBase,),
        {"Params": params, "inner": inner, "tiny_params": {**inner.tiny_params, "samples": 4}, "__doc__": __doc__},
    )
    return register_explainer(name)(cls)


def resolve_smoothgrad(items: list[str]) -> list[str]:
    """Registers the ``smoothgrad:<method>`` names among ``--method`` items (the items are unchanged)."""
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if part.startswith(PREFIX):
                smoothgrad_class(part[len(PREFIX) :])
    return items


METHOD_RESOLVERS.append(resolve_smoothgrad)
