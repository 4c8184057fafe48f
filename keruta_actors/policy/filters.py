"""Which records are shipped, and with what text (SPEC §4, filters).

`FilterChain.apply` takes a chunk of records and returns the ones to ship,
with every configured secret masked, plus counts of the others by reason:

- `below_level`: the record's level is below `min_level`;
- `excluded`: its message matches an exclude pattern;
- `not_included`: include patterns are configured and it matches none.

A record is counted once, under the first reason in that order. Patterns
are matched against the message as read, before masking.

Masking covers the message only: metadata (the command line may hold a
token) must be masked where it is built. A secret cut in two by truncation
or by a partial-line expiry (policy/lines.py) is found in neither piece.

Patterns are searched (not anchored) in each line and match case-
insensitively: `.*password.*` must also drop `PASSWORD=hunter2`. Pattern
text that is a plain word is compared by Unicode case folding, which can
also match a few folded spellings a regex would not (`ß` as `ss`); for an
exclude list that errs on the side of not shipping.

Cost: a regex searched line by line costs several microseconds a line, so a
chunk's messages are joined by newlines and searched once; a hit is mapped
back to its line by counting newlines. This only gives per-line answers for
patterns that can never match a newline, which `_single_line` checks
conservatively; any other pattern is searched line by line. A leading or
trailing `.*` only slows the engine down and is dropped first.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from itertools import count

from ..records import LEVEL_RANK, RecordBlock

DEFAULT_EXCLUDES = (".*password.*", ".*secret.*", ".*token.*")
DEFAULT_INCLUDES = (".*",)

_META = frozenset(".^$*+?{}[]()|\\")
# Letter escapes that match no newline (escaped punctuation is safe too).
# Not \t: `[\t-z]` is a range that holds the newline.
_SAFE_ESCAPES = frozenset("dwbB")


class FilterChain:
    """Level, exclude and include rules plus secret masking, for blocks of records."""

    def __init__(
        self,
        exclude_patterns: Iterable[str] = DEFAULT_EXCLUDES,
        include_patterns: Iterable[str] = DEFAULT_INCLUDES,
        min_level: str = "INFO",
        secrets: tuple[str, ...] = (),
    ) -> None:
        """An empty include list keeps everything, like the default `.*`.
        Raises `re.error` for an invalid pattern, KeyError for an unknown level."""
        self._min_rank = LEVEL_RANK[min_level]
        self._exclude = PatternSet(exclude_patterns)
        include = PatternSet(include_patterns)
        self._include = None if include.matches_all or not include else include
        self._masker = SecretMasker(secrets)

    def apply(self, block: RecordBlock) -> tuple[RecordBlock, Counter[str]]:
        """The records to ship, in order, and the others counted by reason."""
        dropped: Counter[str] = Counter()
        messages = block.messages()
        candidates = self._at_level(block.levels, dropped)
        if candidates is None:
            candidates, texts, joined = range(len(messages)), messages, block.text
        else:
            texts = [messages[index] for index in candidates]
            joined = "\n".join(texts)
        excluded = self._exclude.matching(texts, joined)
        if self._include:
            keep = sorted(self._include.matching(texts, joined) - excluded)
        elif excluded:
            keep = [position for position in range(len(texts)) if position not in excluded]
        else:
            keep = range(len(texts))
        kept = [candidates[position] for position in keep]
        _tally(dropped, "excluded", len(excluded))
        _tally(dropped, "not_included", len(texts) - len(kept) - len(excluded))
        replaced = None
        if self._masker.found_in(joined):
            replaced = {index: self._masker.mask_text(messages[index]) for index in kept}
        return block.select(kept, replaced), dropped

    def _at_level(self, levels: bytes, dropped: Counter[str]) -> list[int] | None:
        """Indices of the records at or above the level, None if that is all."""
        if not levels or min(levels) >= self._min_rank:
            return None
        shipped = [index for index, rank in enumerate(levels) if rank >= self._min_rank]
        _tally(dropped, "below_level", len(levels) - len(shipped))
        return shipped


def credentials(auth) -> tuple[str, ...]:
    """The configured secrets (`settings.auth`) that must never be shipped."""
    return tuple(secret for secret in (auth.token, auth.api_key) if secret)


def _tally(counter: Counter[str], reason: str, number: int) -> None:
    if number:
        counter[reason] += number


class SecretMasker:
    """Replaces every occurrence of each secret by four mask characters.

    Secrets of any length are masked, even one character: over-masking a log
    line costs less than leaking a key. Empty strings (unset settings) are
    ignored. Longer secrets go first, so one that contains another is masked
    whole.

    The mask is `****` unless a secret contains `*`; then it is made of the
    first character from `*` upwards that no secret contains. A mask sharing
    no character with any secret cannot combine with its neighbours into a
    new occurrence, so one pass per secret leaves none behind.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({secret for secret in secrets if secret}, key=len, reverse=True)
        candidates = map(chr, count(ord("*")))
        self.mask = next(c for c in candidates if not any(c in s for s in self._secrets)) * 4

    def found_in(self, text: str) -> bool:
        return any(secret in text for secret in self._secrets)

    def mask_text(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, self.mask)
        return text


