"""The text formats credhelper reads and writes: text in, text out, no I/O.

`dotenv` (a `.env` as python-dotenv reads it, and the byte-preserving merge), `nodedotenv` (the
same text as Node's dotenv 16 reads it), `ini` (a shared credentials file: a strict reader and a
byte-preserving section writer), `awsconfig` (the `[profile NAME]` sections of `~/.aws/config`)
and `bedrockkey` (the short-term Bedrock API key of a role session). Files are found in
`credhelper.paths` and read and written in `credhelper.targets`.

Nothing is imported here: a caller pays only for the format it uses (plain exec's fast path
imports `bedrockkey` alone).
"""
