// A child for `credhelper exec` tests, resolving credentials as agent0 does at start (the JS SDK
// v3 default chain reads AWS_ACCESS_KEY_ID and friends first). argv: the file to append
// {"pid", "key"} to. Then it runs until SIGTERM.
const fs = require("fs");
const { fromNodeProviderChain } = require("@aws-sdk/credential-providers");

// SIGTERM ends it cleanly from the start: a restart can come while it is still resolving.
process.on("SIGTERM", () => process.exit(0));

async function main() {
  const credentials = await fromNodeProviderChain()();
  fs.appendFileSync(process.argv[2], JSON.stringify({ pid: process.pid, key: credentials.accessKeyId }) + "\n");
  setInterval(() => {}, 1 << 30);
}

main().catch((error) => {
  process.stderr.write(`${error.name}: ${error.message}\n`);
  process.exit(1);
});
