"""Targets: the files credhelper keeps supplied with credentials.

`interfaces.Target` is the interface every kind implements; `files` is the only I/O around it
(every read, check, write and status of a target, and `rewrite_file`, the one writer of every
file outside credhelper's own private directories that may hold a secret); `location` is where a
target's file is and who may own it; `envfile` and `credsection` are the kinds; `registry` builds
a profile's targets and is the one list of kinds; `delivery` hands credentials to a profile's
targets and runs its hooks; `keeper` is a daemon's claim on each target it writes.
"""
