import { gatewayConfigFromEnv } from "../config/gateway-config.js";
import { isValidSubject, mintToken } from "../gateway/auth.js";

// Prints a development token for an actor: npm run token -- alice
const actor = process.argv[2];
if (actor === undefined || !isValidSubject(actor)) {
  process.stderr.write("usage: npm run token -- <actor-id>   (1 to 128 printable ASCII characters)\n");
  process.exit(2);
}
const config = gatewayConfigFromEnv();
process.stdout.write(`${await mintToken(config.jwtSecret, actor)}\n`);
