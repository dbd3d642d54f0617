"""drf-spectacular hooks: document the shared error shape on every API operation."""
from typing import Any

ERROR_COMPONENT = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable code."},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "description": "Messages per invalid field path, such as content.body.",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}
ERROR_RESPONSES = {
    "400": "Invalid input; `fields` names each invalid field.",
    "401": "Missing or invalid API key.",
    "403": "The API key lacks the operation's scope.",
    "404": "Not found.",
    "405": "Method not allowed.",
    "406": "The Accept header asks for a type the API cannot produce.",
    "409": "The request conflicts with the resource's state, such as cancelling a finished task.",
    "415": "Unsupported request body type.",
}


def add_error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """Add the error responses and the Error component to every /api/ operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_COMPONENT
    reference = {"$ref": "#/components/schemas/Error"}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/") or path.startswith("/api/v1/schema"):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_RESPONSES.items():
                responses.setdefault(
                    status,
                    {"description": description, "content": {"application/json": {"schema": reference}}},
                )
    return result
