//! The OpenAPI 3.1 description of the service, built from the same names the handlers use.
//! `openapi.json` beside this crate is this document, committed; a test fails when the two
//! differ (`PHISCRUB_BLESS=1 cargo test -p phiscrub-server` rewrites it).

use serde_json::{json, Value};

/// The query parameters of `POST /v1/scrub`: name, description and schema.
pub const SCRUB_PARAMETERS: [(&str, &str, &str); 8] = [
    ("only", "Look only for these categories, comma-separated: face, text, barcode.", "categories"),
    ("skip", "Do not look for these categories, comma-separated: face, text, barcode.", "categories"),
    ("style", "How to cover each category, comma-separated CATEGORY=STYLE (categories face, text, barcode, manual, all; styles fill, pixelate, blur). Default fill.", "style"),
    ("fill_color", "Fill colour as RRGGBB hex. Default 000000.", "color"),
    ("shape", "Shape covered inside each face's and manual region's box: box (default) or ellipse.", "shape"),
    ("metadata_only", "Remove metadata only; no detection. Default false.", "boolean"),
    ("regions", "Extra boxes to cover, x,y,w,h in pixels of the upright image, separated by semicolons.", "regions"),
    ("keep", "Regions to leave uncovered, comma-separated ids from an earlier report of the same photo with the same options: CATEGORY-X-Y-W-H, such as text-120-80-200-60. Each names the region of that category overlapping its box most (by at least 0.8 intersection over union). The report lists them under kept_by_user. An id that names no region is refused with 400 and code region.", "keep"),
];

fn schema(kind: &str) -> Value {
    match kind {
        "categories" => {
            json!({"type": "string", "pattern": "^(face|text|barcode)(,(face|text|barcode))*$"})
        }
        "style" => {
            json!({"type": "string", "pattern": "^(face|text|barcode|manual|all)=(fill|pixelate|blur)(,(face|text|barcode|manual|all)=(fill|pixelate|blur))*$"})
        }
        "color" => json!({"type": "string", "pattern": "^#?[0-9A-Fa-f]{6}$"}),
        "shape" => json!({"type": "string", "enum": ["box", "ellipse"]}),
        "boolean" => json!({"type": "boolean"}),
        "keep" => {
            json!({"type": "string", "pattern": "^(face|text|barcode|manual)-[0-9]{1,9}-[0-9]{1,9}-[1-9][0-9]{0,8}-[1-9][0-9]{0,8}(,(face|text|barcode|manual)-[0-9]{1,9}-[0-9]{1,9}-[1-9][0-9]{0,8}-[1-9][0-9]{0,8})*$"})
        }
        _ => {
            json!({"type": "string", "pattern": "^-?[0-9.]+,-?[0-9.]+,[0-9.]+,[0-9.]+(;-?[0-9.]+,-?[0-9.]+,[0-9.]+,[0-9.]+)*$"})
        }
    }
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

fn image_body() -> Value {
    json!({
        "required": true,
        "description": "The image's bytes: JPEG, PNG, WebP, GIF, TIFF or HEIC/HEIF.",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}},
            "image/*": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}
        }
    })
}

