"""Model prices: the packaged catalog, overrides, LiteLLM import, id resolution."""

from .catalog import PriceCatalog
from .model_ids import candidates, provider_hint
from .model_price import BucketPrices, ModelPrice

__all__ = ["BucketPrices", "ModelPrice", "PriceCatalog", "candidates", "provider_hint"]
