#!/usr/bin/env python3
"""Independent check of Headroom's exposition: parse stdin with the Python
prometheus_client OpenMetrics parser (strict: # EOF, suffixes, units, types) and print a
one-line JSON summary {family: [type, samples]} for the caller to assert on.

Exit 1 with the parser's message when the text is not valid OpenMetrics."""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

text = sys.stdin.read()
try:
    families = {}
    for fam in text_string_to_metric_families(text):
        families[fam.name] = [fam.type, len(fam.samples), fam.unit]
except Exception as e:  # the parser raises ValueError and others
    print(f"invalid OpenMetrics: {e}", file=sys.stderr)
    sys.exit(1)
print(json.dumps(families, sort_keys=True))
