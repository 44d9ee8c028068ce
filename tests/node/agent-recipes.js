// How agent tools built on the JS SDK v3 read credentials: Continue (fromIni with ignoreCache) and
// Cline (fromNodeProviderChain with ignoreCache, on every request), through ~/.aws/config's
// credential_process. argv: recipe ("ini" | "chain"), STS endpoint URL, then a command to run
// between two requests (a renewal). Prints the key id of each request and the caller ARN, one a line.
const { execFileSync } = require("child_process");
const { STSClient, GetCallerIdentityCommand } = require("@aws-sdk/client-sts");
const { fromIni, fromNodeProviderChain } = require("@aws-sdk/credential-providers");

async function request(recipe, endpoint) {
  const provider =
    recipe === "ini"
      ? fromIni({ profile: process.env.AWS_PROFILE, ignoreCache: true })
      : fromNodeProviderChain({ ignoreCache: true });
  const credentials = await provider();
  const client = new STSClient({ region: "us-east-1", endpoint, credentials });
  const identity = await client.send(new GetCallerIdentityCommand({}));
  process.stdout.write(`${credentials.accessKeyId} ${identity.Arn}\n`);
}

async function main() {
  const [recipe, endpoint, ...between] = process.argv.slice(2);
  await request(recipe, endpoint);
  execFileSync(between[0], between.slice(1), { stdio: "ignore" });
  await request(recipe, endpoint);
}

main().catch((error) => {
  process.stderr.write(`${error.name}: ${error.message}\n`);
  process.exit(1);
});
