"""The long-term-key guard as a hostile file meets it: whatever either reader (python-dotenv,
Node's dotenv 16) would see, the guard sees too, and what the app reads after a write is exactly
one credential set."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credhelper.credentials import Credentials
from credhelper.errors import LongTermKeyError, TargetError
from credhelper.formats.nodedotenv import node_parse
from credhelper.targets.credsection import CredentialsSectionTarget
from credhelper.targets.envfile import EnvFileTarget
from credhelper.targets.files import write_target
from tests.conftest import UserHome
from tests.helpers import assert_one_line_failure
from tests.nodecheck import node_dotenv_parse

CREDENTIALS = Credentials("ASIAIOSFODNN7EXAMPLE", "secret/EXAMPLE+1", "token/EXAMPLE=", 2_000_000_000.0)
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def never_adopted(key_id: str, secret: str | None) -> bool:
    return False


def write(env: Path, text: str, adopted: object = never_adopted) -> bool:
    env.write_text(text)
    return write_target(EnvFileTarget(env), CREDENTIALS, env.parent, adopted)  # type: ignore[arg-type]


# -- the Node dotenv 16 reader ---------------------------------------------------------------

FRAGMENT = st.sampled_from(
    [
        "AWS_ACCESS_KEY_ID", "KEY", "a.b-c", "export ", "export", "=", ":", ": ", " ", "\t", "\n", "\r",
        "\r\n", "'", '"', "`", "\\", "\\n", "\\r", "\\'", '\\"', "#", " #", "x", "AKIA", "1 2",
        "\u2028", "\u00a0", "\ufeff", "\x0b", "\x1c", "\u0085", "é",
    ]
)  # fmt: skip
DOTENV_TEXT = st.one_of(
    st.lists(FRAGMENT, max_size=30).map("".join),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(DOTENV_TEXT, min_size=20, max_size=20))
def test_the_node_reader_reads_as_node_dotenv_16_does(texts: list[str]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        paths = [Path(scratch) / f"{number}.env" for number in range(len(texts))]
        for path, text in zip(paths, texts, strict=True):
            path.write_bytes(text.encode("utf-8"))
        expected = node_dotenv_parse(paths)
    assert [node_parse(text) for text in texts] == expected


# -- a long-term key however it is written -------------------------------------------------

HIDDEN_KEYS = {
    "in backticks": f"AWS_ACCESS_KEY_ID=`{KEY_ID}`\nAWS_SECRET_ACCESS_KEY=`{SECRET}`\n",
    "after a space inside quotes": f'AWS_ACCESS_KEY_ID=" {KEY_ID}"\nAWS_SECRET_ACCESS_KEY={SECRET}\n',
    "in a colon binding": f"AWS_ACCESS_KEY_ID=\nAWS_SECRET_ACCESS_KEY=\nAWS_ACCESS_KEY_ID: {KEY_ID}\n",
    "on the line after =": f"AWS_ACCESS_KEY_ID=\n'{KEY_ID}'\n",
    "with a comment": f"AWS_ACCESS_KEY_ID=x{KEY_ID} # mine\n",
}


@pytest.mark.parametrize("text", HIDDEN_KEYS.values(), ids=HIDDEN_KEYS.keys())
def test_a_long_term_key_either_reader_sees_is_never_overwritten(tmp_path: Path, text: str) -> None:
    env = tmp_path / ".env"
    with pytest.raises(LongTermKeyError, match="adopt-keys") as caught:
        write(env, text)
    assert caught.value.exit_code == 78
    assert "AKIA…MPLE" in str(caught.value)
    assert env.read_text() == text


def test_refresh_refuses_a_key_in_backticks_before_sts(home: UserHome) -> None:
    text = f"APP=1\nAWS_ACCESS_KEY_ID=`{KEY_ID}`\nAWS_SECRET_ACCESS_KEY=`{SECRET}`\n"
    home.app_env.write_text(text)
    result = home.run("refresh")
    assert_one_line_failure(result, 78, str(home.app_env), "AKIA…MPLE", "adopt-keys")
    assert home.app_env.read_text() == text
    assert home.proxy.count("AssumeRole") == 0


def test_a_long_term_key_in_backticks_in_a_credentials_section_is_never_overwritten() -> None:
    target = CredentialsSectionTarget(Path("/home/u/.aws/credentials"), section="app")
    text = f"[app]\naws_access_key_id = `{KEY_ID}`\naws_secret_access_key = `{SECRET}`\n"
    with pytest.raises(LongTermKeyError, match=r"AKIA…MPLE"):
        target.guard(text, never_adopted)


def test_the_refusal_shows_the_key_id_masked_and_nothing_of_the_text_around_it(tmp_path: Path) -> None:
    text = f'AWS_ACCESS_KEY_ID="{KEY_ID}\nAWS_SECRET_ACCESS_KEY=zz"\n'
    with pytest.raises(LongTermKeyError) as caught:
        write(tmp_path / ".env", text)
    message = str(caught.value)
    assert "(AKIA…MPLE)" in message
    assert "zz" not in message and "Y=" not in message


# -- half a pair -----------------------------------------------------------------------------

LONE_SECRETS = {
    "no key id": f"AWS_SECRET_ACCESS_KEY={SECRET}\n",
    "an empty key id": f"AWS_ACCESS_KEY_ID=\nAWS_SECRET_ACCESS_KEY={SECRET}\n",
    "a key id that is not temporary": f"AWS_ACCESS_KEY_ID=mine\nAWS_SECRET_ACCESS_KEY={SECRET}\n",
    "a secret Node alone reads": f"AWS_SECRET_ACCESS_KEY=\nAWS_SECRET_ACCESS_KEY: {SECRET}\n",
}


@pytest.mark.parametrize("text", LONE_SECRETS.values(), ids=LONE_SECRETS.keys())
def test_a_secret_without_a_temporary_key_id_is_never_overwritten(tmp_path: Path, text: str) -> None:
    env = tmp_path / ".env"
    with pytest.raises(LongTermKeyError, match="AWS_SECRET_ACCESS_KEY") as caught:
        write(env, text)
    assert "delete that line" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert env.read_text() == text


@pytest.mark.parametrize("edit", ["", "AWS_ACCESS_KEY_ID=\n"], ids=["as written", "a person blanked the key"])
def test_credhelpers_own_earlier_write_is_rewritten(tmp_path: Path, edit: str) -> None:
    env = tmp_path / ".env"
    earlier = "AWS_ACCESS_KEY_ID=ASIAOLDOLDOLDEXAMPLE\nAWS_SECRET_ACCESS_KEY=old/s\nAWS_SESSION_TOKEN=x\n"
    assert write(env, earlier + edit)
    assert node_parse(env.read_text())["AWS_SECRET_ACCESS_KEY"] == CREDENTIALS.secret_access_key


def test_refresh_refuses_a_lone_secret_before_sts(home: UserHome) -> None:
    text = f"APP=1\nAWS_SECRET_ACCESS_KEY={SECRET}\n"
    home.app_env.write_text(text)
    result = home.run("refresh")
    assert_one_line_failure(result, 78, str(home.app_env), "line 2", "AWS_SECRET_ACCESS_KEY")
    assert SECRET not in result.stderr
    assert home.app_env.read_text() == text
    assert home.proxy.count("AssumeRole") == 0


def test_a_placeholder_starting_like_a_temporary_key_id_does_not_hide_a_secret(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    text = f"AWS_ACCESS_KEY_ID=ASIA_typed\nAWS_SECRET_ACCESS_KEY={SECRET}\n"
    with pytest.raises(LongTermKeyError, match="line 2: AWS_SECRET_ACCESS_KEY"):
        write(env, text)
    assert env.read_text() == text


SECTION_LONE_SECRETS = {
    "no key id": f"[app]\r\naws_secret_access_key = {SECRET}\r\n",
    "an empty key id": f"[app]\naws_access_key_id =\naws_secret_access_key = {SECRET}\n",
    "a placeholder key id": f"[app]\naws_access_key_id = ASIA_typed\naws_secret_access_key = {SECRET}\n",
}


@pytest.mark.parametrize("text", SECTION_LONE_SECRETS.values(), ids=SECTION_LONE_SECRETS.keys())
def test_a_secret_without_a_temporary_key_id_in_a_credentials_section_is_never_overwritten(text: str) -> None:
    target = CredentialsSectionTarget(Path("/home/u/appcreds"), section="app")
    with pytest.raises(LongTermKeyError, match=r"line \d: \[app\] aws_secret_access_key") as caught:
        target.guard(text, never_adopted)
    assert "delete that line" in str(caught.value) and SECRET not in str(caught.value)


def test_an_adopted_pair_in_a_credentials_section_is_overwritten() -> None:
    target = CredentialsSectionTarget(Path("/home/u/appcreds"), section="app")
    text = f"[app]\naws_access_key_id = mine\naws_secret_access_key = {SECRET}\n"
    target.guard(text, lambda key_id, secret: (key_id, secret) == ("mine", SECRET))


def test_credhelpers_own_earlier_section_is_rewritten() -> None:
    target = CredentialsSectionTarget(Path("/home/u/appcreds"), section="app")
    text = "[app]\naws_access_key_id = ASIAOLDOLDOLDEXAMPLE\naws_secret_access_key = old/s\n"
    target.guard(text, never_adopted)


def test_refresh_refuses_a_lone_secret_in_a_credentials_section_before_sts(home: UserHome) -> None:
    shared = home.root / "appcreds"
    text = f"[app]\r\naws_secret_access_key = {SECRET}\r\n"
    shared.write_bytes(text.encode())
    shared.chmod(0o600)
    home.write_config(credentials_files='[{path = "~/appcreds", profile = "app"}]')
    result = home.run("refresh")
    assert_one_line_failure(result, 78, str(shared), "line 2", "aws_secret_access_key")
    assert SECRET not in result.stderr
    assert shared.read_bytes() == text.encode()
    assert home.proxy.count("AssumeRole") == 0


# -- what the app reads after the write ------------------------------------------------------


def test_a_binding_node_reads_last_that_would_mix_credential_sets_is_refused(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    text = "AWS_ACCESS_KEY_ID=\nAWS_SECRET_ACCESS_KEY=\nAWS_ACCESS_KEY_ID: ASIAOLDOLDOLDEXAMPLE\n"
    with pytest.raises(TargetError, match="line 3: AWS_ACCESS_KEY_ID") as caught:
        write(env, text)
    assert caught.value.exit_code == 78
    assert "Node" in str(caught.value)
    assert env.read_text() == text


def test_an_adopted_pair_still_hiding_in_a_colon_binding_is_not_left_for_node(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    text = f"AWS_ACCESS_KEY_ID=\nAWS_SECRET_ACCESS_KEY=\nAWS_ACCESS_KEY_ID: {KEY_ID}\n"
    with pytest.raises(TargetError, match="line 3: AWS_ACCESS_KEY_ID"):
        write(env, text, adopted=lambda key_id, secret: True)
    assert env.read_text() == text


def test_refresh_refuses_a_mixed_set_before_sts(home: UserHome) -> None:
    text = home.app_env.read_text() + "AWS_SESSION_TOKEN=\nAWS_SESSION_TOKEN: old\n"
    home.app_env.write_text(text)
    result = home.run("refresh")
    assert_one_line_failure(result, 78, str(home.app_env), "line 18: AWS_SESSION_TOKEN", "delete the others")
    assert home.app_env.read_text() == text
    assert home.proxy.count("AssumeRole") == 0


def test_a_pair_in_backticks_can_be_adopted_then_refreshed(home: UserHome) -> None:
    key_id, secret = home.sts.access_key_id, home.sts.secret_access_key
    home.app_env.write_text(f"APP=1\nAWS_ACCESS_KEY_ID=`{key_id}`\nAWS_SECRET_ACCESS_KEY=`{secret}`\n")
    (home.root / ".aws" / "credentials").write_text("")
    result = home.run("adopt-keys", "--env-file", str(home.app_env), "--profile", "bedrock-developer")
    assert result.returncode == 0, result.stderr
    assert f"aws_secret_access_key = {secret}\n" in (home.root / ".aws" / "credentials").read_text()
    read = node_parse(home.app_env.read_text())
    assert read["APP"] == "1" and read["AWS_ACCESS_KEY_ID"].startswith("ASIA")
