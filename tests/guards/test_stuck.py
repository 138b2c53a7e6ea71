"""Stuck detection: one nudge, then a halt with a TerminationReason and the best answer so far."""

from __future__ import annotations

import dataclasses
import logging
import pickle
import threading
from dataclasses import dataclass, field

import pytest
from agentcost_core.errors import ConfigurationError
from agentcost_core.guards.stuck import StuckDetector, StuckMonitor, StuckVerdict
from agentcost_core.halts import AgentHalted, TerminationReason


@dataclass
class Run:
    """What a fake agent loop saw: every non-ok verdict with the tool-call count at that moment."""

    monitor: StuckMonitor
    executed: int = 0
    verdicts: list[tuple[int, StuckVerdict]] = field(default_factory=list)
    error: AgentHalted | None = None

    @property
    def nudges(self) -> list[tuple[int, StuckVerdict]]:
        return [(n, v) for n, v in self.verdicts if v.action == "nudge"]

    @property
    def halt(self) -> tuple[int, StuckVerdict] | None:
        return next(((n, v) for n, v in self.verdicts if v.action == "halt"), None)


def drive(detector: StuckDetector, steps, *, announce: bool = True) -> Run:
    """A fake agent loop shaped like the adapters': after each model step, each tool call and each tool
    result it asks check(); a nudge is noted (the fake model ignores it), a halt stops the run before
    the next tool runs. ``steps`` yields (text, tool name or None, args, result)."""
    m = detector.start()
    run = Run(m)

    def checked() -> bool:
        v = m.check()
        if v.action != "ok":
            run.verdicts.append((m.tool_calls, v))
        if v.action == "halt":
            run.error = m.halt_error(v)
            return True
        return False

    for text, name, args, result in steps:
        m.record_model_output(text, [(name, args)] if (announce and name) else ())
        if checked() or name is None:
            if run.error:
                break
            continue
        m.record_tool_call(name, args)
        if checked():
            break
        run.executed += 1
        m.record_tool_result(name, result)
        if checked():
            break
    return run


def same_call(text: str = "", n: int = 50):
    for _ in range(n):
        yield text, "get_weather", {"city": "Paris"}, "Sunny, 21 °C"


# -- repeated identical calls (the acceptance case) -------------------------------------------------


@pytest.mark.parametrize(
    ("announce", "text", "best"),
    [
        (True, "Let me check the weather in Paris.", "Let me check the weather in Paris."),
        (False, "", "Sunny, 21 °C"),  # tool-calling models often send no text: best is the tool result
    ],
)
def test_repeated_identical_call_is_nudged_once_then_halted(announce, text, best):
    run = drive(StuckDetector(), same_call(text), announce=announce)

    assert len(run.nudges) == 1
    at, nudge = run.nudges[0]
    assert at == 3  # the 3rd identical call
    assert nudge.reason is TerminationReason.REPEATED_TOOL
    assert nudge.message.startswith("You appear to be repeating")
    assert "get_weather" in nudge.message
    assert run.halt is not None
    halt_at, halt = run.halt
    assert halt_at == 4 and run.executed <= 7
    assert halt.reason is TerminationReason.REPEATED_TOOL
    assert halt.details["rule"] == "identical_args" and halt.details["tool"] == "get_weather"
    assert halt.details["nudged"] is True
    assert run.error is not None and run.error.reason is TerminationReason.REPEATED_TOOL
    assert run.error.partial == best


def test_identical_calls_in_a_cycle_count_too():
    def cycle():
        for i in range(20):
            name, args = ("search", {"q": "x"}) if i % 2 == 0 else ("lookup", {"id": 7})
            yield "", name, args, f"result {i}"  # even fresh-looking results: identical args are stuck

    run = drive(StuckDetector(), cycle())
    assert run.halt is not None and run.halt[1].reason is TerminationReason.REPEATED_TOOL
    assert run.executed <= 7


# -- productive use of one tool is not stuck ----------------------------------------------------------


def test_same_tool_with_different_args_and_new_results_is_never_nudged():
    def productive():
        for i in range(20):  # same tool, same (templated) text, different queries, different answers
            yield "Searching for the next city.", "search", {"q": f"population of city {i}"}, f"{1000 + i} people"

    run = drive(StuckDetector(), productive())
    assert run.verdicts == []
    assert run.monitor.tool_calls == 20 and not run.monitor.nudged


