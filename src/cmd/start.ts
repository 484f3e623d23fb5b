import { apiConfigFromEnv } from "../config/api-config.js";
import { gatewayConfigFromEnv } from "../config/gateway-config.js";
import { startApiServer } from "../servers/api-server.js";
import { startGateway } from "../servers/gateway-server.js";
import { runUntilSignalled } from "./run.js";

// Both servers in one process, on embedded defaults. The gateway still calls
// the API server over a real h2c connection, as in a deployment.
await runUntilSignalled("bazbii", async () => {
  const gatewayConfig = gatewayConfigFromEnv();
  const api = await startApiServer(apiConfigFromEnv());
  return [api, await startGateway(gatewayConfig)];
});
