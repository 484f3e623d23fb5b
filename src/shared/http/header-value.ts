import type { IncomingHttpHeaders } from "node:http";

/** One value of a Node request or response header, which may repeat. */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