def test_react_style_templated_text_with_new_results_is_not_a_similarity_loop():
    countries = ["France", "Germany", "Italy", "Spain", "Poland", "Greece", "Norway", "Sweden"]

    def react():
        for c in countries:
            text = f"Thought: I should look up the population of {c} to answer.\nAction: search\nAction Input: {c}"
            yield text, "search", c, f"{c}: {len(c)} million"

    run = drive(StuckDetector(), react())
    assert run.verdicts == []


# -- same tool, different args, results that repeat --------------------------------------------------


def empty_searches():
    for i in range(30):
        yield "", "search", {"q": f"query number {i}"}, "No results found."


def test_same_tool_different_args_repeating_results_is_nudged_then_halted():
    """Documented choice: the 4th stale result nudges (NO_PROGRESS); the next call of the same
    unproductive tool after the nudge halts with REPEATED_TOOL (the same-tool rule)."""
    run = drive(StuckDetector(), empty_searches())

    assert [v.reason for _, v in run.nudges] == [TerminationReason.NO_PROGRESS]
    assert run.nudges[0][0] == 5
    assert run.halt is not None
    halt_at, halt = run.halt
    assert halt.reason is TerminationReason.REPEATED_TOOL and halt.details["rule"] == "same_tool"
    assert halt_at == 6 and run.executed == 5
    assert run.error is not None and run.error.partial == "No results found."


def test_same_tool_rule_when_the_adapter_checks_only_after_model_steps():
    m = StuckDetector().start()
    verdicts = []
    for _, name, args, result in empty_searches():
        m.record_model_output("", [(name, args)])
        v = m.check()
        if v.action != "ok":
            verdicts.append((m.tool_calls, v))
        if v.action == "halt":
            break
        m.record_tool_call(name, args)
        m.record_tool_result(name, result)
    summary = [(n, v.action, v.details["rule"]) for n, v in verdicts]
    assert summary == [(6, "nudge", "same_tool"), (7, "halt", "same_tool")]


def test_same_tool_share_fires_when_another_tool_keeps_no_progress_from_firing():
    m = StuckDetector(nudge=False).start()
    script = [("search", "a", "nothing"), ("calc", "1+1", "2")] + [("search", q, "nothing") for q in "bcd"]
    for name, args, result in script:
        m.record_tool_call(name, args)
        m.record_tool_result(name, result)
        assert m.check().action == "ok"
    m.record_tool_call("search", "e")  # window: calc, search b, c, d, e -> 80% search, nothing new
    v = m.check()
    assert v.action == "halt" and v.reason is TerminationReason.REPEATED_TOOL
    assert v.details["rule"] == "same_tool" and v.details["count"] == 4


def test_same_tool_share_spares_a_tool_that_still_finds_something_new():
    m = StuckDetector(nudge=False).start()
    for q, result in [("a", "x"), ("b", "x"), ("c", "y"), ("d", "x"), ("e", "y")]:
        m.record_tool_call("search", q)
        m.record_tool_result("search", result)
    assert m.check().action == "ok"  # 3 of 5 repeated, but "c" found something new
    m.record_tool_call("search", "f")
    m.record_tool_result("search", "x")  # "c" still in the window
    assert m.check().action == "ok"
    m.record_tool_call("search", "g")  # window c..g: "c" still counts
    assert m.check().action == "ok"
    m.record_tool_call("search", "h")  # window d..h: nothing new any more
    v = m.check()
    assert v.action == "halt" and v.details["rule"] == "same_tool"


def test_same_tool_share_needs_a_full_window():
    m = StuckDetector(nudge=False, no_progress_steps=10).start()
    for q in "abcd":
        m.record_tool_call("search", q)
        m.record_tool_result("search", "nothing")
    assert m.check().action == "ok"  # 4 calls < window of 5


# -- similarity loop ---------------------------------------------------------------------------------

LOOP_TEXT = "I am not sure yet. Let me think about this problem again, step by step, before answering."


