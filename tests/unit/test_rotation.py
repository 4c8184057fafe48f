from hypothesis import given
from hypothesis import strategies as st

from keruta_actors.policy.rotation import (
    EMPTY,
    HEAD_BYTES,
    FileStat,
    Fingerprint,
    Identity,
    KeepReading,
    Missing,
    Position,
    Reopen,
    Resume,
    Saved,
    Truncated,
    finished,
    follow,
    resume,
)

OLD = Identity(1, 100)
NEW = Identity(1, 200)
NEWER = Identity(1, 300)
HEAD = Fingerprint.of(b"2024-01-01 first line\n")


def at(offset, identity=OLD, head=HEAD):
    return Position(identity, offset, head)


# --- follow ---------------------------------------------------------------


def test_the_same_file_at_the_path_is_read_on():
    assert follow(at(50), FileStat(OLD, 80), HEAD, FileStat(OLD, 80)) == KeepReading()


def test_a_new_file_at_the_path_is_opened_after_the_old_one():
    decision = follow(at(50), FileStat(OLD, 80), HEAD, FileStat(NEW, 0))
    assert isinstance(decision, Reopen)
    assert "inode 200" in decision.reason


def test_a_file_shorter_than_our_offset_was_truncated():
    assert isinstance(follow(at(50), FileStat(OLD, 10), HEAD, FileStat(OLD, 10)), Truncated)


def test_a_file_written_again_past_our_offset_is_told_by_its_first_bytes():
    changed = Fingerprint.of(b"2024-01-02 other line\n")
    assert isinstance(follow(at(50), FileStat(OLD, 90), changed, FileStat(OLD, 90)), Truncated)


def test_nothing_at_the_path_keeps_the_open_file():
    assert isinstance(follow(at(50), FileStat(OLD, 50), HEAD, None), Missing)


def test_a_truncation_is_reported_before_a_change_at_the_path():
    assert isinstance(follow(at(50), FileStat(OLD, 0), HEAD, FileStat(NEW, 5)), Truncated)


def test_the_path_naming_an_older_open_file_again_opens_nothing():
    current = at(0, NEW, EMPTY)
    assert follow(current, FileStat(NEW, 0), EMPTY, FileStat(OLD, 90), frozenset({OLD})) == KeepReading()


@given(
    offset=st.integers(0, 10_000),
    size=st.integers(0, 10_000),
    same_head=st.booleans(),
    path=st.sampled_from([None, OLD, NEW]),
)
def test_follow_truncated_exactly_when_shorter_or_rewritten(offset, size, same_head, path):
    head_now = HEAD if same_head else Fingerprint.of(b"x")
    path_now = None if path is None else FileStat(path, size)
    decision = follow(at(offset), FileStat(OLD, size), head_now, path_now)
    assert isinstance(decision, Truncated) == (size < offset or not same_head)
    if not isinstance(decision, Truncated):
        expected = {None: Missing, OLD: KeepReading, NEW: Reopen}[path]
        assert isinstance(decision, expected)


# --- finished ---------------------------------------------------------------


def test_an_old_file_is_done_only_at_its_end_once_the_writer_moved_on():
    assert finished(True, [5])
    assert finished(True, [0, 3])
    assert not finished(True, [0])  # the writer may still write the old file
    assert not finished(False, [5])  # bytes left to read
    assert not finished(True, [])


# --- fingerprints -------------------------------------------------------------


@given(st.binary(min_size=HEAD_BYTES), st.binary())
def test_a_fingerprint_covers_only_the_first_bytes(head, more):
    assert Fingerprint.of(head) == Fingerprint.of(head + more)
    assert Fingerprint.of(head).length == HEAD_BYTES


def test_an_empty_head_has_length_zero():
    assert EMPTY.length == 0


# --- resume ------------------------------------------------------------------


def test_without_state_a_file_is_read_from_its_start():
    assert resume(None, FileStat(OLD, 70), {}, None, False).plan == ((OLD, 0),)


def test_without_state_start_at_end_skips_what_is_there():
    assert resume(None, FileStat(OLD, 70), {}, None, True).plan == ((OLD, 70),)


def test_without_state_or_file_there_is_nothing_to_read_yet():
    assert resume(None, None, {}, None, False).plan == ()


def test_the_saved_offset_is_used_when_the_file_is_the_same():
    result = resume(Saved(at(40)), FileStat(OLD, 70), {}, HEAD, True)
    assert result == Resume(((OLD, 40),), True, "resumed at the saved offset 40")


def test_a_file_shorter_than_the_saved_offset_is_read_from_its_start():
    result = resume(Saved(at(40)), FileStat(OLD, 10), {}, HEAD, False)
    assert result.plan == ((OLD, 0),) and not result.exact


def test_a_reused_inode_is_told_by_its_first_bytes():
    result = resume(Saved(at(40)), FileStat(OLD, 90), {}, Fingerprint.of(b"someone else"), False)
    assert result.plan == ((OLD, 0),) and not result.exact


def test_a_file_rotated_while_we_were_down_is_finished_first():
    result = resume(Saved(at(40)), FileStat(NEW, 30), {OLD: FileStat(OLD, 90)}, HEAD, True)
    assert result.plan == ((OLD, 40), (NEW, 0))
    assert result.exact and "rotated away" in result.reason


def test_files_opened_after_the_saved_one_follow_it_in_order():
    saved = Saved(at(40), (NEW,))
    found = {OLD: FileStat(OLD, 90), NEW: FileStat(NEW, 30)}
    result = resume(saved, FileStat(NEWER, 0), found, HEAD, False)
    assert result.plan == ((OLD, 40), (NEW, 0), (NEWER, 0))
    assert result.exact


def test_a_saved_file_that_is_gone_is_not_exact():
    result = resume(Saved(at(40), (NEW,)), FileStat(NEW, 30), {}, None, True)
    assert result.plan == ((NEW, 0),)
    assert not result.exact and "gone" in result.reason


def test_a_later_file_that_is_gone_is_not_exact():
    result = resume(Saved(at(40), (NEW,)), FileStat(NEWER, 30), {OLD: FileStat(OLD, 90)}, HEAD, False)
    assert result.plan == ((OLD, 40), (NEWER, 0))
    assert not result.exact


identities = st.sampled_from([OLD, NEW, NEWER, Identity(2, 100)])


@given(
    saved=st.none() | st.builds(Saved, st.builds(Position, identities, st.integers(0, 100), st.just(HEAD)),
                                st.lists(identities, max_size=3).map(tuple)),
    path=st.none() | st.builds(FileStat, identities, st.integers(0, 100)),
    found=st.dictionaries(identities, st.integers(0, 100)),
    same_head=st.booleans(),
    start_at_end=st.booleans(),
)
def test_a_plan_reads_each_file_once_from_0_except_the_first(saved, path, found, same_head, start_at_end):
    stats = {identity: FileStat(identity, size) for identity, size in found.items()}
    result = resume(saved, path, stats, HEAD if same_head else EMPTY, start_at_end)
    planned = [identity for identity, _ in result.plan]
    assert len(planned) == len(set(planned))
    assert all(offset == 0 for _, offset in result.plan[1:])
    known = set() if saved is None else {saved.position.identity, *saved.later}
    if path is not None and path.identity not in known:
        assert planned[-1] == path.identity  # a file we never read is the newest
    if saved is not None and result.plan and result.plan[0][1]:
        assert result.plan[0] == (saved.position.identity, saved.position.offset)  # never skips ahead
    for identity in planned:
        assert identity in stats or (path is not None and identity == path.identity)
