import { gatewayConfigFromEnv } from "../config/gateway-config.js";
import { mintToken } from "../gateway/auth.js";

// Prints a development token for an actor: npm run token -- alice
const actor = process.argv[2];
if (actor === undefined || !/^[\x21-\x7e]{1,128}$/.test(actor)) {
  process.stderr.write("usage: npm run token -- <actor-id>   (1 to 128 printable ASCII characters)\n");
  process.exit(2);
}
const config = gatewayConfigFromEnv();
process.stdout.write(`${await mintToken(config.jwtSecret, actor)}\n`);