def test_near_identical_outputs_are_a_similarity_loop():
    m = StuckDetector().start()
    m.record_model_output(LOOP_TEXT)
    assert m.check().action == "ok"
    m.record_model_output(LOOP_TEXT.replace("answering.", "answering!"))
    v = m.check()
    assert v.action == "nudge" and v.reason is TerminationReason.SIMILARITY_LOOP
    assert v.details["measure"] == "shingle_jaccard" and v.details["score"] >= 0.9
    assert v.message.startswith("You appear to be repeating")
    m.record_model_output(LOOP_TEXT.upper())
    v = m.check()
    assert v.action == "halt" and v.reason is TerminationReason.SIMILARITY_LOOP
    assert m.halt_error(v).partial == LOOP_TEXT.upper()


def test_different_outputs_are_ok():
    m = StuckDetector().start()
    for text in [
        "First I will find the population of France.",
        "France has 68 million people. Now Germany.",
        "Germany has 84 million people; adding them up.",
        "Together they have 152 million people.",
    ]:
        m.record_model_output(text)
        assert m.check().action == "ok"


def test_empty_outputs_are_ignored_by_similarity():
    m = StuckDetector(nudge=False).start()
    for text in ["", "   ", None, ""]:
        m.record_model_output(text)
        assert m.check().action == "ok"  # empty outputs never match each other
    m.record_model_output(LOOP_TEXT)
    m.record_model_output("")  # an empty step between does not break the repetition
    m.record_model_output(LOOP_TEXT)
    assert m.check().reason is TerminationReason.SIMILARITY_LOOP
    assert m.iterations == 7


def test_similar_outputs_with_a_new_tool_result_between_are_ok():
    m = StuckDetector().start()
    for i in range(6):
        m.record_model_output(LOOP_TEXT)
        assert m.check().action == "ok"
        m.record_tool_call("read_page", {"page": i})
        m.record_tool_result("read_page", f"page {i} content")


def test_embed_function_replaces_the_text_measure():
    calls = []

    def embed(text: str) -> list[float]:  # a toy embedding: what the text is about
        calls.append(text)
        t = text.lower()
        return [float("weather" in t), float("paris" in t), float("stock" in t)]

    texts = ["The weather in Paris is mild today.", "Paris: mild weather expected, says the forecast."]

    plain = StuckDetector().start()
    for t in texts:
        plain.record_model_output(t)
    assert plain.check().action == "ok"  # textually different

    m = StuckDetector(embed=embed).start()
    for t in texts:
        m.record_model_output(t)
    v = m.check()
    assert v.action == "nudge" and v.reason is TerminationReason.SIMILARITY_LOOP
    assert v.details["measure"] == "embedding" and v.details["score"] == pytest.approx(1.0)
    assert calls == texts

    m2 = StuckDetector(embed=embed).start()
    m2.record_model_output("The weather in Paris is mild today.")
    m2.record_model_output("The weather in Paris is mild today.".replace("Paris", "the stock market"))
    assert m2.check().action == "ok"  # cosine 0.5 although the texts are alike


def test_embed_failure_falls_back_to_the_text_measure(caplog):
    def broken(text: str) -> list[float]:
        raise RuntimeError("embedding service down")

    m = StuckDetector(embed=broken).start()
    with caplog.at_level(logging.WARNING, logger="agentcost.guards.stuck"):
        for _ in range(2):
            m.record_model_output(LOOP_TEXT)
    v = m.check()
    assert v.action == "nudge" and v.details["measure"] == "shingle_jaccard"
    assert sum("embed() failed" in r.getMessage() for r in caplog.records) == 1


def test_zero_embedding_vectors_are_not_similar():
    m = StuckDetector(embed=lambda t: [0.0, 0.0]).start()
    m.record_model_output(LOOP_TEXT)
    m.record_model_output(LOOP_TEXT)
    assert m.check().action == "ok"


# -- no progress ---------------------------------------------------------------------------------------


def test_no_progress_after_n_stale_results():
    tools = ["search", "lookup", "fetch"]

    def stale():
        for i in range(30):  # different tools, different args: only the results repeat
            yield "", tools[i % 3], {"q": i}, "Service unavailable, try later."

    run = drive(StuckDetector(), stale())
    assert [(n, v.reason) for n, v in run.nudges] == [(5, TerminationReason.NO_PROGRESS)]
    assert run.nudges[0][1].details["steps_without_progress"] == 4
    halt_at, halt = run.halt
    assert halt.reason is TerminationReason.NO_PROGRESS and halt_at == 6
    assert halt.details["steps_without_progress"] == 5


