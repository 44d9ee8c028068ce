"""STS endpoint URLs: a user name and password in one reach no output, log or state file; and
AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is honoured as botocore honours it, fast path included."""

from __future__ import annotations

import json

import pytest

from credhelper.fastpath import environment_facts
from credhelper.profile import resolve_sts_endpoint
from tests.conftest import UserHome
from tests.helpers import assert_no_secret, assert_one_line_failure
from tests.test_fast_answer import settle_config

PASSWORD = "Pa55w0rdSecret"
REGIONAL = "https://sts.eu-west-1.amazonaws.com"


def everything_written(home: UserHome) -> str:
    """Every file under HOME (cache, state, answers, targets) as text."""
    return "\n".join(
        path.read_bytes().decode(errors="replace") for path in sorted(home.root.rglob("*")) if path.is_file()
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"http://svc:{PASSWORD}@127.0.0.1:9", "http://***@127.0.0.1:9"),
        (f"https://svc:{PASSWORD}@sts.example/path?q=1", "https://***@sts.example/path?***"),
        (f"https://sts.example/?X-Token={PASSWORD}#x", "https://sts.example/?***"),  # a token in the query
        (f"https://sts.example/p#{PASSWORD}", "https://sts.example/p#***"),
        (f"https://svc:p@ss{PASSWORD}@host", "https://***@host"),  # an @ in the password
        (f"svc:{PASSWORD}@host/x", "***@host/x"),  # no scheme: refused, still hidden
        ("https://sts.example/a@b", "https://sts.example/a@b"),  # an @ in the path is no userinfo
        ("https://sts.us-east-1.amazonaws.com", "https://sts.us-east-1.amazonaws.com"),
    ],
)
def test_shown_url_hides_the_userinfo_query_and_fragment(url: str, shown: str) -> None:
    from credhelper.endpointurl import shown_url  # here: the other tests run on older trees too

    assert shown_url(url) == shown


def test_a_password_in_the_sts_url_reaches_no_output_state_or_log(home: UserHome) -> None:
    home.write_config(sts_endpoint_url="")
    url = f"http://svc:{PASSWORD}@127.0.0.1:9"  # the discard port: nothing listens
    texts: list[str] = []
    refresh = home.run("--log-level", "debug", "refresh", "bedrock", AWS_ENDPOINT_URL_STS=url)
    assert refresh.returncode == 75, refresh.stderr[-3000:].replace(PASSWORD, "<password>")
    assert "STS at http://***@127.0.0.1:9 could not be reached" in refresh.stderr
    texts += [refresh.stdout, refresh.stderr]
    process = home.run("credential-process", "bedrock", AWS_ENDPOINT_URL_STS=url)
    assert process.returncode == 75
    texts += [process.stdout, process.stderr]
    for args in (("status",), ("status", "--json"), ("doctor", "bedrock"), ("doctor", "--json")):
        result = home.run(*args, AWS_ENDPOINT_URL_STS=url, timeout=120)
        texts += [result.stdout, result.stderr]
    state = json.loads((home.cache_dir / "bedrock.state.json").read_text())
    assert "http://***@127.0.0.1:9" in state["last_error"]
    for bad, where in (
        ({"AWS_ENDPOINT_URL_STS": f"svc:{PASSWORD}@127.0.0.1:9"}, "AWS_ENDPOINT_URL_STS"),
        ({"AWS_ENDPOINT_URL": f"ftp://svc:{PASSWORD}@127.0.0.1:9"}, "AWS_ENDPOINT_URL"),
    ):
        refused = home.run("credential-process", "bedrock", **bad)
        assert_one_line_failure(refused, 78, where, "not an http(s) URL")
        texts += [refused.stdout, refused.stderr]
    home.write_config(sts_endpoint_url=f'"ftp://svc:{PASSWORD}@127.0.0.1:9"')
    refused = home.run("refresh", "bedrock")
    assert_one_line_failure(refused, 78, "sts_endpoint_url", "ftp://***@127.0.0.1:9")
    texts += [refused.stdout, refused.stderr]
    leaked = [i for i, text in enumerate(texts) if PASSWORD in text]
    assert leaked == [], f"the password in the STS URL was shown (outputs {leaked})"
    in_a_file = PASSWORD in everything_written(home).replace(f'svc:{PASSWORD}@127.0.0.1:9"', "")
    assert not in_a_file, "the password in the STS URL was written to a file"
    assert_no_secret(home, *texts)


@pytest.mark.parametrize(
    ("ignore", "ignored"),
    [
        ("true", True),
        ("TRUE", True),
        ("True", True),
        ("false", False),
        ("", False),
        ("1", False),
        ("yes", False),
    ],
)
def test_ignore_configured_endpoint_urls_as_botocore_reads_it(ignore: str, ignored: bool) -> None:
    environ = {
        "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:2",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": ignore,
    }
    resolved = resolve_sts_endpoint(None, "eu-west-1", environ)
    assert resolved == (REGIONAL if ignored else "http://127.0.0.1:1")
    del environ["AWS_ENDPOINT_URL_STS"]
    assert resolve_sts_endpoint(None, "eu-west-1", environ) == (REGIONAL if ignored else "http://127.0.0.1:2")
    # credhelper's own setting, like botocore's explicit endpoint_url argument: never ignored
    assert resolve_sts_endpoint("http://127.0.0.1:3", "eu-west-1", environ) == "http://127.0.0.1:3"


def test_the_ready_answer_facts_are_unambiguous() -> None:
    """An endpoint URL may hold a tab: two environments never share one record of facts."""
    one = environment_facts({"USER": "u", "AWS_ENDPOINT_URL_STS": "http://a\tb"})
    other = environment_facts({"USER": "u", "AWS_ENDPOINT_URL_STS": "http://a", "AWS_ENDPOINT_URL": "b"})
    assert one is not None and other is not None
    assert one != other
    assert environment_facts({"USER": "u"}) != environment_facts({"USER": "u", "AWS_ENDPOINT_URL": ""})
    unset = environment_facts({"USER": "u"})
    assert unset != environment_facts({"USER": "u", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"})


def test_credentials_of_a_configured_endpoint_are_not_handed_out_once_it_is_ignored(home: UserHome) -> None:
    """A cache (and ready answer) filled from the STS AWS_ENDPOINT_URL_STS names is not handed to a
    shell that also sets AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true: botocore there would use the
    regional STS, so credhelper must too (here unreachable: a failure, not the test STS's keys)."""
    home.write_config(sts_endpoint_url="", region='"us-east-1"')
    settle_config(home)
    test_sts = {"AWS_ENDPOINT_URL_STS": home.proxy.url}
    first = home.run("credential-process", "bedrock", **test_sts)
    assert first.returncode == 0, first.stderr
    again = home.run("credential-process", "bedrock", **test_sts)  # served by the ready answer
    assert again.stdout == first.stdout
    assert (home.cache_dir / "bedrock.answer").exists()
    key_id = json.loads(first.stdout)["AccessKeyId"]
    ignored = home.run(
        "credential-process", "bedrock", timeout=120, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS="true", **test_sts
    )
    handed_out = key_id in ignored.stdout
    assert not handed_out, "credentials of the test STS were handed out for the regional one"
    assert ignored.returncode != 0
    assert "sts.us-east-1.amazonaws.com" in ignored.stderr
    assert home.proxy.count("AssumeRole") == 1
    status = home.run("status", "bedrock", AWS_IGNORE_CONFIGURED_ENDPOINT_URLS="true", **test_sts)
    assert status.returncode != 0, "status called credentials of the ignored endpoint valid"
