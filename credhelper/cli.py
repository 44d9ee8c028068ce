"""The command line: one small function per command; see "Commands" in the README."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import clihelp
from .appexec.options import DEFAULT_GRACE_SECONDS, ExecOptions, grace_problem
from .cache import Cache, cache_dir_path
from .config import Config, load_config
from .credentials import mask_key_id
from .errors import EXIT_FAILURE, CommandNotFound, CredhelperError
from .logsetup import redact, setup_logging
from .profile import DEFAULT_SERVE, Profile

if TYPE_CHECKING:
    from .refresher import Refresher

log = logging.getLogger("credhelper")
LOG_LEVELS = ["debug", "info", "warning", "error"]


@dataclass
class AppContext:
    config_option: str | None

    def config(self) -> Config:
        return load_config(self.config_option, os.environ)

    def profiles(self, names: Sequence[str]) -> list[Profile]:
        selected = self.config().select(list(names))
        for profile in selected:
            for warning in profile.warnings:
                log.warning("%s", warning)
        return selected

    def cache(self) -> Cache:
        return Cache(cache_dir_path(os.environ))

    def refresher(self, interactive: bool = True) -> Refresher:
        from .refresher import Refresher  # not loaded by the commands that refresh nothing

        return Refresher(self.cache(), interactive=interactive)


pass_app = click.make_pass_decorator(AppContext)


def complete_profile_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of PROFILE: the names in the configuration, or none when it cannot be read."""
    try:
        config = load_config(ctx.find_root().params.get("config_option"), os.environ)
    except CredhelperError:
        return []
    return [name for name in config.profiles if name.startswith(incomplete)]


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=clihelp.MAIN_EPILOG)
@click.option(
    "--config",
    "config_option",
    metavar="PATH",
    help="Configuration file (default: $CREDHELPER_CONFIG, else ~/.config/credhelper/config.toml).",
)
@click.option(
    "--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False), default="warning", show_default=True
)
@click.version_option(package_name="credhelper")
@click.pass_context
def cli(ctx: click.Context, config_option: str | None, log_level: str) -> None:
    """Keeps apps supplied with valid temporary AWS credentials."""
    setup_logging(log_level)
    ctx.obj = AppContext(config_option)


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min"


@cli.command(epilog=clihelp.REFRESH_EPILOG)
@click.argument("profiles", nargs=-1, shell_complete=complete_profile_names)
@pass_app
def refresh(app: AppContext, profiles: tuple[str, ...]) -> None:
    """New credentials from STS now; every target written, hooks run."""
    from .supply import refresh_and_deliver
    from .targets.delivery import check_targets

    refresher = app.refresher()
    failures: list[CredhelperError] = []
    for profile in app.profiles(profiles):
        try:
            check_targets(profile, os.environ)
            supplied = refresh_and_deliver(refresher, profile, os.environ)
        except CredhelperError as error:
            failures.append(error)
            continue
        credentials, report = supplied.credentials, supplied.report
        failures.extend(report.errors)
        left = credentials.seconds_left(time.time())
        click.echo(
            f"{profile.name}: {credentials.assumed_role_arn} key {mask_key_id(credentials.access_key_id)} "
            f"expires {credentials.expiration_text} (in {_minutes(left)}); "
            f"{len(report.written)} target(s) written, {len(report.unchanged)} already current"
            + ("" if report.hook_ok else "; on_refresh hook failed")
        )
    raise_failures(failures)


def raise_failures(failures: list[CredhelperError]) -> None:
    """One failure is the error; several are logged, then summed up under the first one's status."""
    if len(failures) == 1:
        raise failures[0]
    if failures:
        for failure in failures:
            log.error("%s", failure)
        raise type(failures[0])(f"{len(failures)} failures; the first: {failures[0]}")


@cli.command("credential-process", epilog=clihelp.CREDENTIAL_PROCESS_EPILOG)
@click.argument("profile", shell_complete=complete_profile_names)
@click.option(
    "--format",
    "shape",
    type=click.Choice(["process", "sts"]),
    default="process",
    show_default=True,
    help="process: credential_process JSON for SDKs; sts: STS's own {\"Credentials\": {...}} shape.",
)
@pass_app
def credential_process(app: AppContext, profile: str, shape: str) -> None:
    """Print credential_process JSON for an AWS SDK (configure it in ~/.aws/config)."""
    (selected,) = app.profiles([profile])
    credentials = app.refresher().obtain(selected, selected.handout_seconds)
    sys.stdout.write((credentials.sts_json() if shape == "sts" else credentials.process_json()) + "\n")


@cli.command("run", epilog=clihelp.RUN_EPILOG)
@click.argument("profiles", nargs=-1, shell_complete=complete_profile_names)
@click.option(
    "--serve",
    metavar="[HOST:PORT|:PORT]",
    is_flag=False,
    flag_value=DEFAULT_SERVE,
    default=None,
    help=clihelp.SERVE_HELP,
)
@click.option("--serve-containers", "containers", is_flag=True, help=clihelp.SERVE_CONTAINERS_HELP)
@pass_app
def run_command(app: AppContext, profiles: tuple[str, ...], serve: str | None, containers: bool) -> None:
    """The daemon, in the foreground (for systemd): keeps every target fresh."""
    from .daemon import run_daemon

    serve, named = clihelp.split_serve_value(serve)
    code = run_daemon(app.config_option, (*named, *profiles), os.environ, serve, containers)
    if code:
        raise click.exceptions.Exit(code)


