"""Validates an OpenAPI document and describes it as JSON for the tests.

    describe.py docs/openapi.yaml
    describe.py docs/stats-openapi.yaml --check METHOD PATH STATUS body.json

Exits non-zero if the document is not valid OpenAPI 3.1. Prints
{"operations": [{"method", "path", "statuses", "example"}], "errorCodes": [...]}
with $refs resolved for request examples. With --check, validates the JSON body on
the file against the documented response schema instead, and exits non-zero
(with the reason) if it does not match.
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
def inline(node):
    node = resolve(node)
    if isinstance(node, dict):
        return {k: inline(v) for k, v in node.items()}
    if isinstance(node, list):
        return [inline(v) for v in node]
    return node

if len(sys.argv) > 2 and sys.argv[2] == "--check":
    import jsonschema
    method, path, status = sys.argv[3].lower(), sys.argv[4], sys.argv[5]
    response = resolve(doc["paths"][path][method]["responses"][status])
    schema = inline(next(iter(response["content"].values()))["schema"])
    try:
        with open(sys.argv[6]) as body:
            jsonschema.validate(json.load(body), schema, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as error:
        print(error.message)
        sys.exit(1)
    sys.exit(0)

error = doc["components"]["schemas"]["Error"]["properties"]["error"]
codes = error.get("properties", {}).get("code", {}).get("enum", [])
print(json.dumps({"operations": operations, "errorCodes": codes}))
