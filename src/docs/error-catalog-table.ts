import { domainErrorMapping } from "../application/domain-error-mapping.js";
import { codeTable } from "../shared/code-table.js";
import { errorCatalog } from "../shared/errors/catalog.js";
import { ERROR_DOMAIN, type ErrorSpec } from "../shared/errors/error-spec.js";
import { logMessageById } from "../shared/logging/log-catalog.js";

function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

function detailTypes(spec: ErrorSpec): string {
  const types = ["ErrorInfo", "RequestInfo", "LocalizedMessage"];
  if (spec.badRequest) types.push(`BadRequest (\`${spec.badRequest.field}\`)`);
  if (spec.resourceInfo) types.push("ResourceInfo");
  if (spec.preconditionFailure) types.push("PreconditionFailure");
  if (spec.quotaFailure) types.push("QuotaFailure");
  if (spec.retryDelayMs === "per call") types.push("RetryInfo (per call)");
  else if (spec.retryDelayMs !== undefined) types.push(`RetryInfo (${spec.retryDelayMs} ms)`);
  return types.join(", ");
}

function loggedAs(spec: ErrorSpec): string {
  const lines = (["api", "gateway"] as const).flatMap((where) => {
    const id = spec.log[where];
    return id === undefined ? [] : [`${where === "api" ? "API" : "gateway"}: \`${id}\` ${logMessageById(id).msg}`];
  });
  if (spec.logLevel !== undefined) lines.push(`at ${spec.logLevel}`);
  return lines.join("<br>");
}

/** The status message, and the words for the user where they differ (LocalizedMessage). */
function messageCell(spec: ErrorSpec): string {
  if (spec.statusMessage === undefined) return cell(spec.message.en);
  return cell(`${spec.statusMessage} (LocalizedMessage: ${spec.message.en})`);
}

/** docs/errors.md's table: every public error, from the catalog, the code table and the domain mapping. */
export function renderErrorCatalogTable(): string {
  const domainReasonsBySpec = new Map<ErrorSpec, string[]>();
  for (const [domainReason, spec] of Object.entries(domainErrorMapping)) {
    domainReasonsBySpec.set(spec, [...(domainReasonsBySpec.get(spec) ?? []), domainReason]);
  }
  const rows = Object.values(errorCatalog).map((spec: ErrorSpec) => {
    const code = codeTable[spec.code];
    const fromDomain =
      domainReasonsBySpec
        .get(spec)
        ?.map((r) => `\`${r}\``)
        .join(", ") ?? "";
    return [
      spec.retired ? `\`${spec.reason}\` (retired)` : `\`${spec.reason}\``,
      spec.reason === "FAULT_INJECTED" ? "the requested one" : `\`${code.name}\``,
      spec.reason === "FAULT_INJECTED" ? "by code" : String(code.httpStatus),
      spec.reason === "FAULT_INJECTED" ? "by code" : code.retryClass,
      loggedAs(spec),
      fromDomain,
      messageCell(spec),
      cell(spec.message.ja),
      detailTypes(spec),
    ].join(" | ");
  });
  return [
    `Every error carries \`ErrorInfo{reason, domain: "${ERROR_DOMAIN}", metadata}\` (the message's \`{parameters}\` are its metadata keys), \`RequestInfo{request_id}\` and \`LocalizedMessage\` in the caller's language (\`Accept-Language\`: en, ja; otherwise en).`,
    "",
    "| reason | code | HTTP | retry class | raised by → log ID | domain sentinel | message (en) | message (ja) | details |",
    "|---|---|---|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r} |`),
  ].join("\n");
}

/** The code table of ERROR-MODEL.md as the code holds it. */
export function renderCodeTable(): string {
  const rows = Object.entries(codeTable).map(
    ([num, c]) => `| ${num} | \`${c.name}\` | ${c.httpStatus} | ${c.errorClass} | ${c.retryClass} | ${c.logLevel} |`,
  );
  return [
    "| # | code | HTTP (Connect unary) | class | retry class | log level |",
    "|---|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}
