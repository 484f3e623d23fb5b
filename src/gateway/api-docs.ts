import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import openApiDocument from "../gen/openapi.json" with { type: "json" };
import { type StaticAsset, sendAsset } from "../shared/http/static-asset.js";

/** The docs page: Swagger UI from its npm package, reading /openapi.json; nothing from a CDN. */
const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bazbii API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="api-docs"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

const INIT_SCRIPT = `window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#api-docs", deepLinking: true });\n`;

/**
 * GET /openapi.json (the OpenAPI 3.1 document `buf generate` wrote from the
 * schema) and GET /docs, a page that renders it. Everything is read once at
 * start-up; returns a handler that answers true when it served the request.
 */
export async function createApiDocs(): Promise<(req: IncomingMessage, res: ServerResponse) => boolean> {
  const uiDir = dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
  const assets = new Map<string, StaticAsset>([
    ["/openapi.json", { body: Buffer.from(JSON.stringify(openApiDocument)), type: "application/json" }],
    ["/docs", { body: Buffer.from(DOCS_PAGE), type: "text/html; charset=utf-8" }],
    ["/docs/init.js", { body: Buffer.from(INIT_SCRIPT), type: "text/javascript; charset=utf-8" }],
    ["/docs/swagger-ui.css", { body: await readFile(join(uiDir, "swagger-ui.css")), type: "text/css; charset=utf-8" }],
    [
      "/docs/swagger-ui-bundle.js",
      { body: await readFile(join(uiDir, "swagger-ui-bundle.js")), type: "text/javascript; charset=utf-8" },
    ],
  ]);
  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const asset = assets.get((req.url ?? "/").split("?")[0] ?? "/");
    if (asset === undefined) return false;
    sendAsset(req, res, asset);
    return true;
  };
}
