"""The client against the served `/openapi.json`: every route it calls, every field it reads
and every submission field it sends must be in the document the server generates from its
code, so that a change on the server fails here first."""

from fresco_client import IDEMPOTENCY_KEY, MODELS, ROUTES, SUBMIT_FIELDS, Client


def document(served):
    return Client(served.base, token=served.token).openapi()


def resolve(doc, schema):
    """A schema with `$ref`s and `allOf`s followed: its properties, merged."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return resolve(doc, doc["components"]["schemas"][name])
    properties = dict(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        properties.update(resolve(doc, part))
    return properties


def test_every_route_the_client_calls_is_served(served):
    doc = document(served)
    for method, path in ROUTES:
        assert path in doc["paths"], f"{path} is not in /openapi.json"
        assert method in doc["paths"][path], f"{method.upper()} {path} is not in /openapi.json"


def test_every_field_the_client_reads_is_in_its_schema(served):
    doc = document(served)
    schemas = doc["components"]["schemas"]
    for model in MODELS:
        assert model.SCHEMA in schemas, f"schema {model.SCHEMA} is not in /openapi.json"
        properties = resolve(doc, schemas[model.SCHEMA])
        missing = [f for f in model.FIELDS if f not in properties]
        assert not missing, f"{model.__name__} reads {missing}, absent from {model.SCHEMA}"
    # GET /v1/jobs/{id} answers a JobDetail, which holds a JobView's fields.
    detail = resolve(doc, schemas["JobDetail"])
    from fresco_client import Job
    assert not [f for f in Job.FIELDS if f not in detail]


def test_every_submission_field_and_the_idempotency_header_exist(served):
    doc = document(served)
    properties = resolve(doc, doc["components"]["schemas"]["SubmitRequest"])
    missing = [f for f in SUBMIT_FIELDS if f not in properties]
    assert not missing, f"the client sends {missing}, absent from SubmitRequest"
    parameters = doc["paths"]["/v1/jobs"]["post"].get("parameters", [])
    assert any(p["name"] == IDEMPOTENCY_KEY and p["in"] == "header" for p in parameters)

