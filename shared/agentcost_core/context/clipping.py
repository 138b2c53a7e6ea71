"""Clipping the latest tool outputs so the high tier fits its room: largest first (water-filling),
each cut at a token boundary and marked with how many tokens were left out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..tokens import ChatMessage, TokenCounter

if TYPE_CHECKING:
    from .plan import ContextReport, Item

__all__ = ["CLIP_MARKER", "clip_tool_outputs"]

CLIP_MARKER = "\n…[clipped by agentcost: {n} tokens omitted]"


def clip_tool_outputs(
    items: list[Item], room: int, counter: TokenCounter, report: ContextReport
) -> tuple[list[Item], int]:
    """Clip tool outputs (largest first, water-filling) so the items fit ``room`` tokens."""
    fixed = sum(i.tokens for i in items if i.role != "tool")
    tools = [i for i in items if i.role == "tool"]
    left = room - fixed
    if not tools or left < 0:
        return items, sum(i.tokens for i in items)
    caps: dict[int, int] = {}
    pending = sorted(tools, key=lambda i: i.tokens)
    while pending:
        share = left // len(pending)
        smallest = pending[0]
        if smallest.tokens <= share:
            caps[id(smallest)] = smallest.tokens
            left -= smallest.tokens
            pending.pop(0)
        else:
            for i in pending:
                caps[id(i)] = share
            break
    out, total = [], fixed
    for i in items:
        cap = caps.get(id(i))
        if cap is None or cap >= i.tokens:
            out.append(i)
            total += i.tokens if i.role == "tool" else 0
            continue
        clipped = _clip_text(i, cap, counter)
        report.clipped_items += 1
        out.append(clipped)
        total += clipped.tokens
    return out, total


def _clip_text(item: Item, cap: int, counter: TokenCounter) -> Item:
    overhead = item.tokens - counter.count_text(item.text).tokens  # framing
    marker_room = 16
    keep = max(0, cap - overhead - marker_room)
    text = item.text
    enc = None
    try:
        from ..tokens.counter import _encoding

        enc = _encoding(counter.encoding_name)
    except Exception:  # pragma: no cover
        enc = None
    if enc:
        ids = enc.encode(text, disallowed_special=())
        omitted = max(0, len(ids) - keep)
        head = enc.decode(ids[:keep])
    else:
        chars = keep * 4
        omitted = max(0, (len(text) - chars) // 4)
        head = text[:chars]
    new_text = head + CLIP_MARKER.format(n=omitted)
    tokens = counter.message_tokens(ChatMessage(item.role, new_text, item.name))
    while tokens > cap and head:  # the marker or a re-tokenized seam can add a token or two
        head = head[: int(len(head) * 0.9)]
        new_text = head + CLIP_MARKER.format(n=omitted)
        tokens = counter.message_tokens(ChatMessage(item.role, new_text, item.name))
    clipped = item.clipped(new_text)
    clipped.tokens = tokens
    return clipped