def test_a_new_result_resets_no_progress():
    def mostly_stale():
        for i in range(30):
            yield "", ["a", "b", "c"][i % 3], {"i": i}, ("same" if i % 4 else f"fresh {i}")

    assert drive(StuckDetector(), mostly_stale()).verdicts == []  # at most 3 stale in a row


# -- iteration cap, nudge=False, nudge flow -------------------------------------------------------------


def test_max_iterations_halts_without_a_nudge():
    m = StuckDetector(max_iterations=3).start()
    for i in range(3):
        m.record_model_output(f"step {i}: " + "different words " * i)
        assert m.check().action == "ok"
    m.record_model_output("one step too many")
    v = m.check()
    assert v.action == "halt" and v.reason is TerminationReason.MAX_ITERATIONS
    assert not m.nudged and v.details["iterations"] == 4
    assert m.halt_error(v).partial == "one step too many"


def test_nudge_false_halts_at_the_first_detection():
    run = drive(StuckDetector(nudge=False), same_call())
    assert run.nudges == []
    halt_at, halt = run.halt
    assert halt_at == 3 and halt.reason is TerminationReason.REPEATED_TOOL
    assert halt.details["nudged"] is False and "after being nudged" not in halt.message


def test_nudge_is_given_once_and_the_model_gets_a_step_to_react():
    m = StuckDetector().start()
    for _ in range(3):
        m.record_tool_call("get_weather", {"city": "Paris"})
    assert m.check().action == "nudge"
    assert m.check().action == "ok"  # nothing new yet: no second nudge, no halt
    m.record_tool_result("get_weather", "Sunny")
    assert m.check().action == "ok"
    m.record_model_output("", [("get_weather", {"city": "Paris"})])
    v = m.check()
    assert v.action == "halt"
    assert m.check() is v  # a halt is final


def test_recovering_after_the_nudge_is_not_halted():
    m = StuckDetector().start()
    for _ in range(3):
        m.record_model_output("", [("get_weather", {"city": "Paris"})])
        m.record_tool_result("get_weather", "Sunny")
    assert m.check().action == "nudge"
    for city in ["Lyon", "Nice", "Lille", "Nantes", "Brest", "Metz"]:
        m.record_model_output(f"Now {city}.", [("get_weather", {"city": city})])
        assert m.check().action == "ok"
        m.record_tool_result("get_weather", f"{city}: {len(city)} °C")
        assert m.check().action == "ok"


def test_custom_nudge_message():
    m = StuckDetector(nudge_message="Loop detected ({what}). Answer now.").start()
    for _ in range(3):
        m.record_tool_call("get_weather", "Paris")
    v = m.check()
    assert v.message.startswith("Loop detected (calling `get_weather` with the same arguments")
    assert v.message.endswith("Answer now.")


def test_adapter_recording_only_tool_calls():
    m = StuckDetector().start()
    actions = []
    for _ in range(7):
        m.record_tool_call("get_weather", {"city": "Paris"})
        v = m.check()
        actions.append(v.action)
        if v.action == "halt":
            break
        m.record_tool_result("get_weather", "Sunny")
    assert actions == ["ok", "ok", "nudge", "halt"]


# -- configuration -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 1},
        {"window": 0},
        {"window": 5.0},
        {"window": True},
        {"same_tool_share": 0},
        {"same_tool_share": 1.5},
        {"same_tool_share": float("nan")},
        {"same_tool_share": "0.8"},
        {"similarity": 0.0},
        {"similarity": -0.1},
        {"similarity": 1.01},
        {"repeat_limit": 1},
        {"repeat_limit": 6},  # > window: could never fire
        {"no_progress_steps": 0},
        {"no_progress_steps": -3},
        {"max_iterations": 0},
        {"max_iterations": -1},
        {"embed": "text-embedding-3-small"},
        {"nudge": "yes"},
        {"nudge_message": "   "},
        {"nudge_message": 42},
    ],
)
def test_bad_configuration_is_rejected(kwargs):
    with pytest.raises(ConfigurationError, match="StuckDetector"):
        StuckDetector(**kwargs)


def test_configuration_is_immutable_keyword_only_and_shared():
    d = StuckDetector(window=6, same_tool_share=1, repeat_limit=6, similarity=1, max_iterations=10, embed=len)
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.window = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        StuckDetector(5)  # type: ignore[misc]
    a, b = d.start(), d.start()
    for _ in range(3):
        a.record_tool_call("t", 1)
    assert a.tool_calls == 3 and b.tool_calls == 0  # no per-run state on the detector


