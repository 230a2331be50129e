#!/usr/bin/python3
"""Checks every line of a `stemfarm batch --json` output against the
events schema: validate_events.py SCHEMA.json EVENTS.jsonl. Prints each
bad line with the reason and exits 1 if there is one."""
import json
import sys

import jsonschema


def main():
    schema = json.load(open(sys.argv[1]))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    bad = 0
    lines = 0
    for number, line in enumerate(open(sys.argv[2]), 1):
        lines += 1
        try:
            event = json.loads(line)
        except ValueError as e:
            print(f"line {number}: not JSON: {e}: {line.strip()[:200]}")
            bad += 1
            continue
        for error in validator.iter_errors(event):
            print(f"line {number}: {error.message} at {list(error.path)}: {line.strip()[:200]}")
            bad += 1
    if lines == 0:
        print("no events")
        bad += 1
    sys.exit(1 if bad else 0)


main()
