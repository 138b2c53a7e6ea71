"""Model-tier routing: a support agent whose easy steps run on a nano model, hard ones on the frontier.

Twenty support tickets go through the same three steps a real help desk runs:

  (a) classify the ticket           -> nano     (StaticPolicy: the "classify" tag)
  (b) extract the order id / product -> nano     (StaticPolicy: metadata ``agentcost_step="extract"``)
  (c) for defects and billing disputes, analyse the root cause and draft a plan
                                     -> frontier (HeuristicPolicy: reasoning / comparison / multi-step cues)

One ``ModelRouter`` serves every step; each call's tier and the reason it was chosen are recorded
in the ledger (``event.tier``, ``extra["route_reason"]``), next to a ``route`` event linked to the
call it chose (``parent_id``). The report prices what the nano calls would have cost on the
frontier tier with their real usage: the routing savings.

Runs offline with scripted models that report provider-shaped usage (``gpt-5-nano`` and
``gpt-5`` catalog prices; prompt tokens counted exactly). Swap in ``ChatOpenAI(model=...)`` for
the real thing. Events go to this example's own SQLite ledger (.agentcost/router.db, fresh each run).

    python examples/router.py
    agentcost report --by tier,step --ledger sqlite:///.agentcost/router.db   # the same ledger, any time later
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from agentcost_core.cli import main as agentcost_cli
from agentcost_core.rollup import rollup
from agentcost_core.routing import HeuristicPolicy, StaticPolicy
from agentcost_langchain import CostCallbackHandler
from agentcost_langchain.router import ModelRouter
from agentcost_langchain.testing import ScriptedChatModel
from example_ledger import fresh_ledger

NANO, FRONTIER = "gpt-5-nano", "gpt-5"
ANALYSE = {"defect", "billing"}  # the categories whose tickets get a root-cause analysis

# ticket id | customer | category | order id | product | ticket text: the category, order id and product are
# what the scripted nano model answers (a real one reads them from the text).
_TICKETS = """
T-101 | c-ana | shipping | A-5512 | Trail Runner 2 shoes | Where is my order A-5512? The tracking page has said 'label created' for six days.
T-102 | c-ben | billing | A-5520 | Thermo bottle set | I was charged twice for order A-5520 (two identical charges of $89.00 on my card).
T-103 | c-cho | defect | A-5531 | AirLite Pro earbuds | The left earbud of my AirLite Pro (order A-5531) stopped charging after two weeks.
T-104 | c-dev | shipping | A-5538 | Desk lamp | Please change the delivery address of order A-5538 to 14 Elm Street, Leeds.
T-105 | c-eli | returns | A-5540 | Rain shell jacket | How do I return the jacket from order A-5540? It is one size too small.
T-106 | c-fay | account | A-5547 | Yoga mat | I can't log in: the reset email never arrives. My order A-5547 is pending.
T-107 | c-gus | defect | A-5553 | PowerBlend 900 blender | The blender from order A-5553 smells of burning plastic on its first use.
T-108 | c-hal | billing | A-5559 | Office chair | My invoice for order A-5559 shows VAT at 25% but I ordered from Germany (19%).
T-109 | c-ida | defect | A-5562 | Tablet 11 screen protector | Order A-5562 arrived with a cracked screen protector in the box.
T-110 | c-jon | shipping | A-5570 | Scented candle trio | Can I still add gift wrapping to order A-5570? It ships tomorrow.
T-111 | c-kim | returns | A-5574 | Hiking backpack 40L | I returned order A-5574 three weeks ago and there is still no refund.
T-112 | c-lou | billing | A-5581 | Espresso grinder | The promo code SPRING20 was not applied to order A-5581, I paid full price.
T-113 | c-max | account | A-5585 | Wool socks 3-pack | Please update the email address on my account; order A-5585 confirmation went to the old one.
T-114 | c-nia | defect | A-5590 | HomeLink smart plug | The smart plug from order A-5590 disconnects from Wi-Fi every night at 2am.
T-115 | c-oli | shipping | A-5596 | Standing desk frame | Is order A-5596 coming with DHL or UPS? I need to be home for it.
T-116 | c-pia | returns | A-5601 | Stoneware mug | I'd like to exchange the blue mug from order A-5601 for the green one.
T-117 | c-raj | billing | A-5607 | Coffee subscription | My subscription renewed at $14.99 instead of $9.99 (order A-5607), why?
T-118 | c-sue | defect | A-5612 | Oak dresser | Order A-5612: the drawer runners of the dresser bend when the drawer is half full.
T-119 | c-tom | returns | A-5618 | Running tights | Please cancel order A-5618, I ordered the wrong size by mistake.
T-120 | c-uma | account | A-5623 | Glass kettle | What is the warranty on the kettle I bought in order A-5623?
"""
TICKETS = [tuple(line.split(" | ", 5)) for line in _TICKETS.strip().splitlines()]

POLICY = (
    "You are the help desk of Northwind Goods, an online shop. House rules: be brief and factual; never promise "
    "a refund before the order is verified; orders ship within 2 business days from the Leeds or Hamburg "
    "warehouse; returns are free within 30 days for unused items with the order number; refunds go back to "
    "the original payment method within 5 business days of the return scan; electronics carry a 2-year "
    "warranty against manufacturing defects and furniture a 5-year one; price disputes are checked against "
    "the order's invoice and the promotion's terms; subscription prices are locked for 12 months from sign-up; "
    "address changes are possible until the parcel is handed to the carrier; account emails are changed only "
    "after the customer confirms from the old address. "
) * 3  # a realistic system prompt (~400 tokens) that every step sends

ASK_CLASSIFY = (
    "Classify this ticket as one of shipping, billing, returns, defect, account. "
    "Answer with the category only.\n\nTicket: {text}"
)
ASK_EXTRACT = (
    "Extract the order id and the product from this ticket as JSON with the keys order_id and product."
    "\n\nTicket: {text}"
)
ASK_ANALYSIS = (
    "Analyse the root cause of this {category} ticket and explain why it happened. Compare the options (refund, "
    "replacement, repair, credit) and draft a plan step by step: first what we tell the customer, then what we "
    "change so it does not happen again.\n\nTicket: {text}"
)
CLASSIFY = ChatPromptTemplate.from_messages([("system", POLICY), ("human", ASK_CLASSIFY)])
EXTRACT = ChatPromptTemplate.from_messages([("system", POLICY), ("human", ASK_EXTRACT)])
ANALYSIS = ChatPromptTemplate.from_messages([("system", POLICY), ("human", ASK_ANALYSIS)])


def models() -> tuple[ScriptedChatModel, ScriptedChatModel]:
    """The two tiers, scripted in the order the flow calls them (deterministic, offline)."""
    nano_script: list[str] = []
    frontier_script: list[str] = []
    for tid, _, category, order, product, _ in TICKETS:
        nano_script += [category, json.dumps({"order_id": order, "product": product})]
        if category in ANALYSE:
            cause = (
                "a batch-level manufacturing fault is the likeliest cause; "
                if category == "defect"
                else "the billing rule applied at checkout did not match the order's terms; "
            )
            frontier_script.append(
                f"Root cause for {tid}: {product} ({order}) — {cause}"
                "the alternatives were weighed (refund vs replacement vs credit). Plan: 1. apologise and confirm "
                "the remedy today; 2. issue the correction within 24 hours; 3. tag similar orders for a proactive "
                "check; 4. file a fix with the owning team and review the metric in two weeks."
            )
    return ScriptedChatModel(script=nano_script, model=NANO), ScriptedChatModel(script=frontier_script, model=FRONTIER)


def main() -> int:
    nano, frontier = models()
    router = ModelRouter(
        tiers={"nano": nano, "frontier": frontier},
        policy=StaticPolicy({"classify": "nano", "extract": "nano"}) | HeuristicPolicy(("nano", "frontier")),
    )
    # run_name names the router's run (the ledger's step); the tag / metadata make the static routes hit
    classify = CLASSIFY | router.with_config(run_name="classify", tags=["classify"]) | StrOutputParser()
    extract = EXTRACT | router.with_config(run_name="extract") | StrOutputParser()
    analyse = ANALYSIS | router.with_config(run_name="analyse") | StrOutputParser()

    ledger = fresh_ledger("router")  # this run only: the report below shows nothing older
    handler = CostCallbackHandler(ledger=ledger, feature="router-demo")
    print("Support tickets through a ModelRouter (nano = gpt-5-nano, frontier = gpt-5)")
    print("=" * 78)
    for tid, customer, _, _, _, text in TICKETS:
        config = {"callbacks": [handler], "metadata": {"session_id": tid, "user_id": customer}}
        category = classify.invoke({"text": text}, config).strip()
        step_md = {**config["metadata"], "agentcost_step": "extract"}  # metadata can name the step, too
        fields = json.loads(extract.invoke({"text": text}, {**config, "metadata": step_md}))
        if category in ANALYSE:
            analyse.invoke({"text": text, "category": category}, config)
        steps = [f"{e.step}->{e.tier}" for e in handler.events if e.kind == "llm" and e.session_id == tid]
        print(f"{tid}  {category:<8}  {fields['order_id']}  {fields['product']:<27}  {'  '.join(steps)}")
    handler.flush()  # every event is in the ledger before the report reads it

    calls = [e for e in handler.events if e.kind == "llm"]
    route_events = [e for e in handler.events if e.kind == "route"]
    r = rollup(handler.events, by="tier")
    print()
    print(f"This run: {len(calls)} model calls, {len(route_events)} routing decisions recorded")
    rank = {name: i for i, name in enumerate(router.router.tiers.order)}  # cheapest first
    for row in sorted(r.rows, key=lambda row: rank.get(row.key[0], len(rank))):
        steps = sorted({e.step or "?" for e in calls if e.tier == row.key[0]})
        print(f"  {row.label:<9} {row.calls:>3} calls  ${row.cost:.6f}  (steps: {', '.join(steps)})")
    t = r.total
    all_frontier = t.cost + t.routing_savings
    share = t.routing_savings / all_frontier if all_frontier else Decimal(0)
    print(f"  total     {t.calls:>3} calls  ${t.cost:.6f}")
    print(
        f"routing savings: ${t.routing_savings:.6f} ({share:.0%}): all {t.calls} calls on the frontier tier "
        f"({FRONTIER}), priced with their real usage, would have cost ${all_frontier:.6f}"
    )
    print()
    sys.stdout.flush()
    return agentcost_cli(["report", "--ledger", ledger, "--by", "tier"])


if __name__ == "__main__":
    raise SystemExit(main())
