"""Built-in models; importing this package registers them (timm's pattern)."""

from . import cnn, mlp, snn  # noqa: F401  (registration side effect)
