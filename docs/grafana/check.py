#!/usr/bin/env python3
"""Checks docs/grafana/chill-dashboard.json: valid JSON, the template variables the docs promise, and
every metric name used in a query exists in chill-server's metrics code (Sources/ChillServer/API/*.swift).

Run from anywhere:  python3 docs/grafana/check.py
"""
import glob
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
DASHBOARD = os.path.join(HERE, "chill-dashboard.json")

# PromQL words that look like identifiers but are not metric names.
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
    "rate", "irate", "increase", "delta", "idelta", "deriv", "histogram_quantile", "label_values", "label_replace",
    "clamp_min", "clamp_max", "abs", "ceil", "floor", "round", "time", "vector", "scalar", "changes", "resets",
    "max_over_time", "min_over_time", "avg_over_time", "sum_over_time", "count_over_time", "last_over_time",
    "absent", "absent_over_time", "sort", "sort_desc", "timestamp", "inf", "nan",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_names(expr):
    """The metric names of one PromQL expression (or a label_values(...) variable query)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # strings
    text = re.sub(r"\{[^}]*\}", "", text)                     # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)                    # range selectors, [$__rate_interval]
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    text = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", "", text)  # Grafana variables
    text = re.sub(r",\s*[A-Za-z_][A-Za-z0-9_]*\s*\)", ")", text) if "label_values" in text else text  # label_values(m, label)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        rest = text[match.end():].lstrip()
        if word.lower() in PROMQL_WORDS or rest.startswith("("):
            continue
        if re.fullmatch(r"\d+[smhdwy]?", word):
            continue
        names.add(word)
    return names


def queries(node):
    """Every `expr` of a target and every variable `query`, anywhere in the dashboard."""
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str):
            yield node["expr"]
        for key, value in node.items():
            if key == "templating":
                for variable in value.get("list", []):
                    if variable.get("type") == "query":
                        q = variable.get("query")
                        yield q if isinstance(q, str) else q.get("query", "")
            else:
                yield from queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from queries(item)


def main():
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    problems = []
    source = ""
    for path in sorted(glob.glob(os.path.join(ROOT, "Sources", "ChillServer", "API", "*.swift"))):
        with open(path) as f:
            source += f.read()
    if not source:
        sys.exit("no Sources/ChillServer/API/*.swift found under %s" % ROOT)

    def exported(name):
        if re.search(r"\b%s\b" % re.escape(name), source):
            return True
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix):
                base = name[: -len(suffix)]
                if re.search(r'makeDurationHistogram\(\s*name:\s*"%s"' % re.escape(base), source):
                    return True
        return False

    used = set()
    for expr in queries(dashboard):
        for name in metric_names(expr):
            used.add(name)
            if not exported(name):
                problems.append("metric %r (in %r) does not appear in Sources/ChillServer/API/*.swift" % (name, expr))

    if not 36 <= dashboard.get("schemaVersion", 0) <= 41:
        problems.append("schemaVersion %r is not ~39" % dashboard.get("schemaVersion"))
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    if variables.get("DS_PROMETHEUS", {}).get("type") != "datasource":
        problems.append("no datasource variable DS_PROMETHEUS")
    model = variables.get("model", {})
    model_query = model.get("query")
    model_query = model_query if isinstance(model_query, str) else (model_query or {}).get("query")
    if model_query != "label_values(chill_model_state, model)":
        problems.append("the model variable is not label_values(chill_model_state, model): %r" % model_query)
    ids = [p.get("id") for p in dashboard.get("panels", [])]
    if len(ids) != len(set(ids)):
        problems.append("panel ids are not unique")

    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print("ok: %d panels, metrics used: %s" % (len(ids), ", ".join(sorted(used))))


if __name__ == "__main__":
    main()
