"""The write-ahead spool's files (adapters/spool.py): modes, restart, deletion,
damage, locking, and disk errors made real in a subprocess."""

import errno
import logging
import os
import pickle
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap

import pytest

from keruta_actors.adapters.spool import START, Spool
from keruta_actors.config import SpoolSettings
from keruta_actors.errors import SpoolError
from keruta_actors.records import RecordBlock

SMALL = SpoolSettings(max_size=1 << 20, segment_size=2048, fsync="interval", fsync_interval=1.0)


def lines(namespace, first, count, source="stdout"):
    return RecordBlock.of_lines(namespace, source, first, 1.0, ["INFO"] * count,
                                [(f"{source} line {n}", None) for n in range(first, first + count)],
                                ({"processId": 1},) * 3)


def replayed(spool, start=START):
    return [record[0] for block, _ in spool.blocks(start) for record in block.rows()]


def segments(spool):
    return sorted(name for name in os.listdir(spool.directory) if name.endswith(".seg"))


def run_writer(code, *args, prefix=()):
    """`code` after WRITER's set-up, in a fresh Python; args become sys.argv[1:]."""
    return subprocess.run([*prefix, sys.executable, "-c", WRITER + textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=60)


def test_files_are_0600_in_a_0700_directory(tmp_path):
    old = os.umask(0o022)  # a usual umask, which would leave files 0644 and directories 0755
    try:
        with Spool.open(str(tmp_path / "state"), "task/1", SMALL) as spool:
            spool.append(lines(spool.run_id, 1, 200))
            spool.confirm(spool.run_id, "stdout", 3)
            assert stat.S_IMODE(os.stat(spool.directory).st_mode) == 0o700
            assert stat.S_IMODE(os.stat(tmp_path / "state").st_mode) == 0o700
            modes = {name: stat.S_IMODE(os.stat(os.path.join(spool.directory, name)).st_mode)
                     for name in os.listdir(spool.directory)}
    finally:
        os.umask(old)
    assert spool.directory.endswith("task_1.spool")
    assert set(modes) >= {"lock", "spool.json", "marks.log", "00000001.seg"}
    assert set(modes.values()) == {0o600}


def test_pending_counts_what_is_spooled_and_not_yet_confirmed(tmp_path):
    with Spool.open(str(tmp_path), "t", SMALL) as spool:
        assert spool.pending == 0
        spool.append(lines(spool.run_id, 1, 30))
        spool.append(lines(spool.run_id, 1, 5, source="stderr"))
        assert spool.pending == 35
        spool.confirm(spool.run_id, "stdout", 20)
        assert spool.pending == 15
        assert spool.pending == sum(status.records for status in spool.status())


def test_a_restart_replays_in_order_under_the_same_ids_and_continues_numbering(tmp_path):
    with Spool.open(str(tmp_path), "t", SMALL) as spool:
        run_id = spool.run_id
        for first in range(1, 100, 10):
            spool.append(lines(run_id, first, 10))
        spool.append(lines(run_id, 1, 5, source="stderr"))
        before = replayed(spool)
    with Spool.open(str(tmp_path), "t", SMALL) as spool:
        assert spool.run_id == run_id
        assert replayed(spool) == before
        assert before[:2] == [f"{run_id}-stdout-1", f"{run_id}-stdout-2"] and len(before) == 105
        assert spool.last_line_number(run_id, "stdout") == 100
        assert spool.last_line_number(run_id, "stderr") == 5
        assert spool.last_line_number("other", "stdout") == 0


def test_appending_lines_already_spooled_again_is_harmless(tmp_path):
    with Spool.open(str(tmp_path), "t", SMALL) as spool:
        spool.append(lines("ns", 1, 10))
        again = spool.append(lines("ns", 6, 10))
        assert list(again.line_numbers) == list(range(11, 16))
        assert len(spool.append(lines("ns", 3, 5))) == 0
        assert replayed(spool) == [f"ns-stdout-{n}" for n in range(1, 16)]
        with pytest.raises(ValueError, match="one source"):
            spool.append(RecordBlock.concat([lines("ns", 20, 1), lines("ns", 1, 1, "stderr")]))


def test_confirmed_records_never_come_back_and_their_segments_go(tmp_path):
    with Spool.open(str(tmp_path), "t", SMALL) as spool:
        for first in range(1, 400, 20):
            spool.append(lines("ns", first, 20))
        spool.append(lines("ns", 1, 3, "stderr"))
        many = len(segments(spool))
        size = spool.size
        spool.confirm("ns", "stdout", 390)
        spool.confirm("ns", "stdout", 12)  # lower: ignored
        assert replayed(spool) == [f"ns-stdout-{n}" for n in range(391, 401)] + [f"ns-stderr-{n}" for n in (1, 2, 3)]
        assert 1 <= len(segments(spool)) < many and spool.size < size
    with Spool.open(str(tmp_path), "t", SMALL) as spool:
        assert replayed(spool)[0] == "ns-stdout-391"
        spool.confirm("ns", "stderr", 3)
        spool.confirm("ns", "stdout", 400)
    with Spool.open(str(tmp_path), "t", SMALL) as spool:
        assert replayed(spool) == [] and segments(spool) == [] and spool.size == 0
        assert spool.last_line_number("ns", "stdout") == 400  # numbering survives the deletion


def test_blocks_from_a_position_see_later_appends(tmp_path):
    with Spool.open(str(tmp_path), "t", SMALL) as spool:
        spool.append(lines("ns", 1, 5))
        position = spool.position
        for first in range(6, 200, 10):
            spool.append(lines("ns", first, 10))
        read = []
        for block, position in spool.blocks(position):
            read.extend(block.line_numbers)
            if len(read) == 30:
                break
        for block, position in spool.blocks(position):
            read.extend(block.line_numbers)
        assert read == list(range(6, 206)) and position == spool.position


def damage_tail(path, how):
    size = os.path.getsize(path)
    with open(path, "r+b") as file:
        if how == "torn":
            file.truncate(size - 17)
        else:
            file.seek(size - 30)
            file.write(b"\xff" * 5)


@pytest.mark.parametrize("how", ["torn", "corrupt"])
def test_a_damaged_tail_is_reported_once_and_skipped(tmp_path, caplog, how):
    with Spool.open(str(tmp_path), "t", SMALL) as spool:
        for first in (1, 11, 21):
            spool.append(lines("ns", first, 10))
        last = os.path.join(spool.directory, segments(spool)[-1])
    damage_tail(last, how)
    with caplog.at_level(logging.WARNING, "keruta_actors.adapters.spool"):
        with Spool.open(str(tmp_path), "t", SMALL) as spool:
            assert replayed(spool) == [f"ns-stdout-{n}" for n in range(1, 21)]
            assert [report.path for report in spool.damage] == [last]
            assert spool.last_line_number("ns", "stdout") == 20
            spool.append(lines("ns", 21, 5))
        with Spool.open(str(tmp_path), "t", SMALL) as spool:
            assert spool.damage == []
            assert replayed(spool)[-1] == "ns-stdout-25"
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and warnings[0].startswith(f"spool: skipped {last}: ")


def test_damage_in_the_middle_loses_only_its_frame(tmp_path):
    with Spool.open(str(tmp_path), "t", SMALL) as spool:
        for first in (1, 11, 21):
            spool.append(lines("ns", first, 10))
        path = os.path.join(spool.directory, segments(spool)[0])
    with open(path, "r+b") as file:
        file.seek(os.path.getsize(path) // 2)
        file.write(b"\0\0\0")
    with Spool.open(str(tmp_path), "t", SMALL) as spool:
        assert replayed(spool) == [f"ns-stdout-{n}" for n in [*range(1, 11), *range(21, 31)]]
        assert len(spool.damage) == 1
    with Spool.open(str(tmp_path), "t", SMALL) as spool:
        assert spool.damage == [] and len(replayed(spool)) == 20


def test_damage_met_while_running_is_reported_once_and_skipped(tmp_path):
    with Spool.open(str(tmp_path), "t", SMALL) as spool:
        spool.append(lines("ns", 1, 10))
        spool.append(lines("ns", 11, 10))
        path = os.path.join(spool.directory, segments(spool)[0])
        with open(path, "r+b") as file:
            file.seek(-5, os.SEEK_END)
            byte = file.read(1)
            file.seek(-5, os.SEEK_END)
            file.write(bytes([byte[0] ^ 0xFF]))
        assert replayed(spool) == replayed(spool) == [f"ns-stdout-{n}" for n in range(1, 11)]
        assert [report.path for report in spool.damage] == [path]


def test_a_spool_is_used_by_one_agent_at_a_time(tmp_path):
    with Spool.open(str(tmp_path), "t", SMALL):
        with pytest.raises(SpoolError, match="in use by another agent"):
            Spool.open(str(tmp_path), "t", SMALL)
    Spool.open(str(tmp_path), "t", SMALL).close()


def test_status_says_what_each_stream_holds(tmp_path):
    with Spool.open(str(tmp_path), "t", SMALL) as spool:
        spool.append(lines("ns", 1, 10))
        spool.append(lines("ns", 11, 10))
        spool.append(lines("ns", 1, 2, "stderr"))
        spool.confirm("ns", "stdout", 4)
        out, err = spool.status()[::-1]
    assert (out.records, out.first, out.last, out.watermark) == (16, 5, 20, 4)
    assert (err.records, err.first, err.last, err.watermark) == (2, 1, 2, 0)
    assert out.bytes > err.bytes > 0


def test_full_at_the_cap(tmp_path):
    settings = SpoolSettings(max_size=4096, segment_size=1024, fsync="never", fsync_interval=1.0)
    with Spool.open(str(tmp_path), "t", settings) as spool:
        first = 1
        while not spool.full:
            assert not spool.would_exceed(0)
            spool.append(lines("ns", first, 10))
            first += 10
        assert spool.size >= 4096 and spool.would_exceed(1)
        spool.confirm("ns", "stdout", first - 11)
        assert not spool.full


def test_positions_only_grow_even_once_every_segment_is_gone(tmp_path):
    """A reader holding a position in a deleted segment must still find the
    frames appended after it (a reused segment number hid them: a full spool
    then never cleared)."""
    settings = SpoolSettings(max_size=2048, segment_size=2048, fsync="never", fsync_interval=1.0)
    with Spool.open(str(tmp_path), "t", settings) as spool:
        spool.append(lines("ns", 1, 100))
        read_up_to = spool.position
        spool.confirm("ns", "stdout", 100)
        assert spool.size == 0
        spool.append(lines("ns", 101, 1))
        assert spool.position > read_up_to
        assert replayed(spool, read_up_to) == ["ns-stdout-101"]


def test_a_cap_of_one_segment_clears_once_everything_is_confirmed(tmp_path):
    settings = SpoolSettings(max_size=2048, segment_size=2048, fsync="never", fsync_interval=1.0)
    with Spool.open(str(tmp_path), "t", settings) as spool:
        spool.append(lines("ns", 1, 100))
        assert spool.full
        spool.confirm("ns", "stdout", 100)
        assert not spool.full and spool.size == 0
        spool.append(lines("ns", 101, 1))
        assert replayed(spool) == ["ns-stdout-101"]


def test_interval_fsync_runs_from_the_timer_not_on_append(tmp_path, monkeypatch):
    synced = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: synced.append(fd) or real(fd))
    with Spool.open(str(tmp_path), "t", SMALL) as spool:
        assert not spool.sync_if_due(10.0)  # clean
        spool.append(lines("ns", 1, 10))
        assert synced == []
        assert not spool.sync_if_due(10.5)
        assert spool.sync_if_due(11.0) and synced
        assert not spool.sync_if_due(20.0)  # clean again
    always = SpoolSettings(max_size=1 << 20, segment_size=2048, fsync="always", fsync_interval=1.0)
    synced.clear()
    with Spool.open(str(tmp_path), "u", always) as spool:
        spool.append(lines("ns", 1, 10))
        assert synced


def test_spool_errors_name_the_cause_and_pickle():
    error = SpoolError.from_os_error(OSError(errno.EROFS, "Read-only file system"), "write", "/s/00000001.seg")
    assert str(error) == "spool: cannot write /s/00000001.seg: read-only file system"
    again = pickle.loads(pickle.dumps(error))
    assert (str(again), again.path, again.errno) == (str(error), "/s/00000001.seg", errno.EROFS)


# --- a killed agent and disk errors, in subprocesses ------------------------------

WRITER = """
import os, resource, signal, sys
from keruta_actors.adapters.spool import Spool
from keruta_actors.config import SpoolSettings
from keruta_actors.errors import SpoolError
from keruta_actors.records import RecordBlock

def lines(first, count):
    return RecordBlock.of_lines("ns", "stdout", first, 1.0, ["INFO"] * count,
                                [(f"line {n} " + "x" * 80, None) for n in range(first, first + count)], ({},) * 3)

settings = SpoolSettings(max_size=1 << 30, segment_size=1 << 20, fsync="never", fsync_interval=1.0)
state_dir, mode = sys.argv[1], sys.argv[2]
"""


def test_records_appended_survive_sigkill_mid_stream(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", WRITER + textwrap.dedent("""
        spool = Spool.open(state_dir, "t", settings)
        first = 1
        while True:
            spool.append(lines(first, 500))
            first += 500
            if first == 5001:
                print("ready", flush=True)
        """), str(tmp_path), "kill"], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    with Spool.open(str(tmp_path), "t", SMALL) as spool:
        numbers = [n for block, _ in spool.blocks() for n in block.line_numbers]
        assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 5000
        assert spool.last_line_number("ns", "stdout") == len(numbers)


def test_a_full_disk_is_one_clear_line_and_loses_nothing_appended(tmp_path):
    # RLIMIT_FSIZE makes writes past the limit fail with EFBIG, as a full disk
    # does with ENOSPC, and works without privileges (Python ignores SIGXFSZ).
    result = run_writer("""
        spool = Spool.open(state_dir, "t", settings)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))
        first = 1
        try:
            while True:
                spool.append(lines(first, 100))
                first += 100
        except SpoolError as error:
            print(error, error.errno, first - 1, sep="\\n")
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        spool.append(lines(first, 100))  # the disk has room again: the spool goes on
        spool.close()
        """, str(tmp_path), "full")
    message, number, appended = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    assert int(number) == errno.EFBIG
    assert message.startswith(f"spool: cannot write {tmp_path}/t.spool/00000001.seg: file size limit reached")
    with Spool.open(str(tmp_path), "t", SMALL) as spool:
        numbers = [n for block, _ in spool.blocks() for n in block.line_numbers]
        assert numbers == list(range(1, int(appended) + 101)) and spool.damage == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_a_directory_the_agent_may_not_write_is_one_clear_line():
    # Root ignores file modes, so the child drops to nobody first; pytest's
    # own temporary directories are closed to other users.
    with tempfile.TemporaryDirectory() as top:
        os.chmod(top, 0o755)
        Spool.open(top, "t", SMALL).close()  # the spool exists, and belongs to root
        result = run_writer("""
            os.setgid(65534)
            os.setuid(65534)
            try:
                Spool.open(state_dir, "t", settings)
            except SpoolError as error:
                print(error)
            """, top, "denied")
    assert result.stdout.strip() == f"spool: cannot open {top}/t.spool/lock: permission denied", result.stderr


def can_mount():
    unshare = shutil.which("unshare")
    return os.geteuid() == 0 and unshare and subprocess.run(
        [unshare, "--mount", "--propagation", "private", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not can_mount(), reason="needs a private mount namespace (root, unshare)")
@pytest.mark.parametrize("mode", ["full", "read-only"])
def test_a_small_filesystem_that_fills_or_turns_read_only(tmp_path, mode):
    # A private mount namespace: the tmpfs vanishes with the child.
    script = """
        import subprocess
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", state_dir], check=True)
        spool = Spool.open(state_dir, "t", settings)
        first = 1
        try:
            while first < 100_000:
                spool.append(lines(first, 100))
                first += 100
                if mode == "read-only" and first > 1000:
                    spool.close()
                    subprocess.run(["mount", "-o", "remount,ro", state_dir], check=True)
                    spool = Spool.open(state_dir, "t", settings)
        except SpoolError as error:
            print(error, error.errno, sep="\\n")
        """
    result = run_writer(script, str(tmp_path), mode, prefix=("unshare", "--mount", "--propagation", "private"))
    assert result.returncode == 0, result.stderr
    message, number = result.stdout.splitlines()
    if mode == "full":
        assert int(number) == errno.ENOSPC
        assert message.startswith(f"spool: cannot write {tmp_path}/t.spool/")
        assert message.endswith("no space left on the device (disk full)")
    else:
        assert int(number) == errno.EROFS
        assert message.endswith(": read-only file system") and str(tmp_path) in message
