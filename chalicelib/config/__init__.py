"""Configuration: the resolver of the six config layers (the schema lives in domain/config.py)."""

from chalicelib.config.resolver import (
    ConfigResolver,
    ResolvedConfig,
    layer_digest,
    layers_for,
    platform_layer_from_env,
    resolve,
)

__all__ = [
    "ConfigResolver",
    "ResolvedConfig",
    "layer_digest",
    "layers_for",
    "platform_layer_from_env",
    "resolve",
]