fn errors(mut responses: Value, scrub: bool) -> Value {
    let r = responses.as_object_mut().expect("an object");
    r.insert(
        "400".into(),
        problem("A parameter is not valid, or the body is empty."),
    );
    r.insert("401".into(), problem("No valid bearer token."));
    r.insert(
        "413".into(),
        problem("The body is larger than the service accepts."),
    );
    r.insert(
        "415".into(),
        problem("The body is not an image phiscrub reads."),
    );
    r.insert(
        "422".into(),
        problem(if scrub {
            "The image cannot be scrubbed, searched and verified; nothing is returned. `code` is stable: malformed, unsupported, limits, decode, encode, verify, detect."
        } else {
            "The image's container cannot be read."
        }),
    );
    r.insert(
        "500".into(),
        problem("An internal error; nothing was kept."),
    );
    r.insert("503".into(), json!({
        "description": "Busy (the queue is full), past the request's deadline, or shutting down. Try again after Retry-After seconds.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    }));
    responses
}

/// The document.
pub fn document() -> Value {
    let params: Vec<Value> = SCRUB_PARAMETERS
        .iter()
        .map(|(name, description, kind)| {
            json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema(kind)})
        })
        .collect();
    let ok_scrub = json!({
        "200": {
            "description": "The scrubbed, verified image, or with Accept: application/json its report and the image in base64.",
            "headers": {
                "Phiscrub-Regions": {"description": "Regions covered.", "schema": {"type": "integer", "minimum": 0}},
                "Phiscrub-Needs-Review": {"description": "Whether candidates under the threshold deserve a look.", "schema": {"type": "boolean"}}
            },
            "content": {
                "image/jpeg": {"schema": {"type": "string", "contentMediaType": "image/jpeg"}},
                "image/png": {"schema": {"type": "string", "contentMediaType": "image/png"}},
                "image/webp": {"schema": {"type": "string", "contentMediaType": "image/webp"}},
                "image/gif": {"schema": {"type": "string", "contentMediaType": "image/gif"}},
                "application/json": {"schema": {
                    "type": "object",
                    "required": ["report", "image"],
                    "properties": {
                        "report": {"type": "object", "description": "The report the CLI writes for each file: formats, size, path taken, metadata removed by category, regions covered, for review and kept uncovered by the user, each with its id. No metadata values."},
                        "image": {"type": "string", "contentEncoding": "base64"}
                    }
                }}
            }
        }
    });
    let ok_inspect = json!({
        "200": {
            "description": "What the file holds, by category and size; never the values.",
            "content": {"application/json": {"schema": {"type": "object"}}}
        }
    });
    let status = |what: &str| {
        json!({"description": what, "content": {"application/json": {"schema": {
            "type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}
        }}}})
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "phiscrub",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "De-identifies photos before an app stores them: strips metadata and covers faces, text and barcodes. Fails closed: an image that cannot be fully scrubbed is refused, never returned in part.",
            "license": {"name": "MIT OR Apache-2.0", "identifier": "MIT OR Apache-2.0"}
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/scrub": {"post": {
                "operationId": "scrub",
                "summary": "Scrub one image.",
                "parameters": params,
                "requestBody": image_body(),
                "responses": errors(ok_scrub, true)
            }},
            "/v1/inspect": {"post": {
                "operationId": "inspect",
                "summary": "List the metadata an image holds, without changing it.",
                "requestBody": image_body(),
                "responses": errors(ok_inspect, false)
            }},
            "/healthz": {"get": {
                "operationId": "healthz", "summary": "Liveness.", "security": [],
                "responses": {"200": status("The process is alive.")}
            }},
            "/readyz": {"get": {
                "operationId": "readyz", "summary": "Readiness: 503 while shutting down.", "security": [],
                "responses": {"200": status("Ready for requests."), "503": problem("Shutting down.")}
            }},
            "/metrics": {"get": {
                "operationId": "metrics", "summary": "Prometheus counters.",
                "responses": {
                    "200": {"description": "Text exposition format.", "content": {"text/plain": {"schema": {"type": "string"}}}},
                    "401": problem("No valid bearer token.")
                }
            }},
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document.", "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1.", "content": {"application/json": {"schema": {"type": "object"}}}}}
            }}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Problem": {
                "type": "object",
                "required": ["type", "title", "status", "code", "detail"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "code": {"type": "string", "description": "Stable: empty, region, unknown_format, malformed, unsupported, limits, decode, encode, verify, detect, bad_request, unauthorized, busy, timeout, draining, not_found, internal, runtime, model, io."},
                    "detail": {"type": "string"}
                }
            }}
        }
    })
}

/// The document as served and committed: pretty JSON with a final newline.
pub fn document_text() -> String {
    let mut s = serde_json::to_string_pretty(&document()).expect("JSON values serialise");
    s.push('\n');
    s
}
