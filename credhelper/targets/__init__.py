"""Targets: the files credhelper keeps supplied with credentials.

`base` is the interface every kind implements (`Target`); `files` is the only I/O around it (every
read, check, write and status of a target, and `rewrite_file`, the one writer of every file that
may hold a secret); `envfile` and `credsection` are the kinds; `registry` builds a profile's
targets and is the one list of kinds; `delivery` hands credentials to a profile's targets and runs
its hooks; `keeper` is a daemon's claim on each target it writes.

Nothing is imported here, so that importing one module of the package costs only what it needs.
"""
