import { gatewayConfigFromEnv } from "../config/gateway-config.js";
import { startGateway } from "../servers/gateway-server.js";
import { runUntilSignalled } from "./run.js";

await runUntilSignalled("gateway", async () => [await startGateway(gatewayConfigFromEnv())]);
