import { apiConfigFromEnv } from "../config/api-config.js";
import { startApiServer } from "../servers/api-server.js";
import { runUntilSignalled } from "./run.js";

await runUntilSignalled("api", async () => [await startApiServer(apiConfigFromEnv())]);
