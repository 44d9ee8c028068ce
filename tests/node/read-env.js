// Prints, as JSON, what Node's dotenv (the reader agent0 uses) parses from each file named.
const fs = require("fs");
const dotenv = require("dotenv");
const out = process.argv.slice(2).map((file) => dotenv.parse(fs.readFileSync(file)));
process.stdout.write(JSON.stringify(out));
