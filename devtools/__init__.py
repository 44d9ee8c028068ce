"""Developer tools, outside the installed package: the embedded local STS (`localsts`) that the
demo, the tests and the benchmarks run against, and the demo itself (`sh dev demo`)."""