# -- halt_error, best answer, normalisation ---------------------------------------------------------------


def test_halt_error_builds_agent_halted_with_the_partial_answer():
    m = StuckDetector(nudge=False).start()
    m.record_model_output("Paris is sunny, 21 °C.", [("get_weather", {"city": "Paris"})])
    m.record_tool_result("get_weather", {"temp": 21, "sky": "sunny"})
    m.record_model_output("", [("get_weather", {"city": "Paris"})])
    m.record_tool_result("get_weather", {"sky": "sunny", "temp": 21})
    m.record_model_output("", [("get_weather", {"city": "Paris"})])
    v = m.check()
    err = m.halt_error(v)
    assert isinstance(err, AgentHalted)
    assert err.reason is TerminationReason.REPEATED_TOOL and str(err) == v.message
    assert err.details == v.details and err.partial == "Paris is sunny, 21 °C."
    again = pickle.loads(pickle.dumps(err))
    assert again.reason is err.reason and again.partial == err.partial and again.details == err.details
    with pytest.raises(ValueError, match="halt"):
        m.halt_error(StuckVerdict("ok"))


def test_best_answer():
    m = StuckDetector().start()
    assert m.best_answer() is None
    m.record_tool_result("search", {"hits": ["a"]})
    assert m.best_answer() == '{"hits": ["a"]}'
    m.record_tool_result("search", "   ")
    assert m.best_answer() == '{"hits": ["a"]}'  # empty results are not answers
    m.record_model_output("   ")
    assert m.best_answer() == '{"hits": ["a"]}'
    m.record_model_output("The answer is a.")
    m.record_tool_result("search", "b")
    assert m.best_answer() == "The answer is a."  # model text beats tool results


@pytest.mark.parametrize(
    "variants",
    [
        [{"a": 1, "b": 2}, {"b": 2, "a": 1}, '{"b": 2, "a": 1}', "{'a': 1, 'b': 2}"],
        ["weather in Paris", "  weather   in\nParis ", "weather\tin Paris"],
        [{"q": "weather  in Paris", "opts": (1, 2)}, {"opts": [1, 2], "q": "weather in  Paris"}],
    ],
)
def test_argument_normalisation(variants):
    m = StuckDetector(repeat_limit=len(variants), window=max(5, len(variants)), nudge=False).start()
    for args in variants:
        assert m.check().action == "ok"
        m.record_tool_call("tool", args)
    v = m.check()
    assert v.details["rule"] == "identical_args" and v.details["count"] == len(variants)


def test_different_argument_values_are_different_calls():
    m = StuckDetector(nudge=False).start()
    for args in [{"a": 1}, {"a": 2}, {"a": "1"}, {"b": 1}, {"a": 1, "b": None}]:
        m.record_tool_call("tool", args)
        m.record_tool_result("tool", f"r{args}")
    assert m.check().action == "ok"


def test_unusual_arguments_never_raise():
    class Weird:
        def __repr__(self) -> str:
            return "Weird()"

    m = StuckDetector(nudge=False).start()
    for args in [{"x": Weird()}, {Weird(): {1, 2}}, "{not json", None, b"bytes", [[[]]]]:
        m.record_tool_call("tool", args)
        m.record_tool_result("tool", args)
    assert m.tool_calls == 6


def test_announced_calls_are_not_counted_twice():
    m = StuckDetector().start()
    m.record_model_output("", [("search", {"query": "x"}), ("calc", {"expr": "1+1"})])
    m.record_tool_call("search", "{'query': 'x'}")  # LangChain's on_tool_start input_str
    m.record_tool_call("calc", "1+1")  # a single-input tool: matched by name
    assert m.tool_calls == 2
    m.record_model_output("")
    m.record_tool_call("calc", "2+2")  # not announced: counted
    assert m.tool_calls == 3 and m.iterations == 2


def test_parallel_recording_from_threads():
    m = StuckDetector(window=50, repeat_limit=50).start()

    def worker(k: int) -> None:
        for i in range(200):
            m.record_tool_call(f"tool{k}", {"i": i})
            m.record_tool_result(f"tool{k}", f"{k}-{i}")
            m.check()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert m.tool_calls == 800 and m.check().action == "ok"
