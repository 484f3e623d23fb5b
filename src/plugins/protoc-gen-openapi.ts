#!/usr/bin/env node
import {
  type DescEnum,
  type DescField,
  type DescMessage,
  type DescMethod,
  type DescService,
  ScalarType,
} from "@bufbuild/protobuf";
import { createEcmaScriptPlugin, getComments, runNodeJs, type Schema } from "@bufbuild/protoplugin";
import { matchPath, restRouteOf } from "../gateway/rest/http-rule.js";
import { restError } from "../gateway/rest/rest-error.js";
import { file_google_rpc_error_details } from "../gen/google/rpc/error_details_pb.js";
import { allCodes, codeTable } from "../shared/code-table.js";
import { errorCatalog } from "../shared/errors/catalog.js";
import type { ErrorSpec } from "../shared/errors/error-spec.js";
import { publicError } from "../shared/errors/public-error.js";

/**
 * buf plugin: `openapi.json`, an OpenAPI 3.1 document of the REST routes the
 * gateway transcodes (each method's google.api.http rule, read by the same
 * code that routes them), with the messages as JSON Schema (proto3's JSON
 * mapping), comments as descriptions, and the error answers: Google's JSON
 * error format with every google.rpc detail type, and, per HTTP status, an
 * example of each public error of the catalog, made by the code that makes
 * the real ones. Run with strategy: all.
 */

type JsonSchema = Record<string, unknown>;

const OWN_PACKAGE = /^bazbii\./;
const ERROR_SCHEMA = "RestError";
const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });
const detailName = (desc: DescMessage) => `Detail.${desc.typeName}`;

function generate(schema: Schema): void {
  const services = schema.files.filter((f) => OWN_PACKAGE.test(f.proto.package)).flatMap((f) => f.services);
  const schemas: Record<string, JsonSchema> = {};
  const paths: Record<string, Record<string, unknown>> = {};
  for (const service of services) {
    for (const method of service.methods) {
      const route = restRouteOf(method);
      if (route === undefined) continue;
      const path = paths[route.template] ?? {};
      paths[route.template] = path;
      path[route.verb.toLowerCase()] = operation(service, method, route.body, route.template, schemas);
    }
  }
  for (const detail of file_google_rpc_error_details.messages) {
    addMessage(detail, schemas);
    schemas[detailName(detail)] = {
      ...(messageSchema(detail, schemas) as object),
      required: ["@type"],
      properties: {
        "@type": { const: `type.googleapis.com/${detail.typeName}` },
        ...(messageSchema(detail, schemas).properties as object),
      },
    };
  }
  schemas[ERROR_SCHEMA] = errorSchema();
  const doc = {
    openapi: "3.1.0",
    info: {
      title: "Bazbii API",
      version: "v1",
      description:
        "REST/JSON routes of the Bazbii gateway, transcoded from the same services as its Connect, gRPC and gRPC-Web routes, with the same codes, messages and details. Errors are Google's JSON error format (AIP-193); Retry-After comes with errors that say when to come back. Methods that act for someone (Create, Delete) need a bearer token.",
    },
    tags: services.map((s) => ({ name: s.name, description: getComments(s).leading?.trim() ?? "" })),
    security: [{}, { bearer: [] }],
    paths,
    components: {
      schemas,
      responses: errorResponses(),
      securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } },
    },
  };
  // A route template must route to its own method: the gateway's matcher is checked here.
  for (const service of services) {
    for (const method of service.methods) {
      const route = restRouteOf(method);
      if (route !== undefined && matchPath([route], route.template.replace(/\{[^}]+\}/g, "x")).length !== 1) {
        throw new Error(`${route.template}: the gateway's matcher does not match its own route`);
      }
    }
  }
  schema.generateFile("openapi.json").print(JSON.stringify(doc, null, 2));
}

