"""`credhelper doctor`: every way a setup can still fail, one finding per check, each with its fix.

Read-only apart from STS calls: credentials it obtains are discarded, the cache is only read.
Every check runs in its own thread under one deadline, so an unreachable STS fails its checks and
the others still report.

The package: `findings` (the Finding type and the pure decisions), the checks by area
(`checks_local`: environment, cache, daemon, endpoint; `checks_aws`: the AWS files, source
credentials, role, clock; `checks_targets`: every file a profile keeps fresh), and `run` (every
check under one deadline, and `diagnose`, the command's whole work).
"""
