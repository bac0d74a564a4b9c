#!/usr/bin/env python3
"""docs/openapi.yaml against the service: the description is valid OpenAPI
3.1, every example matches its schema, the error code enum is the service's
own list, and every request example, sent to the function served through the
real runtime loop, gets the response example of the same name (status, code,
message, missing and unknown entries). Also 401/404/405/413/415/422 and a
replay, each body checked against the Error or Instance schema.
Closes with 'openapi: N passed, N failed'. Run with .venv/local's Python."""
import copy
import http.client
import json
import pathlib
import re
import sys
import urllib.parse

import jsonschema
import yaml
from openapi_spec_validator import validate

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from local_function import ROOT, served  # noqa: E402

passed = failed = 0


def verdict(ok, what, detail=""):
    global passed, failed
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else f": {detail}"))
    passed, failed = passed + bool(ok), failed + (not ok)


def resolve(node, spec):
    if isinstance(node, dict):
        if "$ref" in node:
            target = spec
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return resolve(copy.deepcopy(target), spec)
        return {k: resolve(v, spec) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, spec) for v in node]
    return node


def conforms(instance, schema):
    try:
        jsonschema.validate(instance, schema, format_checker=jsonschema.FormatChecker())
        return None
    except jsonschema.ValidationError as e:
        return e.message


