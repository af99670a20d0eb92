"""rise-bench: a benchmark for image saliency methods.

Public API::

    import rise_bench
    model = rise_bench.load_model()                      # tf_efficientnet_lite0, offline
    explainer = rise_bench.create_explainer("rise", num_masks=1000)
    saliency = explainer.explain(model, images, targets)  # [B,H,W] or [B,T,H,W]
"""

from .explainers import create_explainer, list_explainers, register_explainer
from .models import Classifier, load_model

__version__ = "0.1.0"

__all__ = ["Classifier", "create_explainer", "list_explainers", "load_model", "register_explainer", "__version__"]
