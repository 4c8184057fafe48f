"""The run's account (SPEC §6): for each stream, every record the run was
responsible for is delivered, not shipped on purpose (by reason), or left in
the spool; without a usable spool, what is none of these is lost.

    read + from the spool = delivered + not shipped + left in the spool (+ lost)

`read` counts the lines read this run; `from the spool` the records an
earlier run left unconfirmed in the spool, which this run sends first. The
four terms are counted apart (the reader counts reads and asks the spool
what it holds; the batcher counts confirmations; every stage counts what it
does not ship), so the sum is a check, and a difference is reported as
unaccounted rather than hidden.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

StreamKey = tuple  # (namespace, source)


@dataclass(frozen=True, slots=True)
class StreamAccount:
    label: str  # stdout, stderr, stdin, file:PATH
    read: int
    from_spool: int
    delivered: int
    not_shipped: tuple[tuple[str, int], ...]  # ((reason, records), ...)
    left: int  # still in the spool
    lost: int = 0  # held in memory only (no usable spool) and not delivered
    unaccounted: int = 0  # should be 0: read + from_spool less all the rest

    @property
    def not_shipped_total(self) -> int:
        return sum(count for _, count in self.not_shipped)

    def describe(self) -> str:
        reasons = ", ".join(f"{reason} {count}" for reason, count in self.not_shipped)
        text = (f"{self.label}: {self.read} read + {self.from_spool} from the spool = {self.delivered} delivered"
                f" + {self.not_shipped_total} not shipped{f' ({reasons})' if reasons else ''}"
                f" + {self.left} left in the spool")
        if self.lost:
            text += f" + {self.lost} lost (no spool)"
        if self.unaccounted:
            text += f"; {self.unaccounted} unaccounted for"
        return text


def account(read: dict, from_spool: dict, delivered: dict, not_shipped: dict, left: dict,
            labels: dict, spool_usable: bool) -> tuple[StreamAccount, ...]:
    """Per stream, from the counts keyed by (namespace, source) (`not_shipped`
    by (namespace, source, reason)). With `spool_usable` False (off, or it
    failed), what is not otherwise accounted for is lost."""
    reasons: dict[StreamKey, Counter[str]] = {}
    for (namespace, source, reason), count in not_shipped.items():
        reasons.setdefault((namespace, source), Counter())[reason] += count
    streams = sorted({*read, *from_spool, *delivered, *reasons, *left})
    accounts = []
    for stream in streams:
        dropped = reasons.get(stream, Counter())
        rest = (read.get(stream, 0) + from_spool.get(stream, 0) - delivered.get(stream, 0)
                - sum(dropped.values()) - left.get(stream, 0))
        lost = max(rest, 0) if not spool_usable else 0
        accounts.append(StreamAccount(
            label=labels.get(stream) or f"{stream[1]} of {stream[0]}",
            read=read.get(stream, 0),
            from_spool=from_spool.get(stream, 0),
            delivered=delivered.get(stream, 0),
            not_shipped=tuple(sorted(dropped.items())),
            left=left.get(stream, 0),
            lost=lost,
            unaccounted=rest - lost,
        ))
    return tuple(accounts)
