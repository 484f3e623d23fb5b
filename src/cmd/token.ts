import { gatewayConfigFromEnv } from "../config/gateway-config.js";
import { isValidSubject, mintToken } from "../gateway/auth.js";

// Prints a development token for an actor: npm run token -- alice
const USAGE = "usage: npm run token -- <actor-id>   (1 to 128 printable ASCII characters, not starting with '-')\n";
const actor = process.argv[2];
if (actor === "--help" || actor === "-h") {
  process.stdout.write(USAGE);
  process.exit(0);
}
// An option-looking actor is a mistyped flag far more often than an actor.
if (actor === undefined || actor.startsWith("-") || !isValidSubject(actor) || process.argv.length > 3) {
  process.stderr.write(USAGE);
  process.exit(2);
}
const { tokens } = gatewayConfigFromEnv();
if (tokens.jwksUrl !== undefined) {
  process.stderr.write("JWT_JWKS_URL is set: the gateway accepts the identity provider's tokens only, not these\n");
}
process.stdout.write(`${await mintToken(tokens.hs256Secret, actor, undefined, tokens)}\n`);
