"""Token counting: exact where the family's tokenizer is public, estimated otherwise, memoized."""

from .counter import ChatMessage, TokenCount, TokenCounter, encoding_for

__all__ = ["ChatMessage", "TokenCount", "TokenCounter", "encoding_for"]
