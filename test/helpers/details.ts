import { type DescMessage, fromBinary, type MessageShape } from "@bufbuild/protobuf";
import type { WireDetail } from "./wire-clients.js";

/** Decodes the one detail of the given type; undefined when absent, an error when repeated. */
export function detailOf<D extends DescMessage>(
  details: readonly WireDetail[],
  schema: D,
): MessageShape<D> | undefined {
  const matching = details.filter((d) => d.type === schema.typeName);
  if (matching.length > 1) throw new Error(`${schema.typeName} appears ${matching.length} times`);
  const [one] = matching;
  return one === undefined ? undefined : fromBinary(schema, Buffer.from(one.value, "base64"));
}

/** Every detail decoded to text, to search for what must never be sent. */
export function detailsText(details: readonly WireDetail[]): string {
  return details.map((d) => `${d.type} ${Buffer.from(d.value, "base64").toString("latin1")}`).join("\n");
}
