"""neurocomp: spiking, liquid, recurrent and convolutional networks side by side on MedMNIST.

Importing the package registers the built-in encoders and models. A new model is one builder
with keyword-only options, registered with ``@register_model("name")``.
"""

from importlib.metadata import PackageNotFoundError, version

# The registry comes first: built-in models (alif) register through the public names.
from .registry import ENCODERS, MODELS, register_encoder, register_model  # isort: skip
from . import encoders, models  # noqa: F401, E402  (registers the built-ins)
from .encoders import Encoder  # noqa: E402

try:
    __version__ = version("neurocomp")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["ENCODERS", "MODELS", "Encoder", "register_encoder", "register_model", "__version__"]