function operation(
  service: DescService,
  method: DescMethod,
  body: string | undefined,
  template: string,
  schemas: Record<string, JsonSchema>,
): Record<string, unknown> {
  const comments = getComments(method).leading?.trim() ?? "";
  const pathFields = [...template.matchAll(/\{([a-z_][a-z0-9_.]*)(?:=\*)?\}/g)].map((m) => m[1] as string);
  const fieldOf = (name: string) => method.input.fields.find((f) => f.name === name) as DescField;
  const parameters = pathFields.map((name) => ({
    name,
    in: "path",
    required: true,
    description: getComments(fieldOf(name)).leading?.trim() ?? "",
    schema: fieldSchema(fieldOf(name), schemas),
  }));
  if (body === undefined) {
    for (const field of method.input.fields) {
      if (pathFields.includes(field.name) || (field.fieldKind !== "scalar" && field.fieldKind !== "list")) continue;
      parameters.push({
        name: field.name,
        in: "query",
        required: false,
        description: getComments(field).leading?.trim() ?? "",
        schema: fieldSchema(field, schemas),
      });
    }
  }
  addMessage(method.input, schemas);
  addMessage(method.output, schemas);
  const stream = method.methodKind === "server_streaming";
  const success = stream
    ? {
        description: `Server-sent events: one \`data:\` line of ${method.output.typeName} JSON per message; an error after the first comes as \`event: error\` with a ${ERROR_SCHEMA} as data.`,
        content: { "text/event-stream": { schema: { type: "string" }, "x-event-schema": ref(method.output.typeName) } },
      }
    : { description: method.output.typeName, content: { "application/json": { schema: ref(method.output.typeName) } } };
  return {
    operationId: `${service.name}_${method.name}`,
    tags: [service.name],
    summary: comments.split("\n")[0] ?? "",
    description: comments,
    parameters,
    ...(body === undefined
      ? {}
      : {
          requestBody: {
            required: true,
            content: {
              "application/json": {
                schema: body === "*" ? ref(method.input.typeName) : fieldSchema(fieldOf(body), schemas),
              },
            },
          },
        }),
    responses: {
      "200": success,
      ...Object.fromEntries(
        errorStatuses().map((status) => [String(status), { $ref: `#/components/responses/Error${status}` }]),
      ),
    },
  };
}

function addMessage(desc: DescMessage, schemas: Record<string, JsonSchema>): void {
  if (schemas[desc.typeName] !== undefined || wellKnown(desc) !== undefined) return;
  schemas[desc.typeName] = {}; // placeholder against cycles
  schemas[desc.typeName] = messageSchema(desc, schemas);
}

function messageSchema(desc: DescMessage, schemas: Record<string, JsonSchema>): JsonSchema {
  return {
    type: "object",
    description: getComments(desc).leading?.trim() ?? "",
    additionalProperties: false,
    properties: Object.fromEntries(
      desc.fields.map((f) => [
        f.jsonName,
        { ...fieldSchema(f, schemas), description: getComments(f).leading?.trim() ?? "" },
      ]),
    ),
  };
}

/** The JSON Schema of a field's value in proto3's JSON mapping. */
function fieldSchema(field: DescField, schemas: Record<string, JsonSchema>): JsonSchema {
  switch (field.fieldKind) {
    case "list":
      return { type: "array", items: elementSchema(field.listKind, field, schemas) };
    case "map":
      return { type: "object", additionalProperties: elementSchema(field.mapKind, field, schemas) };
    default:
      return elementSchema(field.fieldKind, field, schemas);
  }
}

/** The JSON Schema of one value (a field's, a list's element, a map's value) of the given kind. */
function elementSchema(
  kind: "scalar" | "enum" | "message",
  of: {
    readonly scalar?: ScalarType | undefined;
    readonly enum?: DescEnum | undefined;
    readonly message?: DescMessage | undefined;
  },
  schemas: Record<string, JsonSchema>,
): JsonSchema {
  if (kind === "enum") return { type: "string", enum: of.enum?.values.map((v) => v.name) };
  if (kind === "message" && of.message !== undefined) {
    addMessage(of.message, schemas);
    return wellKnown(of.message) ?? ref(of.message.typeName);
  }
  return scalarSchema(of.scalar as ScalarType);
}

