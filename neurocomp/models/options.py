"""Option groups: dataclasses whose fields a builder accepts as keyword-only options, so models that
share a part (a sequence model's backbone, a spiking network's synapses) share its options too."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing


def with_options(*groups: type) -> typing.Callable:
    """Decorator: the builder also accepts the fields of the dataclasses ``groups`` as keyword-only
    options (validated by the config like its own); they arrive as one instance per group, passed
    under the group's lower-case class name."""

    def decorate(builder):
        signature = inspect.signature(builder)
        own = [p for p in signature.parameters.values() if p.name not in {g.__name__.lower() for g in groups}]
        extra = [
            inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
            for group in groups
            for f in dataclasses.fields(group)
        ]
        hints = typing.get_type_hints(builder)
        for group in groups:
            hints.update(typing.get_type_hints(group))

        @functools.wraps(builder)
        def build(**options):
            grouped = {}
            for group in groups:
                names = {f.name for f in dataclasses.fields(group)}
                grouped[group.__name__.lower()] = group(**{k: options.pop(k) for k in list(options) if k in names})
            return builder(**options, **grouped)

        build.__signature__ = signature.replace(parameters=own + extra)
        build.__annotations__ = hints
        build.option_groups = groups  # the run id reads each field's behaviour-preserving value from them
        return build

    return decorate