class PatternSet:
    """Regular expressions searched case-insensitively in each line of a chunk."""

    def __init__(self, patterns: Iterable[str]) -> None:
        cores = [_core(pattern) for pattern in patterns]
        self.matches_all = "" in cores
        words = [core for core in cores if core and _is_word(core)]
        self._words = [word.casefold() for word in words]
        flags = re.IGNORECASE | re.MULTILINE
        regexes = [re.compile(core, flags) for core in cores if core and core not in words]
        self._joinable = [regex for regex in regexes if _single_line(regex.pattern)]
        self._per_line = [regex for regex in regexes if not _single_line(regex.pattern)]

    def __bool__(self) -> bool:
        return self.matches_all or bool(self._words or self._joinable or self._per_line)

    def matching(self, lines: list[str], joined: str | None = None) -> set[int]:
        """Indices of the lines matched by at least one pattern.

        `joined` is `"\\n".join(lines)`, passed when the caller already has it."""
        if self.matches_all:
            return set(range(len(lines)))
        if not self or not lines:
            return set()
        joined = "\n".join(lines) if joined is None else joined
        if joined.count("\n") != len(lines) - 1:  # a line holds a newline itself
            return {index for index, line in enumerate(lines) if self.search(line)}
        hits: set[int] = set()
        if self._words:
            folded = joined.casefold()
            finds = (partial(folded.find, word) for word in self._words)
            hits.update(_line_indices(folded, finds))
        if self._joinable:
            finds = (partial(_first_match, regex, joined) for regex in self._joinable)
            hits.update(_line_indices(joined, finds))
        for regex in self._per_line:
            hits.update(index for index, line in enumerate(lines) if regex.search(line))
        return hits

    def search(self, line: str) -> bool:
        """Whether one line matches (the slow path, for odd chunks)."""
        if self.matches_all:
            return True
        folded = line.casefold()
        return any(word in folded for word in self._words) or any(
            regex.search(line) for regex in self._joinable + self._per_line
        )


def _is_word(core: str) -> bool:
    """Plain text: no regex syntax and no newline of its own."""
    return _META.isdisjoint(core) and "\n" not in core


def _first_match(regex: re.Pattern[str], text: str, pos: int) -> int:
    match = regex.search(text, pos)
    return match.start() if match else -1


def _line_indices(joined: str, finds: Iterable[Callable[[int], int]]) -> Iterator[int]:
    """The lines of `joined` where any of `finds` hits. Each maps a position
    to the first hit at or after it, or -1. Counting newlines costs as much
    as a search, so it is done once, over the hits of all searches."""
    positions = sorted(position for find in finds for position in _first_hits(joined, find))
    line = scanned = 0
    for position in positions:
        line += joined.count("\n", scanned, position)
        scanned = position
        yield line


def _first_hits(joined: str, find: Callable[[int], int]) -> Iterator[int]:
    """The first hit in each line that has one: after a hit the search
    resumes at the next line."""
    position = find(0)
    while position >= 0:
        yield position
        next_line = joined.find("\n", position) + 1
        if not next_line:
            return
        position = find(next_line)


def _core(pattern: str) -> str:
    """`pattern` without a leading or trailing `.*`, which cannot change
    whether a single line (no newline) contains a match.

    Raises re.error for an invalid pattern, so the error names it as written."""
    re.compile(pattern)
    if pattern.startswith(".*") and pattern[2:3] not in ("*", "+", "?", "{"):
        pattern = pattern[2:]
    if pattern.endswith(".*") and _unescaped(pattern, len(pattern) - 2):
        pattern = pattern[:-2]
    return pattern


def _unescaped(pattern: str, index: int) -> bool:
    """Whether the character at `index` is not preceded by an escaping backslash."""
    backslashes = len(pattern[:index]) - len(pattern[:index].rstrip("\\"))
    return backslashes % 2 == 0


def _single_line(pattern: str) -> bool:
    """True if `pattern` surely matches no newline, so a search over joined
    lines finds exactly the lines a search line by line would.

    Conservative: refuses negated classes (`[^x]` matches a newline), `\\s`,
    `\\S`, `\\W`, `\\D`, numeric escapes, `\\A`/`\\Z`, every `(?` group but
    `(?:` (flags such as `(?s)`, lookarounds), and control characters."""
    chars = iter(enumerate(pattern))
    for index, char in chars:
        if char < " ":
            return False
        if char == "\\":
            escaped = next(chars, (0, ""))[1]
            if escaped < " " or (escaped.isalnum() and escaped not in _SAFE_ESCAPES):
                return False
        elif pattern.startswith("[^", index):
            return False
        elif pattern.startswith("(?", index) and not pattern.startswith("(?:", index):
            return False
    return True
