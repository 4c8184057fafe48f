"""CPU cost per line of the line-handling policy and the wire: splitting,
level detection, building a chunk's RecordBlock, filtering, encoding a batch
as LogMessage JSON, and masking the frame that carries it.

    .venv/bin/python tools/policy_costs.py

Prints nanoseconds of CPU per line (process time, best of several runs, so
other busy processes on the machine disturb it less than wall time would).
Lines are distinct, as in real output: pickle and the string interning of
identical lines would flatter the figures.
"""

from __future__ import annotations

import random
import time
from collections import deque
from itertools import repeat
from collections.abc import Callable

from keruta_actors.adapters.frames import apply_mask, xor_mask
from keruta_actors.policy.filters import FilterChain
from keruta_actors.policy.levels import detect_level
from keruta_actors.policy.lines import LineSplitter
from keruta_actors.records import SOURCES, LogMessageEncoder, RecordBlock

WORDS = (
    "request handled user cache miss hit worker started batch item took ms connection "
    "retry upload download rows written checkpoint epoch loss accuracy file opened closed"
).split()
LEAKY = ("password", "secret", "token")
SECRET = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.sig"
REPEATS = 7
CHUNK = 1000
CHUNKS = 20
# The source reader's metadata: one dict, shared by every source.
METADATA = {"processId": 4242, "command": "python train.py", "hostname": "host", "agentVersion": "0.1.0"}
SHARED = (METADATA,) * len(SOURCES)


def plain_line(rnd: random.Random, n: int, level: str) -> str:
    words = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(5, 9)))
    stamp = f"2026-11-29T01:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z"
    return f"{stamp} {level}worker-{n % 7} {words} id={rnd.getrandbits(40):x}"


def lines(
    count: int, leaky_share: float, shape: str = "{}", level: str = "", seed: int = 1
) -> list[str]:
    rnd = random.Random(seed)
    made = []
    for n in range(count):
        line = shape.format(plain_line(rnd, n, level))
        if rnd.random() < leaky_share:
            line += f" {rnd.choice(LEAKY)}={rnd.getrandbits(32):x}"
        made.append(line)
    return made


def ns_per_line(run: Callable[[], object], count: int) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best / count * 1e9


def splitter_cost() -> float:
    text = "\n".join(lines(14_000, 0.0)) + "\n"
    data = text.encode()[: 1 << 20]
    count = data.count(b"\n")
    return ns_per_line(lambda: LineSplitter(8192, 5.0).feed(data, now=0.0), count)


def level_cost(shape: str, level: str) -> float:
    sample = lines(20_000, 0.0, shape, level)
    return ns_per_line(lambda: [detect_level(line, "INFO") for line in sample], len(sample))


def chunk_texts(leaky_share: float) -> list[list[str]]:
    return [lines(CHUNK, leaky_share, seed=seed) for seed in range(CHUNKS)]


def read_block(texts: list[str], first: int) -> RecordBlock:
    """A chunk as the source reader builds it: one read, one level each line."""
    return RecordBlock.of_lines(
        "run", "stdout", first, 0.0, ["INFO"] * len(texts), [(text, None) for text in texts], SHARED
    )


def block_cost() -> float:
    """ns/line of `of_lines` over 1000-line chunks (the lines and their levels
    made beforehand, as the splitter and level detection hand them over)."""
    chunks = [(["INFO"] * len(texts), [(text, None) for text in texts]) for texts in chunk_texts(0.0)]

    def build() -> list[RecordBlock]:
        return [
            RecordBlock.of_lines("run", "stdout", 1 + n * CHUNK, 0.0, levels, pairs, SHARED)
            for n, (levels, pairs) in enumerate(chunks)
        ]

    return ns_per_line(build, CHUNK * CHUNKS)


def chain_cost(leaky_share: float) -> tuple[float, float]:
    """ns/line of the default chain over 1000-line blocks, and the share excluded."""
    chain = FilterChain(min_level="INFO", secrets=(SECRET,))
    blocks = [read_block(texts, 1 + n * CHUNK) for n, texts in enumerate(chunk_texts(leaky_share))]
    excluded = sum(chain.apply(block)[1]["excluded"] for block in blocks) / (CHUNK * CHUNKS)
    cost = ns_per_line(lambda: [chain.apply(block) for block in blocks], CHUNK * CHUNKS)
    return cost, excluded


def encode_cost(batch: int) -> float:
    """ns/line of encoding `batch`-record wire batches (one read's timestamp each)."""
    encoder = LogMessageEncoder("task-1")
    batches = [piece for n, texts in enumerate(chunk_texts(0.0))
               for piece in read_block(texts, 1 + n * CHUNK).cut([batch] * (CHUNK // batch))]
    return ns_per_line(lambda: [encoder.encode_block(piece) for piece in batches], CHUNK * CHUNKS)


def mask_cost(mask: Callable[[bytes, bytes], bytes]) -> float:
    """ns/line of masking 100-line frames of the encoded records."""
    encoder = LogMessageEncoder("task-1")
    frames = [",".join(encoder.encode_block(piece)).encode()
              for n, texts in enumerate(chunk_texts(0.0)) for piece in read_block(texts, 1 + n * CHUNK).cut([100] * 10)]
    # each masked frame is dropped at once, as after a send: keeping them all
    # would measure page faults instead
    return ns_per_line(lambda: deque(map(mask, frames, repeat(b"\x01\x02\x03\x04")), maxlen=0), CHUNK * CHUNKS)


def main() -> None:
    rows = [("LineSplitter.feed, 1 MiB of ~90-byte lines", splitter_cost())]
    for label, shape, level in (
        ("no level word", "{}", ""),
        ("level after timestamp", "{}", "INFO "),
        ("[level] first", "[warn] {}", ""),
        ("JSON object line", '{{"level": "info", "msg": "{}"}}', ""),
    ):
        rows.append((f"detect_level, {label}", level_cost(shape, level)))
    rows.append(("RecordBlock.of_lines, 1000-line chunks", block_cost()))
    for share in (0.0, 0.05):
        cost, excluded = chain_cost(share)
        rows.append((f"FilterChain defaults + 1 secret, {excluded:.1%} excluded", cost))
    for batch in (10, 100):
        rows.append((f"LogMessageEncoder.encode_block, {batch}-record batches", encode_cost(batch)))
    rows.append(("frame masking, websockets' C apply_mask", mask_cost(apply_mask)))
    rows.append(("frame masking, big-integer XOR (fallback)", mask_cost(xor_mask)))
    width = max(len(label) for label, _ in rows)
    print(f"{'stage':<{width}}  ns/line (CPU)")
    for label, cost in rows:
        print(f"{label:<{width}}  {cost:8.0f}")


if __name__ == "__main__":
    main()
