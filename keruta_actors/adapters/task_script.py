"""A task's script, fetched from the keruta API, as `execute` without
`--script` does in a keruta task pod (as the Go agent did):

    GET {api.url}/tasks/{taskId}/script
    -> {"success": true, "taskId": T,
        "script": {"content": "...", "language": "bash", "filename": "task.sh",
                   "parameters": {"env": {"NAME": "value"}}}}

The script is written to a new private directory (0700, the file 0700)
rather than the work directory, so that it cannot clobber a file of the
task's own. A script without a `#!` line runs under the interpreter its
language names.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass

from keruta_actors.adapters.rest_client import RestClient
from keruta_actors.errors import KerutaError, LinkError

# A script is a text file; anything near this is not one.
MAX_SCRIPT = 16 << 20
INTERPRETERS = {"bash": "bash", "sh": "sh", "shell": "sh", "python": "python3", "python3": "python3"}


class ScriptError(KerutaError):
    """The task's script cannot be had or run; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class TaskScript:
    content: str
    filename: str
    language: str
    env: tuple[tuple[str, str], ...]  # parameters.env: set in the script's environment

    def command(self, path: str) -> tuple[str, ...]:
        """How to run the script once it is written at `path`."""
        if self.content.startswith("#!"):
            return (path,)
        interpreter = INTERPRETERS.get(self.language.lower())
        if interpreter is None:
            raise ScriptError(f"the task's script has no #! line and an unknown language {self.language!r}")
        return (interpreter, path)


def fetch_task_script(settings, task_id: str) -> TaskScript:
    """The task's script from the keruta API `settings` (config.Settings) name."""
    try:
        client = RestClient.for_task(settings, task_id)
    except LinkError as error:
        raise ScriptError(str(error)) from None
    try:
        outcome, body = client.get_script(MAX_SCRIPT)
    finally:
        client.close()
    url = client.url + "/script"
    if outcome.status is None:
        raise ScriptError(f"cannot fetch the task's script: {outcome.problem}")
    if outcome.status != 200:
        raise ScriptError(f"cannot fetch the task's script from {url}: HTTP {outcome.status}")
    return parse_task_script(body, url)


def parse_task_script(body: bytes, url: str) -> TaskScript:
    if len(body) > MAX_SCRIPT:
        raise ScriptError(f"the task's script from {url} is larger than {MAX_SCRIPT >> 20} MiB")
    try:
        script = json.loads(body)["script"]
        content = script["content"]
        env = (script.get("parameters") or {}).get("env") or {}
        if not isinstance(content, str) or not isinstance(env, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ScriptError(f"the answer from {url} is not a task script") from None
    filename = os.path.basename(str(script.get("filename") or "")) or "task.sh"
    env_pairs = tuple((str(key), str(value)) for key, value in env.items())
    return TaskScript(content, filename, str(script.get("language") or "bash"), env_pairs)


def write_script(script: TaskScript) -> str:
    """The script's path, in a new private directory (the caller removes it)."""
    directory = tempfile.mkdtemp(prefix="keruta-task-")
    path = os.path.join(directory, script.filename)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700), "w", encoding="utf-8") as file:
        file.write(script.content)
    return path
