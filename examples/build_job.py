#!/usr/bin/env python3
"""An example keruta task: a small "build" that reports progress on stdout,
warnings and errors on stderr, and mentions a secret the agent must not ship."""

import json
import sys
import time

steps = ["fetch sources", "resolve dependencies", "compile", "run tests", "package"]
for number, step in enumerate(steps, 1):
    print(f"INFO step {number}/{len(steps)}: {step}", flush=True)
    time.sleep(0.1)
    if step == "resolve dependencies":
        print("WARN dependency cache is cold; downloading", file=sys.stderr, flush=True)
    if step == "run tests":
        print(json.dumps({"level": "error", "msg": "1 flaky test retried"}), file=sys.stderr, flush=True)
print("INFO connecting with password=hunter2 (this line is filtered out by the default excludePatterns)", flush=True)
print("INFO build finished", flush=True)
sys.exit(0)
