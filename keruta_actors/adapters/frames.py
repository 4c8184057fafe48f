"""WebSocket frames (RFC 6455 §5.2) without I/O: client frames to bytes, and
server frames from bytes.

The connection reads whatever the socket holds in one call when the reactor
reports it readable, and feeds it here; complete messages come out. Bytes
in, messages out, so any split of the stream gives the same messages
(tests/unit/test_frames.py holds it to that).

websocket-client still makes the connection (handshake, TLS); framing is
done here because the socket is non-blocking once connected (a hung server
must never stall the agent's one loop), because its reader asks the socket
for the exact bytes it needs next (several system calls for every small
ack) and cannot refuse an oversized frame before reading it whole, and
because its masking copies every frame into arrays first.
"""

from __future__ import annotations

import struct

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CONTROL = frozenset({CLOSE, PING, PONG})
DATA = frozenset({TEXT, BINARY})


def client_frame(opcode: int, payload: bytes, mask: bytes) -> bytes:
    """One final, masked client frame; `mask` is 4 random bytes (§5.3)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return header + mask + apply_mask(payload, mask)


def xor_mask(data: bytes, mask: bytes) -> bytes:
    """`data` XOR the repeated 4-byte `mask` as one big-integer XOR: the
    stand-in where the C `apply_mask` is missing."""
    length = len(data)
    if not length:
        return b""
    key = (mask * (length // 4 + 1))[:length]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(length, "little")


try:
    # python-websockets' C masking: 0.5 µs for a 20 KB frame, against 36 µs
    # for the big-integer XOR (tools/policy_costs.py measures both).
    from websockets.speedups import apply_mask
except ImportError:  # a build of websockets without its C extension
    apply_mask = xor_mask


class FrameError(Exception):
    """The server broke the protocol or sent more than we accept."""


class FrameReader:
    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._fragmented_opcode: int | None = None

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Every complete message in what has arrived: (opcode, payload)."""
        self._buffer += data
        messages = []
        while True:
            frame = self._next_frame()
            if frame is None:
                return messages
            message = self._assemble(*frame)
            if message is not None:
                messages.append(message)

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        first, second = buffer[0], buffer[1]
        if first & 0x70:
            raise FrameError("reserved bits set (no extension was negotiated)")
        if second & 0x80:
            raise FrameError("the server masked a frame")
        length, offset = second & 0x7F, 2
        if length == 126:
            if len(buffer) < 4:
                return None
            (length,), offset = struct.unpack_from("!H", buffer, 2), 4
        elif length == 127:
            if len(buffer) < 10:
                return None
            (length,), offset = struct.unpack_from("!Q", buffer, 2), 10
        if length > self.max_message:
            raise FrameError(f"a {length}-byte frame is over the {self.max_message}-byte limit")
        if len(buffer) < offset + length:
            return None
        payload = bytes(buffer[offset : offset + length])
        del buffer[: offset + length]
        return bool(first & 0x80), first & 0x0F, payload

    def _assemble(self, fin: bool, opcode: int, payload: bytes) -> tuple[int, bytes] | None:
        if opcode in CONTROL:
            if not fin or len(payload) > 125:
                raise FrameError("a control frame was fragmented or too long")
            return opcode, payload
        if opcode in DATA:
            if self._fragmented_opcode is not None:
                raise FrameError("a new message began inside a fragmented one")
            if fin:
                return opcode, payload
            self._fragmented_opcode, self._fragments = opcode, [payload]
            return None
        if opcode != CONTINUATION or self._fragmented_opcode is None:
            raise FrameError(f"unexpected opcode {opcode:#x}")
        self._fragments.append(payload)
        if sum(map(len, self._fragments)) > self.max_message:
            raise FrameError(f"a fragmented message is over the {self.max_message}-byte limit")
        if not fin:
            return None
        opcode, self._fragmented_opcode = self._fragmented_opcode, None
        return opcode, b"".join(self._fragments)
