import { type DescMethod, getOption, hasOption } from "@bufbuild/protobuf";
import { http } from "../../gen/google/api/annotations_pb.js";

/** One route from a method's `google.api.http` annotation. */
export interface RestRoute {
  readonly method: DescMethod;
  /** GET, POST, PUT, PATCH or DELETE. */
  readonly verb: string;
  /** The path template as written, e.g. /v1/posts/{id} or /v1/heatmap:watch. */
  readonly template: string;
  /** Which request field the body fills: "*" for the whole message, a field name, or none. */
  readonly body: string | undefined;
  /** The path's variables by segment, or null for a literal segment that must be equal. */
  readonly segments: readonly Segment[];
  /** A custom verb after the last segment (`:watch`), if any. */
  readonly customVerb: string | undefined;
}

/** A literal segment, or a variable that binds the segment (`{id}`, `{id=*}`) to a request field. */
type Segment = { readonly literal: string } | { readonly field: string };

/**
 * The REST route of a method, from its `google.api.http` option (AIP-127),
 * or undefined when it has none. Supported: single-segment variables
 * (`{name}`, `{name=*}`) and a custom verb; `additional_bindings` and
 * multi-segment (`**`) variables are refused at start-up, so a schema using
 * them fails loudly rather than routing half its calls.
 */
export function restRouteOf(method: DescMethod): RestRoute | undefined {
  if (!hasOption(method, http)) return undefined;
  const rule = getOption(method, http);
  const where = `${method.parent.typeName}/${method.name}`;
  if (rule.additionalBindings.length > 0) throw new Error(`${where}: additional_bindings are not supported`);
  const { case: kind, value } = rule.pattern;
  if (kind === undefined || kind === "custom") throw new Error(`${where}: only get, post, put, patch and delete rules`);
  const template = value as string;
  const [path, customVerb] = splitCustomVerb(template);
  const segments = path
    .split("/")
    .slice(1)
    .map((part): Segment => {
      const variable = /^\{([a-z_][a-z0-9_.]*)(?:=\*)?\}$/.exec(part);
      if (variable !== null) return { field: variable[1] as string };
      if (part.includes("{") || part.includes("*")) throw new Error(`${where}: unsupported path segment ${part}`);
      return { literal: part };
    });
  return {
    method,
    verb: kind.toUpperCase(),
    template,
    body: rule.body === "" ? undefined : rule.body,
    segments,
    customVerb,
  };
}

function splitCustomVerb(template: string): [string, string | undefined] {
  const lastSlash = template.lastIndexOf("/");
  const colon = template.indexOf(":", lastSlash);
  return colon === -1 ? [template, undefined] : [template.slice(0, colon), template.slice(colon + 1)];
}

/**
 * The route a request path matches, with its path variables decoded; the
 * verb is checked by the caller (a path that matches with another verb is
 * still a known resource).
 */
export function matchPath(
  routes: readonly RestRoute[],
  pathname: string,
): { route: RestRoute; variables: Record<string, string> }[] {
  const [path, customVerb] = splitCustomVerb(pathname);
  const parts = path.split("/").slice(1);
  const matches: { route: RestRoute; variables: Record<string, string> }[] = [];
  for (const route of routes) {
    if (route.customVerb !== customVerb || route.segments.length !== parts.length) continue;
    const variables: Record<string, string> = {};
    const fits = route.segments.every((segment, i) => {
      const part = parts[i] as string;
      if ("literal" in segment) return segment.literal === part;
      if (part === "") return false;
      try {
        variables[segment.field] = decodeURIComponent(part);
        return true;
      } catch {
        return false; // malformed percent-encoding names no resource
      }
    });
    if (fits) matches.push({ route, variables });
  }
  return matches;
}