@cli.command(epilog=clihelp.STATUS_EPILOG)
@click.argument("profiles", nargs=-1, shell_complete=complete_profile_names)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def status(app: AppContext, profiles: tuple[str, ...], as_json: bool) -> None:
    """Expiry, last and next refresh, last error and target state, per profile."""
    from .status import format_status, status_reports

    reports = status_reports(app.profiles(profiles), app.cache(), time.time())
    if as_json:
        click.echo(json.dumps(reports, indent=2))
    else:
        click.echo("\n".join(format_status(r) for r in reports))
    bad = [r["profile"] for r in reports if r["condition"] in ("missing", "expired")]
    if bad:
        raise click.exceptions.Exit(EXIT_FAILURE)


@cli.command("adopt-keys", epilog=clihelp.ADOPT_KEYS_EPILOG)
@click.option("--env-file", type=click.Path(path_type=Path), help="The .env that holds a long-term key pair.")
@click.option(
    "--profile", "source_profile", metavar="NAME", help="Source profile to create in ~/.aws/credentials."
)
@click.option("--to-keyring", metavar="NAME", help="Move the pair into the OS keyring as entry NAME instead.")
@click.option(
    "--from-profile", metavar="PROFILE", help="With --to-keyring: take the pair from ~/.aws/credentials."
)
@pass_app
def adopt_keys_command(
    app: AppContext,
    env_file: Path | None,
    source_profile: str | None,
    to_keyring: str | None,
    from_profile: str | None,
) -> None:
    """Move a long-term key pair out of a .env (or ~/.aws/credentials) safely."""
    from .adopt import AdoptRun, adopt_into_profile, adoption_problem
    from .sts import StsGateway

    problem = adoption_problem(env_file, source_profile, to_keyring, from_profile)
    if problem:
        raise click.UsageError(problem)
    # Adopting keys needs no configuration (the next step says what to add); one that is there is
    # used whole, and refused (78) when invalid, as every command refuses it.
    from .paths import config_path

    there = os.path.lexists(config_path(app.config_option, os.environ))
    config: Config | None = app.config() if there else None
    run = AdoptRun(config, app.cache(), StsGateway(), os.environ, click.echo)
    if to_keyring is not None:
        from .keyringadopt import run_to_keyring

        run_to_keyring(to_keyring, env_file, from_profile, run)
    else:
        assert env_file is not None and source_profile is not None
        adopt_into_profile(env_file, source_profile, run)


@cli.command("rotate", epilog=clihelp.ROTATE_EPILOG)
@click.argument("profile", shell_complete=complete_profile_names)
@click.option("--deactivate", is_flag=True, help="Mark the old key inactive instead of deleting it.")
@pass_app
def rotate_command(app: AppContext, profile: str, deactivate: bool) -> None:
    """A new long-term key for PROFILE's source user; the old one deleted once the new one works."""
    from .rotate import rotate

    (selected,) = app.profiles([profile])
    report = rotate(selected, os.environ, app.cache(), app.refresher(), deactivate)
    click.echo("\n".join(report.lines))


@cli.command("env", epilog=clihelp.ENV_EPILOG)
@click.argument("profile", shell_complete=complete_profile_names)
@click.option("--format", "output", type=click.Choice(clihelp.ENV_FORMATS), default="sh", show_default=True)
@click.option(
    "--static", is_flag=True, help="The current temporary credentials themselves, for eval in a shell."
)
@click.option("--container", is_flag=True, help="For a container: the endpoint on 169.254.170.2.")
@click.option("--service", default=None, help="--container --format compose: the service (default app).")
@click.option("--token-value", is_flag=True, help="--container: the token itself, not its file.")
@pass_app
def env_command(app: AppContext, /, profile: str, output: str, static: bool, **container: Any) -> None:
    """What an app needs to get credentials from the running daemon's endpoint."""
    from .appexec.environment import credential_values, endpoint_values, format_variables
    from .endpoint.discovery import running_endpoint

    clihelp.check_env_options(output, static, **container)
    (selected,) = app.profiles([profile])
    if container.pop("container"):
        from .containers import container_env

        click.echo(container_env(selected, os.environ, app.cache().directory, output, **container))
        return
    if static:
        credentials = app.refresher().obtain(selected, selected.handout_seconds)
        values = credential_values(credentials, selected, time.time())
    else:
        endpoint = running_endpoint(os.environ, app.cache().directory, selected)
        values = endpoint_values(selected, endpoint["url"], token_file=endpoint["token_file"])
    click.echo(format_variables(values, output))


@cli.group("containers")
def containers_group() -> None:
    """Serving containers on 169.254.170.2 (Linux): see `credhelper containers setup`."""


