"""`python -m keruta_actors` / `keruta-actors`: the command line (SPEC §2).

Every expected failure ends in one line on stderr that says what and where,
and an exit code: 2 for bad usage or configuration, 127/126 for a command
that cannot be run, otherwise the child's own exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid

from keruta_actors import __version__
from keruta_actors.config import ConfigError, load_settings, masked_dict, validate_only
from keruta_actors.messages import RunPlan
from keruta_actors.process_exit import leave
from keruta_actors.units import parse_duration

PROG = "keruta-actors"


def main(argv: list[str] | None = None) -> int:
    return leave(run_command(argv))


def run_command(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except ConfigError as error:
        for problem in error.problems:
            print(f"{PROG}: config: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Stream a keruta task's output to the keruta API.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(metavar="COMMAND")

    start = commands.add_parser("start", help="run a command and stream its output")
    add_run_options(start)
    start.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG...]")
    start.set_defaults(handler=cmd_start)

    execute = commands.add_parser("execute", help="run a script and stream its output")
    add_run_options(execute)
    execute.add_argument("--script", metavar="PATH",
                         help="the script to run (default: the task's script, fetched from the keruta API)")
    execute.set_defaults(handler=cmd_execute)

    config = commands.add_parser("config", help="validate or show the effective configuration")
    config.add_argument("action", choices=("check", "show"))
    config.add_argument("--config", action="append", default=[], metavar="FILE")
    config.set_defaults(handler=cmd_config)

    spool = commands.add_parser("spool", help="show what a task's spool holds, or deliver it")
    spool.add_argument("action", choices=("status", "flush"))
    add_agent_options(spool)
    spool.set_defaults(handler=cmd_spool, disable_log_streaming=False, source=[], work_dir=None)

    receiver = commands.add_parser("receiver", help="run the reference keruta API log receiver")
    receiver.add_argument("--host", default="127.0.0.1")
    receiver.add_argument("--port", type=int, default=8080)
    receiver.add_argument("--db", default="keruta-receiver.db", metavar="PATH")
    receiver.add_argument("--token", default=None, help="require this token (bearer or X-API-Key) from every client")
    receiver.add_argument(
        "--retention", type=duration, default=None, metavar="DURATION", help="prune records older than this (e.g. 7d)"
    )
    receiver.add_argument(
        "--read-limit", type=float, default=1000, metavar="N", help="REST reads per minute (0: no limit)"
    )
    receiver.set_defaults(handler=cmd_receiver)
    return parser


def add_agent_options(parser: argparse.ArgumentParser) -> None:
    """What every command that runs the agent takes (start, execute, spool)."""
    parser.add_argument("--task-id", default=os.environ.get("KERUTA_TASK_ID"), metavar="ID",
                        help="the keruta task id (default: $KERUTA_TASK_ID)")
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help="a YAML, JSON or TOML file; may be repeated")
    parser.add_argument("--api-url", metavar="URL",
                        help="the keruta API (api.url); a bare host gets /api/v1")
    parser.add_argument("--log-level", metavar="LEVEL", help="the agent's own log level")
    parser.add_argument("--verbose", action="store_true", help="the agent's own log at DEBUG")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    add_agent_options(parser)
    parser.add_argument("--work-dir", metavar="DIR", help="the command's working directory (default: this one)")
    parser.add_argument("--disable-log-streaming", action="store_true",
                        help="run the command without streaming its output")
    parser.add_argument("--source", action="append", default=[], metavar="file:PATH|stdin",
                        help="also stream a tailed file or the agent's stdin; may be repeated")


def cmd_start(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command and not args.source:
        return usage_error("start needs a command after -- (start --task-id T -- ./job.sh) or a --source")
    return run(args, tuple(command), script_path="")


def cmd_execute(args: argparse.Namespace) -> int:
    if args.script:
        return run(args, (args.script,), script_path=args.script)
    if not args.task_id:
        return usage_error("--task-id is required (or set KERUTA_TASK_ID)")
    from keruta_actors.adapters.task_script import ScriptError, fetch_task_script, write_script

    settings = load_settings(args.config, overrides=run_overrides(args))
    try:
        script = fetch_task_script(settings, args.task_id)
        path = write_script(script)
        command = script.command(path)
    except ScriptError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    try:
        return run(args, command, script_path=script.filename, env=script.env)
    finally:
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)


def cmd_spool(args: argparse.Namespace) -> int:
    """`spool status` prints what the task's spool holds; `spool flush` runs
    the agent with no source at all: it sends what the spool holds, through
    the usual transports and fallback, for up to drainTimeout."""
    if not args.task_id:
        return usage_error("--task-id is required (or set KERUTA_TASK_ID)")
    settings = load_settings(args.config, overrides=run_overrides(args))
    from keruta_actors.adapters.spool import Spool
    from keruta_actors.errors import SpoolError

    streaming = settings.log_streaming
    if not os.path.isdir(Spool.directory_for(streaming.state_dir, args.task_id)):
        print(f"no spool for task {args.task_id} in {streaming.state_dir} (logStreaming.stateDir)")
        return 0
    if args.action == "flush":
        if not streaming.spool.enabled:
            return usage_error("logStreaming.spool.enabled is false: the agent would not read the spool")
        finished = start_agent(settings, args, command=(), script_path="")
        # no spool (another agent holds it, or the disk refuses): nothing was flushed
        return 0 if finished.exit_code == 0 and finished.spool and not finished.undelivered else 1
    try:
        with Spool.open(streaming.state_dir, args.task_id, streaming.spool) as spool:
            print(spool_report(spool.directory, spool.status(), spool.size, spool.max_size))
    except SpoolError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    return 0


def spool_report(directory: str, streams, size: int, max_size: int) -> str:
    """`spool status`: one line per stream, then the total."""
    rows = [("stream", "records", "bytes", "first", "last", "confirmed")]
    rows += [(f"{s.stream.namespace}-{s.stream.source}", str(s.records), str(s.bytes), str(s.first or "-"),
              str(s.last), str(s.watermark)) for s in streams]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"spool {directory}: {sum(s.records for s in streams)} records waiting, "
             f"{size} bytes on disk (maxSize {max_size})"]
    lines += ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace, command: tuple[str, ...], script_path: str,
        env: tuple[tuple[str, str], ...] = ()) -> int:
    if not args.task_id:
        return usage_error("--task-id is required (or set KERUTA_TASK_ID)")
    problem = source_problem(args.source)
    if problem:
        return usage_error(problem)
    if args.work_dir and not os.path.isdir(args.work_dir):
        return usage_error(f"--work-dir {args.work_dir}: no such directory")
    settings = load_settings(args.config, overrides=run_overrides(args))
    streams = (2 if command else 0) + len(args.source)
    limit = settings.log_streaming.performance.max_concurrent_streams
    if streams > limit:
        return usage_error(
            f"{streams} streams to read (the command's stdout and stderr count as two, each --source as one) "
            f"exceed logStreaming.performance.maxConcurrentStreams ({limit})"
        )
    if not settings.log_streaming.enabled:
        if not command:
            return usage_error("with log streaming disabled there is nothing to do without a command")
        return run_without_streaming(command, args.work_dir, env)
    return start_agent(settings, args, command, script_path, env).exit_code


def start_agent(settings, args: argparse.Namespace, command: tuple[str, ...], script_path: str,
                env: tuple[tuple[str, str], ...] = ()):
    from keruta_actors.agent import run_agent  # Thespian is needed only from here on

    plan = RunPlan(
        task_id=args.task_id,
        # Used only without a spool: with one, the spool's run id, kept across
        # restarts, names the streams (actors/source_reader.py).
        run_id=uuid.uuid4().hex[:12],
        command=command,
        script_path=script_path,
        hostname=socket.gethostname(),
        agent_version=__version__,
        sources=tuple(args.source),
        cli_pid=os.getpid(),
        env=env,
        work_dir=args.work_dir or "",
    )
    finished = run_agent(settings, plan)
    if finished.problem:
        print(f"{PROG}: {finished.problem}", file=sys.stderr)
    return finished


def source_problem(sources: list[str]) -> str:
    """Why the --source values cannot be used, or "" if they can."""
    for source in sources:
        if source != "stdin" and not (source.startswith("file:") and len(source) > len("file:")):
            return f"--source {source!r}: expected file:PATH or stdin"
    if sources.count("stdin") > 1:
        return "--source stdin given more than once"
    files = [source for source in sources if source != "stdin"]
    if len(set(files)) != len(files):
        return "the same --source file is given more than once"
    return ""


def run_overrides(args: argparse.Namespace) -> dict[str, object]:
    overrides: dict[str, object] = {}
    if args.api_url:
        overrides["api.url"] = args.api_url
    if args.log_level:
        overrides["logging.level"] = args.log_level
    if args.verbose:
        overrides["logging.level"] = "DEBUG"
    if args.disable_log_streaming:
        overrides["logStreaming.enabled"] = False
    return overrides


def run_without_streaming(command: tuple[str, ...], work_dir: str | None, env: tuple[tuple[str, str], ...]) -> int:
    try:
        code = subprocess.call(command, cwd=work_dir or None, env=os.environ | dict(env))
    except FileNotFoundError:
        print(f"{PROG}: command not found: {command[0]}", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"{PROG}: permission denied: {command[0]}", file=sys.stderr)
        return 126
    return 128 - code if code < 0 else code


def cmd_config(args: argparse.Namespace) -> int:
    if args.action == "check":
        for warning in validate_only(args.config):
            print(f"{PROG}: config: warning: {warning}", file=sys.stderr)
        print("configuration is valid")
        return 0
    print(json.dumps(masked_dict(load_settings(args.config)), indent=2, ensure_ascii=False))
    return 0


def cmd_receiver(args: argparse.Namespace) -> int:
    try:
        from keruta_actors.receiver.app import ReceiverError, run_receiver
    except ImportError as error:
        print(f"{PROG}: the receiver needs its extra: pip install 'keruta-actors[receiver]' ({error})", file=sys.stderr)
        return 2
    try:
        run_receiver(
            host=args.host,
            port=args.port,
            db_path=args.db,
            token=args.token,
            retention=args.retention,
            reads_per_minute=args.read_limit,
        )
    except ReceiverError as error:
        print(f"{PROG}: receiver: {error}", file=sys.stderr)
        return 1
    return 0


def duration(text: str) -> float:
    """An argparse type: `500ms`, `5m`, `7d` or seconds."""
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def usage_error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2
