"""The process's end with threads still running (keruta_actors/process_exit.py)."""

from __future__ import annotations

import subprocess
import sys

# Threads inside OpenSSL when the process ends, as a worker loading CA
# certificates for a connection or a health check may be. Exiting through
# the interpreter runs OpenSSL's exit handlers under them: 13 of 20 such
# exits crashed (SIGSEGV), and one in a CI run of the agent did.
THREADS_INSIDE_OPENSSL = """
import ssl, sys, threading, time
from keruta_actors.process_exit import {ending}
def load_certificates_forever():
    while True:
        ssl.create_default_context()
for _ in range(4):
    threading.Thread(target=load_certificates_forever, daemon=True).start()
time.sleep(0.1)
print("said before the end", flush=False)
sys.exit({ending}(5))
"""


def run_ending(ending: str) -> subprocess.CompletedProcess:
    script = THREADS_INSIDE_OPENSSL.format(ending=ending)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)


def test_exit_now_ends_with_its_code_and_flushes_under_threads_inside_openssl():
    for _ in range(20):
        finished = run_ending("exit_now")
        assert (finished.returncode, finished.stdout) == (5, b"said before the end\n"), finished.stderr.decode()


def test_leave_ends_the_process_itself_while_threads_are_running():
    for _ in range(20):
        assert run_ending("leave").returncode == 5


def test_leave_lets_the_interpreter_end_a_process_with_no_other_thread():
    script = """
import atexit, sys
from keruta_actors.process_exit import leave
atexit.register(print, "the interpreter's exit ran")
sys.exit(leave(3))
"""
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert (finished.returncode, finished.stdout) == (3, b"the interpreter's exit ran\n")
