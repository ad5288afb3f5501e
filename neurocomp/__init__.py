"""neurocomp: spiking, liquid, recurrent and convolutional networks side by side on MedMNIST.

A new model is one builder with keyword-only options, registered with ``@register_model("name")``;
``__all__`` is the public API a plug-in imports from here (``from neurocomp import register_model,
with_options, Spiking, HoldsNeuronState``); the rest of the tree is internal.
The built-in encoders and models register on the registries' first lookup (or when
``neurocomp.models`` is imported), so importing the package itself stays light: ``neurocomp
--help`` does not load torch.
"""

from importlib.metadata import PackageNotFoundError, version

from .core import moved
from .core.registry import ENCODERS, MODELS, register_encoder, register_model

moved.install()  # the old paths (neurocomp.record, neurocomp.run, ...) still import, with a DeprecationWarning

try:
    __version__ = version("neurocomp")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"


# The public API: what a plug-in author imports, ``from neurocomp import ...``. Everything else may
# move between releases. Loaded on first use, so ``import neurocomp`` does not load torch.
PUBLIC = {
    "Encoder": "neurocomp.data.encoders",  # what an encoder builder returns
    "with_options": "neurocomp.models.options",  # a builder's shared option groups
    "Spiking": "neurocomp.models.snn",  # a spiking network's synapses, neurons' options and readout
    "SpikingNetwork": "neurocomp.models.snn",
    "Backbone": "neurocomp.models.sequence",  # a sequence model's per-step features and readout
    "sequence_model": "neurocomp.models.sequence",
    "StepwiseClassifier": "neurocomp.models.layers",  # per-step features and head, logits averaged over time
    "EmitsSpikes": "neurocomp.core.abilities",  # the abilities a model or layer declares
    "HoldsNeuronState": "neurocomp.core.abilities",
    "DescribesItself": "neurocomp.core.abilities",
    "CountsOwnCost": "neurocomp.core.abilities",
    "UsageError": "neurocomp.core.errors",  # a builder's refusal: one line, exit 2
}


def __getattr__(name: str):
    if name in PUBLIC:
        from importlib import import_module

        return getattr(import_module(PUBLIC[name]), name)
    raise AttributeError(f"module 'neurocomp' has no attribute {name!r}")


__all__ = ["ENCODERS", "MODELS", "register_encoder", "register_model", "__version__", *PUBLIC]