function scalarSchema(scalar: ScalarType): JsonSchema {
  switch (scalar) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return { type: "number" };
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      // 64-bit integers are strings in proto3 JSON.
      return { type: "string", pattern: "^-?[0-9]+$" };
    default:
      return { type: "integer", format: "int32" };
  }
}

function wellKnown(desc: DescMessage): JsonSchema | undefined {
  switch (desc.typeName) {
    case "google.protobuf.Timestamp":
      return { type: "string", format: "date-time" };
    case "google.protobuf.Duration":
      return { type: "string", pattern: "^-?[0-9]+(\\.[0-9]{1,9})?s$" };
    default:
      return undefined;
  }
}

/** HTTP statuses an error can have: those of the code table's codes. */
function errorStatuses(): number[] {
  return [...new Set(allCodes.map((c) => codeTable[c].httpStatus))].sort((a, b) => a - b);
}

function errorSchema(): JsonSchema {
  return {
    type: "object",
    description: "An error, in Google's JSON error format (AIP-193): google.rpc.Status with the HTTP status as code.",
    required: ["error"],
    additionalProperties: false,
    properties: {
      error: {
        type: "object",
        required: ["code", "message", "status", "details"],
        additionalProperties: false,
        properties: {
          code: { type: "integer", description: "The HTTP status." },
          message: { type: "string", description: "What is wrong, in English, for the developer." },
          status: { type: "string", enum: allCodes.map((c) => codeTable[c].name.toUpperCase()) },
          details: {
            type: "array",
            items: {
              oneOf: [
                ...file_google_rpc_error_details.messages.map((d) => ref(detailName(d))),
                {
                  type: "object",
                  description: "A detail of a type not known here: its type URL and bytes, base64.",
                  required: ["@type", "value"],
                  additionalProperties: false,
                  properties: { "@type": { type: "string" }, value: { type: "string", contentEncoding: "base64" } },
                },
              ],
            },
          },
        },
      },
    },
  };
}

/** One response per HTTP status, with an example of every catalog error that has it. */
function errorResponses(): Record<string, unknown> {
  const responses: Record<string, unknown> = {};
  for (const status of errorStatuses()) {
    const specs = Object.values(errorCatalog).filter(
      (s: ErrorSpec) => !s.retired && codeTable[s.code].httpStatus === status,
    );
    const codes = allCodes
      .filter((c) => codeTable[c].httpStatus === status)
      .map((c) => codeTable[c].name.toUpperCase());
    responses[`Error${status}`] = {
      description: `${codes.join(", ")}${status === 429 || status === 503 ? "; Retry-After says when to try again when the server knows" : ""}`,
      ...(status === 429 || status === 503
        ? {
            headers: {
              "Retry-After": { description: "Seconds to wait before trying again.", schema: { type: "string" } },
            },
          }
        : {}),
      content: {
        "application/json": {
          schema: ref(ERROR_SCHEMA),
          ...(specs.length === 0
            ? {}
            : {
                examples: Object.fromEntries(
                  specs.map((spec) => [spec.reason, { summary: spec.message.en, value: example(spec) }]),
                ),
              }),
        },
      },
    };
  }
  return responses;
}

/** A real error of `spec`, every template parameter shown as `<name>`, as the gateway would answer it. */
function example(spec: ErrorSpec): unknown {
  const texts = [
    spec.message.en,
    spec.statusMessage ?? "",
    spec.badRequest?.field ?? "",
    spec.quotaFailure?.subject ?? "",
    spec.resourceInfo?.name ?? "",
    spec.preconditionFailure?.subject ?? "",
  ];
  const params = Object.fromEntries(
    texts
      .flatMap((t) => [...t.matchAll(/\{(\w+)\}/g)].map((m) => [m[1] as string, `<${m[1]}>`]))
      .filter(([name]) => name !== "requestId"),
  );
  const err = publicError(
    spec,
    { requestId: "<request id>", locale: "en" },
    {
      params,
      ...(spec.retryDelayMs === "per call" ? { retryDelayMs: 1000 } : {}),
    },
  );
  return restError(err).body;
}

runNodeJs(createEcmaScriptPlugin({ name: "protoc-gen-openapi", version: "v1", generateTs: generate }));
