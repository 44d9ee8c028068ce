"""The command line's long texts: the epilogs `credhelper --help` and each command's --help print
(examples, exit statuses, where the configuration is), and the help of options whose text names a
default kept elsewhere."""

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

ENV_EPILOG = """\b
Examples:
  eval "$(credhelper env bedrock)"              # this shell uses the running endpoint
  credhelper env bedrock --format dotenv >> .env
  eval "$(credhelper env bedrock --static)"     # the credentials themselves, for one shell"""

INIT_KEYRING_HELP = (
    "Keep the long-term key in the OS keyring (entry --source-profile), not ~/.aws/credentials "
    "(default: when a keyring is unlocked)."
)
SERVE_HELP = f"Also serve the container credentials endpoint (loopback only; default {DEFAULT_SERVE})."
GRACE_HELP = (
    "With --restart-on-refresh: how long COMMAND has to stop after SIGTERM "
    f"(default {DEFAULT_GRACE_SECONDS:g})."
)
