// An app that loads its .env with dotenv at start, as agent0 does (what the environment has set
// already wins), then resolves credentials through the JS SDK v3 default chain. argv: the .env.
// Prints, as JSON, the sources the chain reports, the key id, and how each credential variable
// stands after dotenv ("unset", "empty" or "set"; never a value).
require("dotenv").config({ path: process.argv[2] });
const { fromNodeProviderChain } = require("@aws-sdk/credential-providers");

const NAMES = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_CREDENTIAL_EXPIRATION",
  "AWS_BEARER_TOKEN_BEDROCK",
];

function standing(name) {
  if (!(name in process.env)) return "unset";
  return process.env[name] ? "set" : "empty";
}

fromNodeProviderChain()()
  .then((credentials) => {
    process.stdout.write(
      JSON.stringify({
        sources: Object.keys(credentials.$source || {}),
        key: credentials.accessKeyId,
        variables: Object.fromEntries(NAMES.map((name) => [name, standing(name)])),
      }),
    );
  })
  .catch((error) => {
    process.stderr.write(`${error.name}: ${error.message}\n`);
    process.exit(1);
  });
