import { readFileSync } from "node:fs";
import {
  create,
  createRegistry,
  type DescMessage,
  type DescMethod,
  fromJson,
  type JsonObject,
  type JsonValue,
  type MessageInitShape,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import { Ajv2020 } from "ajv/dist/2020.js";
import { restRouteOf } from "../../src/gateway/rest/http-rule.js";
import { file_google_rpc_error_details } from "../../src/gen/google/rpc/error_details_pb.js";
import type { Outcome } from "./wire-clients.js";

/** The OpenAPI document `buf generate` wrote, which the gateway serves at /openapi.json. */
export const openApiDocument = JSON.parse(readFileSync("src/gen/openapi.json", "utf8")) as {
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  components: { schemas: Record<string, unknown>; responses: Record<string, unknown> };
};

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema({ $id: "openapi", components: openApiDocument.components });
const detailTypes = createRegistry(file_google_rpc_error_details);

/**
 * Checks an answer against the OpenAPI document: the operation's 200 schema,
 * or the error response of its status. Every REST answer the tests receive
 * goes through here, so the document is checked against reality.
 */
export function checkAgainstOpenApi(verb: string, template: string, status: number, body: unknown): void {
  const operation = openApiDocument.paths[template]?.[verb.toLowerCase()];
  if (operation === undefined) throw new Error(`OpenAPI has no ${verb} ${template}`);
  const response = operation.responses[String(status)] as
    | { $ref?: string; content?: Record<string, { schema: unknown }> }
    | undefined;
  if (response === undefined) throw new Error(`OpenAPI has no ${status} answer for ${verb} ${template}`);
  const resolved = (
    response.$ref === undefined
      ? response
      : openApiDocument.components.responses[response.$ref.split("/").at(-1) as string]
  ) as { content: Record<string, { schema: unknown; "x-event-schema"?: unknown }> };
  const content = resolved.content["application/json"] ?? resolved.content["text/event-stream"];
  const schema = content?.["x-event-schema"] ?? content?.schema;
  const validate = ajv.compile(rebase(schema));
  if (!validate(body)) {
    throw new Error(
      `${verb} ${template} ${status}: not as OpenAPI says: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body)}`,
    );
  }
}

/** A schema of the document with its refs pointing into the schema registered as "openapi". */
function rebase(schema: unknown): object {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"openapi#/components/'));
}

/** Where a method's REST call goes for this request, and with what body. */
export function restCall<I extends DescMessage>(
  method: DescMethod & { input: I },
  request: MessageInitShape<I>,
): { verb: string; template: string; path: string; body: string | undefined } {
  const route = restRouteOf(method);
  if (route === undefined) throw new Error(`${method.name} has no REST route`);
  const json = toJson(method.input, create(method.input, request)) as JsonObject;
  const fieldsInPath = new Set<string>();
  let path = route.template.replace(/\{([a-z_][a-z0-9_]*)\}/g, (_, name: string) => {
    const field = method.input.fields.find((f) => f.name === name);
    fieldsInPath.add(field?.jsonName ?? name);
    return encodeURIComponent(String(json[field?.jsonName ?? name] ?? ""));
  });
  const rest = Object.fromEntries(Object.entries(json).filter(([k]) => !fieldsInPath.has(k)));
  if (route.body === "*") return { verb: route.verb, template: route.template, path, body: JSON.stringify(rest) };
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(rest)) {
    for (const one of Array.isArray(v) ? v : [v]) query.append(k, String(one));
  }
  if (query.size > 0) path += `?${query}`;
  return { verb: route.verb, template: route.template, path, body: undefined };
}

/** A REST call, as Outcome (details as bytes, for comparison with the RPC protocols), checked against OpenAPI. */
export async function callRest<I extends DescMessage>(
  baseUrl: string,
  method: DescMethod & { input: I },
  request: MessageInitShape<I>,
  options: { headers?: Record<string, string> } = {},
): Promise<Outcome> {
  const { verb, template, path, body } = restCall(method, request);
  const res = await fetch(`${baseUrl}${path}`, {
    method: verb,
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...options.headers },
    ...(body === undefined ? {} : { body }),
  });
  const answer = (await res.json()) as JsonValue;
  checkAgainstOpenApi(verb, template, res.status, answer);
  if (res.status === 200) return { ok: true, response: answer, requestId: res.headers.get("x-request-id") };
  return restOutcome(res, answer);
}

/** A REST error answer as an Outcome: its details as bytes, for comparison with the RPC protocols. */
export function restOutcome(res: Response, answer: JsonValue): Outcome {
  const requestId = res.headers.get("x-request-id");
  const { error } = answer as { error: { status: string; message: string; details: JsonObject[] } };
  return {
    ok: false,
    code: error.status.toLowerCase(),
    message: error.message,
    httpStatus: res.status,
    details: error.details.map(restDetailBytes),
    requestId,
    headerText: [...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n"),
  };
}

/** A detail's JSON back to its type name and bytes (base64), as the RPC clients report them. */
export function restDetailBytes(detail: JsonObject): { type: string; value: string } {
  const type = String(detail["@type"]).replace("type.googleapis.com/", "");
  const desc = detailTypes.getMessage(type);
  if (desc === undefined) return { type, value: String(detail.value) };
  const { "@type": _, ...fields } = detail;
  return { type, value: Buffer.from(toBinary(desc, fromJson(desc, fields))).toString("base64") };
}
