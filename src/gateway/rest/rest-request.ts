import {
  type DescField,
  type DescMessage,
  fromJson,
  type JsonObject,
  type JsonValue,
  ScalarType,
} from "@bufbuild/protobuf";
import type { RestRoute } from "./http-rule.js";

/** Why a REST request cannot be a message: the field at fault and what is wrong with it. */
export class RestBindingError extends Error {
  override readonly name = "RestBindingError";
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The request message of a REST call, bound as google.api.http says: the
 * body (JSON, the whole message for `body: "*"` or one field), then the path
 * variables, then the query parameters (proto or JSON field names, repeated
 * by repeating the parameter) for every field neither of those set. A
 * parameter that names no field, a value of the wrong type or a body that is
 * not JSON is a RestBindingError naming the field.
 */
export function bindRequest<I extends DescMessage>(
  route: RestRoute,
  input: I,
  variables: Readonly<Record<string, string>>,
  query: URLSearchParams,
  body: string,
): ReturnType<typeof fromJson<I>> {
  const json: JsonObject = {};
  if (route.body !== undefined) {
    let parsed: JsonValue;
    try {
      parsed = body.trim() === "" ? {} : (JSON.parse(body) as JsonValue);
    } catch {
      throw new RestBindingError("body", "the body is not JSON");
    }
    if (route.body === "*") {
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        throw new RestBindingError("body", `the body must be a JSON object (${input.typeName})`);
      }
      Object.assign(json, parsed);
    } else {
      json[fieldNamed(input, route.body, "body").jsonName] = parsed;
    }
  }
  for (const [name, value] of Object.entries(variables)) {
    const field = fieldNamed(input, name, name);
    json[field.jsonName] = scalarJson(field, value);
  }
  for (const name of new Set(query.keys())) {
    const field = fieldNamed(input, name, name);
    if (json[field.jsonName] !== undefined) continue; // bound by the body or the path already
    const values = query.getAll(name);
    json[field.jsonName] =
      field.fieldKind === "list" ? values.map((v) => scalarJson(field, v)) : scalarJson(field, values.at(-1) as string);
  }
  try {
    return fromJson(input, json);
  } catch (err) {
    // protobuf-es names the field and what is wrong; nothing else of the message is echoed.
    const field = input.fields.find((f) => String(err).includes(f.jsonName) || String(err).includes(f.name));
    throw new RestBindingError(field?.name ?? "body", (err as Error).message.slice(0, 200));
  }
}

function fieldNamed(input: DescMessage, name: string, where: string): DescField {
  const field = input.fields.find((f) => f.name === name || f.jsonName === name);
  if (field === undefined)
    throw new RestBindingError(where, `${input.typeName} has no field ${JSON.stringify(name.slice(0, 64))}`);
  return field;
}

/** A path or query value as JSON of the field's type (proto3's JSON mapping takes 64-bit integers as strings). */
function scalarJson(field: DescField, value: string): JsonValue {
  const scalar = field.fieldKind === "scalar" || field.fieldKind === "list" ? field.scalar : undefined;
  switch (scalar) {
    case ScalarType.BOOL:
      if (value === "true" || value === "false") return value === "true";
      throw new RestBindingError(field.name, `${field.name} must be true or false`);
    case ScalarType.INT32:
    case ScalarType.UINT32:
    case ScalarType.SINT32:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT: {
      const n = Number(value);
      if (value.trim() === "" || Number.isNaN(n))
        throw new RestBindingError(field.name, `${field.name} must be a number`);
      return n;
    }
    default:
      return value;
  }
}
