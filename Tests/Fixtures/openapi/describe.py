"""Validates an OpenAPI document and describes it as JSON for the tests.

    describe.py docs/openapi.yaml

Exits non-zero if the document is not valid OpenAPI 3.1. Prints
{"operations": [{"method", "path", "statuses", "example"}], "errorCodes": [...]}
with $refs resolved for request examples.
"""
import json
import sys

import yaml
from openapi_spec_validator import validate

with open(sys.argv[1]) as f:
    doc = yaml.safe_load(f)
validate(doc)

def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        target = doc
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node

operations = []
for path, item in doc["paths"].items():
    for method, op in item.items():
        body = resolve(op.get("requestBody", {}))
        example = body.get("content", {}).get("application/json", {}).get("example")
        operations.append({
            "method": method.upper(), "path": path,
            "statuses": sorted(int(code) for code in op["responses"]),
            "example": example,
        })
codes = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
print(json.dumps({"operations": operations, "errorCodes": codes}))
