"""The command line's long texts: the epilogs `credhelper --help` and each command's --help print
(examples, exit statuses, where the configuration is), and the help of options whose text names a
default kept elsewhere."""

import re

from .appexec.options import DEFAULT_GRACE_SECONDS
from .profile import DEFAULT_SERVE

MAIN_EPILOG = """\b
Configuration: --config PATH, else $CREDHELPER_CONFIG, else
$XDG_CONFIG_HOME/credhelper/config.toml (~/.config/credhelper/config.toml).

\b
Exit status:
  0   success
  1   anything else: a write failing at the OS level (permission, disk full,
      read-only file system), a second daemon; status: credentials missing or
      expired; doctor: a check failed
  2   usage error
  75  STS unreachable, or throttling, after retries
  77  refused by AWS: AccessDenied, InvalidClientTokenId, expired source
      credentials, no MFA code to be had
  78  configuration error: bad or missing file, unknown profile, invalid value,
      a target unusable as configured (directory missing, not a regular file,
      not UTF-8, over 1 MiB, holding a long-term key, unparseable credentials file),
      a cache, runtime directory or configuration someone else could write;
      init: a profile or ~/.aws/config section already holding other values
  126 exec: the command cannot be run (not an executable)
  127 exec: the command is not found

\b
Shell completion (bash; use zsh_source or fish_source for those shells):
  eval "$(_CREDHELPER_COMPLETE=bash_source credhelper)"   # add to ~/.bashrc

Run `credhelper COMMAND --help` for a command's examples."""

REFRESH_EPILOG = """With no PROFILE, every profile in the configuration is refreshed.

\b
Examples:
  credhelper refresh               # every profile
  credhelper refresh bedrock       # one profile"""

CREDENTIAL_PROCESS_EPILOG = """Served from the cache while enough time is left; one STS call otherwise.

\b
Example, in ~/.aws/config:
  [profile bedrock]
  credential_process = credhelper credential-process bedrock
  region = us-east-1

--format sts prints STS's own {"Credentials": {...}} shape instead, for tools
that run a command for credentials (Claude Code's awsCredentialExport)."""

RUN_EPILOG = f"""With no PROFILE, every profile in the configuration is kept fresh. --serve takes
an optional address: a value with a colon (HOST:PORT, or :PORT for 127.0.0.1) is
the address; anything else is a profile name, and the endpoint listens on
{DEFAULT_SERVE}.

\b
Examples:
  credhelper run                          # what the systemd unit runs
  credhelper run --serve                  # also the endpoint, on {DEFAULT_SERVE}
  credhelper run --serve :9912 bedrock    # the endpoint on 127.0.0.1:9912, one profile
  credhelper run --serve-containers       # also for containers, on 169.254.170.2:9911
  systemctl --user kill -s USR1 --kill-whom=main credhelper   # refresh now"""

STATUS_EPILOG = """With no PROFILE, every profile. Reads the cache only: no STS call.

\b
Examples:
  credhelper status
  credhelper status bedrock --json"""

ADOPT_KEYS_EPILOG = """Copies the pair into [NAME] of ~/.aws/credentials (every other byte kept),
checks it with sts:GetCallerIdentity, and only then lets the .env take temporary
credentials (the profiles with source_profile = NAME that write this .env are
refreshed). Nothing changes when AWS refuses the key.

With --to-keyring NAME, the pair goes to the OS keyring instead (entry NAME,
service credhelper), from the .env (--env-file) or from a section of
~/.aws/credentials (--from-profile): stored, read back, checked with
sts:GetCallerIdentity, the profiles that used it switched to
source_keyring = "NAME", and only then removed from where it was (every other
byte kept). A locked or absent keyring: exit 77, nothing changed.

\b
Examples:
  credhelper adopt-keys --env-file ~/src/app/.env --profile bedrock-developer
  credhelper adopt-keys --to-keyring bedrock-developer --from-profile bedrock-developer
  credhelper adopt-keys --to-keyring bedrock-developer --env-file ~/src/app/.env"""

