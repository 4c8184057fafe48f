import pytest
from hypothesis import given
from hypothesis import strategies as st

from keruta_actors.policy.adaptive_buffer import AdaptiveBuffer, buffer_cap_for_memory


def test_doubles_above_80_percent_up_to_the_cap():
    buffer = AdaptiveBuffer(base=100, cap=300)
    assert buffer.adjust(80) == 100  # exactly 80% is not above it
    assert buffer.adjust(81) == 200
    assert buffer.adjust(161) == 300
    assert buffer.adjust(300) == 300


def test_halves_below_30_percent_down_to_the_base():
    buffer = AdaptiveBuffer(base=100, cap=1000)
    buffer.adjust(100)
    buffer.adjust(200)
    assert buffer.size == 400
    assert buffer.adjust(120) == 400  # exactly 30% is not below it
    assert buffer.adjust(119) == 200
    assert buffer.adjust(0) == 100
    assert buffer.adjust(0) == 100


def test_shrink_returns_to_the_base_at_once():
    buffer = AdaptiveBuffer(base=10, cap=1000)
    for fill in (10, 20, 40, 80):
        buffer.adjust(fill)
    assert buffer.size == 160
    assert buffer.shrink() == 10
    assert buffer.size == 10


def test_rejects_a_cap_below_the_base():
    with pytest.raises(ValueError):
        AdaptiveBuffer(base=100, cap=50)


def test_cap_is_a_quarter_of_the_memory_limit_in_typical_records():
    # 512 MiB * 1/4 / 512 bytes per record
    assert buffer_cap_for_memory(512) == 262_144
    assert buffer_cap_for_memory(512, bytes_per_record=1024, share=0.5) == 262_144


def test_cap_is_never_below_the_base():
    assert buffer_cap_for_memory(1, bytes_per_record=10**6, base=1000) == 1000


@pytest.mark.parametrize("args", [(0,), (512, 0), (512, 512, 0.0), (512, 512, 1.5)])
def test_cap_rejects_meaningless_settings(args):
    with pytest.raises(ValueError):
        buffer_cap_for_memory(*args)


@given(
    base=st.integers(1, 5000),
    extra=st.integers(0, 100_000),
    events=st.lists(st.one_of(st.integers(0, 200_000), st.just("shrink")), max_size=50),
)
def test_size_stays_within_base_and_cap(base, extra, events):
    buffer = AdaptiveBuffer(base, base + extra)
    for event in events:
        before = buffer.size
        size = buffer.shrink() if event == "shrink" else buffer.adjust(event)
        assert size == buffer.size
        assert base <= size <= base + extra
        if event != "shrink" and before < size:
            assert event * 10 > before * 8
