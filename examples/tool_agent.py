"""A tool-heavy assistant: SmolLM2-135M turns the message into a search query, three tools
run in parallel (a web search, a weather service and a currency converter), and SmolLM2
writes the reply from what they returned. Most of a request's time is in the tools.

    python examples/tool_agent.py "Is it a good weekend for a trip to Basel, and what is 200 EUR in CHF?"

The tools answer here from local data (knowledge.txt, a fixed weather table, fixed rates),
so the example runs offline. Their `latency_ms` are the planning figures of the remote
services they stand for: what placement and the TCO study (agentc study tco) charge for
each call, as the agent's author declares them.
AGENTC_RANDOM_WEIGHTS=1 swaps in the same architecture with seeded random weights.
"""

import os
import re
import sys
from pathlib import Path

import agentc

LLM = "smollm2-135m" + ("-random" if os.environ.get("AGENTC_RANDOM_WEIGHTS") == "1" else "")
PASSAGES = [p.strip() for p in (Path(__file__).with_name("knowledge.txt").read_text().split("\n\n")) if p.strip()]
WEATHER = {"basel": "sunny, 18 C", "zurich": "cloudy, 15 C", "geneva": "light rain, 14 C"}
RATES = {("EUR", "CHF"): 0.94, ("CHF", "EUR"): 1.06, ("USD", "CHF"): 0.88}


def web_search(query: str) -> str:
    """The passage of knowledge.txt sharing the most words with the query."""
    words = set(re.findall(r"\w+", query.lower()))
    return max(PASSAGES, key=lambda p: len(words & set(re.findall(r"\w+", p.lower()))))


def weather(message: str) -> str:
    found = [f"{city.title()}: {w}" for city, w in WEATHER.items() if city in message.lower()]
    return "; ".join(found) or "no forecast for the places named"


def convert(message: str) -> str:
    m = re.search(r"(\d+(?:\.\d+)?)\s*([A-Z]{3})\s+(?:in|to)\s+([A-Z]{3})", message)
    if not m or (m.group(2), m.group(3)) not in RATES:
        return "no conversion asked"
    amount, src, dst = float(m.group(1)), m.group(2), m.group(3)
    return f"{amount:g} {src} = {amount * RATES[(src, dst)]:.2f} {dst}"


@agentc.agent(sla_ms=20000)
def assistant(message):
    query = agentc.llm(agentc.format("Write a short web search query for this message.\nMessage: {m}", m=message,
                                     name="query_prompt"),
                       model=LLM, max_tokens=12, name="plan", prompt_len=64, cache_len=128)
    found = agentc.tool(web_search, query, latency_ms=450, timeout_ms=3000, name="web_search")
    forecast = agentc.tool(weather, message, latency_ms=250, timeout_ms=2000, name="weather")
    money = agentc.tool(convert, message, latency_ms=120, timeout_ms=2000, name="convert")
    prompt = agentc.format("Answer the message in two sentences from these results.\nSearch: {s}\nWeather: {w}\n"
                           "Currency: {c}\nMessage: {m}", s=found, w=forecast, c=money, m=message, name="reply_prompt")
    return agentc.llm(prompt, model=LLM, max_tokens=32, name="reply", prompt_len=192, cache_len=256)


if __name__ == "__main__":
    placement = agentc.compile(__file__, "build/tool_agent", devices=["cpu"], quiet=True)
    with agentc.load(placement.build_dir) as session:
        for m in sys.argv[1:] or ["Is it a good weekend for a trip to Basel, and what is 200 EUR in CHF?"]:
            print(session.run({"message": m})["outputs"][0])
