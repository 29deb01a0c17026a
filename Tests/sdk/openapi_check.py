"""The OpenAPI description against a running `sharebroker serve --sandbox` (OpenAPISpecTests).

1. openapi.yaml is a valid OpenAPI 3.1 document (openapi-spec-validator).
2. GET /openapi.yaml serves exactly the repository's file.
3. A bounded schemathesis run (fixed seed, a few examples per operation) against the sandbox:
   no answer is a server error, every status and content type is one the document lists.
4. schemas/consent-record.schema.json is a valid JSON Schema (2020-12), and the consent records the
   sandbox answers for a grant given and withdrawn validate against it (jsonschema).

Environment: BROKER (the broker's base URL), SPEC (the repository's openapi.yaml), ADMIN_TOKEN.
Prints one JSON line {"ok": [...]} when every step passed; exits non-zero otherwise.
"""
import json
import os
import subprocess
import sys
import urllib.request

from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

broker = os.environ["BROKER"]
spec_path = os.environ["SPEC"]
ok = []

document, _ = read_from_filename(spec_path)
validate(document)
ok.append("valid-3.1")

with urllib.request.urlopen(broker + "/openapi.yaml") as response:
    served = response.read()
    content_type = response.headers.get("Content-Type")
with open(spec_path, "rb") as handle:
    if served != handle.read():
        sys.exit("GET /openapi.yaml is not the repository's openapi.yaml")
if content_type != "application/yaml":
    sys.exit(f"GET /openapi.yaml answered Content-Type {content_type}")
ok.append("served")

schemathesis = os.path.join(os.path.dirname(sys.executable), "schemathesis")
run = subprocess.run(
    [schemathesis, "run", spec_path, "--url", broker,
     "-H", "Authorization: Bearer " + os.environ["ADMIN_TOKEN"],
     "--checks", "not_a_server_error,status_code_conformance,content_type_conformance",
     "--phases", "examples,coverage,fuzzing", "--max-examples", os.environ.get("MAX_EXAMPLES", "8"),
     "--seed", "20261201", "--generation-database", "none", "--workers", "1",
     "--request-timeout", "10", "--no-color", "--warnings", "off"],
    capture_output=True, text=True, timeout=600)
if run.returncode != 0:
    print(run.stdout[-20000:])
    print(run.stderr[-4000:], file=sys.stderr)
    sys.exit(f"schemathesis failed (exit {run.returncode})")
ok.append("schemathesis")

import jsonschema

schema_path = os.path.join(os.path.dirname(spec_path), "schemas", "consent-record.schema.json")
with open(schema_path) as file:
    schema = json.load(file)
jsonschema.Draft202012Validator.check_schema(schema)
grants = {"Authorization": "Bearer " + os.environ["GRANTS_TOKEN"], "Content-Type": "application/json"}


def call(method, path, body=None):
    request = urllib.request.Request(broker + path, method=method, headers=grants,
                                     data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"null")


given = call("POST", "/v1/subjects/records-u1/grants", {
    "provider": "huawei-push", "purpose": "essential.service.notifications.push", "separate_consent": False,
    "cross_border_consent": False, "policy_version": "2025-07", "evidence": "openapi-check"})
call("DELETE", "/v1/subjects/records-u1/grants/" + given["id"])
records = call("GET", "/v1/subjects/records-u1/consent-records")["records"]
assert len(records) == 1 and records[0]["state"] == "withdrawn", records
for record in records:
    jsonschema.validate(record, schema, cls=jsonschema.Draft202012Validator)
ok.append("consent-records")
print(json.dumps({"ok": ok}))