def main():
    spec = yaml.safe_load((ROOT / "docs/openapi.yaml").read_text())
    try:
        validate(spec)
        verdict(True, "docs/openapi.yaml is valid OpenAPI 3.1")
    except Exception as e:  # noqa: BLE001
        verdict(False, "docs/openapi.yaml is valid OpenAPI 3.1", e)
    full = resolve(spec, spec)
    post = full["paths"]["/instances"]["post"]
    schemas = full["components"]["schemas"]

    codes = re.search(r"pub const CODES: &\[&str\] = &\[(.*?)\];", (ROOT / "src/api/error.rs").read_text(), re.S).group(1)
    codes = re.findall(r'"([a-z_]+)"', codes)
    verdict(sorted(codes) == sorted(schemas["Error"]["properties"]["code"]["enum"]), "the code enum is the service's CODES")

    request_examples = post["requestBody"]["content"]["application/json"]["examples"]
    response_examples = {}
    for status, response in post["responses"].items():
        for name, ex in response.get("content", {}).get("application/json", {}).get("examples", {}).items():
            response_examples[name] = (int(status), ex["value"], response["content"]["application/json"]["schema"])
            problem = conforms(ex["value"], response["content"]["application/json"]["schema"])
            verdict(problem is None, f"response example {name} matches its schema", problem)
    request_schema = post["requestBody"]["content"]["application/json"]["schema"]
    for name, ex in request_examples.items():
        verdict(name in response_examples, f"request example {name} has a response example")
        if response_examples.get(name, (0,))[0] == 200:
            problem = conforms(ex["value"], request_schema)
            verdict(problem is None, f"request example {name} (answered 200) matches the request schema", problem)

    # Each element's configuration schema says what the catalog says.
    catalog = json.loads((ROOT / "catalog/elements.json").read_text())
    types = {"string": "string", "url": "string", "enum": "string", "boolean": ["boolean", "string"],
             "number": ["number", "string"], "json": ["object", "string"]}
    for element in catalog["elements"]:
        key = element["element"]["key"]
        entries = element["configuration"] + catalog["commonConfiguration"]
        schema = schemas.get(f"{key.capitalize()}Configuration", {})
        props = schema.get("properties", {})
        problems = []
        names = [e["key"] for e in entries] + [a for e in entries for a in e.get("aliases", [])]
        if list(props) != names:
            problems.append(f"entries {list(props)} != catalog {names}")
        # A required entry is required under one of its names.
        alternatives = [sorted(r for alt in c.get("anyOf", []) for r in alt.get("required", []))
                        for c in schema.get("allOf", [])]
        for e in entries:
            one_of = sorted([e["key"]] + e.get("aliases", []))
            said = (one_of in alternatives) if e.get("aliases") else (e["key"] in schema.get("required", []))
            if said != e["required"]:
                problems.append(f"{e['key']}: required {e['required']} in the catalog")
        for e in entries:
            for alias in e.get("aliases", []):
                a = props.get(alias, {})
                if a.get("x-alias-of") != e["key"] or bool(a.get("x-secret")) != e["secret"]:
                    problems.append(f"{alias}: {a}")
            p = props.get(e["key"], {})
            if p.get("type") != types[e["type"]] or p.get("description") != e["description"] \
                    or bool(p.get("x-secret")) != e["secret"] or p.get("enum", e.get("values")) != e.get("values") \
                    or p.get("default") != e.get("default"):
                problems.append(f"{e['key']}: {p}")
        verdict(not problems, f"{key.capitalize()}Configuration describes the catalog's {len(entries)} entries of {key}",
                "; ".join(problems))

    with served(sys.argv[1], "openapi") as fn:
        fn.wait_until_serving()
        url = urllib.parse.urlparse(fn.url)

        def send(method, path, body=None, headers=None):
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
            h = {"Authorization": fn.authorization, "Content-Type": "application/json"}
            h.update(headers or {})
            h = {k: v for k, v in h.items() if v is not None}
            data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
            conn.request(method, path, data, h)
            r = conn.getresponse()
            text = r.read().decode()
            return r.status, dict(r.getheaders()), (json.loads(text) if text else None)

        for name, ex in request_examples.items():
            status, headers, body = send("POST", "/instances", ex["value"])
            want_status, want, schema = response_examples[name]
            problems = []
            if status != want_status:
                problems.append(f"status {status} != {want_status}")
            problem = conforms(body, schema)
            if problem:
                problems.append(problem)
            if want_status == 200:
                fn.secrets.add(body.get("token"))
                for key in ("name", "element", "tags", "provisionInteractions", "disabled", "maxCacheSize", "cacheTimeToLive", "cachingEnabled"):
                    if body.get(key) != want[key]:
                        problems.append(f"{key} {body.get(key)!r} != {want[key]!r}")
                # `valid` says whether JIRA accepted the credentials: the example
                # is a deployment's (check on); this function's check is off.
                checked = fn.env.get("PROVIDER_CHECK") != "off"
                if body.get("valid") is not (want["valid"] and checked):
                    problems.append(f"valid {body.get('valid')!r} with the check {'on' if checked else 'off'}")
            else:
                for key in ("code", "message", "missing", "unknown", "invalid"):
                    if body.get(key) != want.get(key):
                        problems.append(f"{key} {body.get(key)!r} != {want.get(key)!r}")
            verdict(not problems, f"example {name} -> {status}", "; ".join(problems))

        error_schema = schemas["Error"]
        seed = request_examples["created"]["value"]
        cases = [
            ("401 without credentials", ("POST", "/instances", seed, {"Authorization": None}), 401, "unauthorized"),
            ("404 elsewhere", ("POST", "/anything-else", seed, None), 404, "not_found"),
            ("405 on POST of a configuration", ("POST", "/instances/1/configuration", seed, None), 405, "method_not_allowed"),
            ("413 over 64 KiB", ("POST", "/instances", json.dumps(dict(seed, pad="x" * 70000)), None), 413, "payload_too_large"),
            ("415 text/plain", ("POST", "/instances", seed, {"Content-Type": "text/plain"}), 415, "unsupported_media_type"),
        ]
        for what, (method, path, body, headers), want_status, code in cases:
            status, h, got = send(method, path, body, headers)
            problem = conforms(got, error_schema)
            ok = status == want_status and (got or {}).get("code") == code and problem is None
            if want_status == 405:
                ok = ok and h.get("allow") == "GET"
            verdict(ok, what, f"{status} {got} {problem or ''}")
        # Discovery answers as described.
        elements_op = full["paths"]["/elements"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        element_op = full["paths"]["/elements/{keyOrId}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        status, h, got = send("GET", "/elements", None, {"Content-Type": None})
        problem = conforms(got, elements_op)
        verdict(status == 200 and problem is None and h.get("cache-control") == "private, max-age=300",
                "GET /elements matches its schema", f"{status} {problem}")
        for key in ("jira", "1"):
            status, h, got = send("GET", f"/elements/{key}", None, {"Content-Type": None})
            problem = conforms(got, element_op)
            verdict(status == 200 and problem is None and got == (send("GET", "/elements", None, {"Content-Type": None})[2] or [None])[0],
                    f"GET /elements/{key} matches its schema and the list's entry", f"{status} {problem}")
        status, h, got = send("GET", "/elements/nope", None, {"Content-Type": None})
        verdict(status == 404 and (got or {}).get("code") == "not_found", "GET /elements/nope -> 404", got)
        status, h, first = send("POST", "/instances", seed, {"Idempotency-Key": "openapi-1"})
        status2, h2, again = send("POST", "/instances", seed, {"Idempotency-Key": "openapi-1"})
        fn.secrets.add((first or {}).get("token"))
        verdict(status == status2 == 200 and first == again and h2.get("idempotent-replayed") == "true", "a replay answers the first response")
        other = dict(seed, name="Another")
        status, h, got = send("POST", "/instances", other, {"Idempotency-Key": "openapi-1"})
        verdict(status == 422 and got["code"] == "idempotency_key_reused" and conforms(got, error_schema) is None, "422 for the same key with another body", got)
    leaked, lines = fn.leaked()
    verdict(not leaked, f"the function's log ({lines} lines) carries none of {len(fn.secrets)} secrets")
    print(f"openapi: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
