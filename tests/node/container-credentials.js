// Credentials inside a (namespace) container through the JS SDK v3, then GetCallerIdentity with
// them. argv: the provider (chain: fromNodeProviderChain, which reads the container variables
// through fromHttp; http: fromHttp; metadata: fromContainerMetadata, which takes only the
// relative URI and the token's value), the STS endpoint URL.
// Prints {"keyId", "arn", "expiration"} as JSON: never the secret key or the session token.
const { STSClient, GetCallerIdentityCommand } = require("@aws-sdk/client-sts");
const { fromNodeProviderChain, fromHttp, fromContainerMetadata } = require("@aws-sdk/credential-providers");

const PROVIDERS = {
  chain: () => fromNodeProviderChain(),
  http: () => fromHttp({}),
  metadata: () => fromContainerMetadata({ timeout: 5000, maxRetries: 1 }),
};

async function main() {
  const credentials = await PROVIDERS[process.argv[2]]()();
  const client = new STSClient({
    region: process.env.AWS_REGION || "us-east-1",
    endpoint: process.argv[3],
    credentials,
  });
  const identity = await client.send(new GetCallerIdentityCommand({}));
  const expiration = credentials.expiration ? credentials.expiration.toISOString() : null;
  process.stdout.write(JSON.stringify({ keyId: credentials.accessKeyId, arn: identity.Arn, expiration }));
}

main().catch((error) => {
  process.stderr.write(`${error.name}: ${error.message}\n`);
  process.exit(1);
});
