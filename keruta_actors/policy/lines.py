"""Bytes to lines, one `LineSplitter` per source (SPEC §4).

A `Line` is a plain tuple `(text, extra)`. `extra` is None for an ordinary
line and otherwise holds the per-line metadata keys, spelled as on the wire:

- `{"truncated": True, "originalLength": N}`: the line had N characters
  (after decoding, without the newline and trailing `\\r`) and was cut to
  `max_length`.
- `{"partial": True}`: shipped by `expire` before its newline arrived.
- `{"continuation": True}`: the rest of a line whose start was shipped as
  partial. A continuation that waits too long again is itself shipped with
  both keys.

A receiver rebuilds a line by joining a partial record with the
continuations that follow it, up to one without `partial`. A continuation
with no text (the newline arrived right after the expiry, or the stream
ended) is not shipped, so a partial record followed by a record that is no
continuation, or by nothing, already held the whole line. A trailing `\r`
of a partial record is removed as if the newline followed it.

Splitting is exact whatever the read sizes: the bytes are decoded by one
incremental UTF-8 decoder per source, so a character cut by a read boundary
is decoded whole, and invalid bytes become U+FFFD exactly where decoding the
whole stream at once would put them. NUL bytes and ANSI escapes are kept.
The unfinished line is bounded: beyond `max_length` characters only its
last character (a possible `\\r`) and a count are kept, so a producer that
writes 100 MB without a newline costs linear time and constant memory.
"""

from __future__ import annotations

import codecs
from itertools import repeat

Line = tuple  # (text: str, extra: dict | None)


class LineSplitter:
    def __init__(self, max_length: int, partial_timeout: float) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        self.max_length = max_length
        self.partial_timeout = partial_timeout
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        # The unfinished line: its first max_length characters and, once it
        # is longer, its last character; `_dropped` counts those between.
        self._pending = ""
        self._dropped = 0
        self._since: float | None = None  # when `_pending` got its first character
        self._continuing = False  # the line's start was shipped as partial

    def feed(self, data: bytes, now: float) -> list[Line]:
        """The lines completed by `data`, in order."""
        text = self._decoder.decode(data)
        if "\n" not in text:
            self._extend(text, now)
            return []
        pieces = text.split("\n")
        tail = pieces.pop()
        lines: list[Line] = []
        if self._pending or self._continuing:
            line = self._close(pieces[0], partial=False)
            if line:
                lines.append(line)
            self._continuing = False
            pieces = pieces[1:]
        lines += self._complete(pieces, "\r" in text)
        self._extend(tail, now)
        return lines

    def expire(self, now: float) -> list[Line]:
        """The unfinished line, as partial, once it has waited `partial_timeout`."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return []
        line = self._close("", partial=True)
        self._continuing = True
        return [line] if line else []

    def finish(self, now: float) -> list[Line]:
        """End of stream: the last line, even without a newline, as a whole line."""
        text = self._decoder.decode(b"", final=True)
        self._extend(text, now)
        line = self._close("", partial=False) if self._pending else None
        self._continuing = False
        return [line] if line else []

    def deadline(self) -> float | None:
        """When `expire` will next ship something, or None while nothing waits."""
        return None if self._since is None else self._since + self.partial_timeout

    def _complete(self, pieces: list[str], has_cr: bool) -> list[Line]:
        """Whole lines that never touched the pending buffer: the fast path."""
        if has_cr:
            pieces = [piece[:-1] if piece[-1:] == "\r" else piece for piece in pieces]
        limit = self.max_length
        if max(map(len, pieces), default=0) <= limit:
            return list(zip(pieces, repeat(None)))
        return [
            (piece, None) if len(piece) <= limit else self._cut(piece, len(piece), {})
            for piece in pieces
        ]

    def _extend(self, text: str, now: float) -> None:
        if not text:
            return
        if not self._pending:
            self._since = now
        pending = self._pending + text
        keep = self.max_length
        if len(pending) > keep + 1:
            self._dropped += len(pending) - keep - 1
            pending = pending[:keep] + pending[-1]
        self._pending = pending

    def _close(self, rest: str, partial: bool) -> Line | None:
        """The pending line ended by `rest`; None for an empty continuation.
        The caller decides what `_continuing` becomes."""
        text = self._pending + rest
        length = len(text) + self._dropped
        self._pending, self._dropped, self._since = "", 0, None
        if text[-1:] == "\r":
            text, length = text[:-1], length - 1
        extra = {"partial": True} if partial else {}
        if self._continuing:
            if not length:
                return None
            extra["continuation"] = True
        if length > self.max_length:
            return self._cut(text, length, extra)
        return (text, extra or None)

    def _cut(self, text: str, length: int, extra: dict) -> Line:
        extra["truncated"] = True
        extra["originalLength"] = length
        return (text[: self.max_length], extra)