ROTATE_EPILOG = """Creates a new access key for the IAM user (iam:CreateAccessKey), stores it
where the old one lives (the keyring entry, or the credentials-file section),
checks it with sts:GetCallerIdentity (up to 30 s), then deletes the old key
(--deactivate: marks it inactive; the next rotate deletes it). A rotation
interrupted before is finished or undone first. Refused (78) when the source
is no stored long-term key, or when the user has a second key credhelper did
not make. See docs/rotation.md for the IAM permissions it needs.

\b
Examples:
  credhelper rotate bedrock
  credhelper rotate bedrock --deactivate"""

ENV_EPILOG = """--container (Linux): what a container needs to get credentials from the
daemon's listener on 169.254.170.2 ([daemon] serve_containers = true, after
`credhelper containers setup`): the variables, and the read-only mount of the
token's directory at /run/credhelper. --format docker is a `docker run
--env-file` file; compose a service override. Exit 1 when no running daemon
serves containers.

\b
Examples:
  eval "$(credhelper env bedrock)"              # this shell uses the running endpoint
  credhelper env bedrock --format dotenv >> .env
  eval "$(credhelper env bedrock --static)"     # the credentials themselves, for one shell
  credhelper env bedrock --container --format docker > creds.env
  credhelper env bedrock --container --format compose > compose.override.yaml"""

CONTAINERS_SETUP_EPILOG = """Run as root, it adds 169.254.170.2/32 to the loopback interface (nothing
when it is there already); otherwise it prints the command. Either way it says
how to keep the address across reboots, and what containers_port = 80 needs.
Linux only: Docker Desktop's VM cannot reach the host's loopback addresses.

\b
Examples:
  sudo credhelper containers setup   # once; then serve_containers = true in [daemon]
  credhelper containers setup        # as yourself: prints what to run"""

ENV_FORMATS = ["sh", "dotenv", "json", "docker", "compose"]
CONTAINER_FORMATS = ("sh", "docker", "compose", "json")


def check_env_options(
    output: str, static: bool, container: bool, service: str | None, token_value: bool
) -> None:
    """`env`'s options that go together, else a usage error (2)."""
    import click

    if container and static:
        raise click.UsageError("--static and --container: choose one")
    if container and output not in CONTAINER_FORMATS:
        raise click.UsageError(f"--container prints --format {', '.join(CONTAINER_FORMATS)}")
    if not container and output in ("docker", "compose"):
        raise click.UsageError(f"--format {output} is for --container")
    if not container and (service is not None or token_value):
        option = "--service" if service is not None else "--token-value"
        raise click.UsageError(f"{option} is for --container")
    if service is not None and (output != "compose" or not SERVICE_NAME.match(service)):
        raise click.UsageError(f"--service {service!r}: a Compose service name, with --format compose")


SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")  # what Compose accepts as a name

INIT_KEYRING_HELP = (
    "Keep the long-term key in the OS keyring (entry --source-profile), not ~/.aws/credentials "
    "(default: when a keyring is unlocked)."
)
SERVE_HELP = f"Also serve the container credentials endpoint (loopback only; default {DEFAULT_SERVE})."
SERVE_CONTAINERS_HELP = "Also serve containers on 169.254.170.2 ([daemon] containers_port; Linux)."
GRACE_HELP = (
    "With --restart-on-refresh: how long COMMAND has to stop after SIGTERM "
    f"(default {DEFAULT_GRACE_SECONDS:g})."
)


def split_serve_value(value: str | None) -> tuple[str | None, tuple[str, ...]]:
    """`--serve`'s optional value as (address, profile names): a value with a colon is the
    address (`:PORT` on 127.0.0.1); any other value is a profile name that followed a bare
    `--serve`, and the endpoint takes the default address."""
    if value is None or ":" in value:
        return (f"127.0.0.1{value}" if value and value.startswith(":") else value), ()
    return DEFAULT_SERVE, (value,)
