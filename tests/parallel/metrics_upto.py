#!/usr/bin/env python3
"""Prints the lines of a metrics.jsonl whose step is <= N (to stage a partially finished run)."""
import json
import sys

for line in open(sys.argv[1]):
    if json.loads(line)["step"] <= int(sys.argv[2]):
        sys.stdout.write(line)