@containers_group.command("setup", epilog=clihelp.CONTAINERS_SETUP_EPILOG)
def containers_setup() -> None:
    """Print, or as root run, the one privileged step: 169.254.170.2 on the loopback interface."""
    from .containers import setup

    setup(click.echo)


@cli.command("exec")
@click.argument("profile")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--restart-on-refresh", is_flag=True, help="Restart COMMAND onto renewed credentials.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help=clihelp.GRACE_HELP,
)
@click.option("--endpoint", is_flag=True, help="Serve COMMAND a private loopback credentials endpoint.")
@pass_app
def exec_command(
    app: AppContext,
    profile: str,
    command: tuple[str, ...],
    restart_on_refresh: bool,
    grace: float | None,
    endpoint: bool,
) -> None:
    """Run COMMAND with credentials that never go stale: credhelper exec PROFILE -- COMMAND [ARG]..."""
    from .appexec.supervisor import run_exec

    if not command:
        raise click.UsageError("missing COMMAND: credhelper exec PROFILE [OPTIONS] -- COMMAND [ARG]...")
    problem = grace_problem(grace, restart_on_refresh)
    if problem:
        raise click.UsageError(problem)
    if not command[0] or "\0" in command[0]:
        raise CommandNotFound(f"{command[0]!r}: command not found; give the command to run after --")
    (selected,) = app.profiles([profile])
    options = ExecOptions(restart_on_refresh, DEFAULT_GRACE_SECONDS if grace is None else grace, endpoint)
    raise click.exceptions.Exit(run_exec(selected, app.refresher(), command, options, os.environ))


@cli.command("init")
@click.option("--profile", default="bedrock", show_default=True, help="Name of the credhelper profile.")
@click.option("--role-arn", help="The role to assume, e.g. arn:aws:iam::123456789012:role/BedrockAccessRole.")
@click.option("--source-profile", help="Profile holding the IAM user's keys (default bedrock-developer).")
@click.option("--region", help="STS region, written as AWS_REGION too (default: the .env's, else us-east-1).")
@click.option("--env-file", "env_files", multiple=True, help="An app's .env to keep fresh (repeatable).")
@click.option("--systemd/--no-systemd", default=None, help="Install and start the systemd user service.")
@click.option("--aws-config/--no-aws-config", default=True, help="Add [profile NAME] to ~/.aws/config.")
@click.option("--keyring/--no-keyring", default=None, help=clihelp.INIT_KEYRING_HELP)
@click.option("--dry-run", is_flag=True, help="Print a diff per file; write nothing.")
@pass_app
def init_command(app: AppContext, /, dry_run: bool, **options: Any) -> None:
    """From the setup guide's end state to a working, running setup in one command."""
    from .configfile import config_path
    from .init.apply import execute_init, look_at_keyring
    from .init.plan import describe_dry_run, plan_init
    from .init.prompts import build_request
    from .unit import user_manager

    request = build_request(
        config_path(app.config_option, os.environ), **options, interactive=sys.stdin.isatty()
    )
    keyring = look_at_keyring(request)
    if dry_run:
        click.echo(describe_dry_run(plan_init(request, os.environ, keyring), request), nl=False)
        return
    systemctl = user_manager() if request.systemd else None
    execute_init(request, os.environ, click.echo, app.refresher(), systemctl, keyring)
    from .status import format_status, status_reports

    (report,) = status_reports(app.profiles([request.profile]), app.cache(), time.time())
    click.echo(format_status(report))


@cli.command("doctor")
@click.argument("profiles", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--timeout", default=15.0, show_default=True, metavar="SECONDS", help="How long every check may take."
)
@pass_app
def doctor_command(app: AppContext, profiles: tuple[str, ...], as_json: bool, timeout: float) -> None:
    """Every way the setup can still fail: ok, warn or fail per check, with the fix."""
    from .doctor.findings import FAIL, report
    from .doctor.run import diagnose

    findings = diagnose(app.config_option, profiles, os.environ, timeout)
    click.echo(report(findings, as_json))
    if any(finding.status == FAIL for finding in findings):
        raise click.exceptions.Exit(EXIT_FAILURE)


def run(argv: Sequence[str]) -> int:
    """Run the CLI; every failure becomes one line on stderr and its documented exit status."""
    try:
        # Without standalone mode, click returns the status of a click.exceptions.Exit.
        outcome = cli.main(args=list(argv), prog_name="credhelper", standalone_mode=False)
    except CredhelperError as error:
        _fail(str(error))
        return error.exit_code
    except click.exceptions.Exit as done:
        return int(done.exit_code)
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.exceptions.Abort:
        _fail("interrupted")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except Exception as error:  # a bug: say so in one line; the traceback only in debug
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            log.exception("internal error")
        _fail(f"internal error: {type(error).__name__}: {error} (run with --log-level debug for details)")
        return EXIT_FAILURE
    return outcome if isinstance(outcome, int) else 0


def _fail(message: str) -> None:
    sys.stderr.write(f"credhelper: error: {redact(message)}\n")
