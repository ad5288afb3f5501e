"""neurocomp: spiking, liquid, recurrent and convolutional networks side by side on MedMNIST.

A new model is one builder with keyword-only options, registered with ``@register_model("name")``.
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


def __getattr__(name: str):
    # ``neurocomp.Encoder`` without importing torch for everyone who does not ask for it.
    if name == "Encoder":
        from .data.encoders import Encoder

        return Encoder
    raise AttributeError(f"module 'neurocomp' has no attribute {name!r}")


__all__ = ["ENCODERS", "MODELS", "Encoder", "register_encoder", "register_model", "__version__"]
