// GetCallerIdentity through the JS SDK v3 default credential chain, which reads
// AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (fromHttp).
// argv: STS endpoint URL. Prints the caller ARN.
const { STSClient, GetCallerIdentityCommand } = require("@aws-sdk/client-sts");
const { fromNodeProviderChain } = require("@aws-sdk/credential-providers");

async function main() {
  const client = new STSClient({
    region: process.env.AWS_REGION || "us-east-1",
    endpoint: process.argv[2],
    credentials: fromNodeProviderChain(),
  });
  const identity = await client.send(new GetCallerIdentityCommand({}));
  process.stdout.write(identity.Arn);
}

main().catch((error) => {
  process.stderr.write(`${error.name}: ${error.message}\n`);
  process.exit(1);
});
